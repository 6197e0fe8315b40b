/**
 * `ops templates` and `ops templates check` as on-call runs them, against the real local stack: the
 * scheduler's first run fills the registry from the sandbox, the sandbox's template webhooks reach
 * the stack's webhook, and the CLI reads it all through the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../../bin/local/stack.ts';
import { type OwnStack, runOps, startOwnStack } from '../../support/ops-stack.ts';
import { changeTemplate } from '../../support/templates.ts';

let own: OwnStack;
let stack: LocalStack;
let target: string[];

beforeAll(async () => {
  own = await startOwnStack();
  stack = own.stack;
  target = ['--url', stack.baseUrl, '--api-key', stack.apiKey];
});

afterAll(async () => {
  await own?.stop();
});

const ops = (...args: string[]) => runOps([...args, ...target]);

describe('ops templates', () => {
  it('lists the registry with status, category, quality, parameter counts and rejection reason', async () => {
    // act
    const result = await ops('templates');

    // assess
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Template check at acceptance: ON \(10 templates/);
    expect(result.stdout).toMatch(
      /NAME\s+LANGUAGE\s+STATUS\s+CATEGORY\s+QUALITY\s+PARAMS H\/B\/BTN\s+REJECTED/,
    );
    expect(result.stdout).toMatch(/hello_world\s+en_US\s+APPROVED\s+UTILITY\s+GREEN\s+0\/0\/0/);
    expect(result.stdout).toMatch(/delivery_update\s+en_US\s+APPROVED\s+UTILITY\s+GREEN\s+1\/2\/1/);
    expect(result.stdout).toMatch(
      /account_notice\s+en_US\s+APPROVED\s+UTILITY\s+GREEN\s+0\/2\/0 \(first_name,plan\)/,
    );
    expect(result.stdout).toMatch(
      /spring_sale\s+en_US\s+REJECTED\s+MARKETING\s+UNKNOWN\s+0\/1\/0\s+PROMOTIONAL/,
    );
    expect(result.stdout).toContain('4 not APPROVED');
  });

  it('follows a status change Meta posts, and still reads the Graph API with --live', async () => {
    // prepare: the sandbox pauses weekly_offers and posts the webhook to the stack
    const changed = await changeTemplate(stack.sandbox!, {
      name: 'weekly_offers',
      language: 'en_US',
      status: 'PAUSED',
      wabaId: process.env.WHATSAPP_WABA_ID!,
    });
    expect(changed.status).toBe(200);

    // act
    const paused = await ops('templates', '--status', 'PAUSED', '--json');
    const live = await ops('templates', '--live', '--name', 'weekly_offers');

    // assess
    expect(
      JSON.parse(paused.stdout)
        .templates.map((t: { name: string }) => t.name)
        .sort(),
    ).toEqual(['order_shipped', 'weekly_offers']);
    expect(live.stdout).toMatch(/weekly_offers\s+en_US\s+PAUSED\s+MARKETING/);
    await changeTemplate(stack.sandbox!, {
      name: 'weekly_offers',
      language: 'en_US',
      status: 'APPROVED',
      wabaId: process.env.WHATSAPP_WABA_ID!,
    });
  });
});

describe('ops status', () => {
  it('says whether templates are checked and which are not APPROVED', async () => {
    const result = await ops('status');

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /Templates: checked at acceptance \(10 in the registry\); not APPROVED: .*spring_sale en_US REJECTED/,
    );
  });
});

describe('ops templates check', () => {
  it.each([
    [['appointment_reminder', 'es', '--params', '1'], 0, /Accepted: a notification/],
    [
      ['appointment_reminder', 'es'],
      1,
      /Refused: template_parameters_mismatch at template\.components/,
    ],
    [['appointment_reminder', 'es', '--params', '2'], 1, /body takes 1 parameter, 2 given/],
    [
      ['spring_sale', 'en_US', '--params', '1'],
      1,
      /Refused: template_not_approved .*REJECTED \(PROMOTIONAL\)/,
    ],
    [['helo_world', 'en_US'], 1, /Refused: template_not_found at template\.name/],
    [['hello_world', 'fr'], 1, /Refused: template_not_found at template\.language.*it has en_US/],
    [
      [
        'delivery_update',
        'en_US',
        '--components',
        JSON.stringify([
          { type: 'header', parameters: [{ type: 'text', text: 'A-1' }] },
          {
            type: 'body',
            parameters: [
              { type: 'text', text: 'A-1' },
              { type: 'text', text: 'Monday' },
            ],
          },
          {
            type: 'button',
            sub_type: 'url',
            index: 0,
            parameters: [{ type: 'text', text: 'A-1' }],
          },
        ]),
      ],
      0,
      /parameters:\s+header 1, body 2, buttons 1[\s\S]*Accepted/,
    ],
  ])('answers %j with exit code %i', async (args, code, output) => {
    // act
    const result = await ops('templates', 'check', ...(args as string[]));

    // assess
    expect(result.code, result.stderr).toBe(code);
    expect(result.stdout).toMatch(output as RegExp);
  });

  it('refuses --params with --components, and a bad count, as usage errors', async () => {
    const both = await ops(
      'templates',
      'check',
      'hello_world',
      'en_US',
      '--params',
      '1',
      '--components',
      '[]',
    );
    const bad = await ops('templates', 'check', 'hello_world', 'en_US', '--params', 'x');
    const missing = await ops('templates', 'check', 'hello_world');

    expect([both.code, bad.code, missing.code]).toEqual([2, 2, 2]);
    expect(missing.stderr).toContain('<name> <language>');
  });
});
