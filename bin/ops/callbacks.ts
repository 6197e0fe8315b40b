/**
 * `ops callbacks add|list|remove|rotate-secret|enable|deliveries|redeliver`: client callback
 * endpoints and their deliveries through the admin API. A secret is printed once, when made.
 */

import type { CallbackDeliveryView, CallbackEndpointView } from '#core/callbacks/endpoints.ts';
import { isUuid } from '#core/platform/ids.ts';
import {
  type Command,
  type CommandContext,
  parseDuration,
  printOnceOnly,
  requiredFlag,
  stringFlag,
} from './command.ts';
import { formatTime, keyValues, sinceIso, table } from './output.ts';
import { UsageError } from './target.ts';

// The CLI prints what the admin API answers: the core's views are those answers' shapes.
type EndpointRow = CallbackEndpointView;
type DeliveryRow = CallbackDeliveryView;

function idArgument(value: string | undefined, what: string): string {
  if (!value || !isUuid(value)) throw new UsageError(`give the ${what} (a UUID)`);
  return value;
}

/** The admin routes name an endpoint under its client; ops takes the endpoint id alone. */
async function findEndpoint(ctx: CommandContext, id: string): Promise<EndpointRow> {
  const { callbacks } = await (await ctx.api()).get<{ callbacks: EndpointRow[] }>(
    '/v1/admin/callbacks',
  );
  const found = callbacks.find((c) => c.id === id);
  if (!found) throw new UsageError(`no callback endpoint ${id} (see callbacks list)`);
  return found;
}

/** The signing secret, printed once and first (see printOnceOnly); a lost one means a rotation. */
function printSecret(ctx: CommandContext, endpointId: string, secret: string): void {
  printOnceOnly(
    ctx,
    `Signing secret: ${secret}`,
    `the signing secret of ${endpointId} could not be printed (stdout was closed) and cannot be shown again: make a new one with ops callbacks rotate-secret ${endpointId} --grace 0`,
    'Store it now: it is shown only this once.',
  );
}

