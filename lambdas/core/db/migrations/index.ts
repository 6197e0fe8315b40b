/**
 * Every migration, imported statically so esbuild bundles them into the migrate Lambda; the
 * Migrator never scans a folder. Append new ones here in name order.
 */
import type { Migration, MigrationProvider } from 'kysely/migration';
import * as m0001 from '#core/db/migrations/0001_initial.ts';
import * as m0002 from '#core/db/migrations/0002_delivery_control.ts';
import * as m0003 from '#core/db/migrations/0003_reclaim_events.ts';
import * as m0004 from '#core/db/migrations/0004_function_roles.ts';
import * as m0005 from '#core/db/migrations/0005_webhook_items.ts';
import * as m0006 from '#core/db/migrations/0006_consent.ts';
import * as m0008 from '#core/db/migrations/0008_template_registry.ts';

const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_delivery_control': m0002,
  '0003_reclaim_events': m0003,
  '0004_function_roles': m0004,
  '0005_webhook_items': m0005,
  '0006_consent': m0006,
  '0008_template_registry': m0008,
};

export const staticMigrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};

/** Every migration's name, oldest first; the last is the schema this code expects. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS).sort();
