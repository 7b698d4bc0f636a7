/**
 * Reports and queries on PostgreSQL are computed in the database (src/ledger/postgres/reports.ts);
 * on the file ledger by folding the records in JavaScript (src/ledger/reports.ts). One fixed data
 * set goes into both; every report and query must print the same bytes on both, and the numbers
 * are those of the hand computation below.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/ledger/file/ledger';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import type { LedgerRecord } from '../../src/ledger/record';
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

const NOW = '2026-03-10T00:00:00Z';
let n = 0;
const rec = (fields: Partial<LedgerRecord>): LedgerRecord => {
  n++;
  return makeRecord({ request_id: `r${n}`, span_id: n.toString(16).padStart(16, '0'), ...fields });
};

/**
 * Baseline 2026-03-02 .. 03-08: alice and bob each one call a day, 100 input tokens, 0.01 USD.
 * Window (the 24 h before NOW, 03-09): alice 5 calls (one of 400 input tokens, one costing 0.5 USD),
 * bob 2 failed calls of gpt-4o that no model answered (response model null), carol her first call,
 * and an erasure (an operation on the trail: in no report).
 */
function dataset(): LedgerRecord[] {
  const out: LedgerRecord[] = [];
  for (let d = 2; d <= 8; d++) {
    const day = `2026-03-0${d}`;
    out.push(rec({ timestamp: `${day}T09:00:00.000Z`, user_id: 'alice', tenant_id: 'acme', input_tokens: 100 + (d % 2) * 10, cost_usd: 0.01 }));
    out.push(rec({ timestamp: `${day}T10:00:00.000Z`, user_id: 'bob', tenant_id: 'acme', input_tokens: 100 - (d % 2) * 10, cost_usd: 0.01, model: { request: 'claude', response: 'claude-3' }, provider: 'anthropic' }));
  }
  const w = (h: number) => `2026-03-09T${String(h).padStart(2, '0')}:00:00.000Z`;
  out.push(rec({ timestamp: w(1), user_id: 'alice', tenant_id: 'acme', input_tokens: 105, cost_usd: 0.01 }));
  out.push(rec({ timestamp: w(2), user_id: 'alice', tenant_id: 'acme', input_tokens: 400, cost_usd: 0.02 }));
  out.push(rec({ timestamp: w(3), user_id: 'alice', tenant_id: 'acme', input_tokens: 100, cost_usd: 0.5 }));
  out.push(rec({ timestamp: w(4), user_id: 'alice', tenant_id: 'acme', input_tokens: 95, cost_usd: 0.01 }));
  out.push(rec({ timestamp: w(5), user_id: 'alice', tenant_id: 'acme', input_tokens: 100, cost_usd: null }));
  for (const h of [6, 7]) {
    out.push(rec({ timestamp: w(h), user_id: 'bob', tenant_id: 'acme', model: { request: 'gpt-4o', response: null }, status: 'error', error_type: '429', input_tokens: null, output_tokens: null, cost_usd: null }));
  }
  out.push(rec({ timestamp: w(8), user_id: 'carol', tenant_id: 'globex', input_tokens: 100, cost_usd: 0.01 }));
  out.push(
    rec({ timestamp: w(9), user_id: null, tenant_id: 'acme', action: 'content.shred', model: { request: null, response: null }, input_tokens: null, cost_usd: null, provider: null }),
  );
  return out;
}

