/**
 * The PostgreSQL writer encodes each record's array elements when append() is called (rows.ts
 * PreparedRow), outside the transaction. The database must receive exactly the parameters the pg
 * driver's own conversion of the JS arrays gave before: checked against that conversion itself.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as { prepareValue: (value: unknown) => unknown };
import { describe, expect, it } from 'vitest';
import { SQL_COLUMNS } from '../../src/ledger/fields';
import { SerializedRecord, chainBatches } from '../../src/ledger/protocol';
import { initialChainState } from '../../src/ledger/chain';
import { arrayElement, arrayLiteral, derivedColumns, prepareRow, recordsInsert } from '../../src/ledger/postgres/rows';
import { makeRecord } from '../ledger/helpers';

const AWKWARD = ['plain', '', 'a "quoted" word', 'back\\slash', '\\"both\\"', 'ü 😀 \u0000 \ud800 lone', '{braces},commas', 'NULL'];

describe('array elements encoded ahead of the transaction', () => {
  it('give the array literal the pg driver writes for the same values', () => {
    const values = [...AWKWARD, null, 0, -1.5, 1e21, 0.1, true, false];
    expect(arrayLiteral(values.map(arrayElement))).toBe(prepareValue(values));
  });

  it('give, for a batch of records, the parameters of the old per-statement conversion: the lines and every column', () => {
    const records = AWKWARD.map((text, i) =>
      makeRecord({ span_id: (i + 1).toString(16).padStart(16, 'a'), request_id: text, user_id: i % 2 ? text : null, cost_usd: i % 3 ? i / 7 : null }),
    );
    const serial = records.map((r) => SerializedRecord.of(r));
    const chained = chainBatches(initialChainState(), [serial]);
    const leaves = chained.leaves.map((l) => l.toString('hex'));
    const appendedAt = new Date();
    const { values } = recordsInsert({ firstSeq: 0, appendedAt, prevs: chained.prevs, leaves }, serial.map(prepareRow));
    const columns = records.map(derivedColumns);
    const before = [
      chained.lines.map((_, i) => String(i)),
      appendedAt,
      chained.lines,
      chained.prevs,
      leaves,
      ...SQL_COLUMNS.map((c) => columns.map((row) => row[c.column])),
    ].map((v) => prepareValue(v));
    expect(values.map((v) => prepareValue(v))).toEqual(before);
  });
});
