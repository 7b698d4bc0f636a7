/**
 * The facts an evidence bundle states about one period of the ledger (bounded memory: one entry
 * per user, tenant, model, day, rule) and the full `verify` of the ledger. On the file ledger the
 * period's records are folded as verify reads them (verify reads every line anyway, so a second
 * pass would only repeat the reading); PostgreSQL aggregates them in SQL (postgres/reports.ts
 * facts), and both give the same facts. Every number in report.html and evidence.json comes from
 * here, so the two can never disagree; the requirement mappings (./frameworks.ts) only read them.
 */
import type { LedgerSource } from '../ledger/backend';
import { LedgerError, isLedgerError } from '../ledger/errors';
import { gapOf } from '../ledger/gap';
import { newestCheckpoint } from '../ledger/proofs';
import { matches, scanRecords, type QueryFilter } from '../ledger/query';
import { GAP_ACTION, isCallRecord, type LedgerRecord } from '../ledger/record';
import { reportBackend, reportModel } from '../ledger/reports';
import { verifyLedger, type VerifyOptions } from '../ledger/verify';
import type { Checkpoint } from '../ledger/checkpoint';

/** Sums of money are rounded to 1e-9 USD, as the reports do, to keep float noise out. */
export const money = (usd: number): number => Math.round(usd * 1e9) / 1e9;

export interface Totals {
  calls: number;
  errors: number;
  blocked: number;
  input_tokens: number;
  output_tokens: number;
  /** Sum of the priced calls' cost; null when none was priced. */
  cost_usd: number | null;
  /** Successful calls without a price (failed and blocked calls cost nothing and are not counted). */
  unpriced: number;
}

export interface EvidenceFacts {
  period: { from: string; to: string };
  ledger: {
    name: string;
    ledger_id: string | null;
    /** Result of verifying the whole ledger (not only the period): integrity is all or nothing. */
    verify: { ok: true; records: number; tree_size: number; removed_by_retention: number; signatures_verified: number; recovered: number; warnings: string[] } | { ok: false; code: string; message: string };
    /** The newest checkpoint (what the bundle's proofs are against). */
    checkpoint: { tree_size: number; timestamp: string; key_id: string | null; signed: boolean } | null;
    signed_with_given_key: boolean;
  };
  records: {
    /** LLM calls in the period, by `llm_audit.status`. */
    calls: number;
    by_status: Record<string, number>;
    /** Operations on the trail in the period (erasures, gaps, recoveries), by action. */
    operations: Record<string, number>;
    first: string | null;
    last: string | null;
    /** Calls whose input is referenced by a keyed hash (what EU AI Act Art. 12 calls the input reference). */
    with_input_hash: number;
    with_user: number;
  };
  totals: Totals;
  by_user: Array<{ user_id: string | null } & Totals>;
  by_tenant: Array<{ tenant_id: string | null } & Totals>;
  /** Grouped by provider and the requested model (a model's failures and successes in one row). */
  by_model: Array<{ provider: string | null; model: string | null } & Totals>;
  by_provider: Array<{ provider: string | null } & Totals>;
  /** By the application (resource `service.name`) and by its environment (`deployment.environment.name`). */
  by_service: Array<{ service_name: string | null } & Totals>;
  by_env: Array<{ deployment_environment: string | null } & Totals>;
  by_day: Array<{ day: string } & Totals>;
  guardrails: Array<{ rule: string; action: string; count: number }>;
  sanitization: { calls_with_findings: number; findings: number };
  error_types: Array<{ error_type: string; count: number }>;
  gaps: Array<{ timestamp: string; lost: number; first_failure: string; last_failure: string }>;
  erasures: Array<{ timestamp: string; tenant_id: string | null }>;
  retention: Array<{ applied_at: string; policy: Record<string, string | number | null>; removed_records: number; tree_size: number; signed: boolean }>;
}