export const callbackCommands: Command[] = [
  {
    name: 'callbacks add',
    summary: "register a client's callback endpoint (the signing secret is shown once)",
    usage: '--client <client-id> --url <url> [--events a,b]',
    description:
      'Posts to /v1/admin/clients/<client>/callbacks. In AWS the URL must be https and resolve to\n' +
      'public addresses. With --json the answer has `id` and `secret`. Here --url is the callback\n' +
      'URL: give the API with --stage or WN_API_URL (and the key with --api-key or WN_API_KEY).',
    options: { client: { type: 'string' }, url: { type: 'string' }, events: { type: 'string' } },
    optionsHelp: [
      ['--client <id>', 'the API client (keys list shows client ids; required)'],
      ['--url <url>', 'where to post (required)'],
      [
        '--events <a,b>',
        'event types, e.g. notification.delivered,notification.failed (default all)',
      ],
    ],
    examples: [
      'npm run ops -- callbacks add --client 0195f0c4-... --url https://example.com/hooks --json',
    ],
    async run(ctx) {
      const client = idArgument(requiredFlag(ctx, 'client', 'the API client id'), 'client id');
      const url = requiredFlag(ctx, 'url', 'where to post');
      const events = stringFlag(ctx, 'events')
        ?.split(',')
        .map((e) => e.trim())
        .filter(Boolean);
      const created = await (await ctx.api()).post<EndpointRow & { secret: string }>(
        `/v1/admin/clients/${client}/callbacks`,
        { url, ...(events ? { events } : {}) },
      );
      ctx.out.data(created);
      printSecret(ctx, created.id, created.secret);
      ctx.out.line(`Registered callback endpoint ${created.id}.`);
      ctx.out.line(
        keyValues([
          ['client', created.clientId],
          ['url', created.url],
          ['events', created.events?.join(', ') ?? 'all'],
        ]),
      );
      return 0;
    },
  },
  {
    name: 'callbacks list',
    summary: 'callback endpoints, their failures and whether the dispatcher disabled them',
    usage: '[--client <client-id>]',
    options: { client: { type: 'string' } },
    optionsHelp: [['--client <id>', "only this client's endpoints"]],
    async run(ctx) {
      const client = stringFlag(ctx, 'client');
      const { callbacks } = await (await ctx.api()).get<{ callbacks: EndpointRow[] }>(
        client
          ? `/v1/admin/clients/${idArgument(client, 'client id')}/callbacks`
          : '/v1/admin/callbacks',
      );
      ctx.out.data({ callbacks });
      ctx.out.line(
        table(callbacks, [
          { title: 'ID', value: (c) => c.id },
          { title: 'CLIENT', value: (c) => c.clientId },
          { title: 'URL', value: (c) => c.url },
          { title: 'EVENTS', value: (c) => c.events ?? 'all' },
          { title: 'FAILURES', value: (c) => c.consecutiveFailures },
          {
            title: 'STATE',
            value: (c) => (c.disabledAt ? `disabled ${sinceIso(c.disabledAt)}` : 'enabled'),
          },
        ]),
      );
      const disabled = callbacks.filter((c) => c.disabledAt);
      for (const c of disabled) ctx.out.line(`${c.id}: ${c.disabledReason ?? 'disabled'}`);
      return 0;
    },
  },
  {
    name: 'callbacks remove',
    summary: 'remove a callback endpoint and what it still had to deliver',
    usage: '<endpoint-id>',
    positionals: { min: 1, max: 1, names: '<endpoint-id>' },
    async run(ctx) {
      const endpoint = await findEndpoint(ctx, idArgument(ctx.positionals[0], 'endpoint id'));
      const removed = await (await ctx.api()).delete<{ id: string }>(
        `/v1/admin/clients/${endpoint.clientId}/callbacks/${endpoint.id}`,
      );
      ctx.out.data(removed);
      ctx.out.line(`Removed callback endpoint ${endpoint.id} (${endpoint.url}).`);
      return 0;
    },
  },
  {
    name: 'callbacks rotate-secret',
    summary: 'a new signing secret; the old one also signs for a grace period',
    usage: '<endpoint-id> [--grace 24h]',
    positionals: { min: 1, max: 1, names: '<endpoint-id>' },
    options: { grace: { type: 'string' } },
    optionsHelp: [
      ['--grace <duration>', 'how long the old secret still signs (default 24h, max 7d)'],
    ],
    async run(ctx) {
      const endpoint = await findEndpoint(ctx, idArgument(ctx.positionals[0], 'endpoint id'));
      const grace = stringFlag(ctx, 'grace');
      const graceSeconds = grace === undefined ? undefined : parseDuration(grace, 'grace');
      const rotated = await (await ctx.api()).post<EndpointRow & { secret: string }>(
        `/v1/admin/clients/${endpoint.clientId}/callbacks/${endpoint.id}/rotate-secret`,
        graceSeconds === undefined ? {} : { graceSeconds },
      );
      ctx.out.data(rotated);
      printSecret(ctx, endpoint.id, rotated.secret);
      ctx.out.line(
        `Rotated: the old secret signs too until ${formatTime(rotated.previousSecretExpiresAt)}.`,
      );
      return 0;
    },
  },
  {
    name: 'callbacks enable',
    summary: 'turn a disabled endpoint back on; what waited is posted at once',
    usage: '<endpoint-id>',
    positionals: { min: 1, max: 1, names: '<endpoint-id>' },
    async run(ctx) {
      const endpoint = await findEndpoint(ctx, idArgument(ctx.positionals[0], 'endpoint id'));
      const enabled = await (await ctx.api()).post<{ id: string }>(
        `/v1/admin/clients/${endpoint.clientId}/callbacks/${endpoint.id}/enable`,
      );
      ctx.out.data(enabled);
      ctx.out.line(`Enabled callback endpoint ${endpoint.id}.`);
      return 0;
    },
  },
  {
    name: 'callbacks deliveries',
    summary: "a notification's callback deliveries with every attempt",
    usage: '<notification-id>',
    positionals: { min: 1, max: 1, names: '<notification-id>' },
    async run(ctx) {
      const id = idArgument(ctx.positionals[0], 'notification id');
      const { deliveries } = await (await ctx.api()).get<{ deliveries: DeliveryRow[] }>(
        `/v1/admin/notifications/${id}/callbacks`,
      );
      ctx.out.data({ deliveries });
      ctx.out.line(
        table(deliveries, [
          { title: 'DELIVERY', value: (d) => d.id },
          { title: 'SEQ', value: (d) => d.sequence },
          { title: 'TYPE', value: (d) => d.type },
          { title: 'ENDPOINT', value: (d) => d.endpointId },
          { title: 'STATUS', value: (d) => d.status },
          { title: 'ATTEMPTS', value: (d) => d.attempts.length },
          {
            title: 'LAST',
            value: (d) => {
              const last = d.attempts.at(-1);
              return last
                ? `${last.statusCode ?? '-'} ${last.latencyMs} ms ${last.error ?? ''}`.trim()
                : null;
            },
          },
          { title: 'NEXT', value: (d) => (d.nextAttemptAt ? formatTime(d.nextAttemptAt) : null) },
        ]),
      );
      return 0;
    },
  },
  {
    name: 'callbacks redeliver',
    summary: 'post a delivery again (same event id), whatever became of it',
    usage: '<delivery-id>',
    positionals: { min: 1, max: 1, names: '<delivery-id>' },
    async run(ctx) {
      const id = idArgument(ctx.positionals[0], 'delivery id');
      const answer = await (await ctx.api()).post<{ id: string; status: string }>(
        `/v1/admin/callbacks/deliveries/${id}/redeliver`,
      );
      ctx.out.data(answer);
      ctx.out.line(`Delivery ${id} is due again; the dispatcher posts it within a minute.`);
      return 0;
    },
  },
];
