/**
 * Queries and reports on the PostgreSQL ledger, computed in the database: filters and aggregation
 * run in SQL on the indexed columns of `records` (rows.ts derives them from each line), and only
 * result rows cross the wire. The file ledger folds the same records in JavaScript (../reports.ts);
 * both hand their groups to the same formatting functions, so the two print the same rows.
 *
 * What this checks and what it does not. It checks that no record is missing among those the
 * report's partitions hold and up to the newest checkpoint (the same check the scan of the file
 * ledger makes; on a failure it falls back to that scan, which names the missing seqs). It does
 * not recompute hashes or signatures, nor that the indexed columns still say what the hashed
 * lines say (a change to a column alone, by someone who can disable the triggers): that is
 * `llm-audit verify`, which checks every row's columns against its line.
 *
 * Operation records (llm-audit's own) and application audit events, which no call report counts,
 * are told apart by the `kind` column (migration 8), which the database recomputes from the line
 * on every insert; --service / --env are conditions on their columns too. The guardrail,
 * sanitization and events reports, and the operation facts of evidence, read the lines of only the
 * rows that can count (their own columns say which), and fold them as the file ledger does.
 */
import type { StoredEntry } from '../backend';
import { latestTombstone } from '../chain';
import { LedgerError } from '../errors';
import { sqlColumns } from '../fields';
import { matches, scanRecords, type QueryFilter, type RecordHit } from '../query';
import { GAP_ACTION, type LedgerRecord, type RecordKind } from '../record';
import { FactGroups, Grouped, money, type RecordFacts, type Totals } from '../../evidence/facts';
import { countBaseline, thresholdOf, type AnomalyMetric, type AnomalyPlan, type CostGroup, type ErrorGroup, type MetricFindings, type PeriodRecords, type ReportBackend, type UsageColumn, type UsageRow } from '../reports';
import { SCHEMA } from './migrations';
import { pgText } from './rows';
import type { PostgresLedgerSource } from './source';

/** The indexed columns used here, from the field table (fields.ts). */
const F = sqlColumns(['action', 'cost_usd', 'deployment_environment', 'error_type', 'guardrail_count', 'has_input_hash', 'input_tokens', 'kind', 'latency_ms', 'model_request', 'model_response', 'output_tokens', 'provider', 'request_id', 'sanitization_count', 'sanitization_kind_count', 'service_name', 'session_id', 'status', 'tenant_id', 'timestamp', 'trace_id', 'user_id']);
const MODEL = `coalesce(${F.model_request}, ${F.model_response})`;
const COLUMN = { input_tokens: `${F.input_tokens}`, cost: `${F.cost_usd}` } as const;

