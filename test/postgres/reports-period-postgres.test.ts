/**
 * The period reports (guardrails, sanitization, events, usage, summary) and --service / --env on
 * PostgreSQL are computed from the columns of migration 8 (kind, guardrail and sanitization counts,
 * service_name, deployment_environment) in SQL; on the file ledger by folding every record. One data
 * set goes into both: every report prints the same rows, and the numbers are the hand computation.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/ledger/file/ledger';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { operationRecord, type LedgerRecord } from '../../src/ledger/record';
import { makeRecord } from '../ledger/helpers';
import { MAIN, ensureBuilt, scratchDir } from '../ingest/helpers';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let n = 0;
const rec = (fields: Partial<LedgerRecord>): LedgerRecord => {
  n++;
  return { ...makeRecord({ request_id: `p${n}`, span_id: (0x1000 + n).toString(16).padStart(16, '0'), timestamp: '2026-03-09T10:00:00.000Z', ...fields }), v: 3 };
};
const app = (service: string, env: string): Partial<LedgerRecord> => ({ service_name: service, deployment_environment: env });

/**
 * shop/prod: alice 2 calls (0.01 and 0.02 USD), one with 3 findings (EMAIL 2, CARD 1) and a flagged
 * decision; bob 1 call blocked by `jailbreak`, 1 call blocked with no decision, 1 call with 2 findings
 * of unrecorded kinds. shop/staging: alice 1 failed call. crm/prod: carol 1 call (0.5 USD), blocked by
 * `pii` and flagged by `tone`. Plus an audit event (auth.login, alice) and an erasure: no call report counts them.
 */
function dataset(): LedgerRecord[] {
  return [
    rec({ ...app('shop', 'prod'), user_id: 'alice', tenant_id: 'acme', cost_usd: 0.01 }),
    rec({
      ...app('shop', 'prod'),
      user_id: 'alice',
      tenant_id: 'acme',
      cost_usd: 0.02,
      sanitization_count: 3,
      sanitization: { mode: 'redact', kinds: { EMAIL: 2, CARD: 1 } },
      guardrails: [{ name: 'pii', action: 'flagged' }],
    }),
    rec({ ...app('shop', 'prod'), user_id: 'bob', tenant_id: 'acme', status: 'blocked', cost_usd: null, guardrails: [{ name: 'jailbreak', action: 'blocked', policy_id: 'p1' }] }),
    rec({ ...app('shop', 'prod'), user_id: 'bob', tenant_id: 'acme', status: 'blocked', cost_usd: null }),
    rec({ ...app('shop', 'prod'), user_id: 'bob', tenant_id: 'acme', cost_usd: 0.01, sanitization_count: 2 }),
    rec({ ...app('shop', 'staging'), user_id: 'alice', tenant_id: 'acme', status: 'error', error_type: 'timeout', cost_usd: null }),
    rec({
      ...app('crm', 'prod'),
      user_id: 'carol',
      tenant_id: 'globex',
      cost_usd: 0.5,
      status: 'blocked',
      guardrails: [{ name: 'pii', action: 'blocked' }, { name: 'tone', action: 'flagged' }],
    }),
    {
      ...rec({ ...app('shop', 'prod'), user_id: 'alice', tenant_id: 'acme', action: 'auth.login', cost_usd: 5 }),
      event: { type: 'auth.login', outcome: 'success', target: null, reason: null, reason_hash: null, details: null },
    },
    operationRecord({ action: 'content.shred', timestamp: '2026-03-09T11:00:00.000Z', tenantId: 'acme', status: 'success', metadata: {} }),
  ];
}

