/**
 * Migration 9: the chain and records checks run once per INSERT statement over all its new rows
 * (a transition table) instead of once per row. What the database enforces must be unchanged: a
 * multi-row INSERT by the writer role with one bad row anywhere in it is refused whole, with the
 * message naming that row, and a good multi-row INSERT is accepted.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQL_COLUMNS } from '../../src/ledger/fields';
import { leafHash } from '../../src/ledger/merkle';
import { entryLine, SerializedRecord } from '../../src/ledger/protocol';
import { derivedColumns } from '../../src/ledger/postgres/rows';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord } from '../ledger/helpers';
import { adminQuery, createTestDatabase, loginRole, type TestDatabase } from '../support/postgres';

let db: TestDatabase;
let asWriter: string;
const AT = '2026-03-01T12:00:00.000Z';

beforeAll(async () => {
  db = await createTestDatabase('statement_checks');
  asWriter = db.urlAs(await loginRole(db, 'llm_audit_writer'));
  const ledger = await PostgresLedger.open({ url: asWriter });
  await ledger.append([0, 1, 2].map(() => makeRecord({ span_id: randomBytes(8).toString('hex'), timestamp: AT })));
  await ledger.close();
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

interface Row {
  seq: number;
  prev: string;
  line: string;
  leaf: string;
  record: ReturnType<typeof makeRecord>;
}

/** `n` correctly chained rows after the ledger's last entry. */
async function nextRows(n: number): Promise<{ rows: Row[]; appendedAt: Date }> {
  const [head] = await adminQuery<{ seq: string; leaf: string; at: Date }>(
    db.url,
    `SELECT seq::text AS seq, encode(leaf_hash, 'hex') AS leaf, appended_at AS at FROM llm_audit.chain ORDER BY seq DESC LIMIT 1`,
  );
  let prev = head!.leaf;
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const seq = Number(head!.seq) + 1 + i;
    const record = makeRecord({ span_id: randomBytes(8).toString('hex'), timestamp: AT });
    const line = entryLine(seq, prev, SerializedRecord.of(record).json);
    const leaf = leafHash(line).toString('hex');
    rows.push({ seq, prev, line, leaf, record });
    prev = leaf;
  }
  return { rows, appendedAt: head!.at };
}

async function asWriterRun(work: (c: Client) => Promise<unknown>): Promise<unknown> {
  const client = new Client({ connectionString: asWriter });
  await client.connect();
  try {
    await client.query('BEGIN');
    const out = await work(client);
    await client.query('COMMIT');
    return out;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

const insertChain = (c: Client, rows: readonly Row[], at: Date) =>
  c.query(
    `INSERT INTO llm_audit.chain (seq, trace_id, span_id, prev_hash, leaf_hash, appended_at)
     SELECT u.seq, u.t, u.s, decode(u.prev, 'hex'), decode(u.leaf, 'hex'), $6 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(seq, t, s, prev, leaf)`,
    [rows.map((r) => r.seq), rows.map((r) => r.record.trace_id), rows.map((r) => r.record.span_id), rows.map((r) => r.prev), rows.map((r) => r.leaf), at],
  );

/** One multi-row INSERT into records (VALUES list). */
const insertRecords = (c: Client, rows: readonly Row[], at: Date) => {
  const width = 5 + SQL_COLUMNS.length;
  const values: unknown[] = [];
  const tuples = rows.map((r, i) => {
    const d = derivedColumns(r.record);
    values.push(r.seq, at, r.line, r.prev, r.leaf, ...SQL_COLUMNS.map((k) => d[k.column]));
    const p = (k: number) => `$${i * width + k + 1}`;
    return `(${p(0)}::bigint, ${p(1)}::timestamptz, ${p(2)}, decode(${p(3)}, 'hex'), decode(${p(4)}, 'hex'), ${SQL_COLUMNS.map((k, j) => `${p(5 + j)}::${k.type}`).join(', ')})`;
  });
  return c.query(
    `INSERT INTO llm_audit.records (seq, appended_at, line, prev_hash, leaf_hash, ${SQL_COLUMNS.map((k) => k.column).join(', ')}) VALUES ${tuples.join(', ')}`,
    values,
  );
};

const chainSize = async () => Number((await adminQuery<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM llm_audit.chain`))[0]!.n);

describe('chain and records checks per statement (migration 9)', () => {
  it('refuses a multi-row chain INSERT whose middle row does not chain, or leaves a gap, and keeps none of it', async () => {
    const before = await chainSize();
    const { rows, appendedAt } = await nextRows(4);
    const broken = rows.map((r, i) => (i === 2 ? { ...r, prev: 'ab'.repeat(32) } : r));
    await expect(asWriterRun((c) => insertChain(c, broken, appendedAt))).rejects.toThrow(new RegExp(`seq ${rows[2]!.seq} does not chain to seq ${rows[1]!.seq}`));
    const gap = [rows[0]!, rows[1]!, rows[3]!];
    await expect(asWriterRun((c) => insertChain(c, gap, appendedAt))).rejects.toThrow(new RegExp(`seq ${rows[3]!.seq} does not follow the last entry \\(seq ${rows[2]!.seq} missing\\)`));
    // The first row of a statement is checked against the stored chain.
    await expect(asWriterRun((c) => insertChain(c, [{ ...rows[0]!, prev: 'cd'.repeat(32) }, rows[1]!], appendedAt))).rejects.toThrow(
      new RegExp(`seq ${rows[0]!.seq} does not chain to seq ${rows[0]!.seq - 1}`),
    );
    expect(await chainSize()).toBe(before);
  }, 60_000);

  it('refuses a multi-row records INSERT with one bad row (hash, prev/seq, no chain row) and accepts a good one', async () => {
    const { rows, appendedAt } = await nextRows(3);
    const withChain = (bad: Row[]) => asWriterRun(async (c) => {
      await insertChain(c, rows, appendedAt);
      await insertRecords(c, bad, appendedAt);
    });
    const otherLeaf = rows.map((r, i) => (i === 1 ? { ...r, leaf: rows[0]!.leaf } : r));
    await expect(withChain(otherLeaf)).rejects.toThrow(new RegExp(`seq ${rows[1]!.seq}: leaf_hash is not SHA-256`));
    // A line whose seq is another's, with its own correct hash.
    const wrongSeqLine = entryLine(rows[0]!.seq, rows[2]!.prev, SerializedRecord.of(rows[2]!.record).json);
    const wrongSeq = rows.map((r, i) => (i === 2 ? { ...r, line: wrongSeqLine, leaf: leafHash(wrongSeqLine).toString('hex') } : r));
    await expect(withChain(wrongSeq)).rejects.toThrow(new RegExp(`seq ${rows[2]!.seq}: prev or seq do not match the line`));
    // Records rows without their chain rows.
    await expect(asWriterRun((c) => insertRecords(c, rows, appendedAt))).rejects.toThrow(new RegExp(`seq ${rows[0]!.seq} has no matching chain entry`));

    const before = await chainSize();
    await withChain(rows);
    expect(await chainSize()).toBe(before + 3);
    expect(await verifyLedger(new PostgresLedgerSource(db.url), {})).toMatchObject({ records: before + 3 });
  }, 60_000);
});
