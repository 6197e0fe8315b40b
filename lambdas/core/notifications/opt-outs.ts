/** Opt-outs: recipients who asked not to be messaged, by keyword or through Meta's 131050. */
import type { Kysely } from 'kysely';
import type { Database, OptOutTable } from '#core/db/schema.ts';

/** Keywords in the languages of our senders' users; compared after trimming and upper-casing. */
export const OPT_OUT_KEYWORDS = new Set([
  'STOP',
  'STOPALL',
  'UNSUBSCRIBE',
  'CANCEL',
  'END',
  'QUIT',
  'BAJA',
  'ALTO',
  'PARAR',
  'DETENER',
  'CANCELAR',
  'SAIR',
]);
export const OPT_IN_KEYWORDS = new Set([
  'START',
  'UNSTOP',
  'SUBSCRIBE',
  'ALTA',
  'INICIAR',
  'VOLVER',
]);

export type KeywordIntent = 'opt_out' | 'opt_in' | undefined;

export function keywordIntent(text: string | undefined): KeywordIntent {
  if (!text) return undefined;
  const word = text
    .trim()
    .toUpperCase()
    .replace(/[.!¡¿?]+$/u, '');
  if (OPT_OUT_KEYWORDS.has(word)) return 'opt_out';
  if (OPT_IN_KEYWORDS.has(word)) return 'opt_in';
  return undefined;
}

/** Meta writes numbers as digits; we store recipients in E.164. */
export function toE164(digits: string): string {
  return digits.startsWith('+') ? digits : `+${digits}`;
}

export async function addOptOut(
  db: Kysely<Database>,
  recipient: string,
  source: OptOutTable['source'],
): Promise<void> {
  await db
    .insertInto('opt_outs')
    .values({ recipient, source })
    .onConflict((oc) => oc.column('recipient').doNothing())
    .execute();
}

export async function removeOptOut(db: Kysely<Database>, recipient: string): Promise<boolean> {
  const result = await db
    .deleteFrom('opt_outs')
    .where('recipient', '=', recipient)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