/** The facts about the period's records: all but the ledger's integrity, checkpoint and retention. */
export type RecordFacts = Pick<
  EvidenceFacts,
  'records' | 'totals' | 'by_user' | 'by_tenant' | 'by_model' | 'by_provider' | 'by_service' | 'by_env' | 'by_day' | 'guardrails' | 'sanitization' | 'error_types' | 'gaps' | 'erasures'
>;

export interface FactsOptions {
  from: number;
  to: number;
  /** Only the records of that application / deployment environment (report --service / --env). */
  scope?: Pick<QueryFilter, 'service' | 'env'>;
  /** Verify the whole ledger with these options (evidence, report summary); `false`: the facts only, not verified (report usage). */
  verify?: VerifyOptions | false;
}

export const emptyTotals = (): Totals => ({ calls: 0, errors: 0, blocked: 0, input_tokens: 0, output_tokens: 0, cost_usd: null, unpriced: 0 });

function add(t: Totals, r: LedgerRecord): void {
  t.calls++;
  if (r.status === 'error') t.errors++;
  if (r.status === 'blocked') t.blocked++;
  t.input_tokens += r.input_tokens ?? 0;
  t.output_tokens += r.output_tokens ?? 0;
  if (typeof r.cost_usd === 'number') t.cost_usd = money((t.cost_usd ?? 0) + r.cost_usd);
  else if (r.status === 'success') t.unpriced++;
}

/** A Map of Totals by key, kept as rows with the key's fields. */
export class Grouped<K extends Record<string, string | null>> {
  private readonly rows = new Map<string, K & Totals>();
  add(key: K, r: LedgerRecord): void {
    const id = JSON.stringify(Object.values(key));
    let row = this.rows.get(id);
    if (!row) this.rows.set(id, (row = { ...key, ...emptyTotals() }));
    add(row, r);
  }
  /** A group summed elsewhere (in SQL), its cost rounded as add() rounds. */
  put(key: K, totals: Totals): void {
    this.rows.set(JSON.stringify(Object.values(key)), { ...key, ...totals, cost_usd: totals.cost_usd === null ? null : money(totals.cost_usd) });
  }
  /** Largest cost first (unpriced after priced), then most calls, then key order. */
  sorted(by: (row: K & Totals) => string = (row) => JSON.stringify(row)): Array<K & Totals> {
    return [...this.rows.values()].sort((a, b) => (b.cost_usd ?? -1) - (a.cost_usd ?? -1) || b.calls - a.calls || by(a).localeCompare(by(b)));
  }
  inOrder(by: (row: K & Totals) => string): Array<K & Totals> {
    return [...this.rows.values()].sort((a, b) => by(a).localeCompare(by(b)));
  }
}

/** The groups of RecordFacts, filled by the fold (file ledger) or from SQL rows (PostgreSQL). */
export class FactGroups {
  readonly users = new Grouped<{ user_id: string | null }>();
  readonly tenants = new Grouped<{ tenant_id: string | null }>();
  readonly models = new Grouped<{ provider: string | null; model: string | null }>();
  readonly providers = new Grouped<{ provider: string | null }>();
  readonly days = new Grouped<{ day: string }>();
  readonly services = new Grouped<{ service_name: string | null }>();
  readonly envs = new Grouped<{ deployment_environment: string | null }>();
  readonly rules = new Map<string, { rule: string; action: string; count: number }>();
  readonly errorTypes = new Map<string, number>();
  readonly facts: RecordFacts = {
    records: { calls: 0, by_status: {}, operations: {}, first: null, last: null, with_input_hash: 0, with_user: 0 },
    totals: emptyTotals(),
    by_user: [],
    by_tenant: [],
    by_model: [],
    by_provider: [],
    by_service: [],
    by_env: [],
    by_day: [],
    guardrails: [],
    sanitization: { calls_with_findings: 0, findings: 0 },
    error_types: [],
    gaps: [],
    erasures: [],
  };

