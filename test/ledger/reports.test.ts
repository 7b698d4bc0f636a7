import { describe, expect, it } from 'vitest';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { queryRecords, scanRecords } from '../../src/ledger/query';
import type { LedgerRecord } from '../../src/ledger/record';
import { anomalies, costByUser, errorRate } from '../../src/ledger/reports';
import { makeRecord, tempDir } from './helpers';

// Hand-checked data set. Appended in timestamp order, each on its own UTC day's segment.
const DATA: Array<Partial<LedgerRecord>> = [
  // cost-by-user: 2026-03-01 alice 0.10 + 0.25 (latency 100, 300); bob unpriced (50); 2026-03-02 alice 0.05 (10)
  { timestamp: '2026-03-01T09:00:00.000Z', user_id: 'alice', cost_usd: 0.1, latency_ms: 100, input_tokens: 100 },
  { timestamp: '2026-03-01T10:00:00.000Z', user_id: 'alice', cost_usd: 0.25, latency_ms: 300, input_tokens: 110 },
  { timestamp: '2026-03-01T11:00:00.000Z', user_id: 'bob', cost_usd: null, latency_ms: 50, input_tokens: null },
  { timestamp: '2026-03-02T08:00:00.000Z', user_id: 'alice', cost_usd: 0.05, latency_ms: 10, input_tokens: 90 },
];

// anomalies (now = 2026-03-10T00:00Z): baseline [03-02, 03-09) = 100,110,90,100,105,95,100
// mean 100, squared deviations 0+100+100+0+25+25+0 = 250, population variance 250/7 = 35.714...,
// stddev 5.9761, threshold 100 + 3 x 5.9761 = 117.928. The 03-01 records are before the baseline.
const BASELINE = [
  ['2026-03-02T08:00:00.000Z', 90], // (the cost-by-user record above; listed for the hand computation)
  ['2026-03-03T08:00:00.000Z', 100],
  ['2026-03-04T08:00:00.000Z', 110],
  ['2026-03-05T08:00:00.000Z', 100],
  ['2026-03-06T08:00:00.000Z', 105],
  ['2026-03-07T08:00:00.000Z', 95],
  ['2026-03-08T23:59:59.999Z', 100],
] as const;
const RECENT: Array<Partial<LedgerRecord>> = [
  { timestamp: '2026-03-09T00:00:00.000Z', input_tokens: 117, request_id: 'r117', model: { request: 'm-a', response: null }, status: 'success' },
  { timestamp: '2026-03-09T01:00:00.000Z', input_tokens: 118, request_id: 'r118', model: { request: 'm-a', response: null }, status: 'error' },
  { timestamp: '2026-03-09T02:00:00.000Z', input_tokens: 500, request_id: 'r500', model: { request: 'm-a', response: null }, status: 'blocked' },
  { timestamp: '2026-03-09T03:00:00.000Z', input_tokens: null, request_id: 'rnull', model: { request: 'm-a', response: null }, status: 'error' },
  { timestamp: '2026-03-09T23:00:00.000Z', input_tokens: 100, request_id: 'r100', model: { request: 'm-b', response: 'm-b-1' }, status: 'success' },
  // An operation on the trail (llm-audit shred), not a call: in query, out of every report.
  { timestamp: '2026-03-09T23:30:00.000Z', input_tokens: null, request_id: 'shred', model: { request: null, response: null }, action: 'content.shred', tenant_id: 'acme', status: 'success' },
  // After `now`: ignored by both reports.
  { timestamp: '2026-03-10T00:00:00.000Z', input_tokens: 9999, request_id: 'late', model: { request: 'm-a', response: null }, status: 'error' },
];

async function dataset(): Promise<FileLedgerSource> {
  const dir = tempDir();
  let now = '2026-03-01T00:00:00.000Z';
  const ledger = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now) });
  const all: Array<Partial<LedgerRecord>> = [
    ...DATA,
    ...BASELINE.slice(1).map(([timestamp, input_tokens]) => ({ timestamp, input_tokens, user_id: 'carol', cost_usd: null })),
    ...RECENT.map((r) => ({ user_id: 'dave', cost_usd: null, ...r })),
  ];
  for (const r of all) {
    now = r.timestamp!;
    await ledger.append([makeRecord(r)]);
  }
  await ledger.close();
  return new FileLedgerSource(dir);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const records = (source: FileLedgerSource, from?: number, to?: number) => ({
  async *[Symbol.asyncIterator]() {
    for await (const hit of scanRecords(source, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) })) yield hit.record;
  },
});

