/** `llm-audit query`: records in a time window, filtered, as a table, JSON or CSV. */
import { LedgerError } from '../ledger/errors';
import { RECORD_COLUMNS, flatRecord, queryRecords, type QueryFilter } from '../ledger/query';
import { FORMATS, RowWriter } from './format';
import { instant, oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const QUERY_USAGE =
  'llm-audit query [--from ISO] [--to ISO] [--user U] [--tenant T] [--model M] [--status S] [--action A] [--format table|json|csv] [--limit N] [--ledger DIR | --postgres URL]';

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
  for (const key of ['user', 'tenant', 'model', 'status', 'action'] as const) {
    const v = str(p, key);
    if (v !== undefined) filter[key] = v;
  }
  const limitText = str(p, 'limit');
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit > 0))) throw new LedgerError('LEDGER_USAGE', '--limit must be a positive integer');
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const writer = new RowWriter(io, format, RECORD_COLUMNS);
  let torn = 0;
  let n = 0;
  await withSource(p, io, async (source) => {
    // Open before printing anything, so a missing ledger gives only the error line.
    await source.open();
    await writer.start();
    for await (const hit of queryRecords(source, filter, { onTorn: () => torn++ })) {
      await writer.row(flatRecord(hit));
      if (++n >= limit) break;
    }
    await writer.end();
  });
  if (torn > 0) io.err('warning: the ledger ends with an incomplete line (a write in progress, or a crash); it was skipped: run `llm-audit verify`');
  return 0;
}
