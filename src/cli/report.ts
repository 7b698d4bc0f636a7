/** `llm-audit report cost-by-user | anomalies | error-rate`. */
import { LedgerError } from '../ledger/errors';
import type { LedgerSource } from '../ledger/backend';
import { scanRecords } from '../ledger/query';
import type { LedgerRecord } from '../ledger/record';
import { anomalies, costByUser, errorRate, type Report } from '../ledger/reports';
import { FORMATS, writeRows } from './format';
import { instant, oneOf, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const REPORT_USAGE =
  'llm-audit report cost-by-user [--from ISO] [--to ISO] | anomalies [--now ISO] [--by none|user|model] [--sigmas N] | error-rate [--now ISO] [--hours N]   [--format table|json|csv] [--ledger DIR | --postgres URL]';

const REPORTS = ['cost-by-user', 'anomalies', 'error-rate'] as const;

export async function reportCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      now: { type: 'string' },
      by: { type: 'string' },
      sigmas: { type: 'string' },
      hours: { type: 'string' },
      format: { type: 'string' },
      ...POSTGRES_OPTION,
    },
    REPORT_USAGE,
    1,
  );
  const name = p.positionals[0];
  if (name === undefined || !(REPORTS as readonly string[]).includes(name)) {
    throw new LedgerError('LEDGER_USAGE', `name a report: ${REPORTS.join(', ')}\nusage: ${REPORT_USAGE}`);
  }
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  return withSource(p, io, (source) => runReport(source, name, p, format, io));
}

async function runReport(source: LedgerSource, name: string, p: Parsed, format: (typeof FORMATS)[number], io: CliIo): Promise<number> {
  await source.open();
  const now = instant(str(p, 'now'), '--now') ?? Date.now();
  const records = (from?: number, to?: number): AsyncIterable<LedgerRecord> => ({
    async *[Symbol.asyncIterator]() {
      for await (const hit of scanRecords(source, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) })) {
        yield hit.record;
      }
    },
  });
  let report: Report;
  if (name === 'cost-by-user') {
    report = await costByUser(records(instant(str(p, 'from'), '--from'), instant(str(p, 'to'), '--to')));
  } else if (name === 'anomalies') {
    const sigmas = str(p, 'sigmas') === undefined ? 3 : Number(str(p, 'sigmas'));
    if (!(sigmas > 0)) throw new LedgerError('LEDGER_USAGE', '--sigmas must be a positive number');
    const by = oneOf(str(p, 'by'), ['none', 'user', 'model'] as const, '--by', 'none');
    const DAY = 86_400_000;
    report = await anomalies(() => records(now - 8 * DAY, now), { now, sigmas, by });
  } else {
    const hours = str(p, 'hours') === undefined ? 24 : Number(str(p, 'hours'));
    if (!(hours > 0)) throw new LedgerError('LEDGER_USAGE', '--hours must be a positive number');
    report = await errorRate(records(now - hours * 3_600_000, now), { now, windowMs: hours * 3_600_000 });
  }
  await writeRows(io, format, report.columns, report.rows);
  if (format === 'table') for (const n of report.notes) io.err(`note: ${n}`);
  return 0;
}
