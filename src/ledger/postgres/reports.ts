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
 * Operation records (llm-audit's own, which no report counts) are told apart without parsing the
 * line: a stored line is canonical JSON (verify checks it), so it starts with `{"prev":"<64 hex>",
 * "record":{"action":` (members sorted: `action` is the record's first), then the action's JSON.
 */
import type { StoredEntry } from '../backend';
import { latestTombstone } from '../chain';
import { LedgerError } from '../errors';
import { sqlColumns } from '../fields';
import { matches, scanRecords, type QueryFilter, type RecordHit } from '../query';
import { OPERATION_ACTIONS, type LedgerRecord } from '../record';
import { countBaseline, thresholdOf, type AnomalyMetric, type AnomalyPlan, type CostGroup, type ErrorGroup, type MetricFindings, type ReportBackend } from '../reports';
import { SCHEMA } from './migrations';
import { pgText } from './rows';
import type { PostgresLedgerSource } from './source';

/** LIKE patterns of a line whose record's action is `action` (JSON null for null): more members follow, or none. */
function actionPatterns(action: string | null): string[] {
  const json = JSON.stringify(action).replace(/[\\%_]/g, (c) => `\\${c}`);
  const head = `{"prev":"${'_'.repeat(64)}","record":{"action":${json}`;
  return [`${head},%`, `${head}}%`];
}
const OPERATION_PATTERNS = [...OPERATION_ACTIONS].flatMap(actionPatterns);
/** The indexed columns used here, from the field table (fields.ts). */
const F = sqlColumns(['cost_usd', 'deployment_environment', 'input_tokens', 'latency_ms', 'model_request', 'model_response', 'provider', 'request_id', 'service_name', 'session_id', 'status', 'tenant_id', 'timestamp', 'trace_id', 'user_id']);
/** reports.ts reportModel: the requested model, else the response model. */
const MODEL = `coalesce(${F.model_request}, ${F.model_response})`;
const COLUMN = { input_tokens: F.input_tokens, cost: F.cost_usd } as const;

/** WHERE text and parameters, built up condition by condition. */
class Where {
  private readonly parts: string[] = [];
  /** `params`: those of the statement's text before this WHERE (numbering continues after them). */
  constructor(readonly params: unknown[] = []) {}
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
  /**
   * Calls only: no operation record, no audit event (isCallRecord). An event record is the only
   * one with an `event` member, whose value is an object: unescaped `"event":{` in a canonical line
   * can be nothing else (every other object member's keys are fixed names or scalars' names).
   */
  calls(): this {
    return this.add('NOT (r.line LIKE ANY ($?::text[]))', OPERATION_PATTERNS).add(`r.line NOT LIKE '%"event":{%'`);
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

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

export class PostgresReports implements ReportBackend {
  readonly basis =
    'computed in PostgreSQL from the indexed columns of the records; checked: no record missing in what was read and up to the newest checkpoint; ' +
    'not checked: hashes, signatures, and that the columns match the hashed lines (run `llm-audit verify`)';

  constructor(private readonly source: PostgresLedgerSource) {}

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
    const w = new Where().window(from, to).calls();
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
    const w = new Where().window(windowStart, now).calls();
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
    const group = plan.by === 'user' ? F.user_id : plan.by === 'model' ? MODEL : `'*'`;
    const out: MetricFindings[] = [];
    for (const metric of metrics) {
      const f: MetricFindings = { metric, baselines: new Map(), window: new Map(), windowSum: new Map(), flagged: [] };
      out.push(f);
      if (metric === 'calls') {
        // Calls per group per period: the baseline's periods, then the window (period `periods`).
        const w = new Where();
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
      const base = new Where().window(plan.baselineStart, plan.windowStart).calls().add(`${column} IS NOT NULL`);
      const stats = `SELECT ${group} AS g, count(${column}) AS n, avg(${column}) AS mean, stddev_pop(${column}) AS sd FROM ${SCHEMA}.records r ${base.sql} GROUP BY 1`;
      for (const s of await this.rows<{ g: string | null; n: string; mean: number; sd: number }>(stats, base.params)) {
        f.baselines.set(s.g, { n: num(s.n), mean: Number(s.mean), stddev: Number(s.sd) });
      }
      const win = new Where().window(plan.windowStart, plan.now).calls().add(`${column} IS NOT NULL`);
      for (const s of await this.rows<{ g: string | null; n: string; sum: number }>(
        `SELECT ${group} AS g, count(*) AS n, sum(${column}) AS sum FROM ${SCHEMA}.records r ${win.sql} GROUP BY 1`,
        win.params,
      )) {
        f.window.set(s.g, num(s.n));
        f.windowSum.set(s.g, Number(s.sum));
      }
      // The flagged calls' lines only: the output shows their records as stored.
      const over = new Where([...base.params]).window(plan.windowStart, plan.now).calls();
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
    const w = new Where().window(filter.from, filter.to);
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
    if (filter.action !== undefined && !filter.action.includes('*')) w.add('r.line LIKE ANY ($?::text[])', actionPatterns(filter.action));
    if (filter.service !== undefined) w.add(`${F.service_name} = $?`, pgText(filter.service));
    if (filter.env !== undefined) w.add(`${F.deployment_environment} = $?`, pgText(filter.env));
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
        // The SQL filter found the row by its columns; the record as stored must match too.
        if (matches(entry.record, filter)) yield { seq: entry.seq, record: entry.record, location: { file: `${SCHEMA}.${row.file}`, line: 0, offset: Number(row.seq) } };
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
