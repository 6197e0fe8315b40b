/**
 * Anonymous denials are counted, not written one row each: a flood of 401s and of unsigned webhooks
 * writes one sampled audit entry per window, carrying the count, under a fixed actor; every denial
 * reaches the metric; nothing the caller chose (key prefix, X-Request-ID) is recorded as who acted.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect } from 'vitest';
import { DENIAL_AUDIT_WINDOW_MS, DenialLedger } from '#core/notifications/denials.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { apiEvent, testApiApp } from '../../support/api.ts';
import { testWebhookApp, webhookPostEvent } from '../../support/delivery.ts';
import { dbTest } from '../../support/fixtures.ts';
import { recordingMetrics } from '../../support/observability.ts';

const uniqueSourceIp = () =>
  `2001:db8::${randomBytes(4)
    .toString('hex')
    .replace(/(.{4})/, '$1:')}`;

describe('anonymous denials', () => {
  dbTest('count a flood of 401s and write one sampled entry per window', async ({ db }) => {
    const sourceIp = uniqueSourceIp();
    const { metrics, values } = recordingMetrics();
    let now = Date.parse('2026-11-29T01:00:00Z');
    const app = testApiApp(db, { metrics, now: () => new Date(now), denials: new DenialLedger() });
    const deny = async (key?: string) => {
      const event = apiEvent({
        method: 'GET',
        path: '/v1/notifications/+573001234567',
        headers: { ...(key ? { 'X-API-Key': key } : {}), 'X-Request-ID': 'forged-id' },
      });
      event.requestContext.identity.sourceIp = sourceIp;
      return (await app(event)).statusCode;
    };

    const first = [];
    for (let i = 0; i < 40; i++)
      first.push(await deny(i % 2 ? `wn_aaaaaaaaaaaa_${'A'.repeat(43)}` : undefined));
    now += DENIAL_AUDIT_WINDOW_MS;
    const next = await deny(`wn_bbbbbbbbbbbb_${'B'.repeat(43)}`);

    expect(new Set([...first, next])).toEqual(new Set([401]));
    expect(values.filter((v) => v.name === Metric.ApiAuthDenied)).toHaveLength(41);
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('source_ip', '=', sourceIp)
      .orderBy('id')
      .execute();
    expect(audit).toHaveLength(2);
    expect(audit.map((a) => a.actor)).toEqual(['anonymous', 'anonymous']);
    expect(audit[0]!.detail).toMatchObject({ sampled: true, denials: 1, reasons: { missing: 1 } });
    // The 39 counted after the first entry and the one that opened the next window.
    expect(audit[1]!.detail).toMatchObject({ denials: 40, reasons: { missing: 19, unknown: 21 } });
    const text = JSON.stringify(audit);
    expect(text).not.toContain('forged-id');
    expect(text).not.toContain('aaaaaaaaaaaa');
    expect(text).not.toContain('bbbbbbbbbbbb');
    expect(text).not.toContain('3001234567');
  });

  dbTest('count unsigned webhooks the same way, under the webhook actor', async ({ db }) => {
    const sourceIp = uniqueSourceIp();
    const { metrics, values } = recordingMetrics();
    const app = testWebhookApp(db, { metrics, denials: new DenialLedger() });
    const statuses = [];
    for (let i = 0; i < 25; i++) {
      const event = webhookPostEvent(
        { object: 'whatsapp_business_account', entry: [] },
        {
          signature: i % 2 ? null : `sha256=${'0'.repeat(64)}`,
          requestId: 'forged-id',
        },
      );
      event.requestContext.identity.sourceIp = sourceIp;
      statuses.push((await app(event)).statusCode);
    }
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(values.filter((v) => v.name === Metric.WebhookSignatureRejected)).toHaveLength(25);
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('source_ip', '=', sourceIp)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: 'webhook',
      action: 'webhook.signature_rejected',
      detail: expect.objectContaining({ sampled: true, denials: 1, reasons: { mismatch: 1 } }),
    });
    expect(audit[0]!.request_id).not.toBe('forged-id');
  });
});