  /** Counts an operation record (erasures, gaps...); `seq` for a gap's details. */
  operation(seq: number, r: LedgerRecord): void {
    const { facts } = this;
    if (r.action === GAP_ACTION) {
      const gap = gapOf({ seq, prev: '', record: r })!;
      facts.gaps.push({ timestamp: r.timestamp, lost: gap.lost, first_failure: gap.from, last_failure: gap.to });
    } else if (r.action === 'content.shred') {
      facts.erasures.push({ timestamp: r.timestamp, tenant_id: r.tenant_id });
    }
  }

  /** Counts a call's guardrail decisions. */
  guardrails(r: LedgerRecord): void {
    for (const g of r.guardrails ?? []) {
      const rule = String(g.name ?? g.rule ?? 'unnamed');
      const action = String(g.action ?? (r.status === 'blocked' ? 'block' : 'flag'));
      const key = JSON.stringify([rule, action]);
      const entry = this.rules.get(key) ?? { rule, action, count: 0 };
      entry.count++;
      this.rules.set(key, entry);
    }
  }

  /** Folds one record of the period (the file ledger's way: every record read). */
  fold(seq: number, r: LedgerRecord): void {
    const { facts } = this;
    if (facts.records.first === null || r.timestamp < facts.records.first) facts.records.first = r.timestamp;
    if (facts.records.last === null || r.timestamp > facts.records.last) facts.records.last = r.timestamp;
    if (!isCallRecord(r)) {
      const action = r.action ?? 'unknown';
      facts.records.operations[action] = (facts.records.operations[action] ?? 0) + 1;
      this.operation(seq, r);
      return;
    }
    facts.records.calls++;
    const status = r.status ?? 'unknown';
    facts.records.by_status[status] = (facts.records.by_status[status] ?? 0) + 1;
    if (r.input_hash) facts.records.with_input_hash++;
    if (r.user_id) facts.records.with_user++;
    add(facts.totals, r);
    this.users.add({ user_id: r.user_id }, r);
    this.tenants.add({ tenant_id: r.tenant_id }, r);
    this.models.add({ provider: r.provider, model: reportModel(r) }, r);
    this.providers.add({ provider: r.provider }, r);
    this.days.add({ day: r.timestamp.slice(0, 10) }, r);
    this.services.add({ service_name: r.service_name ?? null }, r);
    this.envs.add({ deployment_environment: r.deployment_environment ?? null }, r);
    this.guardrails(r);
    if ((r.sanitization_count ?? 0) > 0) {
      facts.sanitization.calls_with_findings++;
      facts.sanitization.findings += r.sanitization_count!;
    }
    if (r.status === 'error' || r.error_type) {
      const type = r.error_type ?? 'unknown';
      this.errorTypes.set(type, (this.errorTypes.get(type) ?? 0) + 1);
    }
  }

  /** The facts, the groups in their order. */
  done(): RecordFacts {
    const { facts } = this;
    facts.by_user = this.users.sorted((row) => row.user_id ?? '');
    facts.by_tenant = this.tenants.sorted((row) => row.tenant_id ?? '');
    facts.by_model = this.models.sorted((row) => `${row.provider}/${row.model}`);
    facts.by_provider = this.providers.sorted((row) => row.provider ?? '');
    facts.by_day = this.days.inOrder((row) => row.day);
    facts.by_service = this.services.sorted((row) => row.service_name ?? '');
    facts.by_env = this.envs.sorted((row) => row.deployment_environment ?? '');
    facts.guardrails = [...this.rules.values()].sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule));
    facts.error_types = [...this.errorTypes].map(([error_type, count]) => ({ error_type, count })).sort((a, b) => b.count - a.count || a.error_type.localeCompare(b.error_type));
    return facts;
  }
}

/** The facts of [from, to) from the scan: every record of the period read and folded (the file ledger). */
export async function scannedFacts(source: LedgerSource, from: number, to: number, kept?: (record: LedgerRecord) => boolean): Promise<RecordFacts> {
  const groups = new FactGroups();
  for await (const { seq, record } of scanRecords(source, { from, to })) if (kept === undefined || kept(record)) groups.fold(seq, record);
  return groups.done();
}

