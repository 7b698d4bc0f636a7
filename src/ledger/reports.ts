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

/** Compares report keys: text order, null (not recorded) last. */
function byKey(a: Cell, b: Cell): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return String(a).localeCompare(String(b));
}

/** Sums rows of counters under a key made of some of their fields, in key order. */
class Tally {
  private readonly rows = new Map<string, Record<string, Cell>>();
  constructor(
    private readonly keys: readonly string[],
    private readonly counters: readonly string[],
  ) {}
  add(key: Record<string, Cell>, counts: Record<string, number>): void {
    const id = JSON.stringify(this.keys.map((k) => key[k] ?? null));
    const row: Record<string, Cell> =
      this.rows.get(id) ?? Object.fromEntries([...this.keys.map((k) => [k, key[k] ?? null]), ...this.counters.map((c) => [c, 0])]);
    this.rows.set(id, row);
    for (const [c, n] of Object.entries(counts)) row[c] = (row[c] as number) + n;
  }
  sorted(): Array<Record<string, Cell>> {
    return [...this.rows.values()].sort((a, b) => this.keys.reduce((d, k) => d || byKey(a[k]!, b[k]!), 0));
  }
}

export const GUARDRAIL_BY = ['all', 'rule', 'user', 'day'] as const;
/** What a guardrail decided, in the columns of the guardrail report (`block`/`flag` are the short forms hand-written records use). */
const DECISIONS: Record<string, string> = { blocked: 'blocked', block: 'blocked', flagged: 'flagged', flag: 'flagged', modified: 'modified', allowed: 'allowed' };
const GUARDRAIL_COUNTS = ['blocked', 'flagged', 'modified', 'allowed'] as const;
/** The rule of a blocked call that holds no guardrail decision: blocked, but the record does not say by what. */
export const NO_RULE_RECORDED = '(no rule recorded)';

/**
 * `report guardrails`: guardrail decisions (blocked, flagged, modified, allowed) per day, rule and
 * user (`by` keeps one of them). One row per rule and policy id; a blocked call with no decision
 * recorded counts under NO_RULE_RECORDED, so every block is accounted for.
 */
export async function guardrailReport(records: AsyncIterable<LedgerRecord>, by: (typeof GUARDRAIL_BY)[number] = 'all'): Promise<Report> {
  const keys = by === 'all' ? ['day', 'rule', 'policy_id', 'user_id'] : by === 'rule' ? ['rule', 'policy_id'] : by === 'user' ? ['user_id'] : ['day'];
  const tally = new Tally(keys, GUARDRAIL_COUNTS);
  let unattributed = 0;
  let other = 0;
  for await (const r of records) {
    if (!isCallRecord(r)) continue;
    const decisions = r.guardrails ?? [];
    for (const g of decisions) {
      const decision = DECISIONS[String(g.action)];
      if (decision === undefined) {
        other++;
        continue;
      }
      const rule = typeof g.name === 'string' ? g.name : typeof g.rule === 'string' ? g.rule : 'unnamed';
      const policy = typeof g.policy_id === 'string' ? g.policy_id : null;
      tally.add({ day: r.timestamp.slice(0, 10), rule, policy_id: policy, user_id: r.user_id }, { [decision]: 1 });
    }
    if (r.status === 'blocked' && !decisions.some((g) => DECISIONS[String(g.action)] === 'blocked')) {
      unattributed++;
      tally.add({ day: r.timestamp.slice(0, 10), rule: NO_RULE_RECORDED, policy_id: null, user_id: r.user_id }, { blocked: 1 });
    }
  }
  const notes: string[] = [];
  if (unattributed > 0) notes.push(`${unattributed} blocked call(s) record no guardrail decision: counted as ${NO_RULE_RECORDED}`);
  if (other > 0) notes.push(`${other} decision(s) with an action other than blocked, flagged, modified or allowed are not counted`);
  return { columns: [...keys, ...GUARDRAIL_COUNTS], rows: tally.sorted(), notes };
}

export const SANITIZATION_BY = ['all', 'user', 'tenant', 'kind'] as const;
/** The kind of findings of records that hold only the total (record versions before the kinds). */
export const KINDS_NOT_RECORDED = '(total; kinds not recorded)';

/**
 * `report sanitization`: sensitive-data findings per tenant, user and kind (`by` keeps one of
 * them), with the calls they were found in. A record that holds only the total count is counted
 * under KINDS_NOT_RECORDED, and a note says how many, so the totals are complete either way.
 */
export async function sanitizationReport(
  records: AsyncIterable<LedgerRecord>,
  kindsOf: (r: LedgerRecord) => Record<string, number> | null,
  by: (typeof SANITIZATION_BY)[number] = 'all',
): Promise<Report> {
  const keys = by === 'all' ? ['tenant_id', 'user_id', 'kind'] : by === 'user' ? ['user_id', 'kind'] : by === 'tenant' ? ['tenant_id', 'kind'] : ['kind'];
  const tally = new Tally(keys, ['calls', 'findings']);
  let totalsOnly = 0;
  for await (const r of records) {
    if (!isCallRecord(r)) continue;
    const kinds = kindsOf(r);
    const total = typeof r.sanitization_count === 'number' ? r.sanitization_count : 0;
    if (kinds === null && total <= 0) continue;
    if (kinds === null) totalsOnly++;
    for (const [kind, findings] of Object.entries(kinds ?? { [KINDS_NOT_RECORDED]: total })) {
      tally.add({ tenant_id: r.tenant_id, user_id: r.user_id, kind }, { calls: 1, findings });
    }
  }
  const notes = totalsOnly > 0 ? [`${totalsOnly} call(s) record only the number of findings, not their kinds (records written before the kinds were recorded): counted as ${KINDS_NOT_RECORDED}`] : [];
  return { columns: [...keys, 'calls', 'findings'], rows: tally.sorted(), notes };
}
