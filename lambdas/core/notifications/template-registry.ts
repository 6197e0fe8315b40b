/**
 * The template registry: the WABA's message templates as Meta last described them, kept in the
 * database so acceptance and the worker can check a template without a Graph API call. The
 * scheduler refreshes it from the paged template list; the three template webhooks update it at
 * once. Until the list has been read whole once, nobody relies on it (the check is skipped).
 */
import { type Kysely, sql } from 'kysely';
import type { Database, MessageTemplateRow } from '#core/db/schema.ts';
import type { TemplateInfo, TemplatesResult } from '#core/whatsapp/graph-client.ts';
import {
  checkParameters,
  parameterCounts,
  type TemplateParameters,
  templateRequirements,
} from '#core/whatsapp/template-parameters.ts';
import type { WhatsAppEvent } from '#core/whatsapp/webhook-payload.ts';

/** Meta's only sendable status; every other one blocks a send (132001, 132015, 132016). */
export const SENDABLE_TEMPLATE_STATUS = 'APPROVED';

/** Webhook events that name the template's new status outright. */
const STATUS_EVENTS = new Set([
  'APPROVED',
  'PENDING',
  'REJECTED',
  'PAUSED',
  'DISABLED',
  'IN_APPEAL',
  'LIMIT_EXCEEDED',
  'ARCHIVED',
  'DELETED',
  'PENDING_DELETION',
]);
/** Events after which Meta says to read the status again rather than guess it. */
const REREAD_EVENTS = new Set(['REINSTATED', 'UNARCHIVED']);
/** Status changes that stop a template's notifications: the template alarm counts them. */
export const BLOCKING_STATUSES = new Set(['PAUSED', 'DISABLED', 'REJECTED']);

/** Webhooks write `en-US`, the Graph API and our requests `en_US`. */
export function normaliseLanguage(language: string): string {
  return language.replace('-', '_');
}

// ------------------------------------------------------------------ refresh

export interface RefreshOutcome {
  ok: boolean;
  templates: number;
  /** Rows the list no longer shows, now DELETED. */
  deleted: number;
  error?: string;
}

function rowOf(wabaId: string, t: TemplateInfo, now: Date) {
  const parameters = t.components ? templateRequirements(t.components, t.parameterFormat) : null;
  const counts = parameters ? parameterCounts(parameters) : undefined;
  return {
    waba_id: wabaId,
    name: t.name,
    language: normaliseLanguage(t.language),
    template_id: t.id ?? null,
    status: t.status.toUpperCase(),
    category: t.category?.toUpperCase() ?? null,
    quality: t.quality?.toUpperCase() ?? null,
    rejected_reason: t.rejectedReason && t.rejectedReason !== 'NONE' ? t.rejectedReason : null,
    parameters: parameters ? JSON.stringify(parameters) : null,
    header_params: counts?.header ?? null,
    body_params: counts?.body ?? null,
    button_params: counts?.buttons ?? null,
    source: 'refresh',
    last_seen_at: now,
    updated_at: now,
  };
}

/**
 * Reads the whole template list and replaces what the registry holds for the WABA: every listed
 * template upserted, every row the list no longer shows marked DELETED (Meta drops deleted
 * templates from the list). A failed or truncated read changes no status and fills nothing.
 */