/** A ledger not verified by this command: said as such, never as a failure (report usage). */
export const NOT_VERIFIED = 'LEDGER_NOT_VERIFIED';

/**
 * The facts of the period and, unless `verify: false`, the result of verifying the whole ledger.
 * The file ledger folds the period's records in verify's own pass (verify reads every line anyway:
 * one pass, not two); PostgreSQL computes them in SQL (postgres/reports.ts facts) beside verify.
 */
export async function gatherFacts(source: LedgerSource, options: FactsOptions): Promise<EvidenceFacts> {
  await source.open();
  let checkpoint: Checkpoint | undefined;
  try {
    checkpoint = await newestCheckpoint(source);
  } catch (error) {
    // A tenant reader is shown no checkpoint (verify below says why); its facts are its records'.
    if (!(error instanceof LedgerError && (error.code === 'LEDGER_NOT_CHECKPOINTED' || error.code === 'LEDGER_PARTIAL_VIEW'))) throw error;
  }
  const checkpoints = (await source.partialView?.()) === undefined ? await source.checkpoints() : [];
  const retention = checkpoints
    .filter((c) => c.checkpoint.type === 'tombstone' && c.checkpoint.tombstone)
    .map((c) => ({
      applied_at: c.checkpoint.tombstone!.applied_at,
      policy: c.checkpoint.tombstone!.policy,
      removed_records: c.checkpoint.tombstone!.removed_segments.reduce((n, s) => n + s.records, 0),
      tree_size: c.checkpoint.tree_size,
      signed: c.checkpoint.signature !== null,
    }));

  const { from, to } = options;
  const backend = reportBackend(source, options.scope ?? {});
  const kept = options.scope?.service === undefined && options.scope?.env === undefined ? undefined : (r: LedgerRecord) => matches(r, options.scope!);
  let records: RecordFacts | undefined;
  let verify: EvidenceFacts['ledger']['verify'];
  if (options.verify === false) {
    verify = { ok: false, code: NOT_VERIFIED, message: 'not verified by this command (run `llm-audit verify`)' };
  } else {
    // The file ledger's records are folded as verify reads them; the backend that computes its own
    // (PostgreSQL) is asked after.
    const groups = source.reports === undefined ? new FactGroups() : undefined;
    const given = options.verify;
    try {
      const v = await verifyLedger(source, {
        ...(given ?? {}),
        ...(groups
          ? {
              onEntry: (accepted) => {
                given?.onEntry?.(accepted);
                const r = accepted.entry.record as LedgerRecord;
                const t = Date.parse(r.timestamp);
                if (t >= from && t < to && (kept === undefined || kept(r))) groups.fold(accepted.entry.seq, r);
              },
            }
          : {}),
      });
      verify = {
        ok: true,
        records: v.records,
        tree_size: v.treeSize,
        removed_by_retention: v.removed,
        signatures_verified: v.signaturesVerified,
        recovered: v.recovered.reduce((n, r) => n + r.to_seq - r.from_seq + 1, 0),
        warnings: v.warnings,
      };
      if (groups) records = groups.done();
    } catch (error) {
      // A ledger that fails verification still gets a bundle: saying so is the evidence.
      if (!isLedgerError(error)) throw error;
      verify = { ok: false, code: error.code, message: error.message.split('\n')[0]! };
    }
  }
  const facts = records ?? (await backend.facts(from, to));
  return {
    period: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    ledger: {
      name: source.name,
      ledger_id: await source.ledgerId(),
      verify,
      checkpoint: checkpoint ? { tree_size: checkpoint.tree_size, timestamp: checkpoint.timestamp, key_id: checkpoint.key_id, signed: checkpoint.signature !== null } : null,
      signed_with_given_key: withKey(options.verify) && verify.ok,
    },
    ...facts,
    retention,
  };
}

const withKey = (v: FactsOptions['verify']): boolean => v !== undefined && v !== false && v.publicKey !== undefined;
