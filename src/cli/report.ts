/**
 * `llm-audit report cost-by-user | anomalies | error-rate | usage | summary | guardrails |
 * sanitization`. Operation records (audit.read among them) are never counted as calls; the read is
 * recorded as an `audit.read` record when the command has a writer's access (audit-read.ts).
 */
import { writeFileSync } from 'node:fs';
import { NOT_VERIFIED, gatherFacts, type EvidenceFacts, type Totals } from '../evidence/facts';
import { LedgerError } from '../ledger/errors';
import type { LedgerSource } from '../ledger/backend';
import { loadPublicKey } from '../ledger/checkpoint';
import { sanitizationKinds } from '../ledger/fields';
import type { QueryFilter } from '../ledger/query';
import {
  ANOMALY_METRICS,
  GUARDRAIL_BY,
  SANITIZATION_BY,
  anomaliesWith,
  auditEvents,
  costByUserReport,
  errorRateReport,
  guardrailReport,
  reportBackend,
  sanitizationReport,
  type Cell,
  type Report,
  type UsageColumn,
  type UsageRow,
} from '../ledger/reports';
import { READ_AUDIT_OPTIONS, READ_AUDIT_USAGE, ReadAudit, filterDetails } from './audit-read';
import { CSV_OPTION, FORMATS, commandLine, csvComment, writeRows } from './format';
import { flag, instant, oneOf, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, withSource } from './source';

const REPORT_FORMATS = [...FORMATS, 'html'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];
const USAGE_BY = ['user', 'tenant', 'model', 'provider', 'day', 'service', 'env'] as const;
const DAY = 86_400_000;

export const REPORT_USAGE =
  'llm-audit report <name> [options] [--format table|json|csv|html] [--out FILE] [--ledger DIR | --postgres URL]\n' +
  `  ${READ_AUDIT_USAGE}   the audit.read record of this run\n` +
  '  cost-by-user [--from ISO] [--to ISO]              requests, cost and latency per user per day\n' +
  `  anomalies [--now ISO] [--metric ${ANOMALY_METRICS.join('|')}] [--by none|user|model] [--sigmas N (3)]\n` +
  '                                                    calls (or, for calls, groups) far above their baseline of the 7 days before\n' +
  '  anomalies --summary [--now ISO] [--sigmas N]      per user: volume, input-token and cost anomalies, each against the user\'s own baseline\n' +
  '  error-rate [--now ISO] [--hours N (24)]           requests, errors and blocked calls per model\n' +
  `  usage --by ${USAGE_BY.join('|')}[,...] [--top N] [--from ISO] [--to ISO]   totals per group, highest cost first (--by user,model: per user and model)\n` +
  '  summary [--from ISO] [--to ISO] [--public-key FILE]   totals, per user/tenant/model/day, blocks, gaps; verifies the ledger\n' +
  `  guardrails [--by ${GUARDRAIL_BY.join('|')}] [--from ISO] [--to ISO]   blocked, flagged, modified, allowed per day, rule and user\n` +
  `  sanitization [--by ${SANITIZATION_BY.join('|')}] [--from ISO] [--to ISO]   sensitive-data findings per tenant, user and kind\n` +
  '  events [--from ISO] [--to ISO]                    audit events (auth.*, admin.*, privacy.*, app.*, audit.start) per day, type, outcome, user\n' +
  '  every report: [--service NAME] [--env ENV] keeps only the records of that application / deployment environment\n' +
  '  usage, summary, guardrails, sanitization and events cover the last 30 days unless --from/--to say otherwise (--to excluded)\n' +
  '  --format html writes one self-contained page with charts (needs the optional package echarts for the charts)\n' +
  '  --format csv starts with a # line (command, period) and neutralises cells a spreadsheet would run as formulas;\n' +
  '  --excel adds a byte order mark and writes times as dates a spreadsheet reads\n' +
  'example:\n' +
  '  llm-audit report usage --by tenant --from 2026-11-01 --to 2026-12-01\n' +
  '  llm-audit report summary --from 2026-11-01 --format html --out november.html\n' +
  '  llm-audit report guardrails --by rule --from 2026-11-01 --to 2026-12-01\n' +
  '  llm-audit report sanitization --by tenant --from 2026-11-01 --format csv --excel --out pii-november.csv';

