/**
 * The retention of personal data and of the audit log is per stage (lib/config.ts) and reaches
 * the scheduler, which applies it, and only the scheduler; the values the scheduler reads back are
 * the configured ones.
 */
import { describe, expect, it } from 'vitest';
import { INBOUND_SEEN_RETENTION_DAYS } from '#core/notifications/opt-outs.ts';
import { loadRetentionConfig } from '#core/platform/config.ts';
import {
  WEBHOOK_REJECT_RETENTION_DAYS,
  WHATSAPP_EVENT_RETENTION_DAYS,
} from '#core/whatsapp/webhook-records.ts';
import { STAGE_CONFIG, STAGES } from '../../lib/config.ts';
import { builtStage, logicalId } from './stages.ts';

describe.each(STAGES)('the %s retention', (stage) => {
  const { stack, template } = builtStage(stage);
  const env = (name: 'api' | 'webhook' | 'worker' | 'scheduler') =>
    template.toJSON().Resources[logicalId(stack, stack.functions[name])].Properties.Environment
      .Variables as Record<string, string>;

  it('gives the scheduler the stage’s retention days, and no other function', () => {
    const config = STAGE_CONFIG[stage];
    expect(env('scheduler')).toMatchObject({
      PII_RETENTION_DAYS: String(config.piiRetentionDays),
      AUDIT_RETENTION_DAYS: String(config.auditRetentionDays),
    });
    expect(loadRetentionConfig(env('scheduler'))).toEqual({
      PII_RETENTION_DAYS: config.piiRetentionDays,
      AUDIT_RETENTION_DAYS: config.auditRetentionDays,
    });
    for (const name of ['api', 'webhook', 'worker'] as const) {
      expect(Object.keys(env(name))).not.toContain('PII_RETENTION_DAYS');
    }
  });

  it('keeps personal data no longer than the 90 days of the issue, and the audit log longer', () => {
    const config = STAGE_CONFIG[stage];
    expect(config.piiRetentionDays).toBeLessThanOrEqual(90);
    expect(config.auditRetentionDays).toBeGreaterThanOrEqual(config.piiRetentionDays);
    // Raw webhook items, Meta's events and seen inbound ids are pruned on their own, sooner.
    for (const days of [
      WEBHOOK_REJECT_RETENTION_DAYS,
      WHATSAPP_EVENT_RETENTION_DAYS,
      INBOUND_SEEN_RETENTION_DAYS,
    ]) {
      expect(days).toBeLessThanOrEqual(config.piiRetentionDays);
    }
  });
});

describe('the retention settings', () => {
  it('default to 90 and 365 days and refuse nonsense with the variable’s name', () => {
    expect(loadRetentionConfig({})).toEqual({ PII_RETENTION_DAYS: 90, AUDIT_RETENTION_DAYS: 365 });
    expect(() => loadRetentionConfig({ PII_RETENTION_DAYS: '0' })).toThrow(/PII_RETENTION_DAYS/);
    expect(() => loadRetentionConfig({ AUDIT_RETENTION_DAYS: 'forever' })).toThrow(
      /AUDIT_RETENTION_DAYS/,
    );
  });
});
