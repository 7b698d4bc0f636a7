/**
 * `llm-audit report cost-by-user | anomalies | error-rate | usage | summary`. Operation records
 * (audit.read among them) are never counted as calls; the read is recorded as an `audit.read`
 * record when the command has a writer's access (audit-read.ts).
 */
import { writeFileSync } from 'node:fs';
import { gatherFacts, type EvidenceFacts, type Totals } from '../evidence/facts';
import { renderSummaryHtml } from '../evidence/html';
import { renderReportHtml } from '../evidence/report-html';
import { LedgerError } from '../ledger/errors';
import type { LedgerSource } from '../ledger/backend';
import { loadPublicKey } from '../ledger/checkpoint';
import { ANOMALY_METRICS, anomaliesWith, costByUserReport, errorRateReport, reportBackend, type Cell, type Report } from '../ledger/reports';
import { FORMATS, writeRows } from './format';
import { READ_AUDIT_OPTIONS, READ_AUDIT_USAGE, ReadAudit, filterDetails } from './audit-read';
import { flag, instant, oneOf, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, withSource } from './source';

const REPORT_FORMATS = [...FORMATS, 'html'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];
const USAGE_BY = ['user', 'tenant', 'model', 'provider', 'day'] as const;
const DAY = 86_400_000;

export const REPORT_USAGE =
  'llm-audit report <name> [options] [--format table|json|csv|html] [--out FILE] [--ledger DIR | --postgres URL]\n' +
  `  ${READ_AUDIT_USAGE}   the audit.read record of this run\n` +
  '  cost-by-user [--from ISO] [--to ISO]              requests, cost and latency per user per day\n' +
  `  anomalies [--now ISO] [--metric ${ANOMALY_METRICS.join('|')}] [--by none|user|model] [--sigmas N (3)]\n` +
  '                                                    calls (or, for calls, groups) far above their baseline of the 7 days before\n' +
  '  anomalies --summary [--now ISO] [--sigmas N]      per user: volume, input-token and cost anomalies, each against the user\'s own baseline\n' +
  '  error-rate [--now ISO] [--hours N (24)]           requests, errors and blocked calls per model\n' +
  `  usage --by ${USAGE_BY.join('|')} [--top N] [--from ISO] [--to ISO]   totals per group, highest cost first\n` +
  '  summary [--from ISO] [--to ISO] [--public-key FILE]   totals, per user/tenant/model/day, blocks, gaps; verifies the ledger\n' +
  '  usage and summary cover the last 30 days unless --from/--to say otherwise (--to excluded)\n' +
  '  --format html writes one self-contained page with charts (needs the optional package echarts for the charts)\n' +
  'example:\n' +
  '  llm-audit report usage --by tenant --from 2026-11-01 --to 2026-12-01\n' +
  '  llm-audit report summary --from 2026-11-01 --format html --out november.html';

const REPORTS = ['cost-by-user', 'anomalies', 'error-rate', 'usage', 'summary'] as const;

export async function reportCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      now: { type: 'string' },
      by: { type: 'string' },
      top: { type: 'string' },
      sigmas: { type: 'string' },
      metric: { type: 'string' },
      summary: { type: 'boolean' },
      hours: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      'public-key': { type: 'string' },
      ...READ_AUDIT_OPTIONS,
      ...POSTGRES_OPTION,
    },
    REPORT_USAGE,
    1,
  );
  const name = p.positionals[0];
  if (name === undefined || !(REPORTS as readonly string[]).includes(name)) {
    throw new LedgerError('LEDGER_USAGE', `name a report: ${REPORTS.join(', ')}\nusage: ${REPORT_USAGE}`);
  }
  const format = oneOf(str(p, 'format'), REPORT_FORMATS, '--format', 'table');
  const out = str(p, 'out');
  const audit = await ReadAudit.prepare(p, io);
  audit.unrecordedNotice('report');
  const target: CliIo = out === undefined ? io : fileIo(out, io);
  const code = await withSource(p, io, (source) => runReport(source, name, p, format, target, ['llm-audit', 'report', ...argv].join(' ')));
  if (out !== undefined) io.err(`wrote ${out}`);
  const period = { from: instant(str(p, 'from'), '--from'), to: instant(str(p, 'to'), '--to'), now: instant(str(p, 'now'), '--now'), by: str(p, 'by') };
  await audit.recordAfter({ command: 'report', tenantId: null, details: { report: name, ...filterDetails(period) } });
  return code;
}

/** Output to a file instead of stdout (created anew; errors still go to stderr). */
function fileIo(path: string, io: CliIo): CliIo {
  writeFileSync(path, '');
  return { ...io, out: async (text) => writeFileSync(path, text, { flag: 'a' }) };
}

