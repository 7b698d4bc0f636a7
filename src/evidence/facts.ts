/**
 * The facts an evidence bundle states about one period of the ledger, gathered in one streaming
 * pass (bounded memory: one entry per user, tenant, model, day, rule): the full `verify` of the
 * ledger, which folds the period's records as it reads them (on both backends: verify reads every
 * line anyway, so a second pass would only repeat the reading). Every number in report.html and evidence.json comes from here,
 * so the two can never disagree; the requirement mappings (./frameworks.ts) only read them.
 */
import type { LedgerSource } from '../ledger/backend';
import { LedgerError, isLedgerError } from '../ledger/errors';
import { gapOf } from '../ledger/gap';
import { newestCheckpoint } from '../ledger/proofs';
import { scanRecords } from '../ledger/query';
import { GAP_ACTION, isCallRecord, type LedgerRecord } from '../ledger/record';
import { reportModel } from '../ledger/reports';
import { verifyLedger, type VerifyOptions } from '../ledger/verify';
import type { Checkpoint } from '../ledger/checkpoint';

/** Sums of money are rounded to 1e-9 USD, as the reports do, to keep float noise out. */
const money = (usd: number): number => Math.round(usd * 1e9) / 1e9;

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
  by_day: Array<{ day: string } & Totals>;
  guardrails: Array<{ rule: string; action: string; count: number }>;
  sanitization: { calls_with_findings: number; findings: number };
  error_types: Array<{ error_type: string; count: number }>;
  gaps: Array<{ timestamp: string; lost: number; first_failure: string; last_failure: string }>;
  erasures: Array<{ timestamp: string; tenant_id: string | null }>;
  retention: Array<{ applied_at: string; policy: Record<string, string | number | null>; removed_records: number; tree_size: number; signed: boolean }>;
}

export interface FactsOptions {
  from: number;
  to: number;
  verify?: VerifyOptions;
}