describe('reports', () => {
  it('cost-by-user sums per user per UTC day', async () => {
    const source = await dataset();
    const report = await costByUser(records(source, Date.parse('2026-03-01T00:00Z'), Date.parse('2026-03-03T00:00Z')));
    expect(report.rows).toEqual([
      { day: '2026-03-01', user_id: 'alice', requests: 2, total_cost_usd: 0.35, unpriced_requests: 0, avg_latency_ms: 200 },
      { day: '2026-03-01', user_id: 'bob', requests: 1, total_cost_usd: null, unpriced_requests: 1, avg_latency_ms: 50 },
      { day: '2026-03-02', user_id: 'alice', requests: 1, total_cost_usd: 0.05, unpriced_requests: 0, avg_latency_ms: 10 },
    ]);
  });

  it('cost-by-user counts as unpriced only successful calls without a price (failed and blocked calls cost nothing)', async () => {
    const at = '2026-03-01T09:00:00.000Z';
    const rows = (await costByUser(
      (async function* () {
        yield makeRecord({ timestamp: at, user_id: 'carol', status: 'error', cost_usd: null });
        yield makeRecord({ timestamp: at, user_id: 'carol', status: 'blocked', cost_usd: null });
        yield makeRecord({ timestamp: at, user_id: 'carol', status: 'success', cost_usd: null });
        yield makeRecord({ timestamp: at, user_id: 'carol', status: 'success', cost_usd: 0.5 });
      })(),
    )).rows;
    expect(rows).toEqual([{ day: '2026-03-01', user_id: 'carol', requests: 4, total_cost_usd: 0.5, unpriced_requests: 1, avg_latency_ms: 120.5 }]);
  });

  it('anomalies flags calls above mean + 3 population stddev of the previous 7 days', async () => {
    const source = await dataset();
    const now = Date.parse('2026-03-10T00:00:00Z');
    const report = await anomalies(() => records(source), { now });
    expect(report.rows.map((r) => r.request_id)).toEqual(['r118', 'r500']);
    expect(report.rows[0]).toMatchObject({ baseline_calls: 7, baseline_mean: 100, baseline_stddev: 5.976, threshold: 117.928 });
    // Per-user baselines: dave has none before the window, so nothing is flagged for him.
    const byUser = await anomalies(() => records(source), { now, by: 'user' });
    expect(byUser.rows).toEqual([]);
    expect(byUser.notes.join()).toMatch(/user dave has fewer than 2 calls/);
  });

  it('anomalies asks for the baseline, then the window: neither pass reads the other period', async () => {
    const source = await dataset();
    const now = Date.parse('2026-03-10T00:00:00Z');
    const periods: Array<[number, number]> = [];
    const report = await anomalies((from, to) => {
      periods.push([from, to]);
      return records(source, from, to);
    }, { now });
    expect(report.rows.map((r) => r.request_id)).toEqual(['r118', 'r500']);
    const day = 86_400_000;
    expect(periods).toEqual([
      [now - 8 * day, now - day],
      [now - day, now],
    ]);
  });

  it('error-rate per model over the last 24 hours', async () => {
    const source = await dataset();
    const report = await errorRate(records(source), { now: Date.parse('2026-03-10T00:00:00Z') });
    expect(report.rows).toEqual([
      { model: 'm-a', response_models: null, requests: 4, errors: 2, blocked: 1, error_rate: 0.5 },
      { model: 'm-b', response_models: 'm-b-1', requests: 1, errors: 0, blocked: 0, error_rate: 0 },
    ]);
  });

  it('error-rate groups by the requested model: failed calls (no response model) count with the successes of their model', async () => {
    const at = '2026-03-09T12:00:00.000Z';
    const rows = (await errorRate(
      (async function* () {
        yield makeRecord({ timestamp: at, model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' }, status: 'success' });
        yield makeRecord({ timestamp: at, model: { request: 'gpt-4o', response: 'gpt-4o-2024-11-20' }, status: 'success' });
        yield makeRecord({ timestamp: at, model: { request: 'gpt-4o', response: null }, status: 'error' });
        yield makeRecord({ timestamp: at, model: { request: 'gpt-4o', response: null }, status: 'blocked' });
        // No requested model recorded: the response model is all there is.
        yield makeRecord({ timestamp: at, model: { request: null, response: 'm-x' }, status: 'success' });
      })(),
      { now: Date.parse('2026-03-10T00:00:00Z') },
    )).rows;
    expect(rows).toEqual([
      { model: 'gpt-4o', response_models: 'gpt-4o-2024-08-06, gpt-4o-2024-11-20', requests: 4, errors: 1, blocked: 1, error_rate: 0.25 },
      { model: 'm-x', response_models: 'm-x', requests: 1, errors: 0, blocked: 0, error_rate: 0 },
    ]);
  });

  it('query filters by time window, user, tenant, model, status and action', async () => {
    const source = await dataset();
    const ids = async (filter: Parameters<typeof queryRecords>[1]) =>
      (await collect(queryRecords(source, filter))).map((h) => h.record.request_id);
    expect(await ids({ from: Date.parse('2026-03-09T00:00Z'), to: Date.parse('2026-03-10T00:00Z'), status: 'error' })).toEqual([
      'r118',
      'rnull',
    ]);
    expect(await ids({ model: 'm-b-1' })).toEqual(['r100']);
    expect(await ids({ model: 'm-b' })).toEqual(['r100']);
    expect((await ids({ user: 'bob' })).length).toBe(1);
    expect(await ids({ action: 'content.shred' })).toEqual(['shred']);
    expect(await ids({ tenant: 'acme', from: Date.parse('2026-03-09T00:00Z') })).toEqual(['shred']);
  });
});
