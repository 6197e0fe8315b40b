/**
 * Template categories read from the Graph API's template list and cached, so the worker can hold
 * a marketing template back from a person with a marketing opt-out. A stopgap until the template
 * registry (issue 13) keeps categories in the database: when the list cannot be read the category
 * is unknown and the send goes ahead (Meta refuses a marketing template itself with 131050).
 */
import type { TemplatesResult } from '#core/whatsapp/graph-client.ts';

/** `name|language` → upper-case category, or undefined when the list could not be read. */
export type TemplateCategories = () => Promise<ReadonlyMap<string, string> | undefined>;

export const templateKey = (name: string, language: string) => `${name}|${language}`;

/** How long a read list is trusted; a failed read is retried after a minute, not on every batch. */
const FRESH_MS = 10 * 60_000;
const RETRY_AFTER_FAILURE_MS = 60_000;

export function cachedTemplateCategories(
  list: () => Promise<TemplatesResult>,
  now: () => number = Date.now,
): TemplateCategories {
  let cached:
    | { at: number; ttl: number; value: ReadonlyMap<string, string> | undefined }
    | undefined;
  let pending: Promise<ReadonlyMap<string, string> | undefined> | undefined;
  return async () => {
    if (cached && now() - cached.at < cached.ttl) return cached.value;
    pending ??= (async () => {
      try {
        const result = await list().catch(() => undefined);
        const value =
          result?.ok === true
            ? new Map(
                result.templates.flatMap((t) =>
                  t.category ? [[templateKey(t.name, t.language), t.category.toUpperCase()]] : [],
                ),
              )
            : undefined;
        cached = { at: now(), ttl: value ? FRESH_MS : RETRY_AFTER_FAILURE_MS, value };
        return value;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}