const REPORTS = ['cost-by-user', 'anomalies', 'error-rate', 'usage', 'summary', 'guardrails', 'sanitization', 'events'] as const;

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
      service: { type: 'string' },
      env: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      'public-key': { type: 'string' },
      ...CSV_OPTION,
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
  // The read is recorded on the connection the report used (ReadAudit.prepare), before it closes.
  return withSource(p, io, async (source) => {
    const audit = await ReadAudit.prepare(p, io, source);
    audit.unrecordedNotice('report');
    const target: CliIo = out === undefined ? io : fileIo(out, io);
    const code = await runReport(source, name, p, format, target, argv);
    if (out !== undefined) io.err(`wrote ${out}`);
    const period = { from: instant(str(p, 'from'), '--from'), to: instant(str(p, 'to'), '--to'), now: instant(str(p, 'now'), '--now'), by: str(p, 'by') };
    await audit.recordAfter({ command: 'report', tenantId: null, details: { report: name, ...filterDetails(period) } });
    return code;
  });
}

/** Output to a file instead of stdout (created anew; errors still go to stderr). */
function fileIo(path: string, io: CliIo): CliIo {
  writeFileSync(path, '');
  return { ...io, out: async (text) => writeFileSync(path, text, { flag: 'a' }) };
}

async function runReport(source: LedgerSource, name: string, p: Parsed, format: ReportFormat, io: CliIo, argv: string[]): Promise<number> {
  await source.open();
  const now = instant(str(p, 'now'), '--now') ?? Date.now();
  // --service / --env: only that application's or environment's records, in every report.
  const only: QueryFilter = {};
  for (const key of ['service', 'env'] as const) if (str(p, key) !== undefined) only[key] = str(p, key);
  const backend = reportBackend(source, only);
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
  } else if (name === 'guardrails' || name === 'sanitization' || name === 'events') {
    const { from, to } = period(p, now);
    report =
      name === 'guardrails'
        ? await guardrailReport(backend.periodRecords(from, to, name), oneOf(str(p, 'by'), GUARDRAIL_BY, '--by', 'all'))
        : name === 'sanitization'
          ? await sanitizationReport(backend.periodRecords(from, to, name), sanitizationKinds, oneOf(str(p, 'by'), SANITIZATION_BY, '--by', 'all'))
          : await auditEvents(backend.periodRecords(from, to, name));
    report.notes.unshift(`period ${new Date(from).toISOString()} .. ${new Date(to).toISOString()} (end excluded)`);
    report.notes.push(backend.basis);
  } else {
    const { from, to } = period(p, now);
    const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
    // usage states totals only (integrity is verify's job); summary verifies the whole ledger too.
    const verify = name === 'usage' ? false : keyPath ? { publicKey: loadPublicKey(keyPath) } : {};
    const facts = await gatherFacts(source, { from, to, scope: only, verify });
    if (name === 'summary' && format === 'html') {
      // The HTML renderers (and their charts) are loaded only for --format html.
      const { renderSummaryHtml } = await import('../evidence/html.js');
      await io.out(renderSummaryHtml(facts, new Date().toISOString()));
      return 0;
    }
    const by = name === 'usage' ? usageDimensions(p) : [];
    const columns = [...new Set(by.flatMap((d) => GROUP_COLUMNS[d]))];
    report = by.length > 1 ? usageByMany(await backend.usage(from, to, columns), columns, facts, p) : name === 'usage' ? usageReport(facts, p) : summaryReport(facts);
  }
  if (name === 'cost-by-user' || name === 'anomalies' || name === 'error-rate' || name === 'usage') report.notes.push(backend.basis);
  if (format === 'html') {
    const { renderReportHtml } = await import('../evidence/report-html.js');
    await io.out(renderReportHtml(name, report, { ledger: source.name, generatedAt: new Date().toISOString(), command: commandLine('report', argv) }));
    return 0;
  }
  await writeRows(io, format, report.columns, report.rows, { excel: flag(p, 'excel'), comment: csvComment('report', argv, report.notes) });
  if (format === 'table') for (const n of report.notes) io.err(`note: ${n}`);
  return 0;
}

/** --from/--to of the period reports, by default the 30 days before --now. */
function period(p: Parsed, now: number): { from: number; to: number } {
  const to = instant(str(p, 'to'), '--to') ?? now;
  const from = instant(str(p, 'from'), '--from') ?? to - 30 * DAY;
  if (!(to > from)) throw new LedgerError('LEDGER_USAGE', '--to must be after --from');
  return { from, to };
}

