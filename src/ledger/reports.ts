/**
 * Reports over the ledger. Each is a pure fold over a record stream (so a database backend can
 * feed the same functions), returning rows; the CLI formats them.
 */
import { isCallRecord, modelOf, type LedgerRecord } from './record';

export type Cell = string | number | null;
export interface Report {
  columns: string[];
  rows: Array<Record<string, Cell>>;
  notes: string[];
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Sums of money are rounded to 1e-9 USD to keep float noise out of the output. */
function money(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Per user per UTC day (of the record timestamp): requests, total cost (sum of known costs; null
 * when no request of the group was priced), unpriced requests (successful calls without a price),
 * average latency.
 */
export async function costByUser(records: AsyncIterable<LedgerRecord>): Promise<Report> {
  const groups = new Map<string, { day: string; user: string | null; n: number; cost: number; priced: number; unpriced: number; latency: number; timed: number }>();
  for await (const r of records) {
    if (!isCallRecord(r)) continue;
    const day = r.timestamp.slice(0, 10);
    const key = JSON.stringify([day, r.user_id]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { day, user: r.user_id, n: 0, cost: 0, priced: 0, unpriced: 0, latency: 0, timed: 0 }));
    g.n++;
    if (r.cost_usd !== null && r.cost_usd !== undefined) {
      g.cost += r.cost_usd;
      g.priced++;
    } else if (r.status === 'success') {
      // Failed and blocked calls cost nothing: only an answered call without a price is a gap in the costs.
      g.unpriced++;
    }
    if (r.latency_ms !== null && r.latency_ms !== undefined) {
      g.latency += r.latency_ms;
      g.timed++;
    }
  }
  const rows = [...groups.values()]
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : (a.user ?? '') < (b.user ?? '') ? -1 : (a.user ?? '') > (b.user ?? '') ? 1 : 0))
    .map((g) => ({
      day: g.day,
      user_id: g.user,
      requests: g.n,
      total_cost_usd: g.priced > 0 ? money(g.cost) : null,
      unpriced_requests: g.unpriced,
      avg_latency_ms: g.timed > 0 ? round(g.latency / g.timed, 3) : null,
    }));
  return { columns: ['day', 'user_id', 'requests', 'total_cost_usd', 'unpriced_requests', 'avg_latency_ms'], rows, notes: [] };
}

export interface AnomalyOptions {
  now: number;
  /** Window of calls examined (default 24 h). */
  windowMs?: number;
  /** Baseline before the window (default 7 days). */
  baselineMs?: number;
  /** Standard deviations above the mean (default 3). */
  sigmas?: number;
  /** Separate baselines per user or per model (default: one baseline). */
  by?: 'none' | 'user' | 'model';
}

/**
 * Calls in [now - window, now) whose input tokens exceed mean + sigmas × standard deviation of the
 * input tokens of the calls in [now - window - baseline, now - window). Population standard
 * deviation (divide by n), computed with Welford's algorithm. Calls without input tokens are
 * ignored; a group with fewer than 2 baseline calls flags nothing (noted). Two passes over the
 * records (`open` is called twice), O(groups) memory.
 */
