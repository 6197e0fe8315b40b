/**
 * Counts the statements this process's PostgreSQL clients send, by shape: in the benchmark, those
 * of the stack's handlers (API, webhook, scheduler). Clients whose application_name is `bench`
 * (the benchmark's own progress queries) are left out.
 */
import pg from 'pg';
import { shapeOfQueryCall } from './statement-shape.ts';

export const BENCH_APPLICATION_NAME = 'bench';

export interface QueryCounts {
  total: number;
  byShape: Record<string, number>;
}

export function startQueryCounter(): { snapshot(): QueryCounts } {
  const byShape = new Map<string, number>();
  let total = 0;
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(this: pg.Client, ...args: unknown[]) {
    const own = (this as unknown as { connectionParameters?: { application_name?: string } })
      .connectionParameters?.application_name;
    if (own !== BENCH_APPLICATION_NAME) {
      total += 1;
      const shape = shapeOfQueryCall(args);
      byShape.set(shape, (byShape.get(shape) ?? 0) + 1);
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  return { snapshot: () => ({ total, byShape: Object.fromEntries(byShape) }) };
}

/** What was counted between two snapshots, per unit (request, notification), most frequent first. */
export function perUnit(before: QueryCounts, after: QueryCounts, units: number) {
  const byShape: Record<string, number> = {};
  for (const [shape, n] of Object.entries(after.byShape)) {
    const delta = n - (before.byShape[shape] ?? 0);
    if (delta > 0) byShape[shape] = units ? delta / units : Number.NaN;
  }
  return {
    perUnit: units ? (after.total - before.total) / units : Number.NaN,
    byShape: Object.fromEntries(Object.entries(byShape).sort((a, b) => b[1] - a[1])),
  };
}
