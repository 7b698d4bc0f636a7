/**
 * The evidence tests' fixed data set, with the numbers a person computed from it by hand. Period:
 * 2026-03-01 to 2026-03-04 (excluded); one record before and one after it must not count.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { FileLedger } from '../../src/ledger/file/ledger';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { GAP_ACTION, operationRecord, type LedgerRecord } from '../../src/ledger/record';
import { makeRecord } from '../ledger/helpers';

export const FROM = '2026-03-01T00:00:00.000Z';
export const TO = '2026-03-04T00:00:00.000Z';

let span = 0;
const call = (fields: Partial<LedgerRecord>): LedgerRecord =>
  makeRecord({ span_id: (++span).toString(16).padStart(16, '0'), tenant_id: 'acme', ...fields });
const gpt = { provider: 'openai', model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' } };
const claude = { provider: 'anthropic', model: { request: 'claude-sonnet-4', response: 'claude-sonnet-4-20250514' } };
/** A user id an application might pass on unchecked: the report must show it as text. */
export const HOSTILE_USER = '<img src=x onerror="document.title=\'pwned\'">';

export function records(): LedgerRecord[] {
  return [
    call({ timestamp: '2026-02-28T23:59:00.000Z', user_id: 'alice', cost_usd: 7, input_tokens: 1, output_tokens: 1, ...gpt }),
    call({ timestamp: '2026-03-01T09:00:00.000Z', user_id: 'alice', cost_usd: 0.1, input_tokens: 100, output_tokens: 20, ...gpt }),
    call({ timestamp: '2026-03-01T10:00:00.000Z', user_id: 'alice', status: 'error', error_type: 'rate_limit_exceeded', cost_usd: null, input_tokens: 50, output_tokens: 0, ...gpt }),
    call({ timestamp: '2026-03-01T11:00:00.000Z', user_id: 'bob', cost_usd: 0.3, input_tokens: 200, output_tokens: 40, sanitization_count: 2, ...claude }),
    call({
      timestamp: '2026-03-02T09:00:00.000Z',
      user_id: 'bob',
      tenant_id: 'globex',
      status: 'blocked',
      cost_usd: null,
      input_tokens: 0,
      output_tokens: 0,
      guardrails: [{ name: 'pii-filter', action: 'block', time: '2026-03-02T09:00:00.000Z' }],
      ...claude,
    }),
    call({ timestamp: '2026-03-02T10:00:00.000Z', user_id: HOSTILE_USER, tenant_id: 'globex', cost_usd: null, input_tokens: 300, output_tokens: 60, ...gpt }),
    operationRecord({
      action: GAP_ACTION,
      timestamp: '2026-03-02T12:00:00.000Z',
      tenantId: null,
      status: 'error',
      metadata: { lost_records: 3, first_failure: '2026-03-02T11:00:00.000Z', last_failure: '2026-03-02T11:30:00.000Z' },
    }),
    call({ timestamp: '2026-03-03T09:00:00.000Z', user_id: 'alice', cost_usd: 0.05, input_tokens: 100, output_tokens: 20, ...gpt }),
    operationRecord({ action: 'content.shred', timestamp: '2026-03-03T12:00:00.000Z', tenantId: 'globex', status: 'success', metadata: { reason: 'erasure request' } }),
    call({ timestamp: '2026-03-04T00:00:00.000Z', user_id: 'alice', cost_usd: 9, input_tokens: 999, output_tokens: 9, ...gpt }),
  ];
}

/** Computed by hand from records() for the period. */
export const EXPECTED = {
  totals: { calls: 6, errors: 1, blocked: 1, input_tokens: 750, output_tokens: 140, cost_usd: 0.45, unpriced: 1 },
  by_user: [
    { user_id: 'bob', calls: 2, errors: 0, blocked: 1, input_tokens: 200, output_tokens: 40, cost_usd: 0.3, unpriced: 0 },
    { user_id: 'alice', calls: 3, errors: 1, blocked: 0, input_tokens: 250, output_tokens: 40, cost_usd: 0.15, unpriced: 0 },
    { user_id: HOSTILE_USER, calls: 1, errors: 0, blocked: 0, input_tokens: 300, output_tokens: 60, cost_usd: null, unpriced: 1 },
  ],
  by_tenant: [
    { tenant_id: 'acme', calls: 4, errors: 1, blocked: 0, input_tokens: 450, output_tokens: 80, cost_usd: 0.45, unpriced: 0 },
    { tenant_id: 'globex', calls: 2, errors: 0, blocked: 1, input_tokens: 300, output_tokens: 60, cost_usd: null, unpriced: 1 },
  ],
  by_model: [
    { provider: 'anthropic', model: 'claude-sonnet-4', calls: 2, errors: 0, blocked: 1, input_tokens: 200, output_tokens: 40, cost_usd: 0.3, unpriced: 0 },
    { provider: 'openai', model: 'gpt-4o', calls: 4, errors: 1, blocked: 0, input_tokens: 550, output_tokens: 100, cost_usd: 0.15, unpriced: 1 },
  ],
  by_provider: [
    { provider: 'anthropic', calls: 2, errors: 0, blocked: 1, input_tokens: 200, output_tokens: 40, cost_usd: 0.3, unpriced: 0 },
    { provider: 'openai', calls: 4, errors: 1, blocked: 0, input_tokens: 550, output_tokens: 100, cost_usd: 0.15, unpriced: 1 },
  ],
  by_day: [
    { day: '2026-03-01', calls: 3, errors: 1, blocked: 0, input_tokens: 350, output_tokens: 60, cost_usd: 0.4, unpriced: 0 },
    { day: '2026-03-02', calls: 2, errors: 0, blocked: 1, input_tokens: 300, output_tokens: 60, cost_usd: null, unpriced: 1 },
    { day: '2026-03-03', calls: 1, errors: 0, blocked: 0, input_tokens: 100, output_tokens: 20, cost_usd: 0.05, unpriced: 0 },
  ],
  guardrails: [{ rule: 'pii-filter', action: 'block', count: 1 }],
  sanitization: { calls_with_findings: 1, findings: 2 },
  error_types: [{ error_type: 'rate_limit_exceeded', count: 1 }],
  gaps: [{ timestamp: '2026-03-02T12:00:00.000Z', lost: 3, first_failure: '2026-03-02T11:00:00.000Z', last_failure: '2026-03-02T11:30:00.000Z' }],
  erasures: [{ timestamp: '2026-03-03T12:00:00.000Z', tenant_id: 'globex' }],
  records: { calls: 6, by_status: { success: 4, error: 1, blocked: 1 }, operations: { 'ledger.gap': 1, 'content.shred': 1 }, first: '2026-03-01T09:00:00.000Z', last: '2026-03-03T12:00:00.000Z' },
};

export interface Keys {
  privatePem: string;
  publicPem: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function keys(): Keys {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privatePem, publicPem, privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

/** Appends `list` to a signed file ledger, each on the day of its timestamp, and closes it. */
export async function fileLedger(dir: string, key: KeyObject, list: LedgerRecord[] = records()): Promise<void> {
  let now = new Date(list[0]!.timestamp);
  const ledger = await FileLedger.open({ dir, fsync: 'none', signingKey: key, clock: () => now });
  for (const r of list) {
    now = new Date(r.timestamp);
    await ledger.append([r]);
  }
  await ledger.close();
}
