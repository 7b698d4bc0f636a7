/**
 * `llm-audit query`: records in a time window, filtered, as a table, JSON or CSV. The read is
 * recorded as an `audit.read` record when the command has a writer's access (audit-read.ts);
 * those records are listed only when asked for (`--action audit.read`), not between the calls.
 */
import { LedgerError, isLedgerError } from '../ledger/errors';
import { DETAIL_COLUMNS, RECORD_COLUMNS, RECORD_STATUSES, flatRecord, queryRecords, type QueryFilter } from '../ledger/query';
import { FORMATS, RowWriter } from './format';
import { READ_ACTION } from '../ledger/record';
import { READ_AUDIT_OPTIONS, READ_AUDIT_USAGE, ReadAudit, filterDetails, recordsRead } from './audit-read';
import { instant, oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const QUERY_USAGE =
  'llm-audit query [--from ISO] [--to ISO] [--user U] [--tenant T] [--model M] [--status S] [--action A] [--format table|json|csv] [--columns A,B] [--limit N] [--ledger DIR | --postgres URL] ' + READ_AUDIT_USAGE;

const ALL_COLUMNS: readonly string[] = [...RECORD_COLUMNS, ...DETAIL_COLUMNS];

/** --columns a,b,c, else the table's columns (JSON and CSV: with the ids and hashes too). */
function columnsOf(text: string | undefined, format: string): readonly string[] {
  if (text === undefined) return format === 'table' ? RECORD_COLUMNS : ALL_COLUMNS;
  const columns = text.split(',').map((c) => c.trim());
  const unknown = columns.filter((c) => !ALL_COLUMNS.includes(c));
  if (unknown.length > 0 || columns.length === 0) {
    throw new LedgerError('LEDGER_USAGE', `--columns: unknown column ${JSON.stringify(unknown[0] ?? '')} (columns: ${ALL_COLUMNS.join(', ')})`);
  }
  return columns;
}

export async function queryCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      user: { type: 'string' },
      tenant: { type: 'string' },
      model: { type: 'string' },
      status: { type: 'string' },
      action: { type: 'string' },
      format: { type: 'string' },
      limit: { type: 'string' },
      columns: { type: 'string' },
      ...READ_AUDIT_OPTIONS,
      ...POSTGRES_OPTION,
    },
    QUERY_USAGE,
  );
  const filter: QueryFilter = {};
  const from = instant(str(p, 'from'), '--from');
  const to = instant(str(p, 'to'), '--to');
  if (from !== undefined) filter.from = from;
  if (to !== undefined) filter.to = to;
  if (from !== undefined && to !== undefined && from >= to) throw new LedgerError('LEDGER_USAGE', '--from must be before --to');
  for (const key of ['user', 'tenant', 'model', 'action'] as const) {
    const v = str(p, key);
    if (v !== undefined) filter[key] = v;
  }
  // A status no record can have would match nothing, silently.
  if (str(p, 'status') !== undefined) filter.status = oneOf(str(p, 'status'), RECORD_STATUSES, '--status', 'success');
  const limitText = str(p, 'limit');
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit > 0))) throw new LedgerError('LEDGER_USAGE', `--limit must be a positive integer, got ${JSON.stringify(limitText)}`);
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const columns = columnsOf(str(p, 'columns'), format);
  const writer = new RowWriter(io, format, columns);
  const audit = await ReadAudit.prepare(p, io);
  audit.unrecordedNotice('query');
  const seqs: number[] = [];
  let torn = 0;
  let n = 0;
  await withSource(p, io, async (source) => {
    // Open before printing anything, so a missing ledger gives only the error line.
    await source.open();
    await writer.start();
    // Records found missing end the scan after every present one: show those, then fail.
    let missing: unknown;
    try {
      for await (const hit of queryRecords(source, filter, { onTorn: () => torn++ })) {
        if (filter.action === undefined && hit.record.action === READ_ACTION) continue;
        seqs.push(hit.seq);
        const row = flatRecord(hit);
        await writer.row(Object.fromEntries(columns.map((c) => [c, row[c] ?? null])));
        if (++n >= limit) break;
      }
    } catch (error) {
      if (!isLedgerError(error) || error.code !== 'LEDGER_RECORD_MISSING') throw error;
      missing = error;
    }
    await writer.end();
    // What was shown is recorded, also when the scan then found records missing.
    await audit.recordAfter({ command: 'query', tenantId: filter.tenant ?? null, details: { ...filterDetails({ ...filter }), ...recordsRead(seqs) } });
    if (missing) throw missing;
  });
  if (torn > 0) io.err('warning: the ledger ends with an incomplete line (a write in progress, or a crash); it was skipped: run `llm-audit verify`');
  return 0;
}
