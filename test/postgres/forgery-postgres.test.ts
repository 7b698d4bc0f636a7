/**
 * The PostgreSQL ledger against an insider with the writer role (issue 14): it cannot record a
 * retention tombstone (only llm_audit.apply_retention() can), verify --public-key refuses an
 * unsigned one however it got there, and a chain row whose span id was changed is named.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { verifyLedger } from '../../src/ledger/verify';
import { forgeTombstone, makeRecord } from '../ledger/helpers';
import { createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

async function run(url: string, sql: string, params: unknown[] = [], replica = false): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    if (replica) await client.query(`SET session_replication_role = replica`);
    await client.query(sql, params);
  } finally {
    await client.end();
  }
}

async function verify(url: string, publicKey?: ReturnType<typeof createPublicKey>) {
  const source = new PostgresLedgerSource(url);
  try {
    return await verifyLedger(source, publicKey ? { publicKey } : {});
  } finally {
    await source.close();
  }
}

const { privatePem, publicPem } = generateSigningKeyPair();
const publicKey = createPublicKey(publicPem);
const databases: TestDatabase[] = [];

/** A signed ledger of three records on each of three days, in a database of its own. */
async function signedDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase('forge');
  databases.push(db);
  let now = new Date('2025-01-01T12:00:00.000Z');
  const writer = await PostgresLedger.open({ url: db.url, clock: () => now, checkpointEvery: 2, signingKey: createPrivateKey(privatePem) });
  for (const [i, day] of ['2025-01-01', '2025-01-02', '2025-01-03'].entries()) {
    now = new Date(`${day}T12:00:00.000Z`);
    await writer.append([0, 1, 2].map((k) => makeRecord({ timestamp: now.toISOString(), span_id: `${i}${k}`.padStart(16, 'a') })));
  }
  await writer.close();
  return db;
}

describe('PostgreSQL ledger against the writer role', () => {
  beforeAll(() => {
    postgresUrl();
  });
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  it('the writer role cannot record a tombstone, under any type; verify --public-key refuses an unsigned one', async () => {
    const db = await signedDatabase();
    const asWriter = db.urlAs(await loginRole(db, 'llm_audit_writer'));
    const source = new PostgresLedgerSource(db.url);
    const forged = await forgeTombstone(source, 6, [
      { name: 'records_20250101', first_seq: 0, last_seq: 2, newest_timestamp: '2025-01-01T12:00:00.000Z' },
      { name: 'records_20250102', first_seq: 3, last_seq: 5, newest_timestamp: '2025-01-02T12:00:00.000Z' },
    ]);
    await source.close();
    const line = canonicalJson(forged);
    const insert = `INSERT INTO llm_audit.checkpoints (line, type, tree_size) VALUES ($1, $2, 6)`;
    await expect(run(asWriter, insert, [line, 'tombstone'])).rejects.toThrow(/only llm_audit\.apply_retention\(\) may record a retention tombstone/);
    await expect(run(asWriter, insert, [line, 'checkpoint'])).rejects.toThrow(/type and tree_size columns must be those of the line/);
    const disguised = canonicalJson({ ...forged, type: 'checkpoint' });
    await expect(run(asWriter, insert, [disguised, 'checkpoint'])).rejects.toThrow(/only llm_audit\.apply_retention\(\)/);
    expect((await verify(db.url, publicKey)).records).toBe(9);

    // A superuser can get past any trigger; the signature is what catches it then.
    await run(db.url, insert, [line, 'tombstone'], true);
    await expect(verify(db.url, publicKey)).rejects.toMatchObject({ code: 'LEDGER_TOMBSTONE_UNSIGNED', message: expect.stringMatching(/llm_audit\.checkpoints id \d+ is a retention tombstone/) });
    // Without a key: the partitions it lists are still there, which apply_retention() (one transaction) never leaves.
    await expect(verify(db.url)).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_INVALID',
      message: expect.stringMatching(/records_20250101, records_20250102 are listed as removed by a retention tombstone but still present/),
    });
  });

  it('verify names a chain row whose span id was changed (the dedup key of re-sent spans)', async () => {
    const db = await signedDatabase();
    expect((await verify(db.url, publicKey)).records).toBe(9);
    await run(db.url, `UPDATE llm_audit.chain SET span_id = 'ffffffffffffffff' WHERE seq = 7`, [], true);
    await expect(verify(db.url)).rejects.toMatchObject({
      code: 'LEDGER_ROW_MISMATCH',
      message: expect.stringMatching(/\(seq 7\): its llm_audit\.chain entry has trace_id \w+ span_id ffffffffffffffff, not the record's/),
    });
  });
});
