/**
 * Reports over the ledger. Each has two halves: the groups (sums and counts), computed by a
 * {@link ReportBackend}, and the formatting of those groups into rows, shared. The file ledger's
 * backend ({@link scanBackend}) folds the record stream here in JavaScript; PostgreSQL's
 * (postgres/reports.ts) computes the same groups in SQL, so both print the same rows.
 */
import type { CallCells, LedgerSource } from './backend';
import { matches, scanRecords, queryRecordsByScan, type QueryFilter, type RecordHit, type ScanOptions } from './query';
import { Grouped, scannedFacts, type RecordFacts, type Totals } from '../evidence/facts';
import { isCallRecord, reportModel, type LedgerRecord } from './record';

export type Cell = string | number | null;
export interface Report {
  columns: string[];
  rows: Array<Record<string, Cell>>;
  notes: string[];
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export { reportModel };

/** Sums of money are rounded to 1e-9 USD to keep float noise out of the output. */
function money(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** One group of cost-by-user: sums, so the SQL backend can compute them in the database. */
export interface CostGroup {
  day: string;
  user_id: string | null;
  requests: number;
  cost: number;
  priced: number;
  unpriced: number;
  latency: number;
  timed: number;
}

/**
 * Per user per UTC day (of the record timestamp): requests, total cost (sum of known costs; null
 * when no request of the group was priced), unpriced requests (successful calls without a price),
 * average latency.
 */
export async function costByUser(records: AsyncIterable<LedgerRecord>): Promise<Report> {
  return costByUserReport(await costGroups(records));
}

/** A segment's call cells in a record stream, where its records would have been (scannedCalls). */
class CellsOf {
  constructor(readonly cells: CallCells) {}
}

/** Adds `value` (a sum begun in the same order, or the values themselves) to a sum, in order. */
function addUp(sum: number, value: number | number[]): number {
  if (typeof value === 'number') return sum + value;
  for (const v of value) sum += v;
  return sum;
}

async function costGroups(records: AsyncIterable<LedgerRecord | CellsOf>): Promise<CostGroup[]> {
  const groups = new Map<string, CostGroup>();
  const group = (day: string, user: string | null): CostGroup => {
    const key = JSON.stringify([day, user]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { day, user_id: user, requests: 0, cost: 0, priced: 0, unpriced: 0, latency: 0, timed: 0 }));
    return g;
  };
  for await (const r of records) {
    if (r instanceof CellsOf) {
      // In ledger order, where the segment's lines would have been: each sum gets the same terms in
      // the same order as from the lines (UserCell), so the same bits.
      for (const c of r.cells.users) {
        const g = group(c.day, c.user);
        g.requests += c.requests;
        g.cost = addUp(g.cost, c.cost);
        g.priced += c.priced;
        g.unpriced += c.unpriced;
        g.latency = addUp(g.latency, c.latency);
        g.timed += c.timed;
      }
      continue;
    }
    if (!isCallRecord(r)) continue;
    const g = group(r.timestamp.slice(0, 10), r.user_id);
    g.requests++;
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
  return [...groups.values()];
}

/** The cost-by-user report from its groups (whichever backend summed them). */
export function costByUserReport(groups: CostGroup[]): Report {
  const rows = groups
    .sort((a, b) => compareKeys(a.day, b.day) || compareKeys(a.user_id, b.user_id))
    .map((g) => ({
      day: g.day,
      user_id: g.user_id,
      requests: g.requests,
      total_cost_usd: g.priced > 0 ? money(g.cost) : null,
      unpriced_requests: g.unpriced,
      avg_latency_ms: g.timed > 0 ? round(g.latency / g.timed, 3) : null,
    }));
  return { columns: ['day', 'user_id', 'requests', 'total_cost_usd', 'unpriced_requests', 'avg_latency_ms'], rows, notes: [] };
}

export interface ErrorRateOptions {
  now: number;
  windowMs?: number;
}

/**
 * Per requested model ({@link reportModel}), calls in [now - window, now): requests, errors,
 * blocked, error rate, and the response models that answered (comma-separated, sorted; null when
 * none did).
 */
export async function errorRate(records: AsyncIterable<LedgerRecord>, options: ErrorRateOptions): Promise<Report> {
  const windowStart = options.now - (options.windowMs ?? 24 * HOUR_MS);
  return errorRateReport(await errorGroups(records, windowStart, options.now), windowStart, options.now);
}

/** One model's row of error-rate, before formatting. */
export interface ErrorGroup {
  model: string | null;
  response_models: string[];
  requests: number;
  errors: number;
  blocked: number;
}

/** The groups of the records of [windowStart, now) and of the call cells (all in the window: scannedCalls). */
async function errorGroups(records: AsyncIterable<LedgerRecord | CellsOf>, windowStart: number, now: number): Promise<ErrorGroup[]> {
  const groups = new Map<string | null, ErrorGroup & { responses: Set<string> }>();
  const group = (model: string | null) => {
    let g = groups.get(model);
    if (!g) groups.set(model, (g = { model, response_models: [], requests: 0, errors: 0, blocked: 0, responses: new Set() }));
    return g;
  };
  for await (const r of records) {
    if (r instanceof CellsOf) {
      for (const c of r.cells.models) {
        const g = group(c.model);
        g.requests += c.requests;
        g.errors += c.errors;
        g.blocked += c.blocked;
        for (const m of c.responses) g.responses.add(m);
      }
      continue;
    }
    const t = Date.parse(r.timestamp);
    if (!(t >= windowStart && t < now) || !isCallRecord(r)) continue;
    const g = group(reportModel(r));
    g.requests++;
    if (r.status === 'error') g.errors++;
    else if (r.status === 'blocked') g.blocked++;
    if (r.model?.response) g.responses.add(r.model.response);
  }
  return [...groups.values()].map(({ responses, ...g }) => ({ ...g, response_models: [...responses] }));
}

/** The error-rate report from its groups (shared with the SQL backend, which computes the groups in the database). */
export function errorRateReport(
  groups: ErrorGroup[],
  windowStart: number,
  now: number,
): Report {
  const rows = groups
    .sort((a, b) => compareKeys(a.model, b.model))
    .map((g) => ({
      model: g.model,
      response_models: g.response_models.length > 0 ? [...g.response_models].sort(compareKeys).join(', ') : null,
      requests: g.requests,
      errors: g.errors,
      blocked: g.blocked,
      error_rate: round(g.errors / g.requests, 6),
    }));
  return {
    columns: ['model', 'response_models', 'requests', 'errors', 'blocked', 'error_rate'],
    rows,
    notes: [`window ${new Date(windowStart).toISOString()} .. ${new Date(now).toISOString()}; grouped by the requested model`],
  };
}

/** Order of group keys: by UTF-16 code units (JavaScript string order; the SQL backend sorts its rows with this too), null as "". */
export function compareKeys(a: string | null, b: string | null): number {
  const x = a ?? '';
  const y = b ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What `report anomalies` looks at: a value of each call (input tokens, cost), or the number of calls. */
export const ANOMALY_METRICS = ['input_tokens', 'cost', 'calls'] as const;
export type AnomalyMetric = (typeof ANOMALY_METRICS)[number];
/** Per-call metrics and the record field (and output column) each reads. */
const CALL_FIELD = { input_tokens: 'input_tokens', cost: 'cost_usd' } as const;

export interface AnomalyOptions {
  now: number;
  /** Window of calls examined (default 24 h). */
  windowMs?: number;
  /** Baseline before the window (default 7 days; for `calls`, a whole number of windows). */
  baselineMs?: number;
  /** Standard deviations above the mean (default 3). */
  sigmas?: number;
  /** Separate baselines per user or per model (default: one baseline). */
  by?: 'none' | 'user' | 'model';
  /** What is compared with its baseline (default input_tokens). */
  metric?: AnomalyMetric;
}

/** The windows and parameters of an anomaly analysis, resolved from its options. */
export interface AnomalyPlan {
  now: number;
  windowMs: number;
  windowStart: number;
  baselineStart: number;
  /** Baseline periods of one window's length (`calls`). */
  periods: number;
  sigmas: number;
  by: 'none' | 'user' | 'model';
}

export function anomalyPlan(options: AnomalyOptions): AnomalyPlan {
  const windowMs = options.windowMs ?? 24 * HOUR_MS;
  const baselineMs = options.baselineMs ?? 7 * DAY_MS;
  const windowStart = options.now - windowMs;
  return {
    now: options.now,
    windowMs,
    windowStart,
    baselineStart: windowStart - baselineMs,
    periods: Math.floor(baselineMs / windowMs),
    sigmas: options.sigmas ?? 3,
    by: options.by ?? 'none',
  };
}

/** Baseline of one group: count, mean and population standard deviation. */
export interface Baseline {
  n: number;
  mean: number;
  stddev: number;
}

/** A call above its group's threshold (per-call metrics). */
export interface FlaggedCall {
  record: LedgerRecord;
  value: number;
  group: string | null;
}

/**
 * What one metric's analysis found, before formatting: per group, the baseline and the window's
 * count (calls with the value, or all calls for `calls`); the flagged calls in ledger order.
 * For `calls`, each baseline is over the periods' call counts (a period without calls counts 0),
 * and `baselineCalls` is the sum of those counts.
 */
export interface MetricFindings {
  metric: AnomalyMetric;
  baselines: Map<string | null, Baseline & { baselineCalls?: number }>;
  window: Map<string | null, number>;
  /** Per group, the sum of the window's values (per-call metrics). */
  windowSum: Map<string | null, number>;
  flagged: FlaggedCall[];
}

/** Group key of a record: its user, its requested model, or one group for all. */
export function anomalyGroup(record: LedgerRecord, by: AnomalyPlan['by']): string | null {
  return by === 'user' ? record.user_id : by === 'model' ? reportModel(record) : '*';
}

/** The baseline of a group's call counts per period (a period without calls counts 0). */
export function countBaseline(counts: readonly number[]): Baseline & { baselineCalls: number } {
  const w = welford();
  for (const x of counts) w.add(x);
  return { ...w.result(), baselineCalls: counts.reduce((a, b) => a + b, 0) };
}

/** Mean and population standard deviation (Welford's algorithm). */
function welford(): { add(x: number): void; result(): Baseline } {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  return {
    add(x: number) {
      n++;
      const delta = x - mean;
      mean += delta / n;
      m2 += delta * (x - mean);
    },
    result: () => ({ n, mean, stddev: n > 0 ? Math.sqrt(m2 / n) : 0 }),
  };
}

/**
 * The JavaScript analysis (file ledger): two passes over the records, memory O(groups × metrics +
 * flagged calls). Operation records (llm-audit's own) are left out. `open(from, to)` gives at
 * least the records of [from, to): the baseline first, then the window, so each pass reads only
 * its own days (reading the baseline's 7 days again for the window was half the report's time).
 */
export async function findAnomalies(open: (from: number, to: number) => AsyncIterable<LedgerRecord>, plan: AnomalyPlan, metrics: readonly AnomalyMetric[]): Promise<MetricFindings[]> {
  const values = new Map<AnomalyMetric, Map<string | null, ReturnType<typeof welford>>>();
  const counts = new Map<string | null, number[]>();
  for (const m of metrics) values.set(m, new Map());
  for await (const r of open(plan.baselineStart, plan.windowStart)) {
    const t = Date.parse(r.timestamp);
    if (!(t >= plan.baselineStart && t < plan.windowStart) || !isCallRecord(r)) continue;
    const group = anomalyGroup(r, plan.by);
    for (const m of metrics) {
      if (m === 'calls') {
        let c = counts.get(group);
        if (!c) counts.set(group, (c = new Array<number>(plan.periods).fill(0)));
        const period = Math.floor((t - plan.baselineStart) / plan.windowMs);
        if (period < plan.periods) c[period]!++;
        continue;
      }
      const v = r[CALL_FIELD[m]];
      if (typeof v !== 'number') continue;
      const stats = values.get(m)!;
      let w = stats.get(group);
      if (!w) stats.set(group, (w = welford()));
      w.add(v);
    }
  }
  const findings: MetricFindings[] = metrics.map((metric) => {
    const baselines = new Map<string | null, Baseline & { baselineCalls?: number }>();
    if (metric === 'calls') {
      for (const [group, c] of counts) baselines.set(group, countBaseline(c));
    } else {
      for (const [group, w] of values.get(metric)!) baselines.set(group, w.result());
    }
    return { metric, baselines, window: new Map(), windowSum: new Map(), flagged: [] };
  });
  for await (const r of open(plan.windowStart, plan.now)) {
    const t = Date.parse(r.timestamp);
    if (!(t >= plan.windowStart && t < plan.now) || !isCallRecord(r)) continue;
    const group = anomalyGroup(r, plan.by);
    for (const f of findings) {
      const v = f.metric === 'calls' ? undefined : r[CALL_FIELD[f.metric]];
      if (f.metric !== 'calls' && typeof v !== 'number') continue;
      f.window.set(group, (f.window.get(group) ?? 0) + 1);
      if (typeof v === 'number') f.windowSum.set(group, (f.windowSum.get(group) ?? 0) + v);
      const b = f.baselines.get(group);
      if (typeof v === 'number' && b && b.n >= 2 && v > thresholdOf(b, plan.sigmas, f.metric)) f.flagged.push({ record: r, value: v, group });
    }
  }
  return findings;
}

/**
 * mean + sigmas × stddev, rounded as the output shows it (9 decimals for USD, else 3): a call is
 * flagged when its value exceeds the threshold printed beside it. Rounding also keeps float noise
 * out (a sum in another order, in SQL) from deciding what is flagged.
 */
export function thresholdOf(b: Baseline, sigmas: number, metric: AnomalyMetric): number {
  return round(b.mean + sigmas * b.stddev, metric === 'cost' ? 9 : 3);
}

function describeGroup(by: AnomalyPlan['by'], group: string | null): string {
  return by === 'none' ? 'the baseline' : `${by} ${String(group)}`;
}

function windowNote(plan: AnomalyPlan): string {
  return (
    `window ${new Date(plan.windowStart).toISOString()} .. ${new Date(plan.now).toISOString()}, baseline from ${new Date(plan.baselineStart).toISOString()}, ` +
    `threshold mean + ${plan.sigmas} × population stddev` +
    (plan.by === 'none' ? '' : ` per ${plan.by}`)
  );
}

/** A `calls` group is flagged when its window count exceeds the threshold and it had calls in the baseline. */
function volumeFlagged(b: (Baseline & { baselineCalls?: number }) | undefined, calls: number, sigmas: number): boolean {
  return b !== undefined && (b.baselineCalls ?? 0) > 0 && calls > thresholdOf(b, sigmas, 'calls');
}

/**
 * `report anomalies --metric M`: for input_tokens and cost, the calls in [now - window, now) whose
 * value exceeds mean + sigmas × population standard deviation of the values of the calls in
 * [now - window - baseline, now - window), per group (a group with fewer than 2 baseline calls
 * flags nothing, noted); for calls, the groups whose number of calls in the window exceeds mean +
 * sigmas × standard deviation of their call counts in the baseline's periods of the window's
 * length (a group without a call in the baseline is new: noted, not flagged).
 */
export function anomalyReport(plan: AnomalyPlan, f: MetricFindings): Report {
  const notes = [windowNote(plan)];
  const rows: Array<Record<string, Cell>> = [];
  if (f.metric === 'calls') {
    const key = plan.by === 'user' ? 'user_id' : plan.by === 'model' ? 'model' : 'scope';
    notes[0] += `; calls counted per ${plan.windowMs / HOUR_MS} h over ${plan.periods} baseline periods`;
    for (const [group, calls] of [...f.window].sort(([a], [b]) => compareKeys(a, b))) {
      const b = f.baselines.get(group);
      if (!b || (b.baselineCalls ?? 0) === 0) {
        notes.push(`${describeGroup(plan.by, group)} has no call in the baseline (new): not flagged`);
        continue;
      }
      if (!volumeFlagged(b, calls, plan.sigmas)) continue;
      rows.push({
        [key]: plan.by === 'none' ? 'all calls' : group,
        window_calls: calls,
        baseline_periods: b.n,
        baseline_mean: round(b.mean, 3),
        baseline_stddev: round(b.stddev, 3),
        threshold: thresholdOf(b, plan.sigmas, 'calls'),
      });
    }
    return { columns: [key, 'window_calls', 'baseline_periods', 'baseline_mean', 'baseline_stddev', 'threshold'], rows, notes };
  }
  const column = CALL_FIELD[f.metric];
  for (const { record: r, value, group } of f.flagged) {
    const b = f.baselines.get(group)!;
    rows.push({
      timestamp: r.timestamp,
      request_id: r.request_id,
      user_id: r.user_id,
      model: reportModel(r),
      [column]: value,
      baseline_calls: b.n,
      baseline_mean: round(b.mean, f.metric === 'cost' ? 9 : 3),
      baseline_stddev: round(b.stddev, f.metric === 'cost' ? 9 : 3),
      threshold: thresholdOf(b, plan.sigmas, f.metric),
    });
  }
  for (const group of [...f.window.keys()].sort(compareKeys)) {
    if ((f.baselines.get(group)?.n ?? 0) < 2) notes.push(`${describeGroup(plan.by, group)} has fewer than 2 calls with ${f.metric === 'cost' ? 'a cost' : 'input tokens'}: nothing flagged`);
  }
  return { columns: ['timestamp', 'request_id', 'user_id', 'model', column, 'baseline_calls', 'baseline_mean', 'baseline_stddev', 'threshold'], rows, notes };
}

/**
 * `report anomalies --summary`: one row per user with at least one anomaly in the window, each
 * metric against the user's own baseline: calls (and whether the volume is anomalous), calls
 * flagged for input tokens, calls flagged for cost, the window's cost. Most anomalies first.
 */
export function anomalySummaryReport(plan: AnomalyPlan, findings: MetricFindings[]): Report {
  const of = (m: AnomalyMetric) => findings.find((f) => f.metric === m)!;
  const calls = of('calls');
  const flaggedBy = (m: AnomalyMetric) => {
    const out = new Map<string | null, number>();
    for (const c of of(m).flagged) out.set(c.group, (out.get(c.group) ?? 0) + 1);
    return out;
  };
  const tokens = flaggedBy('input_tokens');
  const cost = flaggedBy('cost');
  const windowCost = of('cost').windowSum;
  const rows: Array<Record<string, Cell> & { anomalies: number }> = [];
  for (const [user, n] of calls.window) {
    const b = calls.baselines.get(user);
    const volume = volumeFlagged(b, n, plan.sigmas);
    const anomalies = (volume ? 1 : 0) + (tokens.get(user) ?? 0) + (cost.get(user) ?? 0);
    if (anomalies === 0) continue;
    rows.push({
      user_id: user,
      anomalies,
      window_calls: n,
      calls_threshold: b && (b.baselineCalls ?? 0) > 0 ? thresholdOf(b, plan.sigmas, 'calls') : null,
      volume_anomaly: volume ? 'yes' : 'no',
      input_token_anomalies: tokens.get(user) ?? 0,
      cost_anomalies: cost.get(user) ?? 0,
      window_cost_usd: windowCost.has(user) ? money(windowCost.get(user)!) : null,
    });
  }
  rows.sort((a, b) => b.anomalies - a.anomalies || Number(b.window_calls) - Number(a.window_calls) || compareKeys(a.user_id as string | null, b.user_id as string | null));
  return {
    columns: ['user_id', 'anomalies', 'window_calls', 'calls_threshold', 'volume_anomaly', 'input_token_anomalies', 'cost_anomalies', 'window_cost_usd'],
    rows,
    notes: [`${windowNote(plan)}, for calls, input tokens and cost`, `${calls.window.size} users called in the window; ${rows.length} with an anomaly shown`],
  };
}

/** `report anomalies` (all options; `summary` for the per-user summary) from a backend's findings. */
export async function anomaliesWith(backend: ReportBackend, options: AnomalyOptions & { summary?: boolean }): Promise<Report> {
  if (options.summary) {
    const plan = anomalyPlan({ ...options, by: 'user' });
    return anomalySummaryReport(plan, await backend.anomalies(plan, ANOMALY_METRICS));
  }
  const plan = anomalyPlan(options);
  const [f] = await backend.anomalies(plan, [options.metric ?? 'input_tokens']);
  return anomalyReport(plan, f!);
}

/** `report anomalies` on a record stream (`open` is called for each pass, with its period). */
export async function anomalies(open: (from: number, to: number) => AsyncIterable<LedgerRecord>, options: AnomalyOptions & { summary?: boolean }): Promise<Report> {
  return anomaliesWith({ anomalies: (plan, metrics) => findAnomalies(open, plan, metrics) } as ReportBackend, options);
}

/**
 * Where a report's groups come from. Each method covers what its report needs and refuses, like
 * the scan, a ledger with records missing. `basis` says, for the output, what the numbers rest on
 * and what was not checked.
 */
export interface ReportBackend {
  readonly basis: string;
  costByUser(from: number | undefined, to: number | undefined): Promise<CostGroup[]>;
  errorRate(windowStart: number, now: number): Promise<ErrorGroup[]>;
  anomalies(plan: AnomalyPlan, metrics: readonly AnomalyMetric[]): Promise<MetricFindings[]>;
  query(filter: QueryFilter): AsyncIterable<RecordHit>;
  /** At least the records of [from, to) that the report `which` counts (the scan: every record of the period). */
  periodRecords(from: number, to: number, which: PeriodRecords): AsyncIterable<LedgerRecord>;
  /** The facts of the records of [from, to) (evidence, report usage and summary). */
  facts(from: number, to: number): Promise<RecordFacts>;
  /** `report usage --by a,b`: the calls' totals of [from, to) per combination of `columns`, highest cost first. */
  usage(from: number, to: number, columns: readonly UsageColumn[]): Promise<UsageRow[]>;
}

/** What `report usage --by` groups by, and each one's value in a record. */
export const USAGE_VALUE = {
  user_id: (r: LedgerRecord) => r.user_id,
  tenant_id: (r: LedgerRecord) => r.tenant_id,
  provider: (r: LedgerRecord) => r.provider,
  model: (r: LedgerRecord) => reportModel(r),
  day: (r: LedgerRecord) => r.timestamp.slice(0, 10),
  service_name: (r: LedgerRecord) => r.service_name ?? null,
  deployment_environment: (r: LedgerRecord) => r.deployment_environment ?? null,
} as const;
export type UsageColumn = keyof typeof USAGE_VALUE;
export type UsageRow = Record<string, string | null> & Totals;

async function usageGroups(records: AsyncIterable<LedgerRecord>, columns: readonly UsageColumn[]): Promise<UsageRow[]> {
  const groups = new Grouped<Record<string, string | null>>();
  for await (const r of records) if (isCallRecord(r)) groups.add(Object.fromEntries(columns.map((c) => [c, USAGE_VALUE[c](r)])), r);
  return groups.sorted();
}

/** The reports that count records from their lines (guardrail decisions, sanitization kinds, events). */
export type PeriodRecords = 'guardrails' | 'sanitization' | 'events';

/** The records of [from, to) (either open) as a stream, from the scan of `source`; only those `kept` accepts when given. */
export function scannedRecords(source: LedgerSource, from?: number, to?: number, kept?: (record: LedgerRecord) => boolean): AsyncIterable<LedgerRecord> {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const hit of scanRecords(source, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) })) {
        if (kept === undefined || kept(hit.record)) yield hit.record;
      }
    },
  };
}