export async function refreshTemplateRegistry(
  db: Kysely<Database>,
  input: { wabaId: string; list: () => Promise<TemplatesResult>; now: Date },
): Promise<RefreshOutcome> {
  const { wabaId, now } = input;
  const result = await input.list().catch(
    (error: unknown): TemplatesResult => ({
      ok: false,
      errorClass: 'upstream',
      message: error instanceof Error ? error.name : 'error',
      latencyMs: 0,
    }),
  );
  const problem = !result.ok
    ? `${result.errorClass}${result.code ? ` (${result.code})` : ''}: ${result.message}`
    : result.truncated
      ? 'the template list has more pages than one refresh reads'
      : undefined;
  if (problem || !result.ok) {
    await writeState(db, wabaId, { attempted_at: now, last_error: (problem ?? '').slice(0, 500) });
    return { ok: false, templates: 0, deleted: 0, error: problem };
  }
  return db.transaction().execute(async (trx) => {
    // One language of a name may be listed twice across pages while the list changes: last wins.
    const rows = [
      ...new Map(
        result.templates
          .filter((t) => t.name && t.language)
          .map((t) => rowOf(wabaId, t, now))
          .map((r) => [`${r.name}|${r.language}`, r]),
      ).values(),
    ];
    for (let i = 0; i < rows.length; i += 500) {
      await trx
        .insertInto('message_templates')
        .values(rows.slice(i, i + 500))
        .onConflict((oc) =>
          oc.columns(['waba_id', 'name', 'language']).doUpdateSet((eb) => ({
            template_id: eb.ref('excluded.template_id'),
            status: eb.ref('excluded.status'),
            category: eb.ref('excluded.category'),
            quality: eb.ref('excluded.quality'),
            rejected_reason: eb.ref('excluded.rejected_reason'),
            parameters: eb.ref('excluded.parameters'),
            header_params: eb.ref('excluded.header_params'),
            body_params: eb.ref('excluded.body_params'),
            button_params: eb.ref('excluded.button_params'),
            source: eb.ref('excluded.source'),
            last_seen_at: eb.ref('excluded.last_seen_at'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
    // Rows not touched by this read (last_seen_at is older) are no longer listed.
    const gone = await trx
      .updateTable('message_templates')
      .set({ status: 'DELETED', source: 'refresh', updated_at: now })
      .where('waba_id', '=', wabaId)
      .where('last_seen_at', '<', now)
      .where('status', '!=', 'DELETED')
      .executeTakeFirst();
    await writeState(trx, wabaId, {
      filled_at: now,
      refreshed_at: now,
      attempted_at: now,
      last_error: null,
      refresh_requested_at: null,
    });
    return { ok: true, templates: rows.length, deleted: Number(gone.numUpdatedRows) };
  });
}

interface StateChanges {
  attempted_at?: Date;
  last_error?: string | null;
  refreshed_at?: Date;
  refresh_requested_at?: Date | null;
  /** Set once, by the first complete read; later reads keep the first time. */
  filled_at?: Date;
}

async function writeState(db: Kysely<Database>, wabaId: string, changes: StateChanges) {
  const { filled_at, ...rest } = changes;
  await db
    .insertInto('template_registry_state')
    .values({ waba_id: wabaId, ...changes })
    .onConflict((oc) =>
      oc.column('waba_id').doUpdateSet({
        ...rest,
        ...(filled_at
          ? {
              filled_at: sql<Date>`coalesce(template_registry_state.filled_at, excluded.filled_at)`,
            }
          : {}),
      }),
    )
    .execute();
}

export interface RegistryState {
  /** Whether the list has been read whole at least once: only then does acceptance rely on it. */
  filled: boolean;
  templates: number;
  filledAt: Date | null;
  refreshedAt: Date | null;
  attemptedAt: Date | null;
  lastError: string | null;
  refreshRequestedAt: Date | null;
}

export async function registryState(db: Kysely<Database>, wabaId: string): Promise<RegistryState> {
  const [state, count] = await Promise.all([
    db
      .selectFrom('template_registry_state')
      .selectAll()
      .where('waba_id', '=', wabaId)
      .executeTakeFirst(),
    db
      .selectFrom('message_templates')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('waba_id', '=', wabaId)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    filled: Boolean(state?.filled_at),
    templates: Number(count.n),
    filledAt: state?.filled_at ?? null,
    refreshedAt: state?.refreshed_at ?? null,
    attemptedAt: state?.attempted_at ?? null,
    lastError: state?.last_error ?? null,
    refreshRequestedAt: state?.refresh_requested_at ?? null,
  };
}

/**
 * WABAs whose registry this process has seen filled. A registry, once filled, stays filled (the
 * time is never cleared), so acceptance asks the database only until it first says yes.
 */
const filledWabas = new Set<string>();

/** Whether the registry has been filled once: acceptance relies on it only then. */
export async function registryFilled(db: Kysely<Database>, wabaId: string): Promise<boolean> {
  if (filledWabas.has(wabaId)) return true;
  const state = await db
    .selectFrom('template_registry_state')
    .select('filled_at')
    .where('waba_id', '=', wabaId)
    .executeTakeFirst();
  if (state?.filled_at) filledWabas.add(wabaId);
  return Boolean(state?.filled_at);
}

/** Whether the scheduler should read the list now: never read, asked for, or an interval old. */
export function refreshDue(state: RegistryState, now: Date, intervalMs: number): boolean {
  if (state.refreshRequestedAt) return true;
  if (!state.attemptedAt) return true;
  return now.getTime() - state.attemptedAt.getTime() >= intervalMs;
}

export async function listRegistry(
  db: Kysely<Database>,
  wabaId: string,
): Promise<MessageTemplateRow[]> {
  return db
    .selectFrom('message_templates')
    .selectAll()
    .where('waba_id', '=', wabaId)
    .orderBy('name')
    .orderBy('language')
    .execute();
}

/** Every language of the named templates, for the acceptance check (one query per batch). */
export async function templatesNamed(
  db: Kysely<Database>,
  wabaId: string,
  names: readonly string[],
): Promise<MessageTemplateRow[]> {
  if (names.length === 0) return [];
  return db
    .selectFrom('message_templates')
    .selectAll()
    .where('waba_id', '=', wabaId)
    .where('name', 'in', [...new Set(names)])
    .execute();
}

// ------------------------------------------------------------------ the check

export type TemplateRefusalCode =
  | 'template_not_found'
  | 'template_not_approved'
  | 'template_parameters_mismatch';

export interface TemplateRefusal {
  code: TemplateRefusalCode;
  /** Relative to the template object: `name`, `language`, `components`, `components.0`. */
  field: string;
  message: string;
}

export interface TemplateRequest {
  name: string;
  language: string;
  components?: readonly Record<string, unknown>[] | undefined;
}

/**
 * Whether Meta would take this template as the registry describes it: the name in that language
 * exists, is APPROVED, and the components give the parameters it needs. `rows` are the registry's
 * rows of that name (any language). A row whose components are unknown passes the parameter check.
 */
export function checkTemplate(
  template: TemplateRequest,
  rows: readonly MessageTemplateRow[],
): TemplateRefusal | undefined {
  const sameName = rows.filter((r) => r.name === template.name && r.status !== 'DELETED');
  const row = sameName.find((r) => r.language === template.language);
  if (!row) {
    if (sameName.length === 0) {
      return {
        code: 'template_not_found',
        field: 'name',
        message: `no template named ${template.name} in this WhatsApp Business Account`,
      };
    }
    return {
      code: 'template_not_found',
      field: 'language',
      message: `template ${template.name} has no ${template.language} version (it has ${sameName
        .map((r) => r.language)
        .sort()
        .join(', ')})`,
    };
  }
  if (row.status !== SENDABLE_TEMPLATE_STATUS) {
    return {
      code: 'template_not_approved',
      field: 'name',
      message: `template ${row.name} (${row.language}) is ${row.status}${
        row.rejected_reason ? ` (${row.rejected_reason})` : ''
      }; only APPROVED templates can be sent`,
    };
  }
  if (!row.parameters) return undefined;
  const problem = checkParameters(row.parameters as TemplateParameters, template.components);
  return problem
    ? { code: 'template_parameters_mismatch', field: problem.field, message: problem.message }
    : undefined;
}

// ------------------------------------------------------------------ webhooks

export interface TemplateEventOutcome {
  field: string;
  name: string;
  language: string;
  /** What the event did: `status`, `quality`, `category`, `reread`, `ignored`, `stale`. */
  applied: string;
  /** The new status, when it moved to one that stops sends (for the template alarm). */
  blocked?: string;
}

const TEMPLATE_FIELDS = new Set([
  'message_template_status_update',
  'message_template_quality_update',
  'template_category_update',
]);

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= 512 ? value : undefined;
}

/**
 * Applies the three template webhooks to the registry, each item on its own. An event older than
 * the row's last change (Meta retries for days and does not keep order) is ignored: a webhook
 * writes the event's time (the entry's `time`) as `updated_at`, a refresh the time of the read.
 */
export async function applyTemplateEvents(
  db: Kysely<Database>,
  events: readonly WhatsAppEvent[],
  now: Date,
): Promise<TemplateEventOutcome[]> {
  const outcomes: TemplateEventOutcome[] = [];
  for (const event of events) {
    if (!TEMPLATE_FIELDS.has(event.field) || !event.wabaId) continue;
    const value = event.payload;
    const name = text(value.message_template_name);
    const language = text(value.message_template_language);
    if (!name || !language) continue;
    const key = { waba_id: event.wabaId, name, language: normaliseLanguage(language) };
    const at = event.time ?? now;
    const outcome: TemplateEventOutcome = {
      field: event.field,
      name,
      language: key.language,
      applied: 'ignored',
    };
    const id =
      typeof value.message_template_id === 'number' || typeof value.message_template_id === 'string'
        ? String(value.message_template_id)
        : null;
    if (event.field === 'message_template_status_update') {
      const status = event.event.toUpperCase();
      if (STATUS_EVENTS.has(status)) {
        const category = text(value.message_template_category)?.toUpperCase() ?? null;
        const reason = status === 'REJECTED' ? (text(value.reason) ?? null) : null;
        const moved = await upsertFromEvent(db, key, at, event.field, {
          status,
          template_id: id,
          rejected_reason: reason,
          ...(category ? { category } : {}),
        });
        outcome.applied = moved ? 'status' : 'stale';
        if (moved && BLOCKING_STATUSES.has(status)) outcome.blocked = status;
      } else if (REREAD_EVENTS.has(status)) {
        await writeState(db, event.wabaId, { refresh_requested_at: now });
        outcome.applied = 'reread';
      }
    } else if (event.field === 'message_template_quality_update') {
      const quality = text(value.new_quality_score)?.toUpperCase();
      if (quality) {
        outcome.applied = (await updateFromEvent(db, key, at, event.field, { quality }))
          ? 'quality'
          : 'stale';
      }
    } else {
      // Completed: previous_category → new_category. Impending (correct_category present):
      // new_category is still the current one; the change itself arrives later.
      const category = text(value.new_category)?.toUpperCase();
      if (category) {
        outcome.applied = (await updateFromEvent(db, key, at, event.field, { category }))
          ? 'category'
          : 'stale';
      }
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

type Key = { waba_id: string; name: string; language: string };

/**
 * Meta's event time has whole seconds; a refresh in the same second as the change may or may not
 * have seen it, so the event wins within its second.
 */
function sameSecondOrLater(at: Date): Date {
  return new Date(at.getTime() + 1000);
}

/** A status event: the row is created if the list has not shown it yet (components unknown). */
async function upsertFromEvent(
  db: Kysely<Database>,
  key: Key,
  at: Date,
  source: string,
  changes: {
    status: string;
    template_id: string | null;
    rejected_reason: string | null;
    category?: string;
  },
): Promise<boolean> {
  const result = await db
    .insertInto('message_templates')
    .values({ ...key, ...changes, source, last_seen_at: at, updated_at: at })
    .onConflict((oc) =>
      oc
        .columns(['waba_id', 'name', 'language'])
        .doUpdateSet({
          status: changes.status,
          rejected_reason: changes.rejected_reason,
          ...(changes.category ? { category: changes.category } : {}),
          template_id: sql<
            string | null
          >`coalesce(excluded.template_id, message_templates.template_id)`,
          source,
          updated_at: at,
        })
        .where('message_templates.updated_at', '<', sameSecondOrLater(at)),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** A quality or category event changes a known row only; an unknown one waits for the refresh. */
async function updateFromEvent(
  db: Kysely<Database>,
  key: Key,
  at: Date,
  source: string,
  changes: { quality?: string; category?: string },
): Promise<boolean> {
  const result = await db
    .updateTable('message_templates')
    .set({ ...changes, source, updated_at: at })
    .where('waba_id', '=', key.waba_id)
    .where('name', '=', key.name)
    .where('language', '=', key.language)
    .where('updated_at', '<', sameSecondOrLater(at))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