describe('reports on PostgreSQL are computed in SQL and equal the file ledger', () => {
  let db: TestDatabase;
  let fileDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('rep');
    const data = dataset();
    const pg = await PostgresLedger.open({ url: db.url, checkpointEvery: 5 });
    await pg.append(data.slice(0, 9));
    await pg.append(data.slice(9));
    await pg.close();
    fileDir = join(scratchDir('repfile-'), 'ledger');
    const file = await FileLedger.open({ dir: fileDir, fsync: 'none', checkpointEvery: 5 });
    await file.append(data.slice(0, 9));
    await file.append(data.slice(9));
    await file.close();
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  const both = (args: string[]) => {
    const a = cli([...args, '--postgres', db.url]);
    const b = cli([...args, '--ledger', fileDir]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    // A CSV's first line states how the rows were computed, which differs by backend by design.
    const rows = (out: string): string => out.replace(/^"?# [^\n]*\n/, '');
    expect(rows(a.stdout), args.join(' ')).toBe(rows(b.stdout));
    return { json: a.stdout.startsWith('[') ? JSON.parse(a.stdout) : a.stdout, pgErr: a.stderr, fileErr: b.stderr };
  };

  it('error-rate groups by the requested model on both backends', () => {
    const { json } = both(['report', 'error-rate', '--now', NOW, '--format', 'json']);
    expect(json).toEqual([
      { model: 'gpt-4o', response_models: 'gpt-4o-2024-08-06', requests: 8, errors: 2, blocked: 0, error_rate: 0.25 },
    ]);
    const week = both(['report', 'error-rate', '--now', NOW, '--hours', '240', '--format', 'json']).json;
    expect(week).toEqual([
      { model: 'claude', response_models: 'claude-3', requests: 7, errors: 0, blocked: 0, error_rate: 0 },
      { model: 'gpt-4o', response_models: 'gpt-4o-2024-08-06', requests: 15, errors: 2, blocked: 0, error_rate: 0.133333 },
    ]);
  }, 60_000);

  it('cost-by-user, anomalies and query print the same on both backends', () => {
    const cost = both(['report', 'cost-by-user', '--from', '2026-03-08T00:00:00Z', '--format', 'json']).json;
    expect(cost).toEqual([
      { day: '2026-03-08', user_id: 'alice', requests: 1, total_cost_usd: 0.01, unpriced_requests: 0, avg_latency_ms: 120.5 },
      { day: '2026-03-08', user_id: 'bob', requests: 1, total_cost_usd: 0.01, unpriced_requests: 0, avg_latency_ms: 120.5 },
      { day: '2026-03-09', user_id: 'alice', requests: 5, total_cost_usd: 0.54, unpriced_requests: 1, avg_latency_ms: 120.5 },
      { day: '2026-03-09', user_id: 'bob', requests: 2, total_cost_usd: null, unpriced_requests: 0, avg_latency_ms: 120.5 },
      { day: '2026-03-09', user_id: 'carol', requests: 1, total_cost_usd: 0.01, unpriced_requests: 0, avg_latency_ms: 120.5 },
    ]);
    // Baseline: 14 calls, 8 × 100, 3 × 110, 3 × 90: mean 100, population stddev sqrt(600 / 14) = 6.5465,
    // threshold 119.640: the 400-token call.
    const anomalies = both(['report', 'anomalies', '--now', NOW, '--format', 'json']).json;
    expect(anomalies.map((r: { request_id: string }) => r.request_id)).toEqual(['r16']);
    expect(anomalies[0]).toMatchObject({ baseline_calls: 14, baseline_mean: 100, baseline_stddev: 6.547, threshold: 119.64 });
    for (const by of ['user', 'model']) both(['report', 'anomalies', '--now', NOW, '--by', by, '--format', 'json']);
    for (const format of ['json', 'csv', 'table']) {
      both(['query', '--user', 'alice', '--format', format]);
      both(['query', '--from', '2026-03-09T00:00:00Z', '--status', 'error', '--format', format]);
      both(['query', '--model', 'claude-3', '--to', '2026-03-05T00:00:00Z', '--format', format]);
    }
    expect(both(['query', '--user', 'alice', '--format', 'json']).json).toHaveLength(12);
    expect(both(['query', '--tenant', 'acme', '--action', 'content.shred', '--format', 'json']).json).toHaveLength(1);
  }, 180_000);

  it('anomalies on cost and call volume, and the per-user summary, equal the hand computation on both backends', () => {
    // Cost: 14 baseline calls of 0.01 USD, stddev 0, threshold 0.01: the 0.02 and 0.5 USD calls.
    const cost = both(['report', 'anomalies', '--now', NOW, '--metric', 'cost', '--format', 'json']).json;
    expect(cost.map((r: { request_id: string; cost_usd: number }) => [r.request_id, r.cost_usd])).toEqual([['r16', 0.02], ['r17', 0.5]]);
    expect(cost[0]).toMatchObject({ baseline_calls: 14, baseline_mean: 0.01, baseline_stddev: 0, threshold: 0.01 });
    // Volume: 2 calls on each of the 7 baseline days, 8 in the window.
    expect(both(['report', 'anomalies', '--now', NOW, '--metric', 'calls', '--format', 'json']).json).toEqual([
      { scope: 'all calls', window_calls: 8, baseline_periods: 7, baseline_mean: 2, baseline_stddev: 0, threshold: 2 },
    ]);
    // Per user: alice and bob called once a day, now 5 and 2 times; carol is new (noted, not flagged).
    const perUser = both(['report', 'anomalies', '--now', NOW, '--metric', 'calls', '--by', 'user', '--format', 'table']);
    expect(perUser.fileErr).toMatch(/user carol has no call in the baseline \(new\): not flagged/);
    expect(perUser.pgErr).toMatch(/user carol has no call in the baseline \(new\): not flagged/);
    expect(perUser.pgErr).toMatch(/computed in PostgreSQL .* not checked: hashes, signatures/);
    expect(perUser.fileErr).toMatch(/computed from the stored lines .* not checked: hashes and signatures/);
    // Summary, each user against their own baseline. alice: volume (5 > 1); input tokens 4 × 100 and
    // 3 × 110, mean 104.286, stddev 4.949, threshold 119.132: the 400-token call; cost: 0.02 and 0.5.
    expect(both(['report', 'anomalies', '--now', NOW, '--summary', '--format', 'json']).json).toEqual([
      { user_id: 'alice', anomalies: 4, window_calls: 5, calls_threshold: 1, volume_anomaly: 'yes', input_token_anomalies: 1, cost_anomalies: 2, window_cost_usd: 0.54 },
      { user_id: 'bob', anomalies: 1, window_calls: 2, calls_threshold: 1, volume_anomaly: 'yes', input_token_anomalies: 0, cost_anomalies: 0, window_cost_usd: null },
    ]);
    both(['report', 'anomalies', '--now', NOW, '--metric', 'cost', '--by', 'model', '--format', 'csv']);
    expect(cli(['report', 'anomalies', '--summary', '--by', 'model', '--ledger', fileDir]).code).toBe(2);
    expect(cli(['report', 'anomalies', '--metric', 'latency', '--ledger', fileDir]).stderr).toMatch(/--metric must be one of input_tokens, cost, calls/);
  }, 180_000);
});
