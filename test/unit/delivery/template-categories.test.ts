/** The worker's cached template categories: read once, trusted for a while, a failed read retried later. */
import { describe, expect, it } from 'vitest';
import { cachedTemplateCategories, templateKey } from '#core/delivery/template-categories.ts';
import type { TemplatesResult } from '#core/whatsapp/graph-client.ts';

const LISTED: TemplatesResult = {
  ok: true,
  truncated: false,
  latencyMs: 1,
  templates: [
    { name: 'spring_sale', language: 'en_US', status: 'APPROVED', category: 'marketing' },
    { name: 'hello_world', language: 'en_US', status: 'APPROVED', category: 'UTILITY' },
    { name: 'no_category', language: 'es', status: 'APPROVED' },
  ],
};
const FAILED: TemplatesResult = {
  ok: false,
  errorClass: 'upstream',
  latencyMs: 1,
} as TemplatesResult;

describe('cachedTemplateCategories', () => {
  it('maps name and language to the upper-case category, skipping templates without one', async () => {
    const categories = cachedTemplateCategories(async () => LISTED);

    const map = await categories();

    expect(map?.get(templateKey('spring_sale', 'en_US'))).toBe('MARKETING');
    expect(map?.get(templateKey('hello_world', 'en_US'))).toBe('UTILITY');
    expect(map?.has(templateKey('no_category', 'es'))).toBe(false);
  });

  it('reads the list once for ten minutes, then again', async () => {
    let clock = 0;
    let reads = 0;
    const categories = cachedTemplateCategories(
      async () => {
        reads++;
        return LISTED;
      },
      () => clock,
    );

    await Promise.all([categories(), categories()]);
    clock = 9 * 60_000;
    await categories();
    clock = 11 * 60_000;
    await categories();

    expect(reads).toBe(2);
  });

  it('answers unknown after a failed or thrown read, and retries after a minute', async () => {
    let clock = 0;
    const answers: (() => Promise<TemplatesResult>)[] = [
      async () => FAILED,
      async () => {
        throw new Error('socket hang up');
      },
      async () => LISTED,
    ];
    const categories = cachedTemplateCategories(
      () => answers.shift()!(),
      () => clock,
    );

    const first = await categories();
    clock = 30_000;
    const cachedFailure = await categories();
    clock = 61_000;
    const thrown = await categories();
    clock = 122_000;
    const recovered = await categories();

    expect([first, cachedFailure, thrown]).toEqual([undefined, undefined, undefined]);
    expect(recovered?.get(templateKey('spring_sale', 'en_US'))).toBe('MARKETING');
  });
});
