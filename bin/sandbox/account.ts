/**
 * What the sandbox's account looks like to read-only Graph calls: the token (debug_token), the
 * phone number node and the app's webhook subscription (templates live in templates.ts).
 */
import { type Res, sendJson, sendMetaError } from './http.ts';

/**
 * The account state read-only Graph calls report, so a test can make the token expire soon, drop a
 * scope, lower the quality rating or unsubscribe the app and see what a check makes of it.
 */
export interface SandboxAccount {
  /** Unix seconds; 0 = never (a system-user token that does not expire). */
  tokenExpiresAt: number;
  scopes: string[];
  /** Whether the app is subscribed to the WABA's webhooks (`GET /{waba-id}/subscribed_apps`). */
  appSubscribed: boolean;
  /**
   * A WABA-level alternate callback URL, reported as `override_callback_uri` as Meta does; null:
   * none, webhooks go to the app's callback URL (which subscribed_apps does not show).
   */
  overrideCallbackUri: string | null;
  qualityRating: 'GREEN' | 'YELLOW' | 'RED' | 'UNKNOWN';
  /** Portfolio messaging limit, `TIER_250` … `TIER_UNLIMITED`. */
  messagingLimit: string;
  throughputLevel: 'STANDARD' | 'HIGH';
  /** The number's `status` on the Graph API; RESTRICTED and BANNED also come as account_update webhooks. */
  accountStatus: NumberStatus;
}

export const NUMBER_STATUSES = ['CONNECTED', 'FLAGGED', 'RESTRICTED', 'BANNED'] as const;
export type NumberStatus = (typeof NUMBER_STATUSES)[number];

export const SANDBOX_APP_ID = '100000000000002';

export const DEFAULT_ACCOUNT: SandboxAccount = {
  tokenExpiresAt: 0,
  scopes: ['whatsapp_business_messaging', 'whatsapp_business_management'],
  appSubscribed: true,
  overrideCallbackUri: null,
  qualityRating: 'GREEN',
  messagingLimit: 'TIER_250',
  throughputLevel: 'STANDARD',
  accountStatus: 'CONNECTED',
};

const SANDBOX_DISPLAY_NUMBER = '+1 555-000-0000';

/**
 * The phone number node. Like Graph, it answers the requested fields plus `id`; the tier field
 * follows the version: `messaging_limit_tier` exists up to v23.0, from v24.0 it is
 * `whatsapp_business_manager_messaging_limit` and asking for the old name is an error.
 */
export function handleProbe(
  res: Res,
  account: SandboxAccount,
  phoneNumberId: string,
  version: string,
  query: URLSearchParams,
): void {
  const major = Number(version.slice(1).split('.')[0]);
  const known: Record<string, unknown> = {
    display_phone_number: SANDBOX_DISPLAY_NUMBER,
    verified_name: 'whatsapp-notif sandbox',
    quality_rating: account.qualityRating,
    throughput: { level: account.throughputLevel },
    status: account.accountStatus,
    account_mode: 'LIVE',
  };
  if (major <= 23) known.messaging_limit_tier = account.messagingLimit;
  else known.whatsapp_business_manager_messaging_limit = account.messagingLimit;
  const fields = query.get('fields');
  if (!fields) {
    // Without `fields`, the answer the probe has always had.
    const { display_phone_number, quality_rating, throughput } = known;
    sendJson(res, 200, {
      display_phone_number,
      quality_rating,
      throughput,
      id: phoneNumberId,
    });
    return;
  }
  const answer: Record<string, unknown> = {};
  for (const field of fields
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)) {
    if (field === 'id') continue;
    if (!(field in known)) {
      sendMetaError(res, {
        status: 400,
        code: 100,
        message: `Tried accessing nonexisting field (${field}) on node type (WhatsAppBusinessPhoneNumber)`,
      });
      return;
    }
    answer[field] = known[field];
  }
  sendJson(res, 200, { ...answer, id: phoneNumberId });
}

/** `GET /{waba-id}/subscribed_apps`: empty `data` means no webhooks reach any app for the WABA. */
export function handleSubscribedApps(res: Res, account: SandboxAccount): void {
  const data = account.appSubscribed
    ? [
        {
          whatsapp_business_api_data: {
            id: SANDBOX_APP_ID,
            name: 'whatsapp-notif sandbox',
            link: `https://www.facebook.com/games/?app_id=${SANDBOX_APP_ID}`,
          },
          ...(account.overrideCallbackUri
            ? { override_callback_uri: account.overrideCallbackUri }
            : {}),
        },
      ]
    : [];
  sendJson(res, 200, { data });
}