async function runReport(source: LedgerSource, name: string, p: Parsed, format: ReportFormat, io: CliIo, command: string): Promise<number> {
  await source.open();
  const now = instant(str(p, 'now'), '--now') ?? Date.now();
  const backend = reportBackend(source);
  let report: Report;
  if (name === 'cost-by-user') {
    report = costByUserReport(await backend.costByUser(instant(str(p, 'from'), '--from'), instant(str(p, 'to'), '--to')));
  } else if (name === 'anomalies') {
    const sigmas = str(p, 'sigmas') === undefined ? 3 : Number(str(p, 'sigmas'));
    if (!(sigmas > 0)) throw new LedgerError('LEDGER_USAGE', '--sigmas must be a positive number');
    const by = oneOf(str(p, 'by'), ['none', 'user', 'model'] as const, '--by', 'none');
    const metric = oneOf(str(p, 'metric'), ANOMALY_METRICS, '--metric', 'input_tokens');
    const summary = flag(p, 'summary');
    if (summary && (str(p, 'by') !== undefined || str(p, 'metric') !== undefined)) throw new LedgerError('LEDGER_USAGE', '--summary is per user for every metric: leave out --by and --metric');
    report = await anomaliesWith(backend, { now, sigmas, by, metric, summary });
  } else if (name === 'error-rate') {
    const hours = str(p, 'hours') === undefined ? 24 : Number(str(p, 'hours'));
    if (!(hours > 0)) throw new LedgerError('LEDGER_USAGE', '--hours must be a positive number');
    const windowStart = now - hours * 3_600_000;
    report = errorRateReport(await backend.errorRate(windowStart, now), windowStart, now);
  } else {
    const to = instant(str(p, 'to'), '--to') ?? now;
    const from = instant(str(p, 'from'), '--from') ?? to - 30 * DAY;
    if (!(to > from)) throw new LedgerError('LEDGER_USAGE', '--to must be after --from');
    const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
    const facts = await gatherFacts(source, { from, to, ...(keyPath ? { verify: { publicKey: loadPublicKey(keyPath) } } : {}) });
    if (name === 'summary' && format === 'html') {
      await io.out(renderSummaryHtml(facts, new Date().toISOString()));
      return 0;
    }
    report = name === 'usage' ? usageReport(facts, p) : summaryReport(facts);
  }
  if (name === 'cost-by-user' || name === 'anomalies' || name === 'error-rate') report.notes.push(backend.basis);
  if (format === 'html') {
    await io.out(renderReportHtml(name, report, { ledger: source.name, generatedAt: new Date().toISOString(), command }));
    return 0;
  }
  await writeRows(io, format, report.columns, report.rows);
  if (format === 'table') for (const n of report.notes) io.err(`note: ${n}`);
  return 0;
}

const TOTAL_COLUMNS = ['calls', 'errors', 'blocked', 'input_tokens', 'output_tokens', 'cost_usd', 'unpriced'] as const;
const totals = (t: Totals): Record<string, Cell> => Object.fromEntries(TOTAL_COLUMNS.map((c) => [c, t[c]]));

/** A tenant reader cannot verify (it sees part of the chain): that is said as such, never as a failure. */
const partial = (v: EvidenceFacts['ledger']['verify']): boolean => !v.ok && v.code === 'LEDGER_PARTIAL_VIEW';

function periodNote(f: EvidenceFacts): string {
  const v = f.ledger.verify;
  const verified = v.ok ? '' : partial(v) ? '; the ledger was not verified (this role sees only part of it)' : `; the ledger FAILED verification (${v.code})`;
  return `period ${f.period.from} .. ${f.period.to} (end excluded); cost counts priced calls, unpriced counts successful calls without a price` + verified;
}

/** `report usage --by G [--top N]`: one row per group with the totals, highest cost first (by day: in date order). */
function usageReport(f: EvidenceFacts, p: Parsed): Report {
  const by = str(p, 'by');
  if (by === undefined) throw new LedgerError('LEDGER_USAGE', `usage needs --by ${USAGE_BY.join('|')}`);
  oneOf(by, USAGE_BY, '--by', 'user');
  const topText = str(p, 'top');
  const top = topText === undefined ? Infinity : Number(topText);
  if (!(Number.isInteger(top) && top > 0) && top !== Infinity) throw new LedgerError('LEDGER_USAGE', `--top must be a positive whole number, got ${JSON.stringify(topText)}`);
  let rows: Array<Record<string, Cell>>;
  let keys: string[];
  if (by === 'user') [keys, rows] = [['user_id'], f.by_user.map((r) => ({ user_id: r.user_id, ...totals(r) }))];
  else if (by === 'tenant') [keys, rows] = [['tenant_id'], f.by_tenant.map((r) => ({ tenant_id: r.tenant_id, ...totals(r) }))];
  else if (by === 'model') [keys, rows] = [['provider', 'model'], f.by_model.map((r) => ({ provider: r.provider, model: r.model, ...totals(r) }))];
  else if (by === 'day') [keys, rows] = [['day'], f.by_day.map((r) => ({ day: r.day, ...totals(r) }))];
  else [keys, rows] = [['provider'], f.by_provider.map((r) => ({ provider: r.provider, ...totals(r) }))];
  const shown = rows.slice(0, top);
  const notes = [periodNote(f)];
  if (shown.length < rows.length) notes.push(`top ${shown.length} of ${rows.length} groups`);
  return { columns: [...keys, ...TOTAL_COLUMNS], rows: shown, notes };
}

/** `report summary` as rows: one per provider and model, then the whole period. */
function summaryReport(f: EvidenceFacts): Report {
  const v = f.ledger.verify;
  return {
    columns: ['provider', 'model', ...TOTAL_COLUMNS],
    rows: [...f.by_model.map((m) => ({ provider: m.provider, model: m.model, ...totals(m) })), { provider: 'all', model: null, ...totals(f.totals) }],
    notes: [
      periodNote(f),
      v.ok ? `ledger verified: ${v.records} records, tree size ${v.tree_size}` : partial(v) ? `ledger not verified: ${v.message}` : `ledger verification FAILED: ${v.code}: ${v.message}`,
      `${f.guardrails.reduce((n, g) => n + g.count, 0)} guardrail decisions, ${f.sanitization.findings} sensitive-data findings, ${f.gaps.reduce((n, g) => n + g.lost, 0)} audit records lost (ledger.gap), ${f.erasures.length} erasures`,
    ],
  };
}
