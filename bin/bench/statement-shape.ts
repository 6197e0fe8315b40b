/** Names a SQL statement by its verb and table, so counts of round trips can be grouped. */

/** A statement's shape: its first keywords and table, without values, e.g. `update notifications`. */
export function statementShape(text: string): string {
  const words = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/"/g, '')
    .split(' ')
    .filter((w) => !/^\(|^\$\d/.test(w));
  const verb = (words[0] ?? '').toLowerCase();
  if (verb === 'with') {
    // A CTE is named by the statement it ends with: `with … update sender_state` and the like.
    const last = words.map((w) => w.toLowerCase()).lastIndexOf('update');
    if (last >= 0) return `with update ${words[last + 1] ?? ''}`.trim();
  }
  const target = (() => {
    const index = words.findIndex((w) => /^(from|into|update|table)$/i.test(w));
    if (verb === 'update') return words[1] ?? '';
    return index >= 0 ? (words[index + 1] ?? '') : '';
  })();
  return `${verb} ${target}`.trim();
}

/** The shape of what `pg.Client#query` was called with: a SQL string or a query config object. */
export function shapeOfQueryCall(args: readonly unknown[]): string {
  const first = args[0];
  const text =
    typeof first === 'string'
      ? first
      : typeof first === 'object' && first !== null && 'text' in first
        ? String((first as { text: unknown }).text)
        : '';
  return statementShape(text);
}
