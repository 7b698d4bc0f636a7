/**
 * An insider who can write the ledger directory but does not hold the signing key (issue 14): a
 * forged retention tombstone must not hide records from `verify --public-key`, and a tombstone
 * must only claim records that had expired under the policy it names.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { applyRetention, resolvePolicy } from '../../src/ledger/retention';
import { verifyLedger } from '../../src/ledger/verify';
import { forgeTombstone, makeRecord, tempDir } from './helpers';

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

/** Three records on each of `days` (appended that day), signed checkpoints every 4 records. */
async function signedLedger(days: string[], signingKey = keys().privateKey, timestamp?: string): Promise<string> {
  const dir = tempDir();
  let now = `${days[0]}T00:00:00Z`;
  const writer = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now), checkpointEvery: 4, signingKey });
  for (const day of days) {
    for (let h = 10; h < 13; h++) {
      now = `${day}T${h}:00:00.000Z`;
      await writer.append([makeRecord({ timestamp: timestamp ?? now, request_id: `${day}-${h}` })]);
    }
  }
  await writer.close();
  return dir;
}

const segment = (name: string, first: number, newest: string) => ({ name, first_seq: first, last_seq: first + 2, newest_timestamp: newest });

describe('forged retention tombstones', () => {
  it('an unsigned tombstone that hides the oldest segments fails verify --public-key, naming it', async () => {
    const { privateKey, publicKey } = keys();
    const dir = await signedLedger(['2025-01-01', '2025-01-02', '2025-01-03'], privateKey);
    const source = new FileLedgerSource(dir);
    // The attack: an unsigned tombstone for seq 0..5, then the two oldest segments deleted.
    const forged = await forgeTombstone(source, 6, [
      segment('2025-01-01.jsonl', 0, '2025-01-01T12:00:00.000Z'),
      segment('2025-01-02.jsonl', 3, '2025-01-02T12:00:00.000Z'),
    ]);
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson(forged) + '\n');
    rmSync(join(dir, 'segments', '2025-01-01.jsonl'));
    rmSync(join(dir, 'segments', '2025-01-02.jsonl'));
    const lines = readFileSync(join(dir, 'checkpoints.jsonl'), 'utf8').split('\n').length - 1;
    await expect(verifyLedger(new FileLedgerSource(dir), { publicKey })).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_UNSIGNED',
      message: expect.stringContaining(`checkpoints.jsonl:${lines}`),
    });
    // Without a key verify cannot tell who wrote it, and says so.
    const unkeyed = await verifyLedger(new FileLedgerSource(dir));
    expect(unkeyed.removed).toBe(6);
    expect(unkeyed.warnings.join('\n')).toMatch(/tombstone.*not signed/);
  });

  it('retention refuses to write an unsigned tombstone into a signed ledger', async () => {
    const dir = await signedLedger(['2025-01-01', '2025-01-02', '2025-01-03']);
    await expect(applyRetention(dir, { policy: resolvePolicy('gdpr', { maxAge: '30d' }) })).rejects.toMatchObject({
      code: 'LEDGER_USAGE',
      message: expect.stringMatching(/checkpoints are signed .* no signing key was given/),
    });
    expect(readdirSync(join(dir, 'segments'))).toHaveLength(3);
  });

  it('a tombstone with a checkpoint type cannot hide segments either', async () => {
    const { privateKey, publicKey } = keys();
    const dir = await signedLedger(['2025-01-01', '2025-01-02'], privateKey);
    const forged = await forgeTombstone(new FileLedgerSource(dir), 3, [segment('2025-01-01.jsonl', 0, '2025-01-01T12:00:00.000Z')]);
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson({ ...forged, type: 'checkpoint' }) + '\n');
    await expect(verifyLedger(new FileLedgerSource(dir), { publicKey })).rejects.toMatchObject({ code: 'LEDGER_CHECKPOINT_MALFORMED' });
  });

  it('a tombstone that claims records which had not expired under its policy fails, with or without a key', async () => {
    // Records appended two days ago; a "gdpr 30d" tombstone applied now cannot have removed them.
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const dir = await signedLedger([day(-2), day(-1)]);
    const forged = await forgeTombstone(new FileLedgerSource(dir), 3, [segment(`${day(-2)}.jsonl`, 0, `${day(-2)}T12:00:00.000Z`)]);
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson(forged) + '\n');
    rmSync(join(dir, 'segments', `${day(-2)}.jsonl`));
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_INVALID',
      message: expect.stringMatching(/had not expired/),
    });
  });

  it('a tombstone whose newest timestamp is older than its segment could hold, or whose cut-off is in the future, fails', async () => {
    const dir = await signedLedger(['2025-01-01', '2025-01-02']);
    const path = join(dir, 'checkpoints.jsonl');
    const original = readFileSync(path, 'utf8');
    const source = new FileLedgerSource(dir);
    // The segment is named for 2025-01-01 but the tombstone says its newest record is from 2030.
    const late = await forgeTombstone(source, 3, [segment('2025-01-01.jsonl', 0, '2030-01-01T00:00:00.000Z')]);
    const future = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const ahead = await forgeTombstone(source, 3, [segment('2025-01-01.jsonl', 0, '2025-01-01T12:00:00.000Z')], { applied_at: future });
    writeFileSync(path, original + canonicalJson(late) + '\n');
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({ code: 'LEDGER_TOMBSTONE_INVALID' });
    // Applied in the future.
    writeFileSync(path, original + canonicalJson(ahead) + '\n');
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_INVALID',
      message: expect.stringMatching(/future/),
    });
  });

  it('a tombstone that names older segments than those that held the records fails on the checkpoints inside the prefix', async () => {
    const dir = await signedLedger(['2025-01-01', '2025-01-02', '2025-01-03']);
    const forged = await forgeTombstone(new FileLedgerSource(dir), 6, [
      segment('2024-01-01.jsonl', 0, '2024-01-01T12:00:00.000Z'),
      segment('2024-01-02.jsonl', 3, '2024-01-02T12:00:00.000Z'),
    ]);
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson(forged) + '\n');
    rmSync(join(dir, 'segments', '2025-01-01.jsonl'));
    rmSync(join(dir, 'segments', '2025-01-02.jsonl'));
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_INVALID',
      message: expect.stringMatching(/checkpoints\.jsonl:1 says seq 4 was in 2025-01-02\.jsonl/),
    });
  });

  it('records still present that a tombstone claims removed must have expired', async () => {
    // Segments of old days holding records of yesterday (as a backfill could): the names pass, the records do not.
    const dir = await signedLedger(['2025-01-01', '2025-01-02'], undefined, new Date(Date.now() - 86_400_000).toISOString());
    const forged = await forgeTombstone(new FileLedgerSource(dir), 3, [segment('2025-01-01.jsonl', 0, '2025-01-01T12:00:00.000Z')]);
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson(forged) + '\n');
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({
      code: 'LEDGER_TOMBSTONE_INVALID',
      message: expect.stringMatching(/segments\/2025-01-01\.jsonl:1 is still present/),
    });
  });
});
