/**
 * The PostgreSQL writer sends its array parameters in the binary array format (rows.ts
 * binaryArray) instead of array literals the pg driver builds from JS arrays. The database must
 * receive the very same values: each array is compared, in the database, with the driver's own
 * conversion of the same JS array, awkward text included; and a batch written through the writer
 * verifies (verify recomputes every column and the leaf hash from the line).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryArray, pgText, type ArrayType } from '../../src/ledger/postgres/rows';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord } from '../ledger/helpers';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/postgres';

// No NUL: PostgreSQL text holds none either way (rows.ts pgText replaces it before).
const AWKWARD = ['plain', '', 'a "quoted" word', 'back\\slash', '\\"both\\"', 'ü 😀 \ud800 lone', '{braces},commas', 'NULL', ' spaced ', 'x'.repeat(5000)];

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('binary_arrays');
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

describe('array parameters in the binary format', () => {
  const cases: Array<[ArrayType, string, Array<string | number | boolean | null>]> = [
    ['text', 'text', [...AWKWARD, null]],
    ['text', 'text', []],
    ['float8', 'float8', [0, -1.5, 1e21, 0.1, 1 / 3, 5e-324, Number.MAX_VALUE, null, 1000]],
    ['bool', 'boolean', [true, false, null]],
    ['int8', 'bigint', [0, 1, 2 ** 53 - 1, 42]],
  ];
  it.each(cases)('%s[] arrives as the driver sent the same JS array (%#)', async (type, sqlType, values) => {
    const [row] = await adminQuery<{ same: boolean; n: number; a: unknown }>(
      db.url,
      `SELECT $1::${sqlType}[] IS NOT DISTINCT FROM $2::${sqlType}[] AS same, cardinality($1::${sqlType}[]) AS n, $1::${sqlType}[] AS a`,
      [binaryArray(type, values), values],
    );
    expect(row!.same).toBe(true);
    expect(row!.n).toBe(values.length);
    // And back in JS, element for element (the driver parses the array it receives; a lone
    // surrogate was U+FFFD in UTF-8 either way).
    expect((row!.a as unknown[]).map((v) => (type === 'int8' && v !== null ? Number(v) : v))).toEqual(type === 'text' ? values.map(pgText) : values);
  });

  it('a batch with awkward values written by the writer verifies, columns and hashes', async () => {
    const ledger = await PostgresLedger.open({ url: db.url });
    const records = AWKWARD.map((text, i) =>
      makeRecord({ span_id: randomBytes(8).toString('hex'), request_id: text, user_id: i % 2 ? text : null, cost_usd: i % 3 ? i / 7 : null }),
    );
    expect(await ledger.append(records)).toMatchObject({ stored: records.length });
    await ledger.close();
    expect(await verifyLedger(new PostgresLedgerSource(db.url), {})).toMatchObject({ records: records.length });
    const stored = await adminQuery<{ request_id: string }>(db.url, `SELECT request_id FROM llm_audit.records ORDER BY seq`);
    expect(stored.map((r) => r.request_id)).toEqual(AWKWARD.map(pgText));
  }, 60_000);
});
