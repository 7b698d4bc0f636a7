/**
 * Migration 8: the records say what they are (`kind`: call, operation, event), their action and how
 * many sanitization findings and guardrail decisions they hold, in columns the reports filter on.
 * Rows written before it are filled in by the migration (and keep verifying: verify compares every
 * column with the line); the database refuses a row whose kind is not the line's.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { ZERO_HASH } from '../../src/ledger/checkpoint';
import { SQL_COLUMNS } from '../../src/ledger/fields';
import { leafHash } from '../../src/ledger/merkle';
import { MIGRATIONS, MIGRATION_8_OPERATION_ACTIONS, checksum, migrate } from '../../src/ledger/postgres/migrations';
import { derivedColumns } from '../../src/ledger/postgres/rows';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { OPERATION_ACTIONS, operationRecord, recordKind, type LedgerRecord } from '../../src/ledger/record';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord } from '../ledger/helpers';
import { adminQuery, createTestDatabase, loginRole, type TestDatabase } from '../support/postgres';

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

const AT = new Date('2026-03-01T12:00:00.000Z');
const NEW_COLUMNS = ['action', 'kind', 'has_input_hash', 'sanitization_count', 'guardrail_count', 'sanitization_kinds'];

/** The records of the test: one of each kind, and the values the new columns must get. */
function records(): Array<{ record: LedgerRecord; want: Record<string, unknown> }> {
  const span = () => randomBytes(8).toString('hex');
  const call = makeRecord({ span_id: span(), timestamp: AT.toISOString() });
  const guarded = makeRecord({
    span_id: span(),
    timestamp: AT.toISOString(),
    status: 'blocked',
    sanitization_count: 3,
    sanitization: { mode: 'redact', kinds: { EMAIL: 2, CARD: 1, BAD: 'x' as unknown as number } },
    guardrails: [{ name: 'pii', action: 'flagged' }, { name: 'jailbreak', action: 'blocked' }],
  });
  const event = {
    ...makeRecord({ span_id: span(), timestamp: AT.toISOString(), action: 'auth.login' }),
    event: { type: 'auth.login', outcome: 'success', target: null, reason: null, reason_hash: null, details: null },
  };
  const shred = operationRecord({ action: 'content.shred', timestamp: AT.toISOString(), tenantId: 't1', status: 'success', metadata: {} });
  // An action PostgreSQL text cannot hold as such (NUL, a lone surrogate): U+FFFD in the column.
  const odd = makeRecord({ span_id: span(), timestamp: AT.toISOString(), action: 'a\u0000b\ud800c\\u0000', input_hash: '' });
  // A call whose text merely mentions an operation, an event and an input hash.
  const mention = makeRecord({
    span_id: span(),
    timestamp: AT.toISOString(),
    action: 'content.shredder',
    error_message: '"event":{"x":1}',
    input_hash: null,
    metadata: { input_hash: 'sha256:00' },
  });
  return [
    { record: call, want: { kind: 'call', action: 'chat.completions.create', has_input_hash: true, sanitization_count: null, guardrail_count: null, sanitization_kinds: null } },
    { record: guarded, want: { kind: 'call', action: 'chat.completions.create', has_input_hash: true, sanitization_count: 3, guardrail_count: 2, sanitization_kinds: 2 } },
    { record: event, want: { kind: 'event', action: 'auth.login', has_input_hash: true, sanitization_count: null, guardrail_count: null, sanitization_kinds: null } },
    { record: shred, want: { kind: 'operation', action: 'content.shred', has_input_hash: false, sanitization_count: null, guardrail_count: null, sanitization_kinds: null } },
    { record: odd, want: { kind: 'call', action: 'a\ufffdb\ufffdc\\u0000', has_input_hash: false, sanitization_count: null, guardrail_count: null, sanitization_kinds: null } },
    { record: mention, want: { kind: 'call', action: 'content.shredder', has_input_hash: false, sanitization_count: null, guardrail_count: null, sanitization_kinds: null } },
  ];
}

/** Inserts `list` as rows of a schema-7 table (the columns of that version only), chained from seq 0. */
async function insertAtVersion7(client: Client, list: readonly LedgerRecord[]): Promise<void> {
  const columns = SQL_COLUMNS.filter((c) => !NEW_COLUMNS.includes(c.column));
  await client.query(`SELECT llm_audit.ensure_partition($1::date)`, [AT.toISOString().slice(0, 10)]);
  let prev = ZERO_HASH;
  for (const [seq, record] of list.entries()) {
    const line = canonicalJson({ seq, prev, record });
    const leaf = leafHash(line);
    const c = derivedColumns(record);
    await client.query(`INSERT INTO llm_audit.chain (seq, trace_id, span_id, prev_hash, leaf_hash, appended_at) VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6)`, [
      seq, c.trace_id, c.span_id, prev, leaf, AT,
    ]);
    await client.query(
      `INSERT INTO llm_audit.records (seq, appended_at, line, prev_hash, leaf_hash, ${columns.map((k) => k.column).join(', ')})
       VALUES ($1, $2, $3, decode($4, 'hex'), $5, ${columns.map((_, i) => `$${i + 6}`).join(', ')})`,
      [seq, AT, line, prev, leaf, ...columns.map((k) => c[k.column])],
    );
    prev = leaf.toString('hex');
  }
}

