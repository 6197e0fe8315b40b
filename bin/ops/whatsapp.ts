/** `ops templates` and `ops token status`: what the Graph API says, asked by the deployment that holds the token. */
import { type Command, stringFlag } from './command.ts';
import { formatTime, keyValues, table } from './output.ts';

interface Template {
  name: string;
  language: string;
  status: string;
  category: string | null;
  id: string | null;
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
    summary: 'message templates and their review status (APPROVED, PENDING, REJECTED, PAUSED…)',
    usage: '[--status <STATUS>] [--name <name>]',
    description:
      'Lists the WhatsApp Business Account templates from the Graph API. A template that is not\n' +
      'APPROVED fails every notification that uses it (error class template, codes 132000-132016).',
    options: { status: { type: 'string' }, name: { type: 'string' } },
    optionsHelp: [
      ['--status <STATUS>', 'only templates in this status'],
      ['--name <name>', 'only templates with this name'],
    ],
    async run(ctx) {
      const answer = await (await ctx.api()).get<{ templates: Template[]; truncated: boolean }>(
        '/v1/admin/whatsapp/templates',
      );
      const status = stringFlag(ctx, 'status')?.toUpperCase();
      const name = stringFlag(ctx, 'name');
      const shown = answer.templates.filter(
        (t) => (!status || t.status === status) && (!name || t.name === name),
      );
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
