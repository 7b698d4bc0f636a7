/**
 * The ledger contract (issue 17 §1): the same tests against every backend, each opened through
 * the one factory (openLedgerWriter) and read through its LedgerSource: append and dedup by span,
 * recovery of what no signature covers, checkpoints (the due rule, signatures, C2SP notes),
 * retention, and verify catching each kind of tampering. Backend-specific behaviour (the file
 * ledger's locks, journals, torn tails; PostgreSQL's roles, triggers and txid stamps) is tested
 * in test/ledger and test/postgres.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../../src/ledger/checkpoint';
import { canonicalJson } from '../../../src/audit/canonical-json';
import { ZERO_HASH } from '../../../src/ledger/checkpoint';
import { leafHash } from '../../../src/ledger/merkle';
import type { ItemsOptions, LedgerSource } from '../../../src/ledger/backend';
import { resolvePolicy } from '../../../src/ledger/policy';
import { SerializedRecord, entryLine } from '../../../src/ledger/protocol';
import { consistencyPath } from '../../../src/ledger/proofs';
import { JournalWriter, journalKey, writePendingJournal } from '../../../src/ledger/file/pending-journal';
import { scanRecords } from '../../../src/ledger/query';
import { RECOVERED_ACTION } from '../../../src/ledger/record';
import { verifyLedger } from '../../../src/ledger/verify';
import { openLedgerWriter, type LedgerWriter } from '../../../src/ledger/writer';
import { ensureBuilt } from '../../ingest/helpers';
import { makeRecord, tempDir } from '../helpers';
import { DRIVERS, type LedgerUnderTest } from './drivers';

let spanCounter = 0;
/** A record of its own span. */
const call = (overrides: Parameters<typeof makeRecord>[0] = {}) => makeRecord({ span_id: 'c' + (++spanCounter).toString(16).padStart(15, '0'), ...overrides });

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { signingKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

async function records(ledger: LedgerUnderTest) {
  const source = ledger.source();
  try {
    const out = [];
    for await (const hit of scanRecords(source)) out.push({ seq: hit.seq, ...hit.record });
    return out;
  } finally {
    await source.close?.();
  }
}

async function verify(ledger: LedgerUnderTest, options: Parameters<typeof verifyLedger>[1] = {}) {
  const source = ledger.source();
  try {
    return await verifyLedger(source, options);
  } finally {
    await source.close?.();
  }
}

async function checkpointSizes(ledger: LedgerUnderTest): Promise<number[]> {
  const source = ledger.source();
  try {
    return (await source.checkpoints()).filter((c) => c.checkpoint.type === 'checkpoint').map((c) => c.checkpoint.tree_size);
  } finally {
    await source.close?.();
  }
}

beforeAll(() => ensureBuilt(), 600_000);

describe.each(DRIVERS)('the $name ledger', (driver) => {
  const open: LedgerUnderTest[] = [];
  const writers: LedgerWriter[] = [];
  async function fresh(): Promise<LedgerUnderTest> {
    const ledger = await driver.create();
    open.push(ledger);
    return ledger;
  }
  async function writer(ledger: LedgerUnderTest, options: Parameters<LedgerUnderTest['config']>[0] = {}): Promise<LedgerWriter> {
    const w = await openLedgerWriter(ledger.config(options));
    writers.push(w);
    return w;
  }
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close().catch(() => undefined);
    for (const l of open.splice(0)) await l.drop();
  });

  it('appends in order and leaves out a span already stored, in the batch, across batches and across writers', async () => {
    const ledger = await fresh();
    const [a, b, c] = [call({ request_id: 'a' }), call({ request_id: 'b' }), call({ request_id: 'c' })];
    const first = await writer(ledger);
    expect(await first.append([a, b])).toEqual({ stored: 2, duplicates: 0, firstSeq: 0, lastSeq: 1 });
    expect(await first.append([b, c, c])).toEqual({ stored: 1, duplicates: 2, firstSeq: 2, lastSeq: 2 });
    expect(await first.append([a])).toEqual({ stored: 0, duplicates: 1, firstSeq: 3, lastSeq: 2 });
    expect(first.size).toBe(3);
    await first.close();
    const second = await writer(ledger);
    expect(second.size).toBe(3);
    expect(await second.append([c, call({ request_id: 'd' })])).toEqual({ stored: 1, duplicates: 1, firstSeq: 3, lastSeq: 3 });
    // A record appended as known-new (`unique`: the exporter's own spans) is still found by a later append.
    const e = call({ request_id: 'e' });
    await Promise.all([second.append([e], { unique: true }), second.append([call({ request_id: 'f' })])]);
    expect(await second.append([e])).toMatchObject({ stored: 0, duplicates: 1 });
    await second.close();
    expect((await records(ledger)).map((r) => r.request_id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect((await verify(ledger)).records).toBe(6);
  });

  it('stores a serialised record with the very canonical JSON it carries, byte for byte, deduplicated like a plain one', async () => {
    const ledger = await fresh();
    const w = await writer(ledger);
    // Text that needs escaping and a non-integer number: the parts where two serialisers could differ.
    const plain = call({ request_id: 'plain "quoted" \\ \u0007 é 😀', cost_usd: 0.000123 });
    const serial = SerializedRecord.of(call({ request_id: 'serialised\n' }));
    expect(await w.append([plain, serial, SerializedRecord.of(serial.record)])).toEqual({ stored: 2, duplicates: 1, firstSeq: 0, lastSeq: 1 });
    expect(await w.append([serial])).toMatchObject({ stored: 0, duplicates: 1 });
    await w.close();
    const source = ledger.source();
    const lines: string[] = [];
    try {
      for await (const item of source.items()) if (item.kind === 'entry') lines.push(item.raw);
    } finally {
      await source.close?.();
    }
    expect(lines).toHaveLength(2);
    const prev1 = leafHash(lines[0]!).toString('hex');
    expect(lines[0]).toBe(canonicalJson({ seq: 0, prev: ZERO_HASH, record: plain }));
    expect(lines[1]).toBe(entryLine(1, prev1, serial.json));
    expect(lines[1]).toBe(canonicalJson({ seq: 1, prev: prev1, record: serial.record }));
    expect((await verify(ledger)).records).toBe(2);
  });

  it('rejects the append (not a throw at the caller) of a batch with a record that has no canonical JSON, storing none of it', async () => {
    const ledger = await fresh();
    const w = await writer(ledger);
    let appended: Promise<unknown> | undefined;
    expect(() => {
      appended = w.append([call(), call({ cost_usd: Number.NaN })]);
    }).not.toThrow();
    await expect(appended).rejects.toThrow(/non-finite number NaN/);
    expect(await w.append([call()])).toMatchObject({ stored: 1, firstSeq: 0 });
  });

  it('checkpoints when due (every N records), signed with the key, with the C2SP note; verify with the public key passes', async () => {
    const ledger = await fresh();
    const { signingKey, publicKey } = keys();
    const w = await writer(ledger, { checkpointEvery: 2 });
    for (let i = 0; i < 5; i++) await w.append([call()]);
    expect(await checkpointSizes(ledger)).toEqual([2, 4]);
    await w.close();
    expect(await checkpointSizes(ledger)).toEqual([2, 4, 5]);

    // A key newly configured on an unsigned ledger vouches from its newest checkpoint on (nothing better exists).
    const signed = await writer(ledger, { signingKey });
    await signed.append([call()]);
    // PostgreSQL signs in every append transaction, the file ledger (fsync none) when asked: either way size 6 is signed now.
    await signed.checkpoint();
    const source6 = ledger.source();
    try {
      const newest = (await source6.checkpoints()).at(-1)!.checkpoint;
      expect(newest).toMatchObject({ tree_size: 6, signature: expect.any(String) });
    } finally {
      await source6.close?.();
    }
    await signed.append([call()]);
    await signed.close();
    const result = await verify(ledger, { publicKey });
    expect(result.records).toBe(7);
    expect(result.recovered).toEqual([]);
    const source = ledger.source();
    try {
      const notes = await source.signedNotes();
      expect(notes.some((n) => n.text.includes('\n7\n'))).toBe(true);
    } finally {
      await source.close?.();
    }
  });

  it('appends the pending journals in its own lifecycle: at open, while open, at close; each span once', async () => {
    const ledger = await fresh();
    const dir = tempDir('journals-');
    const key = journalKey({ hashKey: 'contract-journal-key' });
    const [a, b, c, d] = [call(), call(), call(), call()];
    writePendingJournal(dir, [a, b], key);
    const failures: unknown[] = [];
    const w = await writer(ledger, { journals: { dir, key, report: () => {}, onFailure: (e) => failures.push(e) } });
    // At open, before anything else.
    expect(w.size).toBe(2);
    // While open: a journal another process leaves (one span of it stored already) is appended within the poll.
    await w.append([c]);
    writePendingJournal(dir, [c, d], key);
    const deadline = Date.now() + 5_000;
    while (w.size < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(w.size).toBe(4);
    // At close.
    const e = call();
    writePendingJournal(dir, [e, a], key);
    await w.close();
    expect((await records(ledger)).map((r) => r.span_id)).toEqual([a, b, c, d, e].map((r) => r.span_id));
    expect(readdirSync(join(dir, 'pending'))).toEqual([]);
    expect(failures).toEqual([]);
  });

  it("a shared writer (the exporter's) opens nothing before its first append, and while another writer holds the ledger its records reach it once, through its journal if need be", async () => {
    const ledger = await fresh();
    const config = ledger.config();
    const dir = config.backend === 'file' ? config.dir : tempDir('shared-');
    const key = journalKey({ hashKey: 'contract-journal-key' });
    const journals = { dir, key, report: () => {}, onFailure: (e: unknown) => failures.push(e) };
    const failures: unknown[] = [];
    const sharedWriter = async (journal: JournalWriter) => {
      const w = await writer(ledger, { journals, shared: { journal, dir, trail: 'contract', postgres: config.backend === 'postgres' } });
      expect(w.size).toBe(0);
      return w;
    };
    // Made, not opened: the file ledger's directory is not even created.
    const idle = await sharedWriter(new JournalWriter(dir, key));
    if (config.backend === 'file') expect(existsSync(dir)).toBe(false);
    await idle.close();
    const holder = await writer(ledger, { journals });
    await holder.append([call()]);
    const journal = new JournalWriter(dir, key);
    const shared = await sharedWriter(journal);
    const [a, b] = [call(), call()];
    const outcome = await shared.append([a, b], { unique: true });
    // The file ledger's lock is held: journaled. PostgreSQL has no lock: stored.
    expect(outcome.stored + (outcome.journaled ?? 0)).toBe(2);
    expect(outcome.journaled ?? 0).toBe(config.backend === 'file' ? 2 : 0);
    journal.end();
    await shared.close();
    await holder.close();
    expect((await records(ledger)).map((r) => r.span_id).slice(1)).toEqual([a, b].map((r) => r.span_id));
    const pending = join(dir, 'pending');
    expect(existsSync(pending) ? readdirSync(pending) : []).toEqual([]);
    expect(failures).toEqual([]);
  });

  it("a witness's consistency proof reads only the records after the checkpoint the witness knows", async () => {
    const ledger = await fresh();
    const w = await writer(ledger, { checkpointEvery: 40 });
    for (let i = 0; i < 10; i++) await w.append(Array.from({ length: 5 }, () => call()));
    await w.close();
    expect(await checkpointSizes(ledger)).toEqual([40, 50]);
    const source = ledger.source();
    try {
      const old = (await source.checkpoints()).find((c) => c.checkpoint.tree_size === 40)!.checkpoint;
      // Every entry the proof reads passes here.
      let read = 0;
      const counted: LedgerSource = Object.assign(Object.create(source) as LedgerSource, {
        async *items(options?: ItemsOptions) {
          for await (const item of source.items(options)) {
            read++;
            yield item;
          }
        },
      });
      // A source that keeps the leaf hashes beside the lines (PostgreSQL's chain table) reads none.
      const walks = source.leafHashes === undefined;
      const resumed = await consistencyPath(counted, 40, 50, old);
      expect(read).toBe(walks ? 10 : 0);
      read = 0;
      // The same path as from a walk of the whole chain.
      expect(resumed).toEqual(await consistencyPath(counted, 40, 50));
      expect(read).toBe(walks ? 50 : 0);
    } finally {
      await source.close?.();
    }
  });

  it('a writer with the key marks records it finds after its newest signed checkpoint before appending, and continues the chain', async () => {
    const ledger = await fresh();
    const { signingKey, publicKey } = keys();
    const first = await writer(ledger, { signingKey });
    await first.append([call(), call()]);
    await first.close();
    // Records no signing writer wrote (a crash before the checkpoint, or an insider with the writer's access but not the key).
    const insider = await writer(ledger);
    await insider.append([call({ request_id: 'unsigned-1' }), call({ request_id: 'unsigned-2' })]);
    await insider.close();
    const next = await writer(ledger, { signingKey });
    expect(await next.append([call({ request_id: 'after' })])).toMatchObject({ stored: 1, firstSeq: 5 });
    await next.close();
    const stored = await records(ledger);
    expect(stored[4]).toMatchObject({ seq: 4, action: RECOVERED_ACTION, metadata: expect.objectContaining({ from_seq: 2, to_seq: 3 }) });
    expect(stored[5]).toMatchObject({ seq: 5, request_id: 'after' });
    const result = await verify(ledger, { publicKey });
    expect(result.recovered).toEqual([expect.objectContaining({ from_seq: 2, to_seq: 3, marker_seq: 4 })]);
    await expect(verify(ledger, { publicKey, strict: true })).rejects.toMatchObject({ code: 'LEDGER_RECORDS_RECOVERED' });
  });

  it('retention removes the expired oldest days under a tombstone; verify passes and appending continues after it', async () => {
    const ledger = await fresh();
    let now = new Date('2026-01-01T10:00:00.000Z');
    const w = await writer(ledger, { clock: () => now, checkpointEvery: 2 });
    for (const day of ['2026-01-01', '2026-01-02']) {
      now = new Date(`${day}T10:00:00.000Z`);
      await w.append([call({ timestamp: now.toISOString() }), call({ timestamp: now.toISOString() })]);
    }
    now = new Date();
    await w.append([call({ timestamp: now.toISOString(), request_id: 'kept' })]);
    await w.close();
    const done = await ledger.retention({ policy: resolvePolicy('gdpr', { maxAge: '30d' }) });
    expect(done.tombstone).toMatchObject({ type: 'tombstone', tree_size: 4 });
    expect((await records(ledger)).map((r) => r.request_id)).toEqual(['kept']);
    const after = await writer(ledger);
    expect(await after.append([call({ request_id: 'later' })])).toMatchObject({ stored: 1, firstSeq: 5 });
    await after.close();
    const result = await verify(ledger);
    expect(result.records).toBe(2);
    expect(result.treeSize).toBe(6);
  });

  const TAMPERING: Array<{ what: string; code: RegExp; act: (l: LedgerUnderTest) => Promise<void> }> = [
    { what: 'a record changed', code: /^LEDGER_(RECORD_HASH_MISMATCH|ROW_MISMATCH|CHAIN_BROKEN|CHECKPOINT_MISMATCH)$/, act: (l) => l.alterLine(2, (line) => line.replace('"cost_usd":0.001', '"cost_usd":0.5')) },
    { what: 'a record removed', code: /^LEDGER_(RECORD_MISSING|CHAIN_BROKEN|RECORD_HASH_MISMATCH)$/, act: (l) => l.removeEntry(2) },
    { what: 'the newest record removed', code: /^LEDGER_(TRUNCATED|RECORD_MISSING|CHECKPOINT_MISMATCH)$/, act: (l) => l.removeEntry(5) },
  ];
  it.each(TAMPERING)('verify catches $what', async ({ code, act }) => {
    const ledger = await fresh();
    const w = await writer(ledger);
    for (let i = 0; i < 6; i++) await w.append([call()]);
    await w.close();
    expect((await verify(ledger)).records).toBe(6);
    await act(ledger);
    await expect(verify(ledger)).rejects.toMatchObject({ code: expect.stringMatching(code) });
  });
});
