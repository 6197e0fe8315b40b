/**
 * `ops templates` (the template registry, or Meta's live list), `ops templates check` and
 * `ops token status`: what the deployment and the Graph API say, asked through the admin API.
 */
import { boolFlag, type Command, type CommandContext, intFlag, stringFlag } from './command.ts';
import { formatTime, keyValues, table } from './output.ts';
import { UsageError } from './target.ts';

interface Template {
  name: string;
  language: string;
  status: string;
  category: string | null;
  id: string | null;
}

interface RegistryCheck {
  check: 'on' | 'skipped' | 'off' | 'unknown';
  reason?: string;
  templates?: number;
  refreshedAt?: string | null;
  lastError?: string | null;
}

interface RegisteredTemplate {
  name: string;
  language: string;
  status: string;
  category: string | null;
  quality: string | null;
  rejectedReason: string | null;
  parameters: { header: number; body: number; buttons: number } | null;
  namedParameters: string[];
}

interface TemplateRegistry {
  registry: RegistryCheck;
  templates: RegisteredTemplate[];
}

interface TemplateCheckAnswer {
  accepted: boolean;
  registry: RegistryCheck;
  error?: { code: string; field: string; message: string };
  template?: RegisteredTemplate;
}

function registryLine(r: RegistryCheck): string {
  const fresh = r.refreshedAt ? `, refreshed ${formatTime(r.refreshedAt)}` : '';
  const failing = r.lastError ? ` (last refresh failed: ${r.lastError})` : '';
  switch (r.check) {
    case 'on':
      return `Template check at acceptance: ON (${r.templates} templates${fresh})${failing}`;
    case 'skipped':
      return `Template check at acceptance: SKIPPED, the registry was never filled${failing}`;
    case 'off':
      return 'Template check at acceptance: OFF (no WHATSAPP_WABA_ID)';
    default:
      return `Template check at acceptance: unknown (${r.reason ?? 'error'})`;
  }
}

/** The list as the Graph API has it now (`--live`). */
async function liveTemplates(
  ctx: CommandContext,
  keep: (t: { status: string; name: string }) => boolean,
): Promise<number> {
  const answer = await (await ctx.api()).get<{ templates: Template[]; truncated: boolean }>(
    '/v1/admin/whatsapp/templates',
  );
  const shown = answer.templates.filter(keep);
  ctx.out.data({ templates: shown, truncated: answer.truncated });
  ctx.out.line(
    table(shown, [
      { title: 'NAME', value: (t) => t.name },
      { title: 'LANGUAGE', value: (t) => t.language },
      { title: 'STATUS', value: (t) => t.status },
      { title: 'CATEGORY', value: (t) => t.category },
    ]),
  );
  if (answer.truncated) ctx.out.line('(more templates exist than one listing reads)');
  const notApproved = shown.filter((t) => t.status !== 'APPROVED').length;
  if (notApproved) ctx.out.line(`${notApproved} not APPROVED: notifications using them fail.`);
  return 0;
}

interface TokenStatus {
  valid: boolean;
  type: string | null;
  application: string | null;
  expiresAt: string | null;
  dataAccessExpiresAt: string | null;
  scopes: string[];
  checkedAt: string;
}

const REQUIRED_SCOPES = ['whatsapp_business_messaging', 'whatsapp_business_management'];

