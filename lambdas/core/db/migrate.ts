/** Applies and inspects the schema migrations with Kysely's Migrator. */
import type { Kysely } from 'kysely';
import { type MigrationResultSet, Migrator } from 'kysely/migration';
import { staticMigrationProvider } from '#core/db/migrations/index.ts';
import type { Database } from '#core/db/schema.ts';

export class MigrationFailedError extends Error {
  readonly migrationName: string | undefined;
  constructor(migrationName: string | undefined, cause: unknown) {
    super(`migration ${migrationName ?? '(unknown)'} failed`, { cause });
    this.name = 'MigrationFailedError';
    this.migrationName = migrationName;
  }
}

function migratorFor(db: Kysely<Database>): Migrator {
  return new Migrator({ db, provider: staticMigrationProvider });
}

/** Names of migrations not yet applied to this database. */
export async function pendingMigrations(db: Kysely<Database>): Promise<string[]> {
  const migrations = await migratorFor(db).getMigrations();
  return migrations.filter((m) => !m.executedAt).map((m) => m.name);
}

/** Brings the database to the newest schema; throws MigrationFailedError and applies nothing more on the first failure. */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const result: MigrationResultSet = await migratorFor(db).migrateToLatest();
  const failed = result.results?.find((r) => r.status === 'Error');
  if (result.error || failed) {
    throw new MigrationFailedError(failed?.migrationName, result.error);
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
