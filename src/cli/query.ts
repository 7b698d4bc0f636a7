/**
 * `llm-audit query`: records in a time window, filtered, as a table, JSON or CSV. The read is
 * recorded as an `audit.read` record when the command has a writer's access (audit-read.ts);
 * those records are listed only when asked for (`--action audit.read`), not between the calls.
 */
import { LedgerError, isLedgerError } from '../ledger/errors';
import { DETAIL_COLUMNS, EXTRA_COLUMNS, RECORD_COLUMNS, RECORD_STATUSES, flatRecord, queryRecords, unreadFields, type QueryFilter } from '../ledger/query';
import { READ_ACTION } from '../ledger/record';
import { READ_AUDIT_OPTIONS, READ_AUDIT_USAGE, ReadAudit, filterDetails, recordsRead } from './audit-read';
import { CSV_OPTION, FORMATS, RowWriter, csvComment } from './format';
import { flag, instant, oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const QUERY_USAGE =
  'llm-audit query [--from ISO] [--to ISO] [--user U] [--tenant T] [--session S] [--model M] [--provider P] [--status S] [--action A] [--service NAME] [--env ENV] [--trace-id ID] [--request-id ID] [--format table|json|csv] [--excel] [--columns A,B] [--limit N] [--ledger DIR | --postgres URL] ' +
  READ_AUDIT_USAGE;

const ALL_COLUMNS: readonly string[] = [...RECORD_COLUMNS, ...DETAIL_COLUMNS];
const KNOWN_COLUMNS: readonly string[] = [...ALL_COLUMNS, ...EXTRA_COLUMNS];

/** --columns a,b,c, else the table's columns (JSON and CSV: the whole record). */
function columnsOf(text: string | undefined, format: string): readonly string[] {
  if (text === undefined) return format === 'table' ? RECORD_COLUMNS : ALL_COLUMNS;
  const columns = text.split(',').map((c) => c.trim());
  const unknown = columns.filter((c) => !KNOWN_COLUMNS.includes(c));
  if (unknown.length > 0 || columns.length === 0) {
    throw new LedgerError('LEDGER_USAGE', `--columns: unknown column ${JSON.stringify(unknown[0] ?? '')} (columns: ${KNOWN_COLUMNS.join(', ')})`);
  }
  return columns;
}

/** Option name -> QueryFilter field, for the filters that match one field exactly. */
const EXACT_FILTERS = {
  user: 'user',
  tenant: 'tenant',
  session: 'session',
  model: 'model',
  provider: 'provider',
  action: 'action',
  'trace-id': 'traceId',
  'request-id': 'requestId',
  service: 'service',
  env: 'env',
} as const satisfies Record<string, keyof QueryFilter>;

export async function queryCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      ...Object.fromEntries(Object.keys(EXACT_FILTERS).map((name) => [name, { type: 'string' } as const])),
      status: { type: 'string' },
      format: { type: 'string' },
      limit: { type: 'string' },
      columns: { type: 'string' },
      ...CSV_OPTION,
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
  const described: string[] = [];
  for (const [option, field] of Object.entries(EXACT_FILTERS)) {
    const v = str(p, option);
    if (v === undefined) continue;
    if (v === '') throw new LedgerError('LEDGER_USAGE', `--${option} needs a value`);
    filter[field] = v;
    described.push(`${option}=${v}`);
  }
  // A status no record can have would match nothing, silently.
  if (str(p, 'status') !== undefined) {
    filter.status = oneOf(str(p, 'status'), RECORD_STATUSES, '--status', 'success');
    described.push(`status=${filter.status}`);
  }
  const limitText = str(p, 'limit');
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit > 0))) throw new LedgerError('LEDGER_USAGE', `--limit must be a positive integer, got ${JSON.stringify(limitText)}`);
  if (limit !== Infinity) described.push(`first ${limit}`);
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const picked = str(p, 'columns');
  const columns = columnsOf(picked, format);
  const period = `${from === undefined ? 'first record' : new Date(from).toISOString()} .. ${to === undefined ? 'last record' : `${new Date(to).toISOString()} (excluded)`}`;
  const writer = new RowWriter(io, format, columns, { excel: flag(p, 'excel'), comment: csvComment('query', argv, [`filter: ${described.join(' ') || 'none'}`, `period: ${period}`]) });
  const seqs: number[] = [];
  let torn = 0;
  let n = 0;
  await withSource(p, io, async (source) => {
    // The read is recorded on the connection the query used (ReadAudit.prepare).
    const audit = await ReadAudit.prepare(p, io, source);
    audit.unrecordedNotice('query');
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
        const shown = Object.fromEntries(columns.map((c) => [c, row[c] ?? null]));
        // The whole record: fields of a newer record version than this tool knows are kept in JSON.
        await writer.row(format === 'json' && picked === undefined ? { ...shown, ...unreadFields(hit.record) } : shown);
        if (++n >= limit) break;
      }
    } catch (error) {
      if (!isLedgerError(error) || error.code !== 'LEDGER_RECORD_MISSING') {
        // The rows found before the failure are shown, as when each was written at once.
        await writer.flush();
        throw error;
      }
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
