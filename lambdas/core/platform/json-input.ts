/**
 * Checks on parsed JSON before it reaches a schema or PostgreSQL. JSON allows what PostgreSQL
 * refuses to store (U+0000 in text and jsonb, unpaired UTF-16 surrogates) and nesting deep enough
 * to overflow the stack of the code that serialises it again; each would otherwise be a 500.
 */

/** Deeper than any notification needs (template parameters nest four levels). */
export const MAX_JSON_DEPTH = 32;

export interface JsonInputProblem {
  /** Dotted path of the offending value; a bad key is reported at its parent, never echoed. */
  field: string | undefined;
  message: string;
}

/** True for a string PostgreSQL stores as given: no U+0000 and no unpaired surrogate. */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && value.isWellFormed();
}

/** The first value in `value` that cannot be stored, or null when all of it can. */
export function findUnstorableJson(
  value: unknown,
  maxDepth: number = MAX_JSON_DEPTH,
): JsonInputProblem | null {
  return walk(value, [], 0, maxDepth);
}

function walk(
  value: unknown,
  path: string[],
  depth: number,
  maxDepth: number,
): JsonInputProblem | null {
  if (typeof value === 'string') {
    return isStorableText(value)
      ? null
      : { field: fieldOf(path), message: 'contains U+0000 or an unpaired surrogate' };
  }
  if (typeof value !== 'object' || value === null) return null;
  if (depth >= maxDepth) {
    return { field: fieldOf(path), message: `nests deeper than ${maxDepth} levels` };
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = walk(item, [...path, String(index)], depth + 1, maxDepth);
      if (problem) return problem;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    if (!isStorableText(key)) {
      return { field: fieldOf(path), message: 'has a key with U+0000 or an unpaired surrogate' };
    }
    const problem = walk(item, [...path, key], depth + 1, maxDepth);
    if (problem) return problem;
  }
  return null;
}

function fieldOf(path: string[]): string | undefined {
  return path.length > 0 ? path.join('.') : undefined;
}
