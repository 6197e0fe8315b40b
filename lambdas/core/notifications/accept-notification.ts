/**
 * Accepting a notification: store the row (the source of truth) first, then put its id on the
 * delivery queue. An Idempotency-Key replays the first answer, refuses a different body (422) and
 * refuses a retry while the first request is still in flight (409).
 */
import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Database, NewNotification, NotificationRow } from '#core/db/schema.ts';
import { checkSendAt, type NotificationRequest } from '#core/model/notification-request.ts';
import { enqueueNotifications, type QueueTargets } from '#core/notifications/enqueue.ts';
import {
  type NotificationView,
  toNotificationView,
} from '#core/notifications/notification-view.ts';
import {
  checkTemplate,
  registryFilled,
  type TemplateRefusal,
  templatesNamed,
} from '#core/notifications/template-registry.ts';
import { uuidv7 } from '#core/platform/ids.ts';

export interface AcceptDeps {
  db: Kysely<Database>;
  queue: QueueTargets;
  now: () => Date;
  /** A notification stored but not queued, and why (an SQS error name or entry code). */
  onEnqueueFailure?: (id: string, reason: string) => void;
  /**
   * The WABA whose template registry checks each template before anything is written. Absent:
   * no check (no WHATSAPP_WABA_ID). `onTemplateCheckSkipped` hears of a batch not checked because
   * the registry has never been filled.
   */
  templates?: { wabaId: string; onTemplateCheckSkipped?: (templates: number) => void };
}

export interface AcceptInput {
  clientId: string;
  requestId: string;
  request: NotificationRequest;
  idempotencyKey?: string | undefined;
}

export type AcceptOutcome =
  | { kind: 'accepted'; notification: NotificationView; replayed: boolean }
  | { kind: 'invalid'; field: string; message: string }
  | ({ kind: 'template_refused' } & TemplateRefusal)
  | { kind: 'idempotency_mismatch' }
  | { kind: 'idempotency_in_flight' };

/** A first request still running after this long has died; its row answers for it. */
const IN_FLIGHT_WINDOW_MS = 30_000;

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function requestHash(request: NotificationRequest): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/**
 * The fallback delay a notification carries: its own, else the client's default, else none. Its
 * due time counts from the scheduled send, or from acceptance when it goes now.
 */
export function fallbackTiming(
  request: NotificationRequest,
  clientDefaultSeconds: number | null,
  sendAt: Date | null,
  now: Date,
): { fallback_after_seconds: number | null; fallback_due_at: Date | null } {
  const after = request.fallback?.afterSeconds ?? clientDefaultSeconds;
  if (after === null) return { fallback_after_seconds: null, fallback_due_at: null };
  return {
    fallback_after_seconds: after,
    fallback_due_at: new Date((sendAt ?? now).getTime() + after * 1000),
  };
}

export function newNotificationRow(
  input: AcceptInput,
  sendAt: Date | null,
  now: Date,
  clientFallbackSeconds: number | null = null,
  templateCategory: string | null = null,
): NewNotification & { id: string; message: string; metadata: string | null } {
  const { request } = input;
  return {
    ...fallbackTiming(request, clientFallbackSeconds, sendAt, now),
    id: uuidv7(now.getTime()),
    client_id: input.clientId,
    idempotency_key: input.idempotencyKey ?? null,
    request_hash: input.idempotencyKey ? requestHash(request) : null,
    request_id: input.requestId,
    recipient: request.to,
    priority: request.priority,
    message_type: request.template ? 'template' : 'text',
    message: JSON.stringify(request.template ?? request.text),
    metadata: request.metadata ? JSON.stringify(request.metadata) : null,
    status: sendAt ? 'scheduled' : 'accepted',
    send_at: sendAt,
    created_at: now,
    updated_at: now,
    template_category: templateCategory,
  };
}

/**
 * The registry's verdict on each item's template: a refusal, or the category it would be sent
 * under. Skipped (nothing refused) when the registry has never been filled.
 */
