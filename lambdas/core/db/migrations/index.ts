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
import * as m0009 from '#core/db/migrations/0009_number_health.ts';
import * as m0010 from '#core/db/migrations/0010_callbacks.ts';
import * as m0011 from '#core/db/migrations/0011_cancel_fallback.ts';
import * as m0012 from '#core/db/migrations/0012_client_limits.ts';
import * as m0013 from '#core/db/migrations/0013_pii_lifecycle.ts';
import * as m0014 from '#core/db/migrations/0014_client_limits_admin.ts';

const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_delivery_control': m0002,
  '0003_reclaim_events': m0003,
  '0004_function_roles': m0004,
  '0005_webhook_items': m0005,
  '0006_consent': m0006,
  '0008_template_registry': m0008,
  '0009_number_health': m0009,
  '0010_callbacks': m0010,
  '0011_cancel_fallback': m0011,
  '0012_client_limits': m0012,
  '0013_pii_lifecycle': m0013,
  '0014_client_limits_admin': m0014,
};

export const staticMigrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};

/** Every migration's name, oldest first; the last is the schema this code expects. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS).sort();
