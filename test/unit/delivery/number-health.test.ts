/** How Meta's number and account events, and the Graph API's number node, are read. */
import { describe, expect, it } from 'vitest';
import {
  effectiveLimits,
  healthWarnings,
  type NumberHealth,
  normaliseTier,
  readGraphNumber,
  readNumberEvent,
} from '#core/delivery/number-health.ts';
import { DEFAULT_ACCOUNT, numberChangeWebhooks } from '../../../bin/sandbox/account.ts';
import { testRollout } from '../../support/delivery-control.ts';

function health(overrides: Partial<NumberHealth> = {}): NumberHealth {
  return {
    senderId: 's',
    qualityRating: 'GREEN',
    messagingLimit: 'TIER_250',
    throughputLevel: 'STANDARD',
    accountState: 'OK',
    accountDetail: null,
    source: 'graph',
    checkedAt: null,
    updatedAt: new Date(0).toISOString(),
    ...overrides,
  };
}

describe('reading Meta events', () => {
  it('reads the tier as Meta writes it in either shape, and nothing else', () => {
    expect(normaliseTier('TIER_10K')).toBe('TIER_10K');
    expect(normaliseTier(2000)).toBe('TIER_2K');
    expect(normaliseTier('-1')).toBe('TIER_UNLIMITED');
    expect(normaliseTier('2001')).toBeUndefined();
    expect(normaliseTier('tier 2k; drop table')).toBeUndefined();
  });

  it('prefers max_daily_conversations_per_business over the deprecated current_limit', () => {
    const read = readNumberEvent('phone_number_quality_update', 'DOWNGRADE', {
      max_daily_conversations_per_business: 'TIER_250',
      current_limit: 'TIER_10K',
    });
    expect(read).toEqual({ reading: { messagingLimit: 'TIER_250' } });
  });

  it('blocks sends for a business-initiated restriction, not for a customer-initiated one', () => {
    const restriction = (type: string) =>
      readNumberEvent('account_update', 'ACCOUNT_RESTRICTION', {
        restriction_info: [{ restriction_type: type, expiration: 1_800_000_000 }],
      });
    expect(restriction('RESTRICTED_BIZ_INITIATED_MESSAGING')?.blocks).toBe(
      'Meta restricted the account (RESTRICTED_BIZ_INITIATED_MESSAGING)',
    );
    expect(restriction('RESTRICTED_CUSTOMER_INITIATED_MESSAGING')).toEqual({
      reading: {
        accountState: 'OK',
        accountDetail:
          'restricted: RESTRICTED_CUSTOMER_INITIATED_MESSAGING until 2027-01-15T08:00:00.000Z',
      },
    });
  });

  it('blocks on a ban, warns on a scheduled one, and does not reopen on reinstatement', () => {
    const ban = (state: string) =>
      readNumberEvent('account_update', 'DISABLED_UPDATE', { ban_info: { waba_ban_state: state } });
    expect(ban('DISABLE')?.blocks).toBe('Meta disabled (banned) the account');
    expect(ban('SCHEDULE_FOR_DISABLE')?.blocks).toBeUndefined();
    expect(ban('REINSTATE')).toEqual({
      reading: { accountState: 'OK', accountDetail: 'reinstated' },
    });
    expect(readNumberEvent('account_update', 'PARTNER_ADDED', {})).toBeUndefined();
  });

  it('blocks when the Graph API reports the number restricted', () => {
    expect(readGraphNumber({ status: 'RESTRICTED', qualityRating: 'RED' })).toMatchObject({
      reading: { accountState: 'RESTRICTED', qualityRating: 'RED' },
      blocks: 'the Graph API reports the number RESTRICTED',
    });
    expect(readGraphNumber({ status: 'CONNECTED' }).blocks).toBeUndefined();
  });
});

describe('what follows from the health', () => {
  it('warns on a fall to RED or FLAGGED and a lower tier, not on a rise or a repeat', () => {
    expect(
      healthWarnings(health(), health({ qualityRating: 'RED', messagingLimit: 'TIER_50' })),
    ).toEqual([
      'quality rating dropped to RED',
      'messaging limit lowered from TIER_250 to TIER_50',
    ]);
    expect(
      healthWarnings(health({ qualityRating: 'RED' }), health({ qualityRating: 'FLAGGED' })),
    ).toEqual([]);
    expect(healthWarnings(health(), health({ messagingLimit: 'TIER_2K' }))).toEqual([]);
  });

  it("uses Meta's rate and tier only where the operator set nothing", () => {
    const auto = testRollout({ rateByHand: false, ratePerSecond: 80, dailyCap: null });
    expect(effectiveLimits(auto, health({ throughputLevel: 'HIGH' }))).toMatchObject({
      ratePerSecond: 1000,
      rateSource: 'meta',
      dailyCap: 250,
      dailyCapSource: 'meta',
    });
    expect(effectiveLimits(auto, health({ messagingLimit: 'TIER_UNLIMITED' }))).toMatchObject({
      dailyCap: null,
      dailyCapSource: 'none',
    });
    expect(effectiveLimits(auto, null)).toMatchObject({ ratePerSecond: 80, rateSource: 'default' });
  });
});

describe("the sandbox's number webhooks", () => {
  it('posts what Meta posts for each change, and nothing for a throughput downgrade', () => {
    const high = { ...DEFAULT_ACCOUNT, throughputLevel: 'HIGH' as const };
    expect(numberChangeWebhooks(DEFAULT_ACCOUNT, high).map((w) => w.value.event)).toEqual([
      'THROUGHPUT_UPGRADE',
    ]);
    expect(numberChangeWebhooks(high, DEFAULT_ACCOUNT)).toEqual([]);
    const banned = { ...DEFAULT_ACCOUNT, accountStatus: 'BANNED' as const };
    expect(numberChangeWebhooks(DEFAULT_ACCOUNT, banned)).toEqual([
      {
        field: 'account_update',
        value: expect.objectContaining({ event: 'DISABLED_UPDATE' }),
      },
    ]);
    expect(numberChangeWebhooks(banned, DEFAULT_ACCOUNT)[0]?.value).toMatchObject({
      ban_info: { waba_ban_state: 'REINSTATE' },
    });
  });
});
