/**
 * Proofs on PostgreSQL read what they need, not the whole chain: the leaf hashes from the chain
 * table, and the one proven entry walked from the newest checkpoint before it. The proofs must be
 * exactly those the chain walk gives (the same source with its seek methods hidden).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerItem, LedgerSource } from '../../src/ledger/backend';
import { newestCheckpoint, proveConsistency, proveInclusion } from '../../src/ledger/proofs';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { makeRecord } from '../ledger/helpers';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';

const RECORDS = 500;
const EVERY = 50;
const BATCH = 25;

/** The source, counting the entries its items() yields. */
function counting(source: PostgresLedgerSource): { source: LedgerSource; read: () => number } {
  let read = 0;
  const wrapped = Object.assign(Object.create(Object.getPrototypeOf(source) as object) as PostgresLedgerSource, source);
  wrapped.items = async function* (options) {
    for await (const item of source.items(options)) {
      read++;
      yield item as LedgerItem;
    }
  };
  return { source: wrapped, read: () => read };
}

/** The same source as a reader that only walks the chain (what every source did before). */
function walking(source: PostgresLedgerSource): LedgerSource {
  return Object.assign(Object.create(Object.getPrototypeOf(source) as object) as PostgresLedgerSource, source, {
    leafHashes: undefined,
    seqOfRequest: undefined,
  });
}

describe('PostgreSQL proofs', () => {
  let db: TestDatabase;
  let pg: PostgresLedgerSource;

  beforeAll(async () => {
    postgresUrl();
    db = await createTestDatabase('proofs');
    const writer = await PostgresLedger.open({ url: db.url, checkpointEvery: EVERY });
    for (let i = 0; i < RECORDS; i += BATCH) {
      await writer.append(
        Array.from({ length: BATCH }, (_, j) => makeRecord({ request_id: `p${i + j}`, span_id: (0x10000 + i + j).toString(16).padStart(16, '0') })),
      );
    }
    await writer.close();
    pg = new PostgresLedgerSource(db.url);
  }, 120_000);
  afterAll(async () => {
    await pg?.close?.();
    await db?.drop();
  });

  it('an inclusion proof reads at most one checkpoint interval of entries, and is the proof the chain walk gives', async () => {
    for (const seq of [0, 1, 49, 50, 137, 260, 499]) {
      const { source, read } = counting(pg);
      const proof = await proveInclusion(source, { seq });
      expect(JSON.stringify(proof)).toBe(JSON.stringify(await proveInclusion(walking(pg), { seq })));
      expect(proof.leaf_index).toBe(seq);
      // A checkpoint is written at the end of the append that reaches EVERY records since the last.
      expect(read(), `seq ${seq}`).toBeLessThanOrEqual(EVERY + BATCH);
      expect(read()).toBeGreaterThan(0);
    }
    const { source, read } = counting(pg);
    const proof = await proveInclusion(source, { requestId: 'p451' });
    expect(proof.leaf_index).toBe(451);
    expect(JSON.stringify(proof)).toBe(JSON.stringify(await proveInclusion(walking(pg), { requestId: 'p451' })));
    expect(read()).toBeLessThanOrEqual(EVERY + BATCH);
  });

  it('a record that is not there is not found, on either path', async () => {
    await expect(proveInclusion(pg, { requestId: 'nope' })).rejects.toMatchObject({ code: 'LEDGER_RECORD_NOT_FOUND' });
    await expect(proveInclusion(pg, { seq: RECORDS + 3 })).rejects.toMatchObject({ code: 'LEDGER_RECORD_NOT_FOUND' });
  });

  it('a consistency proof reads no entry, and is the proof the chain walk gives', async () => {
    const checkpoints = (await pg.checkpoints()).map((c) => c.checkpoint);
    const newest = await newestCheckpoint(pg);
    expect(newest.tree_size).toBe(RECORDS);
    for (const old of checkpoints.filter((c) => c.tree_size > 0 && c.tree_size < RECORDS).slice(0, 4)) {
      const { source, read } = counting(pg);
      const proof = await proveConsistency(source, old, newest);
      expect(proof.path.length).toBeGreaterThan(0);
      expect(JSON.stringify(proof)).toBe(JSON.stringify(await proveConsistency(walking(pg), old, newest)));
      expect(read()).toBe(0);
    }
    // A checkpoint claiming more records than the chain holds: truncated, as the chain walk says.
    const claimed = { ...newest, tree_size: RECORDS + 10 };
    await expect(proveConsistency(pg, checkpoints[1]!, claimed)).rejects.toThrow(`has only ${RECORDS} records, the checkpoint says ${RECORDS + 10}`);
    await expect(proveConsistency(walking(pg), checkpoints[1]!, claimed)).rejects.toThrow(`has only ${RECORDS} records, the checkpoint says ${RECORDS + 10}`);
  });
});