export function handleDebugToken(
  res: Res,
  account: SandboxAccount,
  accessToken: string,
  query: URLSearchParams,
): void {
  const expired =
    account.tokenExpiresAt > 0 && account.tokenExpiresAt <= Math.floor(Date.now() / 1000);
  const valid = query.get('input_token') === accessToken && !expired;
  const data: Record<string, unknown> = {
    app_id: SANDBOX_APP_ID,
    type: 'SYSTEM_USER',
    application: 'whatsapp-notif sandbox',
    data_access_expires_at: account.tokenExpiresAt,
    expires_at: account.tokenExpiresAt,
    is_valid: valid,
    issued_at: 1_700_000_000,
    scopes: [...account.scopes],
    granular_scopes: account.scopes.map((scope) => ({ scope })),
    user_id: '100000000000003',
  };
  if (!valid) {
    data.error = { code: 190, message: 'Invalid OAuth access token - Cannot parse access token' };
  }
  sendJson(res, 200, { data });
}

/** Why a `/_sandbox/account` body is refused, or undefined when every field has its type. */
export function accountProblem(body: Record<string, unknown>): string | undefined {
  const types: Record<keyof SandboxAccount, (v: unknown) => boolean> = {
    tokenExpiresAt: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
    scopes: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
    appSubscribed: (v) => typeof v === 'boolean',
    overrideCallbackUri: (v) => v === null || (typeof v === 'string' && URL.canParse(v)),
    qualityRating: (v) => v === 'GREEN' || v === 'YELLOW' || v === 'RED' || v === 'UNKNOWN',
    messagingLimit: (v) => typeof v === 'string' && /^TIER_\w+$/.test(v),
    throughputLevel: (v) => v === 'STANDARD' || v === 'HIGH',
    accountStatus: (v) => (NUMBER_STATUSES as readonly unknown[]).includes(v),
  };
  for (const [key, value] of Object.entries(body)) {
    const valid = types[key as keyof SandboxAccount];
    if (!valid) return `unknown field ${key}; fields: ${Object.keys(types).join(', ')}`;
    if (!valid(value)) return `${key} has the wrong type or value`;
  }
  return undefined;
}

/** The fields `/_sandbox/number` changes: what Meta tells about the number by webhook. */
export const NUMBER_FIELDS = [
  'qualityRating',
  'messagingLimit',
  'throughputLevel',
  'accountStatus',
] as const;

const TIER_RANK = ['TIER_50', 'TIER_250', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED'];

/**
 * The webhooks Meta sends when the number changes from `before` to `after`, as
 * `{field, value}` for buildEventWebhook. Meta has no event for a throughput downgrade or a
 * quality change short of FLAGGED: those only show on the Graph API, as here.
 */
export function numberChangeWebhooks(
  before: SandboxAccount,
  after: SandboxAccount,
): { field: 'phone_number_quality_update' | 'account_update'; value: Record<string, unknown> }[] {
  const out: ReturnType<typeof numberChangeWebhooks> = [];
  const tier = { max_daily_conversations_per_business: after.messagingLimit };
  if (before.throughputLevel !== 'HIGH' && after.throughputLevel === 'HIGH') {
    out.push({
      field: 'phone_number_quality_update',
      value: { event: 'THROUGHPUT_UPGRADE', ...tier },
    });
  }
  if (before.messagingLimit !== after.messagingLimit) {
    const up = TIER_RANK.indexOf(after.messagingLimit) > TIER_RANK.indexOf(before.messagingLimit);
    out.push({
      field: 'phone_number_quality_update',
      value: { event: up ? 'UPGRADE' : 'DOWNGRADE', ...tier },
    });
  }
  const low = (a: SandboxAccount) => a.qualityRating === 'RED' || a.accountStatus === 'FLAGGED';
  if (!low(before) && low(after)) {
    out.push({ field: 'phone_number_quality_update', value: { event: 'FLAGGED', ...tier } });
  } else if (low(before) && !low(after)) {
    out.push({ field: 'phone_number_quality_update', value: { event: 'UNFLAGGED', ...tier } });
  }
  if (before.accountStatus !== after.accountStatus) {
    if (after.accountStatus === 'RESTRICTED') {
      out.push({
        field: 'account_update',
        value: {
          event: 'ACCOUNT_RESTRICTION',
          restriction_info: [
            {
              restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING',
              expiration: Math.floor(Date.now() / 1000) + 7 * 86_400,
            },
          ],
        },
      });
    } else if (after.accountStatus === 'BANNED') {
      out.push({
        field: 'account_update',
        value: {
          event: 'DISABLED_UPDATE',
          ban_info: {
            waba_ban_state: 'DISABLE',
            waba_ban_date: new Date().toISOString().slice(0, 10),
          },
        },
      });
    } else if (before.accountStatus === 'BANNED') {
      out.push({
        field: 'account_update',
        value: { event: 'DISABLED_UPDATE', ban_info: { waba_ban_state: 'REINSTATE' } },
      });
    }
  }
  return out;
}