export async function anomalies(open: () => AsyncIterable<LedgerRecord>, options: AnomalyOptions): Promise<Report> {
  const windowMs = options.windowMs ?? 24 * HOUR_MS;
  const baselineMs = options.baselineMs ?? 7 * DAY_MS;
  const sigmas = options.sigmas ?? 3;
  const by = options.by ?? 'none';
  const windowStart = options.now - windowMs;
  const baselineStart = windowStart - baselineMs;
  const groupOf = (r: LedgerRecord): string => (by === 'user' ? String(r.user_id) : by === 'model' ? String(modelOf(r)) : '*');

  const stats = new Map<string, { n: number; mean: number; m2: number }>();
  for await (const r of open()) {
    const t = Date.parse(r.timestamp);
    if (!(t >= baselineStart && t < windowStart) || typeof r.input_tokens !== 'number') continue;
    const key = groupOf(r);
    let s = stats.get(key);
    if (!s) stats.set(key, (s = { n: 0, mean: 0, m2: 0 }));
    s.n++;
    const delta = r.input_tokens - s.mean;
    s.mean += delta / s.n;
    s.m2 += delta * (r.input_tokens - s.mean);
  }
  const rows: Array<Record<string, Cell>> = [];
  const thin = new Set<string>();
  for await (const r of open()) {
    const t = Date.parse(r.timestamp);
    if (!(t >= windowStart && t < options.now) || typeof r.input_tokens !== 'number') continue;
    const key = groupOf(r);
    const s = stats.get(key);
    if (!s || s.n < 2) {
      thin.add(key);
      continue;
    }
    const std = Math.sqrt(s.m2 / s.n);
    const threshold = s.mean + sigmas * std;
    if (r.input_tokens > threshold) {
      rows.push({
        timestamp: r.timestamp,
        request_id: r.request_id,
        user_id: r.user_id,
        model: modelOf(r),
        input_tokens: r.input_tokens,
        baseline_calls: s.n,
        baseline_mean: round(s.mean, 3),
        baseline_stddev: round(std, 3),
        threshold: round(threshold, 3),
      });
    }
  }
  const notes = [
    `window ${new Date(windowStart).toISOString()} .. ${new Date(options.now).toISOString()}, baseline from ${new Date(baselineStart).toISOString()}, threshold mean + ${sigmas} × population stddev` +
      (by === 'none' ? '' : ` per ${by}`),
  ];
  for (const key of thin) notes.push(`${by === 'none' ? 'the baseline' : `${by} ${key}`} has fewer than 2 calls with input tokens: nothing flagged`);
  return {
    columns: ['timestamp', 'request_id', 'user_id', 'model', 'input_tokens', 'baseline_calls', 'baseline_mean', 'baseline_stddev', 'threshold'],
    rows,
    notes,
  };
}

export interface ErrorRateOptions {
  now: number;
  windowMs?: number;
}

/** Per model (response model, else requested), calls in [now - window, now): requests, errors, blocked, error rate. */
export async function errorRate(records: AsyncIterable<LedgerRecord>, options: ErrorRateOptions): Promise<Report> {
  const windowStart = options.now - (options.windowMs ?? 24 * HOUR_MS);
  const groups = new Map<string | null, { n: number; errors: number; blocked: number }>();
  for await (const r of records) {
    const t = Date.parse(r.timestamp);
    if (!(t >= windowStart && t < options.now) || !isCallRecord(r)) continue;
    const model = modelOf(r);
    let g = groups.get(model);
    if (!g) groups.set(model, (g = { n: 0, errors: 0, blocked: 0 }));
    g.n++;
    if (r.status === 'error') g.errors++;
    else if (r.status === 'blocked') g.blocked++;
  }
  const rows = [...groups.entries()]
    .sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0))
    .map(([model, g]) => ({ model, requests: g.n, errors: g.errors, blocked: g.blocked, error_rate: round(g.errors / g.n, 6) }));
  return {
    columns: ['model', 'requests', 'errors', 'blocked', 'error_rate'],
    rows,
    notes: [`window ${new Date(windowStart).toISOString()} .. ${new Date(options.now).toISOString()}`],
  };
}

/**
 * Application audit events (records with `event`: logins, admin changes, consent, `app.*`, the
 * package's `audit.start`) counted per UTC day, type, outcome and user, in that order.
 */
export async function auditEvents(records: AsyncIterable<LedgerRecord>): Promise<Report> {
  const groups = new Map<string, { day: string; type: string; outcome: string | null; user_id: string | null; events: number }>();
  for await (const r of records) {
    if (r.event === undefined || r.event === null) continue;
    const row = { day: r.timestamp.slice(0, 10), type: r.event.type, outcome: r.event.outcome, user_id: r.user_id };
    const key = JSON.stringify(Object.values(row));
    const g = groups.get(key);
    if (g) g.events++;
    else groups.set(key, { ...row, events: 1 });
  }
  const text = (v: string | null): string => v ?? '';
  const rows = [...groups.values()].sort(
    (a, b) => a.day.localeCompare(b.day) || a.type.localeCompare(b.type) || text(a.outcome).localeCompare(text(b.outcome)) || text(a.user_id).localeCompare(text(b.user_id)),
  );
  return { columns: ['day', 'type', 'outcome', 'user_id', 'events'], rows, notes: [] };
}
