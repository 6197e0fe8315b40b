/**
 * The sandbox's message templates, listed as Meta lists them (statuses, categories, components,
 * quality, paged), changeable by a test (the matching status webhook follows), and checked on
 * every template send with Meta's error codes: 132001 (no such template in that language, or not
 * approved), 132015 (paused), 132016 (disabled), 132000 (parameter count), 132012 (parameter format).
 */
import { checkParameters, templateRequirements } from '#core/whatsapp/template-parameters.ts';
import { type MetaErrorInput, type Req, type Res, sendJson } from './http.ts';

export interface SandboxTemplate {
  id: string;
  name: string;
  language: string;
  status: string;
  category: string;
  parameter_format: 'POSITIONAL' | 'NAMED';
  components: Record<string, unknown>[];
  quality_score: { score: string; date?: number };
  rejected_reason: string;
}

type Seed = Omit<SandboxTemplate, 'id' | 'parameter_format' | 'quality_score' | 'rejected_reason'> &
  Partial<Pick<SandboxTemplate, 'parameter_format' | 'rejected_reason'>> & { quality?: string };

const body = (text: string, example?: unknown[]) => ({
  type: 'BODY',
  text,
  ...(example ? { example: { body_text: [example] } } : {}),
});

/**
 * The catalogue. hello_world and appointment_reminder are the ones the README and the tests
 * have always used: keep them exactly as they are (names, languages, status, parameters).
 */
const SEEDS: Seed[] = [
  {
    name: 'hello_world',
    language: 'en_US',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [
      { type: 'HEADER', format: 'TEXT', text: 'Hello World' },
      body(
        'Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta.',
      ),
      { type: 'FOOTER', text: 'WhatsApp Business Platform sample message' },
    ],
  },
  {
    name: 'appointment_reminder',
    language: 'es',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [body('Hola {{1}}, le recordamos su cita de mañana.', ['Ana'])],
  },
  {
    name: 'appointment_reminder',
    language: 'en_US',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [body('Hi {{1}}, this is a reminder of your appointment tomorrow.', ['Ana'])],
  },
  {
    name: 'weekly_offers',
    language: 'en_US',
    status: 'APPROVED',
    category: 'MARKETING',
    components: [
      body('Hi {{1}}, this week’s offers are waiting for you.', ['Ana']),
      { type: 'FOOTER', text: 'Reply STOP to unsubscribe' },
    ],
  },
  {
    // Header and button parameters: a text header variable and a URL button with a variable suffix.
    name: 'delivery_update',
    language: 'en_US',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [
      { type: 'HEADER', format: 'TEXT', text: 'Order {{1}}', example: { header_text: ['A-1'] } },
      body('Your order {{1}} arrives on {{2}}.', ['A-1', 'Monday']),
      {
        type: 'BUTTONS',
        buttons: [
          {
            type: 'URL',
            text: 'Track',
            url: 'https://example.com/track/{{1}}',
            example: ['https://example.com/track/A-1'],
          },
          { type: 'QUICK_REPLY', text: 'Stop updates' },
        ],
      },
    ],
  },
  {
    // Named parameters: each body parameter carries its parameter_name.
    name: 'account_notice',
    language: 'en_US',
    status: 'APPROVED',
    category: 'UTILITY',
    parameter_format: 'NAMED',
    components: [
      {
        type: 'BODY',
        text: 'Hi {{first_name}}, your plan {{plan}} renews soon.',
        example: {
          body_text_named_params: [
            { param_name: 'first_name', example: 'Ana' },
            { param_name: 'plan', example: 'Pro' },
          ],
        },
      },
    ],
  },
  {
    name: 'order_shipped',
    language: 'en_US',
    status: 'PAUSED',
    category: 'UTILITY',
    quality: 'RED',
    components: [body('Your order {{1}} has shipped.', ['A-1'])],
  },
  {
    name: 'spring_sale',
    language: 'en_US',
    status: 'REJECTED',
    category: 'MARKETING',
    rejected_reason: 'PROMOTIONAL',
    components: [body('Spring sale: {{1}} off everything!', ['20%'])],
  },
  {
    name: 'password_reset',
    language: 'en_US',
    status: 'PENDING',
    category: 'AUTHENTICATION',
    components: [body('{{1}} is your verification code.', ['123456'])],
  },
  {
    name: 'legacy_notice',
    language: 'en_US',
    status: 'DISABLED',
    category: 'UTILITY',
    quality: 'RED',
    components: [body('This service is changing.')],
  },
];