const emptyTotals = (): Totals => ({ calls: 0, errors: 0, blocked: 0, input_tokens: 0, output_tokens: 0, cost_usd: null, unpriced: 0 });

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
class Grouped<K extends Record<string, string | null>> {
  private readonly rows = new Map<string, K & Totals>();
  add(key: K, r: LedgerRecord): void {
    const id = JSON.stringify(Object.values(key));
    let row = this.rows.get(id);
    if (!row) this.rows.set(id, (row = { ...key, ...emptyTotals() }));
    add(row, r);
  }
  /** Largest cost first (unpriced after priced), then most calls, then key order. */
  sorted(by: (row: K & Totals) => string = (row) => JSON.stringify(row)): Array<K & Totals> {
    return [...this.rows.values()].sort((a, b) => (b.cost_usd ?? -1) - (a.cost_usd ?? -1) || b.calls - a.calls || by(a).localeCompare(by(b)));
  }
  inOrder(by: (row: K & Totals) => string): Array<K & Totals> {
    return [...this.rows.values()].sort((a, b) => by(a).localeCompare(by(b)));
  }
}

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

  const facts: EvidenceFacts = {
    period: { from: new Date(options.from).toISOString(), to: new Date(options.to).toISOString() },
    ledger: {
      name: source.name,
      ledger_id: await source.ledgerId(),
      // Set once the records are folded (below).
      verify: { ok: false, code: 'LEDGER_NOT_VERIFIED', message: 'not verified yet' },
      checkpoint: checkpoint ? { tree_size: checkpoint.tree_size, timestamp: checkpoint.timestamp, key_id: checkpoint.key_id, signed: checkpoint.signature !== null } : null,
      signed_with_given_key: false,
    },
    records: { calls: 0, by_status: {}, operations: {}, first: null, last: null, with_input_hash: 0, with_user: 0 },
    totals: emptyTotals(),
    by_user: [],
    by_tenant: [],
    by_model: [],
    by_provider: [],
    by_day: [],
    guardrails: [],
    sanitization: { calls_with_findings: 0, findings: 0 },
    error_types: [],
    gaps: [],
    erasures: [],
    retention,
  };
  /** What the fold adds up; started afresh if a verify that failed half-way had folded some records. */
  const start = () => {
    facts.records = { calls: 0, by_status: {}, operations: {}, first: null, last: null, with_input_hash: 0, with_user: 0 };
    facts.totals = emptyTotals();
    facts.sanitization = { calls_with_findings: 0, findings: 0 };
    facts.gaps = [];
    facts.erasures = [];
    return {
      users: new Grouped<{ user_id: string | null }>(),
      tenants: new Grouped<{ tenant_id: string | null }>(),
      models: new Grouped<{ provider: string | null; model: string | null }>(),
      providers: new Grouped<{ provider: string | null }>(),
      days: new Grouped<{ day: string }>(),
      rules: new Map<string, { rule: string; action: string; count: number }>(),
      errorTypes: new Map<string, number>(),
    };
  };
  let acc = start();
  const fold = (seq: number, r: LedgerRecord): void => {
    if (facts.records.first === null || r.timestamp < facts.records.first) facts.records.first = r.timestamp;
    if (facts.records.last === null || r.timestamp > facts.records.last) facts.records.last = r.timestamp;
    if (!isCallRecord(r)) {
      const action = r.action ?? 'unknown';
      facts.records.operations[action] = (facts.records.operations[action] ?? 0) + 1;
      if (r.action === GAP_ACTION) {
        const gap = gapOf({ seq, prev: '', record: r })!;
        facts.gaps.push({ timestamp: r.timestamp, lost: gap.lost, first_failure: gap.from, last_failure: gap.to });
      } else if (r.action === 'content.shred') {
        facts.erasures.push({ timestamp: r.timestamp, tenant_id: r.tenant_id });
      }
      return;
    }
    facts.records.calls++;
    const status = r.status ?? 'unknown';
    facts.records.by_status[status] = (facts.records.by_status[status] ?? 0) + 1;
    if (r.input_hash) facts.records.with_input_hash++;
    if (r.user_id) facts.records.with_user++;
    add(facts.totals, r);
    acc.users.add({ user_id: r.user_id }, r);
    acc.tenants.add({ tenant_id: r.tenant_id }, r);
    acc.models.add({ provider: r.provider, model: reportModel(r) }, r);
    acc.providers.add({ provider: r.provider }, r);
    acc.days.add({ day: r.timestamp.slice(0, 10) }, r);
    for (const g of r.guardrails ?? []) {
      const rule = String(g.name ?? g.rule ?? 'unnamed');
      const action = String(g.action ?? (r.status === 'blocked' ? 'block' : 'flag'));
      const key = JSON.stringify([rule, action]);
      const entry = acc.rules.get(key) ?? { rule, action, count: 0 };
      entry.count++;
      acc.rules.set(key, entry);
    }
    if ((r.sanitization_count ?? 0) > 0) {
      facts.sanitization.calls_with_findings++;
      facts.sanitization.findings += r.sanitization_count!;
    }
    if (r.status === 'error' || r.error_type) {
      const type = r.error_type ?? 'unknown';
      acc.errorTypes.set(type, (acc.errorTypes.get(type) ?? 0) + 1);
    }
  };
  // The records are folded in verify's own pass over the ledger (verify reads every line anyway):
  // one pass, not two. A ledger that fails verification is folded by a scan of the period instead.
  const { from, to } = options;
  let verify: EvidenceFacts['ledger']['verify'];
  try {
    const v = await verifyLedger(source, {
      ...(options.verify ?? {}),
      onEntry: (accepted) => {
        options.verify?.onEntry?.(accepted);
        const r = accepted.entry.record as LedgerRecord;
        const t = Date.parse(r.timestamp);
        if (t >= from && t < to) fold(accepted.entry.seq, r);
      },
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
  } catch (error) {
    // A ledger that fails verification still gets a bundle: saying so is the evidence.
    if (!isLedgerError(error)) throw error;
    verify = { ok: false, code: error.code, message: error.message.split('\n')[0]! };
    acc = start();
    for await (const { seq, record } of scanRecords(source, { from, to })) fold(seq, record);
  }
  facts.ledger.verify = verify;
  facts.ledger.signed_with_given_key = options.verify?.publicKey !== undefined && verify.ok;
  const { users, tenants, models, providers, days, rules, errorTypes } = acc;
  facts.by_user = users.sorted((row) => row.user_id ?? '');
  facts.by_tenant = tenants.sorted((row) => row.tenant_id ?? '');
  facts.by_model = models.sorted((row) => `${row.provider}/${row.model}`);
  facts.by_provider = providers.sorted((row) => row.provider ?? '');
  facts.by_day = days.inOrder((row) => row.day);
  facts.guardrails = [...rules.values()].sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule));
  facts.error_types = [...errorTypes].map(([error_type, count]) => ({ error_type, count })).sort((a, b) => b.count - a.count || a.error_type.localeCompare(b.error_type));
  return facts;
}
