/**
 * Records the PostgreSQL writer did not sign (issue 14, item 4, PostgreSQL backend). With a signing
 * key every append transaction signs a checkpoint, so rows after the newest signed checkpoint, or
 * rows whose transaction wrote none, were not written by a signing writer: an insider with the
 * writer role inserting correctly chained rows (the triggers allow that), or a writer without the
 * key. The next signing writer must not sign over them silently (it marks them with a
 * `ledger.recovered` record, as the file ledger does at startup), and verify reports them whether
 * or not a writer ran since (and fails under --strict).
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { verifyLedger, type VerifyOptions } from '../../src/ledger/verify';
import { makeRecord } from '../ledger/helpers';
import { createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

const { privatePem, publicPem } = generateSigningKeyPair();
const signingKey = createPrivateKey(privatePem);
const publicKey = createPublicKey(publicPem);
const databases: TestDatabase[] = [];

const record = (request: string) => makeRecord({ request_id: request, span_id: randomBytes(8).toString('hex') });

async function verify(url: string, options: VerifyOptions = {}) {
  const source = new PostgresLedgerSource(url);
  try {
    return await verifyLedger(source, options);
  } finally {
    await source.close();
  }
}

/** A signed ledger of `n` records, and the URL of a login role with only the writer role's rights. */
async function signedLedger(n: number): Promise<{ db: TestDatabase; asWriter: string }> {
  const db = await createTestDatabase('recov');
  databases.push(db);
  const writer = await PostgresLedger.open({ url: db.url, signingKey });
  for (let i = 0; i < n; i++) await writer.append([record(`ok-${i}`)]);
  await writer.close();
  return { db, asWriter: db.urlAs(await loginRole(db, 'llm_audit_writer')) };
}

/** The insider: the writer's own code under the writer role, without the key, appending correctly chained rows. */
async function insiderAppends(url: string, count: number): Promise<void> {
  const insider = await PostgresLedger.open({ url, checkpointEvery: 1_000_000 });
  await insider.append(Array.from({ length: count }, (_, i) => record(`forged-${i}`)));
  // No close(): it would write a (unsigned) checkpoint; an insider need not.
  await (insider as unknown as { pool: { end(): Promise<void> } }).pool.end();
}

describe('PostgreSQL: rows no signing writer wrote', () => {
  beforeAll(() => {
    postgresUrl();
  });
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  it('a signing writer that starts after an insider inserted rows marks them recovered; verify reports them, --strict fails', async () => {
    const { db, asWriter } = await signedLedger(3);
    await insiderAppends(asWriter, 2);
    const next = await PostgresLedger.open({ url: db.url, signingKey });
    await next.append([record('after')]);
    await next.close();

    const result = await verify(db.url, { publicKey });
    expect(result.recovered).toEqual([{ from_seq: 3, to_seq: 4, marker_seq: 5, at: expect.any(String) }]);
    expect(result.warnings.join('\n')).toMatch(/records 3\.\.4 were recovered at startup/);
    await expect(verify(db.url, { publicKey, strict: true })).rejects.toMatchObject({ code: 'LEDGER_RECORDS_RECOVERED' });
  });

  it('a signing writer already running does not sign over rows an insider inserted meanwhile', async () => {
    const db = await createTestDatabase('recov');
    databases.push(db);
    const asWriter = db.urlAs(await loginRole(db, 'llm_audit_writer'));
    const running = await PostgresLedger.open({ url: db.url, signingKey });
    await running.append([record('a'), record('b')]);
    await insiderAppends(asWriter, 1);
    await running.append([record('c')]);
    await running.close();

    const result = await verify(db.url, { publicKey });
    expect(result.recovered).toMatchObject([{ from_seq: 2, to_seq: 2, marker_seq: 3 }]);
    await expect(verify(db.url, { publicKey, strict: true })).rejects.toMatchObject({ code: 'LEDGER_RECORDS_RECOVERED' });
  });

  it('verify names rows whose transaction wrote no signed checkpoint, even when no writer ran since', async () => {
    const { db, asWriter } = await signedLedger(2);
    expect((await verify(db.url, { publicKey, strict: true })).warnings.join('\n')).not.toMatch(/no signed checkpoint/);
    await insiderAppends(asWriter, 3);
    const result = await verify(db.url, { publicKey });
    expect(result.records).toBe(5);
    expect(result.warnings.join('\n')).toMatch(/records 2\.\.4 were written by a transaction that wrote no signed checkpoint/);
    await expect(verify(db.url, { publicKey, strict: true })).rejects.toMatchObject({
      code: 'LEDGER_RECORDS_UNSIGNED',
      message: expect.stringMatching(/records 2\.\.4/),
    });
  });

  it('a signing writer leaves no unsigned window: every transaction of a concurrent load signs its rows', async () => {
    const db = await createTestDatabase('recov');
    databases.push(db);
    const writers = await Promise.all([0, 1].map(() => PostgresLedger.open({ url: db.url, signingKey })));
    await Promise.all(writers.flatMap((w, k) => Array.from({ length: 20 }, (_, i) => w.append([record(`w${k}-${i}`)]))));
    for (const w of writers) await w.close();
    const result = await verify(db.url, { publicKey, strict: true });
    expect(result.records).toBe(40);
    expect(result.recovered).toEqual([]);
  });
});
