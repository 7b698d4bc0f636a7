import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import type { CheckpointEntry } from '../../src/ledger/backend';
import { generateSigningKeyPair, readCheckpointFile } from '../../src/ledger/checkpoint';
import { LedgerError } from '../../src/ledger/errors';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { leafHash } from '../../src/ledger/merkle';
import { proveInclusion } from '../../src/ledger/proofs';
import { verifyLedger, type VerifyOptions } from '../../src/ledger/verify';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { buildLedger, readLines, tempDir, writeLines } from './helpers';

const SEGMENT = 'segments/2026-03-01.jsonl';
const clock = () => new Date('2026-03-01T12:00:00Z');

async function ledger(count = 12, every = 5, signingKey?: ReturnType<typeof createPrivateKey>) {
  const dir = tempDir();
  await buildLedger(dir, count, { clock, checkpointEvery: every, ...(signingKey ? { signingKey } : {}) }, (i) => ({ input_tokens: 100 + i }));
  return { dir, segment: join(dir, SEGMENT), checkpoints: join(dir, 'checkpoints.jsonl') };
}

async function failure(dir: string, options: VerifyOptions = {}): Promise<LedgerError> {
  try {
    await verifyLedger(new FileLedgerSource(dir), options);
  } catch (error) {
    expect(error).toBeInstanceOf(LedgerError);
    return error as LedgerError;
  }
  throw new Error('verification passed but should have failed');
}

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

/** Re-chains lines after editing: what an attacker who knows the format can do without the key. */
function rechain(lines: string[]): string[] {
  let prev = '0'.repeat(64);
  return lines.map((line) => {
    const entry = JSON.parse(line);
    entry.prev = prev;
    const out = canonicalJson(entry);
    prev = leafHash(out).toString('hex');
    return out;
  });
}