export function seedTemplates(): SandboxTemplate[] {
  return SEEDS.map(({ quality, ...t }, i) => ({
    id: String(900000000000001 + i),
    parameter_format: 'POSITIONAL',
    rejected_reason: 'NONE',
    ...t,
    quality_score: { score: quality ?? (t.status === 'APPROVED' ? 'GREEN' : 'UNKNOWN') },
  }));
}

/** The sandbox's templates as of now: a test changes them, reset() restores the catalogue. */
export interface TemplateStore {
  all(): SandboxTemplate[];
  find(name: string, language: string): SandboxTemplate | undefined;
  reset(): void;
}

export function createTemplateStore(): TemplateStore {
  let templates = seedTemplates();
  return {
    all: () => templates,
    find: (name, language) => templates.find((t) => t.name === name && t.language === language),
    reset() {
      templates = seedTemplates();
    },
  };
}

/**
 * `GET /{waba-id}/message_templates`: the requested `fields` (plus id), filters `name`, `status`,
 * `category`, `language`, and cursor paging with `paging.next` while more remain, as Meta pages.
 */
export function handleTemplates(
  req: Req,
  res: Res,
  query: URLSearchParams,
  host: string,
  store: TemplateStore,
): void {
  const limit = Math.min(Math.max(Number(query.get('limit')) || 25, 1), 100);
  const after = query.get('after');
  const start = after ? Number(Buffer.from(after, 'base64url').toString()) || 0 : 0;
  const filters = ['name', 'status', 'category', 'language'] as const;
  const matching = store
    .all()
    .filter((t) => filters.every((f) => !query.get(f) || String(t[f]) === query.get(f)));
  const fields = query
    .get('fields')
    ?.split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const data = matching.slice(start, start + limit).map((t) => {
    if (!fields) return { ...t };
    const picked: Record<string, unknown> = { id: t.id };
    for (const f of fields) if (f in t) picked[f] = t[f as keyof SandboxTemplate];
    return picked;
  });
  const end = start + data.length;
  const cursors = {
    before: Buffer.from(String(start)).toString('base64url'),
    after: Buffer.from(String(end)).toString('base64url'),
  };
  const paging: Record<string, unknown> = { cursors };
  if (end < matching.length) {
    const next = new URL(req.url ?? '/', `http://${req.headers.host ?? host}`);
    next.searchParams.set('after', cursors.after);
    next.searchParams.set('limit', String(limit));
    paging.next = next.toString();
  }
  sendJson(res, 200, { data, paging });
}

/** Meta's refusal of a template send, or undefined when the template takes it. */
export function templateSendProblem(
  store: TemplateStore,
  template: { name: string; language: string; components?: unknown[] },
): MetaErrorInput | undefined {
  const found = store.find(template.name, template.language);
  if (!found || (found.status !== 'APPROVED' && !['PAUSED', 'DISABLED'].includes(found.status))) {
    return {
      status: 404,
      code: 132001,
      details: `template name (${template.name}) does not exist in ${template.language}`,
    };
  }
  if (found.status === 'PAUSED') {
    return { status: 400, code: 132015, details: `template ${found.name} is paused` };
  }
  if (found.status === 'DISABLED') {
    return { status: 400, code: 132016, details: `template ${found.name} is disabled` };
  }
  const problem = checkParameters(
    templateRequirements(found.components, found.parameter_format),
    (template.components ?? []).filter(
      (c): c is Record<string, unknown> => typeof c === 'object' && c !== null,
    ),
  );
  if (!problem) return undefined;
  const format = /takes a \w+ parameter|parameter_name/.test(problem.message);
  return {
    status: 400,
    code: format ? 132012 : 132000,
    details: problem.message,
  };
}

/** Why a `/_sandbox/templates` body is refused, or undefined. */
export function templateChangeProblem(body: Record<string, unknown>): string | undefined {
  if (typeof body.name !== 'string' || typeof body.language !== 'string') {
    return 'expected {name, language, status?, category?, quality?}';
  }
  for (const key of ['status', 'category', 'quality'] as const) {
    if (
      body[key] !== undefined &&
      (typeof body[key] !== 'string' || !/^[A-Z_]+$/.test(body[key]))
    ) {
      return `${key} must be upper-case, as Meta writes it`;
    }
  }
  return undefined;
}