async function checkTemplates(
  deps: AcceptDeps,
  items: readonly BatchItem[],
): Promise<({ refusal?: TemplateRefusal; category: string | null } | undefined)[]> {
  const templated = items.flatMap((i) => (i.request.template ? [i.request.template] : []));
  if (!deps.templates || templated.length === 0) return items.map(() => undefined);
  const { wabaId } = deps.templates;
  if (!(await registryFilled(deps.db, wabaId))) {
    deps.templates.onTemplateCheckSkipped?.(templated.length);
    return items.map(() => undefined);
  }
  const rows = await templatesNamed(
    deps.db,
    wabaId,
    templated.map((t) => t.name),
  );
  return items.map(({ request }) => {
    if (!request.template) return undefined;
    const refusal = checkTemplate(request.template, rows);
    const row = rows.find(
      (r) => r.name === request.template!.name && r.language === request.template!.language,
    );
    return { ...(refusal ? { refusal } : {}), category: row?.category ?? null };
  });
}

export interface BatchItem {
  request: NotificationRequest;
  idempotencyKey?: string | undefined;
}

/** Accepts one notification: a batch of one, so both routes follow exactly the same rules. */
export async function acceptNotification(
  deps: AcceptDeps,
  input: AcceptInput,
): Promise<AcceptOutcome> {
  const [outcome] = await acceptNotificationBatch(deps, {
    clientId: input.clientId,
    requestId: input.requestId,
    items: [{ request: input.request, idempotencyKey: input.idempotencyKey }],
  });
  return outcome!;
}

/**
 * Accepts notifications of one client, each with its own outcome, in order. The rows are the
 * source of truth, so they are stored first (one INSERT for all), then their ids go onto the
 * queues (ten to a SendMessageBatch), then each row gets its stored answer and `queued` (one
 * UPDATE for all). Only idempotent replays are looked up one by one.
 */
export async function acceptNotificationBatch(
  deps: AcceptDeps,
  input: { clientId: string; requestId: string; items: readonly BatchItem[] },
): Promise<AcceptOutcome[]> {
  const now = deps.now();
  const outcomes: (AcceptOutcome | undefined)[] = input.items.map(() => undefined);
  const pending: {
    index: number;
    item: AcceptInput;
    row: ReturnType<typeof newNotificationRow>;
    scheduledView: NotificationView | undefined;
  }[] = [];
  // The client default is read only when some item names no fallback of its own.
  const clientFallbackSeconds = input.items.every((i) => i.request.fallback)
    ? null
    : await readClientFallback(deps.db, input.clientId);
  const templateChecks = await checkTemplates(deps, input.items);
  for (const [index, batchItem] of input.items.entries()) {
    const schedule = checkSendAt(batchItem.request.sendAt, now);
    if (!schedule.ok) {
      outcomes[index] = { kind: 'invalid', field: 'sendAt', message: schedule.message };
      continue;
    }
    const refusal = templateChecks[index]?.refusal;
    if (refusal) {
      // A replay of a request accepted before the template changed still gets its first answer.
      outcomes[index] = (batchItem.idempotencyKey &&
        (await replayIfStored(deps.db, { ...input, ...batchItem }, now))) || {
        kind: 'template_refused',
        ...refusal,
      };
      continue;
    }
    const item: AcceptInput = {
      clientId: input.clientId,
      requestId: input.requestId,
      request: batchItem.request,
      idempotencyKey: batchItem.idempotencyKey,
    };
    const row = newNotificationRow(
      item,
      schedule.sendAt,
      now,
      clientFallbackSeconds,
      templateChecks[index]?.category ?? null,
    );
    // A scheduled notification's answer is final at once: stored with the row.
    const scheduledView = schedule.sendAt ? viewOfNew(row) : undefined;
    if (scheduledView) row.response = JSON.stringify(scheduledView);
    pending.push({ index, item, row, scheduledView });
  }
  if (pending.length === 0) return outcomes.map((o) => o!);

  // ON CONFLICT DO NOTHING: a concurrent request with the same key waits on the unique index and
  // then finds the winner's row, so exactly one row exists per (client, key).
  const inserted = await deps.db
    .insertInto('notifications')
    .values(pending.map((p) => p.row))
    .onConflict((oc) => oc.columns(['client_id', 'idempotency_key']).doNothing())
    .returningAll()
    .execute();
  const insertedById = new Map(inserted.map((row) => [row.id, row]));

  const toQueue: NotificationRow[] = [];
  for (const { index, item, row, scheduledView } of pending) {
    const stored = insertedById.get(row.id);
    if (!stored) {
      outcomes[index] = await replayExisting(deps.db, item, now);
    } else if (scheduledView) {
      outcomes[index] = { kind: 'accepted', notification: scheduledView, replayed: false };
    } else {
      toQueue.push(stored);
    }
  }
  if (toQueue.length === 0) return outcomes.map((o) => o!);

  // A row that did not reach its queue stays `accepted`; the scheduler's outbox sweep enqueues it
  // later. The client has its notification either way, so it still gets its 202.
  const failed = await enqueueNotifications(
    deps.queue,
    toQueue.map((row) => ({ id: row.id, priority: row.priority, requestId: row.request_id })),
  );
  for (const [id, reason] of failed) deps.onEnqueueFailure?.(id, reason);
  const views = toQueue.map((row) =>
    toNotificationView({
      ...row,
      ...(failed.has(row.id) ? {} : { status: 'queued' as const, queued_at: now }),
    }),
  );
  // The worker may already have claimed a row, so the status only moves if it is still `accepted`.
  await sql`
    update notifications n set
      response = u.response::jsonb,
      status = case when u.queued and n.status = 'accepted' then 'queued' else n.status end,
      queued_at = case when u.queued then ${now}::timestamptz else n.queued_at end
    from unnest(
      ${sql.val(toQueue.map((row) => row.id))}::uuid[],
      ${sql.val(views.map((view) => JSON.stringify(view)))}::text[],
      ${sql.val(toQueue.map((row) => !failed.has(row.id)))}::boolean[]
    ) as u(id, response, queued)
    where n.id = u.id`.execute(deps.db);
  const viewById = new Map(views.map((view) => [view.id, view]));
  for (const { index, row } of pending) {
    const view = viewById.get(row.id);
    if (view) outcomes[index] = { kind: 'accepted', notification: view, replayed: false };
  }
  return outcomes.map((o) => o!);
}