const TOTAL_COLUMNS = ['calls', 'errors', 'blocked', 'input_tokens', 'output_tokens', 'cost_usd', 'unpriced'] as const;
const totals = (t: Totals): Record<string, Cell> => Object.fromEntries(TOTAL_COLUMNS.map((c) => [c, t[c]]));

/** A tenant reader cannot verify (it sees part of the chain): that is said as such, never as a failure. */
const partial = (v: EvidenceFacts['ledger']['verify']): boolean => !v.ok && v.code === 'LEDGER_PARTIAL_VIEW';

function periodNote(f: EvidenceFacts): string {
  const v = f.ledger.verify;
  // `usage` does not verify (its basis note says so).
  const verified =
    v.ok || v.code === NOT_VERIFIED ? '' : partial(v) ? '; the ledger was not verified (this role sees only part of it)' : `; the ledger FAILED verification (${v.code})`;
  return `period ${f.period.from} .. ${f.period.to} (end excluded); cost counts priced calls, unpriced counts successful calls without a price` + verified;
}

/** The groups of `report usage --by a,b`: one or more of USAGE_BY, each once. */
function usageDimensions(p: Parsed): Array<(typeof USAGE_BY)[number]> {
  const by = str(p, 'by');
  if (by === undefined) throw new LedgerError('LEDGER_USAGE', `usage needs --by ${USAGE_BY.join('|')}`);
  const list = by.split(',').map((d) => oneOf(d.trim(), USAGE_BY, '--by', 'user'));
  if (new Set(list).size !== list.length) throw new LedgerError('LEDGER_USAGE', `--by names a group twice: ${by}`);
  return list;
}

function topOf(p: Parsed): number {
  const topText = str(p, 'top');
  const top = topText === undefined ? Infinity : Number(topText);
  if (!(Number.isInteger(top) && top > 0) && top !== Infinity) throw new LedgerError('LEDGER_USAGE', `--top must be a positive whole number, got ${JSON.stringify(topText)}`);
  return top;
}

/** The key columns of each usage group. */
const GROUP_COLUMNS: Record<(typeof USAGE_BY)[number], UsageColumn[]> = {
  user: ['user_id'],
  tenant: ['tenant_id'],
  model: ['provider', 'model'],
  provider: ['provider'],
  day: ['day'],
  service: ['service_name'],
  env: ['deployment_environment'],
};

/** `report usage --by user,model`: the totals per combination of groups (who used which model), highest cost first. */
function usageByMany(rows: UsageRow[], columns: UsageColumn[], f: EvidenceFacts, p: Parsed): Report {
  const top = topOf(p);
  const shown = rows.slice(0, top);
  const notes = [periodNote(f)];
  if (shown.length < rows.length) notes.push(`top ${shown.length} of ${rows.length} groups`);
  return { columns: [...columns, ...TOTAL_COLUMNS], rows: shown.map((r) => ({ ...r })) as Array<Record<string, Cell>>, notes };
}

/** `report usage --by G [--top N]`: one row per group with the totals, highest cost first (by day: in date order). */
function usageReport(f: EvidenceFacts, p: Parsed): Report {
  const by = usageDimensions(p)[0]!;
  const top = topOf(p);
  let rows: Array<Record<string, Cell>>;
  let keys: string[];
  if (by === 'user') [keys, rows] = [['user_id'], f.by_user.map((r) => ({ user_id: r.user_id, ...totals(r) }))];
  else if (by === 'tenant') [keys, rows] = [['tenant_id'], f.by_tenant.map((r) => ({ tenant_id: r.tenant_id, ...totals(r) }))];
  else if (by === 'model') [keys, rows] = [['provider', 'model'], f.by_model.map((r) => ({ provider: r.provider, model: r.model, ...totals(r) }))];
  else if (by === 'day') [keys, rows] = [['day'], f.by_day.map((r) => ({ day: r.day, ...totals(r) }))];
  else if (by === 'service') [keys, rows] = [['service_name'], f.by_service.map((r) => ({ service_name: r.service_name, ...totals(r) }))];
  else if (by === 'env') [keys, rows] = [['deployment_environment'], f.by_env.map((r) => ({ deployment_environment: r.deployment_environment, ...totals(r) }))];
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