describe('records.kind (migration 8)', () => {
  it('knows the operation actions record.ts knows (a new one needs a migration replacing llm_audit.record_kind)', () => {
    expect([...MIGRATION_8_OPERATION_ACTIONS].sort()).toEqual([...OPERATION_ACTIONS].sort());
  });

  it('fills in the rows written before it as the writer derives them, and they keep verifying', async () => {
    const db = await createTestDatabase('kind_upgrade', { migrated: false });
    dbs.push(db);
    const list = records();
    for (const { record, want } of list) expect(recordKind(record), JSON.stringify(record.action)).toBe(want.kind);
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA llm_audit`);
      await client.query(`CREATE TABLE llm_audit.schema_migrations (version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp(), applied_by text NOT NULL DEFAULT session_user)`);
      for (const m of MIGRATIONS.filter((m) => m.version <= 7)) {
        await client.query(m.sql);
        await client.query(`INSERT INTO llm_audit.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [m.version, m.name, checksum(m.sql)]);
      }
      await insertAtVersion7(
        client,
        list.map((x) => x.record),
      );
      expect(await migrate(client)).toEqual([8, 9]);
      const rows = await client.query(`SELECT seq::int AS seq, ${NEW_COLUMNS.join(', ')} FROM llm_audit.records ORDER BY seq`);
      expect(rows.rows).toEqual(list.map((x, seq) => ({ seq, ...x.want })));
      // What the writer inserts for the same records is what the migration filled in.
      for (const [seq, x] of list.entries()) {
        const d = derivedColumns(x.record);
        expect(Object.fromEntries(NEW_COLUMNS.map((k) => [k, d[k]])), `seq ${seq}`).toEqual(x.want);
      }
      // The append-only trigger is back on.
      await expect(client.query(`UPDATE llm_audit.records SET kind = 'call'`)).rejects.toThrow(/append-only/);
    } finally {
      await client.end();
    }
    // verify compares every column, the new ones included, with the line.
    expect(await verifyLedger(new PostgresLedgerSource(db.url), {})).toMatchObject({ records: list.length });
    const writer = await PostgresLedger.open({ url: db.url });
    await writer.append([makeRecord({ span_id: randomBytes(8).toString('hex'), guardrails: [{ name: 'x', action: 'allowed' }] })]);
    await writer.close();
    expect(await verifyLedger(new PostgresLedgerSource(db.url), {})).toMatchObject({ records: list.length + 1 });
  }, 60_000);

  it('refuses a row whose kind is not what its line holds, from the writer role', async () => {
    const db = await createTestDatabase('kind_refused');
    dbs.push(db);
    const asWriter = db.urlAs(await loginRole(db, 'llm_audit_writer'));
    const ledger = await PostgresLedger.open({ url: asWriter });
    await ledger.append([makeRecord({ span_id: randomBytes(8).toString('hex'), timestamp: AT.toISOString() })]);
    await ledger.close();
    const [last] = await adminQuery<{ leaf: string; appended_at: Date }>(db.url, `SELECT encode(leaf_hash, 'hex') AS leaf, appended_at FROM llm_audit.chain WHERE seq = 0`);
    // A call written as an operation would drop out of every report: refused.
    const record = makeRecord({ span_id: randomBytes(8).toString('hex'), timestamp: AT.toISOString(), cost_usd: 1000 });
    const line = canonicalJson({ seq: 1, prev: last!.leaf, record });
    const c = { ...derivedColumns(record), kind: 'operation' };
    const client = new Client({ connectionString: asWriter });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO llm_audit.chain (seq, trace_id, span_id, prev_hash, leaf_hash, appended_at) VALUES (1, $1, $2, decode($3, 'hex'), $4, $5)`, [
        c.trace_id, c.span_id, last!.leaf, leafHash(line), last!.appended_at,
      ]);
      const insert = client.query(
        `INSERT INTO llm_audit.records (seq, appended_at, line, prev_hash, leaf_hash, ${SQL_COLUMNS.map((k) => k.column).join(', ')})
         VALUES (1, $1, $2, decode($3, 'hex'), $4, ${SQL_COLUMNS.map((_, i) => `$${i + 5}`).join(', ')})`,
        [last!.appended_at, line, last!.leaf, leafHash(line), ...SQL_COLUMNS.map((k) => c[k.column as keyof typeof c])],
      );
      await expect(insert).rejects.toThrow(/seq 1: kind operation is not what the line holds \(call\)/);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }, 60_000);
});