describe('period reports and --service / --env on PostgreSQL equal the file ledger', () => {
  let db: TestDatabase;
  let fileDir: string;
  beforeAll(async () => {
    db = await createTestDatabase('period');
    const pg = await PostgresLedger.open({ url: db.url, checkpointEvery: 4 });
    await pg.append(dataset());
    await pg.close();
    fileDir = join(scratchDir('periodfile-'), 'ledger');
    n = 0;
    const file = await FileLedger.open({ dir: fileDir, fsync: 'none', checkpointEvery: 4 });
    await file.append(dataset());
    await file.close();
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  const PERIOD = ['--from', '2026-03-01T00:00:00Z', '--to', '2026-03-10T00:00:00Z', '--format', 'json'];
  const both = (args: string[]) => {
    const a = cli([...args, '--postgres', db.url]);
    const b = cli([...args, '--ledger', fileDir]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout, args.join(' ')).toBe(b.stdout);
    return { json: JSON.parse(a.stdout) as Array<Record<string, unknown>>, pgErr: a.stderr, fileErr: b.stderr };
  };

  it('guardrails, sanitization and events', () => {
    expect(both(['report', 'guardrails', '--by', 'rule', ...PERIOD]).json).toEqual([
      { rule: '(no rule recorded)', policy_id: null, blocked: 1, flagged: 0, modified: 0, allowed: 0 },
      { rule: 'jailbreak', policy_id: 'p1', blocked: 1, flagged: 0, modified: 0, allowed: 0 },
      { rule: 'pii', policy_id: null, blocked: 1, flagged: 1, modified: 0, allowed: 0 },
      { rule: 'tone', policy_id: null, blocked: 0, flagged: 1, modified: 0, allowed: 0 },
    ]);
    both(['report', 'guardrails', ...PERIOD]);
    expect(both(['report', 'guardrails', '--by', 'user', '--service', 'crm', ...PERIOD]).json).toEqual([
      { user_id: 'carol', blocked: 1, flagged: 1, modified: 0, allowed: 0 },
    ]);
    expect(both(['report', 'sanitization', '--by', 'kind', ...PERIOD]).json).toEqual([
      { kind: '(total; kinds not recorded)', calls: 1, findings: 2 },
      { kind: 'CARD', calls: 1, findings: 1 },
      { kind: 'EMAIL', calls: 1, findings: 2 },
    ]);
    both(['report', 'sanitization', ...PERIOD]);
    expect(both(['report', 'events', ...PERIOD]).json).toEqual([{ day: '2026-03-09', type: 'auth.login', outcome: 'success', user_id: 'alice', events: 1 }]);
    expect(both(['report', 'events', '--env', 'staging', ...PERIOD]).json).toEqual([]);
  }, 120_000);

  it('usage (one and several groupings) and summary, with and without --service / --env', () => {
    expect(both(['report', 'usage', '--by', 'user', ...PERIOD]).json).toEqual([
      { user_id: 'carol', calls: 1, errors: 0, blocked: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0.5, unpriced: 0 },
      { user_id: 'alice', calls: 3, errors: 1, blocked: 0, input_tokens: 300, output_tokens: 60, cost_usd: 0.03, unpriced: 0 },
      { user_id: 'bob', calls: 3, errors: 0, blocked: 2, input_tokens: 300, output_tokens: 60, cost_usd: 0.01, unpriced: 0 },
    ]);
    expect(both(['report', 'usage', '--by', 'env', '--service', 'shop', ...PERIOD]).json.map((r) => [r.deployment_environment, r.calls])).toEqual([
      ['prod', 5],
      ['staging', 1],
    ]);
    for (const by of ['tenant', 'model', 'provider', 'day', 'service', 'user,model']) both(['report', 'usage', '--by', by, ...PERIOD]);
    both(['report', 'usage', '--by', 'user', '--env', 'prod', ...PERIOD]);
    const summary = both(['report', 'summary', ...PERIOD]);
    expect(summary.json.at(-1)).toEqual({ provider: 'all', model: null, calls: 7, errors: 1, blocked: 3, input_tokens: 700, output_tokens: 140, cost_usd: 0.54, unpriced: 0 });
    both(['report', 'summary', '--service', 'shop', '--env', 'prod', ...PERIOD]);
    // usage states what it rests on and does not verify; PostgreSQL says it computed in SQL.
    const usage = cli(['report', 'usage', '--by', 'user', '--postgres', db.url, ...PERIOD.slice(0, 4)]);
    expect(usage.stderr).toMatch(/note: computed in PostgreSQL from the indexed columns/);
    expect(usage.stderr).not.toMatch(/FAILED/);
  }, 180_000);

  it('cost-by-user, error-rate, anomalies and query with --service / --env', () => {
    expect(both(['report', 'cost-by-user', '--service', 'shop', '--env', 'prod', ...PERIOD]).json.map((r) => [r.user_id, r.requests])).toEqual([
      ['alice', 2],
      ['bob', 3],
    ]);
    expect(both(['report', 'error-rate', '--now', '2026-03-10T00:00:00Z', '--env', 'staging', '--format', 'json']).json).toMatchObject([{ requests: 1, errors: 1 }]);
    both(['report', 'anomalies', '--now', '2026-03-10T00:00:00Z', '--service', 'crm', '--format', 'json']);
    expect(both(['query', '--service', 'shop', '--env', 'prod', '--format', 'json']).json).toHaveLength(6);
    expect(both(['query', '--action', 'auth.login', '--format', 'json']).json).toHaveLength(1);
  }, 120_000);
});