/**
 * The records of [from, to) from the scan of `source`, with the call cells of the segments its
 * summaries cover whole in place of their records (source.ts wholeCells), in ledger order.
 */
function scannedCalls(source: LedgerSource, from: number | undefined, to: number | undefined, cells: 'users' | 'models'): AsyncIterable<LedgerRecord | CellsOf> {
  return {
    async *[Symbol.asyncIterator]() {
      const pending: CallCells[] = [];
      const scan: ScanOptions = { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), onCells: (c) => pending.push(c), cells };
      for await (const hit of scanRecords(source, scan)) {
        for (const c of pending.splice(0)) yield new CellsOf(c);
        yield hit.record;
      }
      for (const c of pending.splice(0)) yield new CellsOf(c);
    },
  };
}

/** The backend that reads every stored line of the period and folds it here (the file ledger). */
export function scanBackend(source: LedgerSource, kept?: (record: LedgerRecord) => boolean): ReportBackend {
  return {
    basis: 'computed from the stored lines (each parsed); not checked: hashes and signatures (run `llm-audit verify`)',
    // Call cells carry no service or environment: a scoped report reads the lines.
    costByUser: (from, to) => costGroups(kept ? scannedRecords(source, from, to, kept) : scannedCalls(source, from, to, 'users')),
    errorRate: (windowStart, now) => errorGroups(kept ? scannedRecords(source, windowStart, now, kept) : scannedCalls(source, windowStart, now, 'models'), windowStart, now),
    anomalies: (plan, metrics) => findAnomalies((from, to) => scannedRecords(source, from, to, kept), plan, metrics),
    query: (filter) => queryRecordsByScan(source, filter),
    periodRecords: (from, to) => scannedRecords(source, from, to, kept),
    facts: (from, to) => scannedFacts(source, from, to, kept),
    usage: (from, to, columns) => usageGroups(scannedRecords(source, from, to, kept), columns),
  };
}