/** WHERE text and parameters, built up condition by condition. */
class Where {
  private readonly parts: string[] = [];
  /**
   * `scope`: the --service / --env every call condition (calls()) adds; `params`: those of the
   * statement's text before this WHERE (numbering continues after them).
   */
  constructor(
    private readonly scope: Scope,
    readonly params: unknown[] = [],
  ) {}
  /** `$n` of a new parameter. */
  param(value: unknown): string {
    return `$${this.params.push(value)}`;
  }
  /** Adds the condition `sql`, each `$?` standing for the next of `values`. */
  add(sql: string, ...values: unknown[]): this {
    let text = sql;
    for (const v of values) text = text.replace('$?', this.param(v));
    this.parts.push(text);
    return this;
  }
  /** Records of one kind only (record.ts recordKind: calls leave out operation and event records). */
  kind(kind: RecordKind): this {
    return this.add(`${F.kind} = '${kind}'`);
  }
  calls(): this {
    return this.kind('call').only(this.scope);
  }
  /** --service / --env. */
  only(scope: Scope): this {
    if (scope.service !== undefined) this.add(`${F.service_name} = $?`, pgText(scope.service));
    if (scope.env !== undefined) this.add(`${F.deployment_environment} = $?`, pgText(scope.env));
    return this;
  }
  window(from: number | undefined, to: number | undefined): this {
    if (from !== undefined) this.add(`${F.timestamp} >= $?`, new Date(from));
    if (to !== undefined) this.add(`${F.timestamp} < $?`, new Date(to));
    return this;
  }
  get sql(): string {
    return this.parts.length > 0 ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}

/** --service / --env of a report: only the records of that application / deployment environment. */
export type Scope = Pick<QueryFilter, 'service' | 'env'>;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** The calls' Totals (evidence/facts.ts) of a group, as SQL aggregates, and read back. */
const TOTALS = `count(*) AS calls, count(*) FILTER (WHERE ${F.status} = 'error') AS errors, count(*) FILTER (WHERE ${F.status} = 'blocked') AS blocked,
  sum(${F.input_tokens}) AS input_tokens, sum(${F.output_tokens}) AS output_tokens, sum(${F.cost_usd}) AS cost, count(${F.cost_usd}) AS priced,
  count(*) FILTER (WHERE ${F.cost_usd} IS NULL AND ${F.status} = 'success') AS unpriced`;
function totalsOf(row: Record<string, unknown>): Totals {
  return {
    calls: num(row.calls),
    errors: num(row.errors),
    blocked: num(row.blocked),
    input_tokens: num(row.input_tokens),
    output_tokens: num(row.output_tokens),
    cost_usd: num(row.priced) > 0 ? Number(row.cost) : null,
    unpriced: num(row.unpriced),
  };
}
const DAY = `to_char(${F.timestamp} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
/** The SQL of each USAGE_VALUE (reports.ts). */
const USAGE_SQL: Record<UsageColumn, string> = {
  user_id: `${F.user_id}`,
  tenant_id: `${F.tenant_id}`,
  provider: `${F.provider}`,
  model: MODEL,
  day: DAY,
  service_name: `${F.service_name}`,
  deployment_environment: `${F.deployment_environment}`,
};

export class PostgresReports implements ReportBackend {
  readonly basis =
    'computed in PostgreSQL from the indexed columns of the records; checked: no record missing in what was read and up to the newest checkpoint; ' +
    'not checked: hashes, signatures, and that the columns match the hashed lines (run `llm-audit verify`)';

  constructor(
    private readonly source: PostgresLedgerSource,
    private readonly scope: Scope = {},
  ) {}

  private where(params?: unknown[]): Where {
    return new Where(this.scope, params);
  }

  private async rows<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
    return this.source.select<T>(sql, params, 'cannot compute the report');
  }

  /**
   * Refuses to report on a ledger with records missing, as the file ledger's scan does: among the
   * partitions of appends from `from`'s day on, the seqs must run without a hole, from the end of
   * what retention removed (without `from`) up to the newest checkpoint's size. Anything else is
   * left to the scan, which names the missing seqs (or finds that retention removed them). A tenant
   * reader, who sees only its tenants' rows, is not checked (the scan does not check it either).
   */
  async checkComplete(from: number | undefined): Promise<void> {
    if ((await this.source.partialView()) !== undefined) return;
    const day = from === undefined ? undefined : new Date(new Date(from).toISOString().slice(0, 10) + 'T00:00:00.000Z');
    const [row] = await this.rows<{ n: string; first: string | null; last: string | null }>(
      `SELECT count(*)::text AS n, min(seq)::text AS first, max(seq)::text AS last FROM ${SCHEMA}.records r ${day ? 'WHERE r.appended_at >= $1' : ''}`,
      day ? [day] : [],
    );
    const n = Number(row!.n);
    const checkpoints = await this.source.checkpoints();
    const size = Math.max(0, ...checkpoints.map((e) => e.checkpoint.tree_size));
    const removed = latestTombstone(checkpoints)?.checkpoint.tree_size ?? 0;
    const first = Number(row!.first);
    const last = Number(row!.last);
    const whole = n === 0 ? from !== undefined || size === removed : last - first + 1 === n && last >= size - 1 && (from !== undefined || first === removed);
    if (whole) return;
    // The scan throws LEDGER_RECORD_MISSING naming the seqs, after reading what is present.
    for await (const _ of scanRecords(this.source, from === undefined ? {} : { from })) void _;
  }

  async costByUser(from: number | undefined, to: number | undefined): Promise<CostGroup[]> {
    await this.checkComplete(from);
    const w = this.where().window(from, to).calls();
    const rows = await this.rows<Record<string, unknown>>(
      `SELECT to_char(${F.timestamp} AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, ${F.user_id}, count(*) AS requests,
              sum(${F.cost_usd}) AS cost, count(${F.cost_usd}) AS priced,
              count(*) FILTER (WHERE ${F.cost_usd} IS NULL AND ${F.status} = 'success') AS unpriced,
              sum(${F.latency_ms}) AS latency, count(${F.latency_ms}) AS timed
         FROM ${SCHEMA}.records r ${w.sql} GROUP BY 1, 2`,
      w.params,
    );
    return rows.map((g) => ({
      day: String(g.day),
      user_id: (g.user_id as string | null) ?? null,
      requests: num(g.requests),
      cost: num(g.cost),
      priced: num(g.priced),
      unpriced: num(g.unpriced),
      latency: num(g.latency),
      timed: num(g.timed),
    }));
  }

  async errorRate(windowStart: number, now: number): Promise<ErrorGroup[]> {
    await this.checkComplete(windowStart);
    const w = this.where().window(windowStart, now).calls();
    const rows = await this.rows<{ model: string | null; responses: string[] | null; requests: string; errors: string; blocked: string }>(
      `SELECT ${MODEL} AS model, array_agg(DISTINCT ${F.model_response}) FILTER (WHERE ${F.model_response} <> '') AS responses,
              count(*) AS requests, count(*) FILTER (WHERE ${F.status} = 'error') AS errors, count(*) FILTER (WHERE ${F.status} = 'blocked') AS blocked
         FROM ${SCHEMA}.records r ${w.sql} GROUP BY 1`,
      w.params,
    );
    return rows.map((g) => ({ model: g.model, response_models: g.responses ?? [], requests: num(g.requests), errors: num(g.errors), blocked: num(g.blocked) }));
  }

  async anomalies(plan: AnomalyPlan, metrics: readonly AnomalyMetric[]): Promise<MetricFindings[]> {
    await this.checkComplete(plan.baselineStart);
    const group = plan.by === 'user' ? `${F.user_id}` : plan.by === 'model' ? MODEL : `'*'`;
    const out: MetricFindings[] = [];
    for (const metric of metrics) {
      const f: MetricFindings = { metric, baselines: new Map(), window: new Map(), windowSum: new Map(), flagged: [] };
      out.push(f);
      if (metric === 'calls') {
        // Calls per group per period: the baseline's periods, then the window (period `periods`).
        const w = this.where();
        const period = `floor((extract(epoch FROM ${F.timestamp}) * 1000 - ${w.param(plan.baselineStart)}) / ${w.param(plan.windowMs)})::int`;
        w.window(plan.baselineStart, plan.now).calls();
        const rows = await this.rows<{ g: string | null; p: number; n: string }>(
          `SELECT ${group} AS g, ${period} AS p, count(*) AS n FROM ${SCHEMA}.records r ${w.sql} GROUP BY 1, 2`,
          w.params,
        );
        const counts = new Map<string | null, number[]>();
        for (const row of rows) {
          if (row.p >= plan.periods) {
            f.window.set(row.g, (f.window.get(row.g) ?? 0) + num(row.n));
            continue;
          }
          let c = counts.get(row.g);
          if (!c) counts.set(row.g, (c = new Array<number>(plan.periods).fill(0)));
          c[row.p] = num(row.n);
        }
        for (const [g, c] of counts) f.baselines.set(g, countBaseline(c));
        continue;
      }
      const column = COLUMN[metric];
      const base = this.where().window(plan.baselineStart, plan.windowStart).calls().add(`${column} IS NOT NULL`);
      const stats = `SELECT ${group} AS g, count(${column}) AS n, avg(${column}) AS mean, stddev_pop(${column}) AS sd FROM ${SCHEMA}.records r ${base.sql} GROUP BY 1`;
      for (const s of await this.rows<{ g: string | null; n: string; mean: number; sd: number }>(stats, base.params)) {
        f.baselines.set(s.g, { n: num(s.n), mean: Number(s.mean), stddev: Number(s.sd) });
      }
      const win = this.where().window(plan.windowStart, plan.now).calls().add(`${column} IS NOT NULL`);
      for (const s of await this.rows<{ g: string | null; n: string; sum: number }>(
        `SELECT ${group} AS g, count(*) AS n, sum(${column}) AS sum FROM ${SCHEMA}.records r ${win.sql} GROUP BY 1`,
        win.params,
      )) {
        f.window.set(s.g, num(s.n));
        f.windowSum.set(s.g, Number(s.sum));
      }
      // The flagged calls' lines only: the output shows their records as stored.
      const over = this.where([...base.params]).window(plan.windowStart, plan.now).calls();
      // Candidates a little below the threshold too: the rounded threshold (thresholdOf) decides, as on the file ledger.
      over.add(`s.n >= 2 AND ${column} > s.mean + $? * s.sd - 0.001`, plan.sigmas);
      const flagged = await this.rows<{ g: string | null; line: string }>(
        `WITH s AS (${stats}) SELECT s.g, r.line FROM ${SCHEMA}.records r JOIN s ON s.g IS NOT DISTINCT FROM ${group} ${over.sql} ORDER BY r.seq`,
        over.params,
      );
      for (const row of flagged) {
        const record = parseLine(row.line).record;
        const value = metric === 'cost' ? record.cost_usd : record.input_tokens;
        // The line's value decides (the column differs from it only if a row was altered).
        const b = f.baselines.get(row.g);
        if (typeof value === 'number' && b && value > thresholdOf(b, plan.sigmas, metric)) f.flagged.push({ record, value, group: row.g });
      }
    }
    return out;
  }

  /** `query`: the matching records in seq order, the filter in SQL (a page at a time), each line parsed. */
  async *query(filter: QueryFilter): AsyncGenerator<RecordHit> {
    await this.checkComplete(filter.from);
    const w = this.where().window(filter.from, filter.to).only(filter);
    if (filter.user !== undefined) w.add(`${F.user_id} = $?`, pgText(filter.user));
    if (filter.tenant !== undefined) w.add(`${F.tenant_id} = $?`, pgText(filter.tenant));
    if (filter.session !== undefined) w.add(`${F.session_id} = $?`, pgText(filter.session));
    if (filter.provider !== undefined) w.add(`${F.provider} = $?`, pgText(filter.provider));
    if (filter.requestId !== undefined) w.add(`${F.request_id} = $?`, pgText(filter.requestId));
    // Trace ids are written in lowercase hex; the filter matches without regard to case.
    if (filter.traceId !== undefined) w.add(`lower(${F.trace_id}) = $?`, pgText(filter.traceId.toLowerCase()));
    if (filter.status !== undefined) w.add(`${F.status} = $?`, pgText(filter.status));
    if (filter.model !== undefined) w.add(`(${F.model_request} = $? OR ${F.model_response} = $?)`, pgText(filter.model), pgText(filter.model));
    // A glob (`auth.*`) is left to matches(), which re-checks every hit.
    if (filter.action !== undefined && !filter.action.includes('*')) w.add(`${F.action} = $?`, pgText(filter.action));
    for await (const hit of this.lines(w)) {
      // The SQL filter found the row by its columns; the record as stored must match too.
      if (matches(hit.record, filter)) yield hit;
    }
  }

  /**
   * The records of [from, to) that the guardrail, sanitization or events report counts (the file
   * ledger reads every record of the period; here the columns say which can count): calls with a
   * guardrail decision or blocked, calls with sanitization findings, or the audit events.
   */
  async *periodRecords(from: number, to: number, which: PeriodRecords): AsyncGenerator<LedgerRecord> {
    await this.checkComplete(from);
    const w = this.where().window(from, to);
    if (which === 'events') w.kind('event').only(this.scope);
    else if (which === 'guardrails') w.calls().add(`(${F.guardrail_count} > 0 OR ${F.status} = 'blocked')`);
    else w.calls().add(`(${F.sanitization_count} > 0 OR ${F.sanitization_kind_count} > 0)`);
    for await (const hit of this.lines(w)) yield hit.record;
  }

  /**
   * The facts of [from, to) for evidence, `report usage` and `report summary`, aggregated in SQL:
   * the calls' totals for every grouping in one pass (GROUPING SETS), statuses, error types and the
   * counts of the other records by action; only the lines of operation records (gaps, erasures) and
   * of calls with guardrail decisions are read, and folded as the file ledger folds them.
   */
  async facts(from: number, to: number): Promise<RecordFacts> {
    await this.checkComplete(from);
    const groups = new FactGroups();
    const { facts } = groups;
    const calls = this.where().window(from, to).calls();
    const KEYS = [`${F.user_id}`, `${F.tenant_id}`, `${F.provider}`, MODEL, DAY, `${F.service_name}`, `${F.deployment_environment}`];
    const totals = await this.rows<Record<string, unknown>>(
      `SELECT GROUPING(${KEYS.join(', ')}) AS g, ${F.user_id}, ${F.tenant_id}, ${F.provider}, ${MODEL} AS model, ${DAY} AS day, ${F.service_name}, ${F.deployment_environment},
              ${TOTALS},
              count(*) FILTER (WHERE ${F.user_id} <> '') AS with_user,
              count(*) FILTER (WHERE ${F.has_input_hash}) AS with_input_hash,
              count(*) FILTER (WHERE ${F.sanitization_count} > 0) AS sanitized, sum(${F.sanitization_count}) FILTER (WHERE ${F.sanitization_count} > 0) AS findings
         FROM ${SCHEMA}.records r ${calls.sql}
        GROUP BY GROUPING SETS ((${F.user_id}), (${F.tenant_id}), (${F.provider}, ${MODEL}), (${F.provider}), (${DAY}), (${F.service_name}), (${F.deployment_environment}), ())`,
      calls.params,
    );
    // GROUPING(...) has a bit set, from the left, for each key a row is not grouped by.
    const only = (...keys: number[]) => (2 ** KEYS.length - 1) & ~keys.reduce((m, k) => m | (1 << (KEYS.length - 1 - k)), 0);
    for (const row of totals) {
      const t = totalsOf(row);
      const g = Number(row.g);
      if (g === only(0)) groups.users.put({ user_id: text(row.user_id) }, t);
      else if (g === only(1)) groups.tenants.put({ tenant_id: text(row.tenant_id) }, t);
      else if (g === only(2, 3)) groups.models.put({ provider: text(row.provider), model: text(row.model) }, t);
      else if (g === only(2)) groups.providers.put({ provider: text(row.provider) }, t);
      else if (g === only(4)) groups.days.put({ day: String(row.day) }, t);
      else if (g === only(5)) groups.services.put({ service_name: text(row.service_name) }, t);
      else if (g === only(6)) groups.envs.put({ deployment_environment: text(row.deployment_environment) }, t);
      else {
        facts.totals = { ...t, cost_usd: t.cost_usd === null ? null : money(t.cost_usd) };
        facts.records.calls = t.calls;
        facts.records.with_user = num(row.with_user);
        facts.records.with_input_hash = num(row.with_input_hash);
        facts.sanitization = { calls_with_findings: num(row.sanitized), findings: num(row.findings) };
      }
    }
    for (const row of await this.rows<{ status: string; n: string; errors: string | null; error_type: string | null }>(
      `SELECT coalesce(${F.status}, 'unknown') AS status, ${F.error_type}, count(*) AS n FROM ${SCHEMA}.records r ${calls.sql} GROUP BY 1, 2`,
      calls.params,
    )) {
      facts.records.by_status[row.status] = (facts.records.by_status[row.status] ?? 0) + num(row.n);
      // As the fold: a failed call, or any call naming an error type (an empty one is a type too).
      if (row.status === 'error' || (row.error_type !== null && row.error_type !== '')) {
        const type = row.error_type ?? 'unknown';
        groups.errorTypes.set(type, (groups.errorTypes.get(type) ?? 0) + num(row.n));
      }
    }
    // The other records: counted by action; first and last over every record of the period.
    const all = this.where().window(from, to).only(this.scope);
    const [span] = await this.rows<{ first: Date | null; last: Date | null }>(`SELECT min(${F.timestamp}) AS first, max(${F.timestamp}) AS last FROM ${SCHEMA}.records r ${all.sql}`, all.params);
    facts.records.first = span?.first ? span.first.toISOString() : null;
    facts.records.last = span?.last ? span.last.toISOString() : null;
    const others = this.where().window(from, to).only(this.scope).add(`${F.kind} <> 'call'`);
    for (const row of await this.rows<{ action: string; n: string }>(
      `SELECT coalesce(${F.action}, 'unknown') AS action, count(*) AS n FROM ${SCHEMA}.records r ${others.sql} GROUP BY 1 ORDER BY 1`,
      others.params,
    )) {
      facts.records.operations[row.action] = num(row.n);
    }
    for await (const hit of this.lines(this.where().window(from, to).kind('operation').only(this.scope).add(`${F.action} IN ('${GAP_ACTION}', 'content.shred')`))) {
      groups.operation(hit.seq, hit.record);
    }
    for await (const hit of this.lines(this.where().window(from, to).calls().add(`${F.guardrail_count} > 0`))) groups.guardrails(hit.record);
    return groups.done();
  }

  async usage(from: number, to: number, columns: readonly UsageColumn[]): Promise<UsageRow[]> {
    await this.checkComplete(from);
    const w = this.where().window(from, to).calls();
    const rows = await this.rows<Record<string, unknown>>(
      `SELECT ${columns.map((c) => `${USAGE_SQL[c]} AS ${c}`).join(', ')}, ${TOTALS}
         FROM ${SCHEMA}.records r ${w.sql} GROUP BY ${columns.map((_, i) => i + 1).join(', ')}`,
      w.params,
    );
    const groups = new Grouped<Record<string, string | null>>();
    for (const row of rows) groups.put(Object.fromEntries(columns.map((c) => [c, text(row[c])])), totalsOf(row));
    return groups.sorted();
  }

  /** The rows `w` selects in seq order, a page at a time, each line parsed (only these lines cross the wire). */
  private async *lines(w: Where): AsyncGenerator<RecordHit> {
    const after = w.param('-1');
    const PAGE = 2000;
    for (;;) {
      const rows = await this.rows<{ seq: string; line: string; file: string }>(
        `SELECT r.seq::text AS seq, r.line, p.relname::text AS file FROM ${SCHEMA}.records r JOIN pg_class p ON p.oid = r.tableoid
           ${w.sql ? `${w.sql} AND` : 'WHERE'} r.seq > ${after}::bigint ORDER BY r.seq LIMIT ${PAGE}`,
        w.params,
      );
      for (const row of rows) {
        const entry = parseLine(row.line);
        yield { seq: entry.seq, record: entry.record, location: { file: `${SCHEMA}.${row.file}`, line: 0, offset: Number(row.seq) } };
      }
      if (rows.length < PAGE) break;
      w.params[Number(after.slice(1)) - 1] = rows[rows.length - 1]!.seq;
    }
  }
}

function parseLine(line: string): StoredEntry<LedgerRecord> {
  try {
    return JSON.parse(line) as StoredEntry<LedgerRecord>;
  } catch {
    throw new LedgerError('LEDGER_RECORD_MALFORMED', 'a stored line is not valid JSON; run `llm-audit verify`');
  }
}