function viewOfNew(values: ReturnType<typeof newNotificationRow>): NotificationView {
  return toNotificationView({
    response: null,
    sender_id: null,
    status_reason: null,
    attempts: 0,
    wamid: null,
    error_class: null,
    error_code: null,
    error_message: null,
    next_attempt_at: null,
    queued_at: null,
    sent_at: null,
    delivered_at: null,
    read_at: null,
    failed_at: null,
    fallback_required_at: null,
    fallback_reason: null,
    ...values,
    message: JSON.parse(values.message),
    metadata: values.metadata ? JSON.parse(values.metadata) : null,
  } as NotificationRow);
}

async function readClientFallback(db: Kysely<Database>, clientId: string): Promise<number | null> {
  const client = await db
    .selectFrom('api_clients')
    .select('fallback_after_seconds')
    .where('id', '=', clientId)
    .executeTakeFirst();
  return client?.fallback_after_seconds ?? null;
}

/** The stored answer for an idempotency key, or undefined when the key is new. */
async function replayIfStored(
  db: Kysely<Database>,
  input: AcceptInput,
  now: Date,
): Promise<AcceptOutcome | undefined> {
  const existing = await db
    .selectFrom('notifications')
    .select('id')
    .where('client_id', '=', input.clientId)
    .where('idempotency_key', '=', input.idempotencyKey ?? null)
    .executeTakeFirst();
  return existing ? replayExisting(db, input, now) : undefined;
}

async function replayExisting(
  db: Kysely<Database>,
  input: AcceptInput,
  now: Date,
): Promise<AcceptOutcome> {
  const existing = await db
    .selectFrom('notifications')
    .selectAll()
    .where('client_id', '=', input.clientId)
    .where('idempotency_key', '=', input.idempotencyKey ?? null)
    .executeTakeFirstOrThrow();
  if (existing.request_hash !== requestHash(input.request)) return { kind: 'idempotency_mismatch' };
  if (existing.response) {
    return {
      kind: 'accepted',
      notification: existing.response as NotificationView,
      replayed: true,
    };
  }
  if (now.getTime() - existing.created_at.getTime() < IN_FLIGHT_WINDOW_MS) {
    return { kind: 'idempotency_in_flight' };
  }
  return { kind: 'accepted', notification: toNotificationView(existing), replayed: true };
}

export async function findNotification(
  db: Kysely<Database>,
  clientId: string,
  id: string,
): Promise<NotificationView | undefined> {
  const row = await db
    .selectFrom('notifications')
    .selectAll()
    .where('id', '=', id)
    .where('client_id', '=', clientId)
    .executeTakeFirst();
  return row ? toNotificationView(row) : undefined;
}