export const whatsappCommands: Command[] = [
  {
    name: 'templates',
    summary:
      'the template registry: status, category, quality, parameters, rejection reason (--live: ask Meta)',
    usage: '[--status <STATUS>] [--name <name>] [--live]',
    description:
      'Lists the templates the deployment checks notifications against (the registry the scheduler\n' +
      'refreshes from the Graph API and the template webhooks update). A template that is not\n' +
      'APPROVED is refused at acceptance (422) and fails unsent if it changed after acceptance.\n' +
      '--live reads the list from the Graph API now instead (status and category only).',
    options: { status: { type: 'string' }, name: { type: 'string' }, live: { type: 'boolean' } },
    optionsHelp: [
      ['--status <STATUS>', 'only templates in this status'],
      ['--name <name>', 'only templates with this name'],
      ['--live', 'ask the Graph API instead of reading the registry'],
    ],
    async run(ctx) {
      const status = stringFlag(ctx, 'status')?.toUpperCase();
      const name = stringFlag(ctx, 'name');
      const keep = (t: { status: string; name: string }) =>
        (!status || t.status === status) && (!name || t.name === name);
      if (boolFlag(ctx, 'live')) return liveTemplates(ctx, keep);
      const answer = await (await ctx.api()).get<TemplateRegistry>('/v1/admin/templates');
      const shown = answer.templates.filter(keep);
      ctx.out.data({ registry: answer.registry, templates: shown });
      ctx.out.line(registryLine(answer.registry));
      ctx.out.line(
        table(shown, [
          { title: 'NAME', value: (t) => t.name },
          { title: 'LANGUAGE', value: (t) => t.language },
          { title: 'STATUS', value: (t) => t.status },
          { title: 'CATEGORY', value: (t) => t.category },
          { title: 'QUALITY', value: (t) => t.quality },
          {
            title: 'PARAMS H/B/BTN',
            value: (t) =>
              t.parameters
                ? `${t.parameters.header}/${t.parameters.body}/${t.parameters.buttons}${
                    t.namedParameters.length ? ` (${t.namedParameters.join(',')})` : ''
                  }`
                : '?',
          },
          { title: 'REJECTED', value: (t) => t.rejectedReason },
        ]),
      );
      const notApproved = shown.filter((t) => t.status !== 'APPROVED').length;
      if (notApproved) {
        ctx.out.line(`${notApproved} not APPROVED: notifications using them are refused or fail.`);
      }
      return 0;
    },
  },
  {
    name: 'templates check',
    summary: 'would a notification with this template be accepted (exists, APPROVED, parameters)?',
    usage: '<name> <language> [--params <n>] [--components <json>]',
    description:
      'Asks the deployment whether POST /v1/notifications would take this template, as the\n' +
      'registry has it. --params n stands for n body text parameters; --components gives the\n' +
      'components exactly as a request would. Nothing is sent or stored.\n' +
      'Exit code 0: accepted; 1: refused (the reason and the field are printed).',
    options: { params: { type: 'string' }, components: { type: 'string' } },
    optionsHelp: [
      ['--params <n>', 'n body parameters of type text'],
      ['--components <json>', "the request's template.components array"],
    ],
    positionals: { min: 2, max: 2, names: '<name> <language>' },
    examples: [
      'npm run ops -- templates check appointment_reminder es --params 1',
      'npm run ops -- templates check delivery_update en_US --components \'[{"type":"header","parameters":[{"type":"text","text":"A-1"}]}]\'',
    ],
    async run(ctx) {
      const [name, language] = ctx.positionals as [string, string];
      const count = intFlag(ctx, 'params', { min: 0, max: 20 });
      const raw = stringFlag(ctx, 'components');
      if (count !== undefined && raw !== undefined) {
        throw new UsageError('give --params or --components, not both');
      }
      let components: unknown;
      if (raw !== undefined) {
        try {
          components = JSON.parse(raw);
        } catch {
          throw new UsageError('--components must be a JSON array');
        }
      } else if (count) {
        const parameters = Array.from({ length: count }, (_, i) => ({
          type: 'text',
          text: `value ${i + 1}`,
        }));
        components = [{ type: 'body', parameters }];
      }
      const answer = await (await ctx.api()).post<TemplateCheckAnswer>(
        '/v1/admin/templates/check',
        { name, language, ...(components !== undefined ? { components } : {}) },
      );
      ctx.out.data(answer);
      ctx.out.line(registryLine(answer.registry));
      if (answer.template) {
        const p = answer.template.parameters;
        ctx.out.line(
          keyValues([
            ['template', `${answer.template.name} (${answer.template.language})`],
            ['status', answer.template.status],
            ['category', answer.template.category],
            ['quality', answer.template.quality],
            [
              'parameters',
              p ? `header ${p.header}, body ${p.body}, buttons ${p.buttons}` : 'unknown',
            ],
          ]),
        );
      }
      if (answer.error) {
        ctx.out.line(
          `${answer.accepted ? 'Accepted (the registry is not relied on yet), but' : 'Refused:'} ${answer.error.code} at ${answer.error.field}: ${answer.error.message}`,
        );
      } else {
        ctx.out.line('Accepted: a notification with this template would be taken.');
      }
      return answer.accepted ? 0 : 1;
    },
  },
  {
    name: 'token status',
    summary: 'is the WhatsApp access token valid, when does it expire, which scopes does it have',
    description:
      'Asks the Graph API (debug_token) about the token the deployment uses; the token never leaves it.\n' +
      'Exit code 1 when the token is invalid or lacks a scope the service needs.',
    async run(ctx) {
      const token = await (await ctx.api()).get<TokenStatus>('/v1/admin/whatsapp/token');
      const missing = REQUIRED_SCOPES.filter((s) => !token.scopes.includes(s));
      ctx.out.data({ ...token, missingScopes: missing });
      ctx.out.line(
        keyValues([
          [
            'valid',
            token.valid
              ? 'yes'
              : 'NO: every send fails with auth (190); see runbooks/whatsapp-auth.md',
          ],
          ['type', token.type],
          ['application', token.application],
          ['expires', token.expiresAt ? formatTime(token.expiresAt) : 'never (system user token)'],
          [
            'data access expires',
            token.dataAccessExpiresAt ? formatTime(token.dataAccessExpiresAt) : '-',
          ],
          ['scopes', token.scopes.join(', ')],
          ['missing scopes', missing.length ? missing.join(', ') : 'none'],
          ['checked', formatTime(token.checkedAt)],
        ]),
      );
      return token.valid && missing.length === 0 ? 0 : 1;
    },
  },
];
