/** Runs work in a transaction, or inside the caller's when it already holds one (Kysely does not nest them). */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '#core/db/schema.ts';

export function inTransaction<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return db.isTransaction ? work(db as Transaction<Database>) : db.transaction().execute(work);
}