/**
 * The backend of `source`: its own when it computes reports itself (PostgreSQL: --service / --env
 * in SQL too), else the scan, which keeps the records of `scope` only.
 */
export function reportBackend(source: LedgerSource, scope: Pick<QueryFilter, 'service' | 'env'> = {}): ReportBackend {
  const own = source.reports?.(scope);
  if (own) return own;
  return scanBackend(source, scope.service === undefined && scope.env === undefined ? undefined : (record) => matches(record, scope));
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
    return [...this.rows.values()].sort((a, b) => this.keys.reduce((d, k) => d || compareKeys(a[k] as string | null, b[k] as string | null), 0));
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

/**
 * Application audit events (records with `event`: logins, admin changes, consent, `app.*`, the
 * package's `audit.start`) counted per UTC day, type, outcome and user, in that order.
 */
export async function auditEvents(records: AsyncIterable<LedgerRecord>): Promise<Report> {
  const keys = ['day', 'type', 'outcome', 'user_id'];
  const tally = new Tally(keys, ['events']);
  for await (const r of records) {
    if (r.event === undefined || r.event === null) continue;
    tally.add({ day: r.timestamp.slice(0, 10), type: r.event.type, outcome: r.event.outcome, user_id: r.user_id }, { events: 1 });
  }
  return { columns: [...keys, 'events'], rows: tally.sorted(), notes: [] };
}