describe('verify', () => {
  it('passes an intact ledger and reports what it checked', async () => {
    const { dir } = await ledger();
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result).toMatchObject({ records: 12, treeSize: 12, removed: 0, newestCheckpointSize: 12 });
    expect(result.checkpointsMatched).toBe(3); // sizes 5, 10 and the final 12
    expect(result.warnings.join('\n')).toMatch(/not signed/);
  });

  /** Six records; in line 4 (seq 3) a stored U+FFFD replaced by the invalid UTF-8 byte 0xff, which decodes to U+FFFD again. */
  async function ledgerWithInvalidByte(): Promise<string> {
    const dir = tempDir();
    await buildLedger(dir, 6, { clock, checkpointEvery: 100 }, (i) => ({ user_id: i === 3 ? 'user \ufffd 3' : `user ${i}` }));
    const segment = join(dir, SEGMENT);
    const bytes = readFileSync(segment);
    const at = bytes.indexOf(Buffer.from('\ufffd', 'utf8'));
    expect(at).toBeGreaterThan(0);
    // Decoded, the altered file reads exactly as before: only its bytes differ.
    const altered = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]);
    expect(altered.toString('utf8')).toBe(bytes.toString('utf8'));
    writeFileSync(segment, altered);
    return dir;
  }

  it('hashes the bytes on disk: a U+FFFD replaced by an invalid UTF-8 byte (which decodes to U+FFFD again) is caught', async () => {
    const dir = await ledgerWithInvalidByte();
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_RECORD_HASH_MISMATCH');
    expect(error.location).toMatchObject({ line: 4, seq: 3 });
  });

  it('a writer resuming the chain hashes the bytes on disk too: it refuses to append after a line altered that way', async () => {
    const dir = await ledgerWithInvalidByte();
    // Without checkpoints the writer walks every line to resume the chain (as after a crash it
    // walks those after the newest checkpoint): line 4's bytes no longer hash to what line 5 chains to.
    rmSync(join(dir, 'checkpoints.jsonl'));
    const opened = FileLedger.open({ dir, fsync: 'none', clock });
    await expect(opened).rejects.toMatchObject({ code: 'LEDGER_RECORD_HASH_MISMATCH', location: { line: 4, seq: 3 } });
  });

  it('an inclusion proof walks the bytes on disk too: none is made past a line altered that way', async () => {
    const dir = await ledgerWithInvalidByte();
    await expect(proveInclusion(new FileLedgerSource(dir), { seq: 5 })).rejects.toMatchObject({ code: 'LEDGER_RECORD_HASH_MISMATCH', location: { line: 4, seq: 3 } });
  });

  it('names the record whose byte changed', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines[7] = lines[7]!.replace('"input_tokens":107', '"input_tokens":108');
    writeLines(segment, lines);
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_RECORD_HASH_MISMATCH');
    expect(error.location).toMatchObject({ file: SEGMENT, line: 8, seq: 7 });
    expect(error.message).toContain(`${SEGMENT}:8 (seq 7)`);
  });

  it('names a line that no longer parses, and one that is no longer canonical', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    writeLines(segment, lines.map((l, i) => (i === 3 ? l.replace('{"prev"', '{"prev":') : l)));
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_MALFORMED', location: { line: 4 } });
    writeLines(segment, lines.map((l, i) => (i === 3 ? l.replace('"seq":3', '"seq": 3') : l)));
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_NOT_CANONICAL', location: { line: 4, seq: 3 } });
  });

  it('catches a deleted record', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines.splice(6, 1);
    writeLines(segment, lines);
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_RECORD_MISSING');
    expect(error.location).toMatchObject({ line: 7, seq: 7 });
    expect(error.message).toMatch(/seq 6\) missing/);
  });

  it('catches an inserted record, naming the forged line', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    const forged = JSON.parse(lines[4]!);
    forged.record.user_id = 'mallory';
    // Inserted before the genuine seq 4, with a correct seq and prev: the chain after it exposes it.
    lines.splice(4, 0, canonicalJson(forged));
    writeLines(segment, lines);
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_RECORD_INSERTED');
    expect(error.location).toMatchObject({ line: 5, seq: 4 });
  });

  it('catches an inserted record placed after the genuine one', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    const forged = JSON.parse(lines[4]!);
    forged.record.user_id = 'mallory';
    lines.splice(5, 0, canonicalJson(forged));
    writeLines(segment, lines);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_INSERTED', location: { line: 6, seq: 4 } });
  });

  it('catches reordered records', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    writeLines(segment, lines);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_REORDERED', location: { line: 3, seq: 3 } });
  });

  it('catches a duplicated line', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines.splice(9, 0, lines[8]!);
    writeLines(segment, lines);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_DUPLICATE', location: { line: 10, seq: 8 } });
  });

  it('catches a duplicate replayed far from its original', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines.push(lines[1]!);
    writeLines(segment, lines);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_RECORD_DUPLICATE', location: { line: 13, seq: 1 } });
  });

  it('catches a change to the last record through the final checkpoint', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines[11] = lines[11]!.replace('"input_tokens":111', '"input_tokens":1');
    writeLines(segment, lines);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_CHECKPOINT_MISMATCH', location: { line: 12, seq: 11 } });
  });

  it('catches an edit that was re-chained, through the checkpoints', async () => {
    const { dir, segment } = await ledger();
    const lines = readLines(segment);
    lines[2] = lines[2]!.replace('"user_id":"alice"', '"user_id":"bob"');
    writeLines(segment, rechain(lines));
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_CHECKPOINT_MISMATCH');
    expect(error.message).toMatch(/tree size 5/);
  });

  it('catches a truncated tail against the ledger checkpoints', async () => {
    const { dir, segment } = await ledger();
    writeLines(segment, readLines(segment).slice(0, 9));
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_TRUNCATED');
    expect(error.location).toMatchObject({ line: 9, seq: 8 });
    expect(error.message).toMatch(/3 records \(seq 9\.\.11\)/);
  });

  it('catches a truncated tail whose checkpoints were truncated too, with a checkpoint kept elsewhere', async () => {
    const { dir, segment, checkpoints } = await ledger();
    const outside = join(tempDir(), 'kept.json');
    writeFileSync(outside, readFileSync(checkpoints));
    writeLines(segment, readLines(segment).slice(0, 10));
    writeLines(checkpoints, readLines(checkpoints).slice(0, 2)); // sizes 5 and 10 remain
    // The segment's summary, written when the writer closed, still says 12 lines...
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_SUMMARY_MISMATCH', message: expect.stringMatching(/has \d+ bytes in 12 lines/) });
    // ...so the insider removes it too (a missing summary is only a note: ledgers from before summaries have none).
    rmSync(join(dir, 'summaries'), { recursive: true });
    const result = await verifyLedger(new FileLedgerSource(dir)); // self-consistent on its own...
    expect(result.treeSize).toBe(10);
    const external: CheckpointEntry[] = readCheckpointFile(outside).map((checkpoint) => ({ checkpoint, where: outside }));
    const error = await failure(dir, { external }); // ...but not against the external checkpoint.
    expect(error.code).toBe('LEDGER_TRUNCATED');
    expect(error.message).toContain(outside);
    expect(error.location).toMatchObject({ line: 10, seq: 9 });
  });

  it('reports a torn tail with the line and what to do', async () => {
    const { dir, segment } = await ledger();
    appendFileSync(segment, '{"prev":"00');
    const error = await failure(dir);
    expect(error.code).toBe('LEDGER_TORN_TAIL');
    expect(error.location).toMatchObject({ file: SEGMENT, line: 13 });
    expect(error.message).toMatch(/llm-audit repair/);
  });

  it('checks signatures with the public key', async () => {
    const { privateKey, publicKey } = keys();
    const { dir, checkpoints } = await ledger(12, 5, privateKey);
    const ok = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    expect(ok.signaturesVerified).toBe(3);
    expect(ok.warnings).toEqual([]);

    // A checkpoint altered after signing.
    const lines = readLines(checkpoints);
    const altered = JSON.parse(lines[1]!);
    altered.timestamp = '2020-01-01T00:00:00.000Z';
    writeLines(checkpoints, [lines[0]!, canonicalJson(altered), lines[2]!]);
    expect(await failure(dir, { publicKey })).toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });

    // A signature from another key.
    writeLines(checkpoints, lines);
    expect(await failure(dir, { publicKey: keys().publicKey })).toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });

    // Signature bytes corrupted.
    const bad = JSON.parse(lines[2]!);
    bad.signature = Buffer.from(Buffer.from(bad.signature, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64');
    writeLines(checkpoints, [lines[0]!, lines[1]!, canonicalJson(bad)]);
    const error = await failure(dir, { publicKey });
    expect(error.code).toBe('LEDGER_SIGNATURE_INVALID');
    expect(error.message).toContain('checkpoints.jsonl:3');
  });

  it('refuses unsigned checkpoints when a public key is given, warns without one', async () => {
    const { dir } = await ledger();
    expect(await failure(dir, { publicKey: keys().publicKey })).toMatchObject({ code: 'LEDGER_CHECKPOINT_UNSIGNED' });
  });

  it('names a corrupt checkpoint line and a corrupt ledger.json', async () => {
    const { dir, checkpoints } = await ledger();
    const lines = readLines(checkpoints);
    writeLines(checkpoints, [lines[0]!, lines[1]!.slice(0, 40), lines[2]!]);
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_CHECKPOINT_MALFORMED', location: { line: 2 } });
    writeLines(checkpoints, lines);
    writeFileSync(join(dir, 'ledger.json'), '{not json');
    expect(await failure(dir)).toMatchObject({ code: 'LEDGER_METADATA_CORRUPT' });
  });

  it('refuses a missing directory, a file instead of a directory, and an unrelated directory', async () => {
    const base = tempDir();
    expect(await failure(join(base, 'nope'))).toMatchObject({ code: 'LEDGER_NOT_FOUND' });
    writeFileSync(join(base, 'file'), 'x');
    expect(await failure(join(base, 'file'))).toMatchObject({ code: 'LEDGER_UNREADABLE' });
    expect(await failure(base)).toMatchObject({ code: 'LEDGER_NOT_FOUND' });
  });

  it('catches a checkpoint from another ledger', async () => {
    const a = await ledger();
    const b = await ledger();
    const external = readCheckpointFile(b.checkpoints).map((checkpoint) => ({ checkpoint, where: 'other' }));
    expect(await failure(a.dir, { external })).toMatchObject({ code: 'LEDGER_CHECKPOINT_MISMATCH' });
  });

  it('catches a deleted segment', async () => {
    const dir = tempDir();
    let day = '2026-03-01T12:00:00Z';
    const clockFn = () => new Date(day);
    const { FileLedger } = await import('../../src/ledger/file/ledger');
    const { makeRecord } = await import('./helpers');
    const writer = await FileLedger.open({ dir, fsync: 'none', clock: clockFn });
    for (const d of ['2026-03-01', '2026-03-02', '2026-03-03']) {
      day = `${d}T12:00:00Z`;
      await writer.append([makeRecord(), makeRecord()]);
    }
    await writer.close();
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, 'segments/2026-03-02.jsonl'));
    expect(await failure(dir)).toMatchObject({
      code: 'LEDGER_RECORD_MISSING',
      location: { file: 'segments/2026-03-03.jsonl', line: 1, seq: 4 },
    });
  });
});
