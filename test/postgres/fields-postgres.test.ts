import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQL_COLUMNS } from '../../src/ledger/fields';
import { adminQuery, createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';

// The field table (src/ledger/fields.ts) derives the writer's INSERT, the reader's SELECT and the
// row check; the migrations are written by hand. They must name the same columns, with the types
// the table says, or a record field would be silently left out of the indexed copy.

const SQL_TYPE: Record<string, string> = { text: 'text', float8: 'double precision', boolean: 'boolean', timestamptz: 'timestamp with time zone' };

describe('the records table and the field table', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    postgresUrl();
    db = await createTestDatabase('fields');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('the migrated records table has exactly the field table columns (plus the row own), with their types', async () => {
    const rows = await adminQuery<{ column_name: string; data_type: string }>(
      db.url,
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'llm_audit' AND table_name = 'records' ORDER BY ordinal_position`,
    );
    const own = ['seq', 'appended_at', 'line', 'prev_hash', 'leaf_hash'];
    const derived = rows.filter((r) => !own.includes(r.column_name));
    expect(derived.map((r) => r.column_name).sort()).toEqual(SQL_COLUMNS.map((c) => c.column).sort());
    for (const c of SQL_COLUMNS) expect(derived.find((r) => r.column_name === c.column)?.data_type, c.column).toBe(SQL_TYPE[c.type]);
  });
});
