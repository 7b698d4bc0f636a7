import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { proveInclusion, verifyProof } from '../../src/ledger/proofs';
import { addDuration, applyRetention, parseDuration, recordExpiry, resolvePolicy } from '../../src/ledger/retention';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord, readLines, tempDir } from './helpers';

const DAYS = ['2025-01-01', '2025-01-02', '2025-01-03', '2025-02-01', '2025-03-01'];

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

async function ledger(signingKey?: ReturnType<typeof keys>['privateKey']) {
  const dir = tempDir();
  let now = `${DAYS[0]}T00:00:00Z`;
  const writer = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now), checkpointEvery: 4, ...(signingKey ? { signingKey } : {}) });
  for (const day of DAYS) {
    for (let h = 10; h < 13; h++) {
      now = `${day}T${h}:00:00.000Z`;
      await writer.append([makeRecord({ timestamp: now, request_id: `${day}-${h}` })]);
    }
  }
  await writer.close();
  return dir;
}

const segments = (dir: string) => readdirSync(join(dir, 'segments')).sort();

describe('retention', () => {
  it('parses durations and policies', () => {
    expect(parseDuration('90d')).toEqual({ days: 90 });
    expect(parseDuration('2y')).toEqual({ years: 2 });
    expect(() => parseDuration('2 years')).toThrow(/not a duration/);
    expect(resolvePolicy('standard')).toMatchObject({ metadata: { years: 2 }, content: { years: 1 }, errors: { years: 1 } });
    expect(resolvePolicy('hipaa')).toMatchObject({ metadata: { years: 6 }, content: { years: 6 }, errors: { years: 6 } });
    expect(resolvePolicy('gdpr', { maxAge: '30d' })).toMatchObject({ metadata: { days: 30 }, content: { days: 30 } });
    expect(resolvePolicy('custom', { metadata: '3y', content: '1y', errors: '6m' })).toMatchObject({ errors: { months: 6 } });
    expect(() => resolvePolicy('custom')).toThrow(/needs --metadata/);
    expect(() => resolvePolicy('gdpr', { maxAge: '0d' })).toThrow(/at least one day/);
    expect(() => resolvePolicy('forever')).toThrow(/unknown retention policy/);
    // A record lives as long as the longest lifetime of what it holds.
    const standard = resolvePolicy('standard');
    const t = '2025-01-01T00:00:00.000Z';
    expect(new Date(recordExpiry(makeRecord({ timestamp: t }), standard)).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    const custom = resolvePolicy('custom', { metadata: '30d', content: '1y', errors: '2y' });
    expect(new Date(recordExpiry(makeRecord({ timestamp: t, input_hash: null, output_hash: null }), custom)).toISOString()).toBe(
      '2025-01-31T00:00:00.000Z',
    );
    expect(new Date(recordExpiry(makeRecord({ timestamp: t, error_type: 'X' }), custom)).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(new Date(addDuration(Date.parse('2024-02-29T00:00:00Z'), { years: 1 })).toISOString()).toBe('2025-03-01T00:00:00.000Z');
  });

  it('removes only a prefix of wholly expired segments, leaves a signed tombstone, and verify still passes', async () => {
    const { privateKey, publicKey } = keys();
    const dir = await ledger(privateKey);
    const before = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    const policy = resolvePolicy('gdpr', { maxAge: '30d' });
    // On 2025-02-02T11:00Z the records of 01-01..01-03 are older than 30 days; 02-01 is not.
    const dry = await applyRetention(dir, { policy, now: new Date('2025-02-02T11:00:00Z'), dryRun: true, signingKey: privateKey });
    expect(dry.plan.segments.map((s) => s.action)).toEqual(['remove', 'remove', 'keep', 'keep', 'keep']);
    expect(dry.plan.segments[2]!.reason).toBe('not expired');
    expect(segments(dir)).toHaveLength(5);

    const result = await applyRetention(dir, { policy, now: new Date('2025-02-03T11:00:00Z'), signingKey: privateKey, publicKey });
    expect(result.plan.removeRecords).toBe(9);
    expect(segments(dir)).toEqual(['2025-02-01.jsonl', '2025-03-01.jsonl']);
    expect(result.tombstone).toMatchObject({ type: 'tombstone', tree_size: 9, position: { segment: '2025-02-01.jsonl', offset: 0 } });
    expect(result.tombstone!.tombstone!.head).toEqual({ tree_size: 15, root: before.root });
    expect(result.tombstone!.signature).not.toBeNull();

    const after = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    expect(after).toMatchObject({ records: 6, treeSize: 15, removed: 9, root: before.root });

    // Remaining records can still be proven; the writer continues the same tree.
    const proof = await proveInclusion(new FileLedgerSource(dir), { requestId: '2025-02-01-11' });
    expect(verifyProof(proof, publicKey).signatures).toBe('verified');
    const writer = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    expect(writer.size).toBe(15);
    await writer.append([makeRecord()]);
    await writer.close();
    expect((await verifyLedger(new FileLedgerSource(dir), { publicKey })).treeSize).toBe(16);
  });

  it('never removes records that have not expired', async () => {
    const dir = await ledger();
    const policy = resolvePolicy('gdpr', { maxAge: '1d' });
    // --now in the future is refused.
    await expect(applyRetention(dir, { policy, now: new Date(Date.now() + 86_400_000) })).rejects.toMatchObject({ code: 'LEDGER_USAGE' });
    // Even when everything has expired, the newest segment (the writer's) stays.
    const result = await applyRetention(dir, { policy, now: new Date('2025-06-01T00:00:00Z') });
    expect(segments(dir)).toEqual(['2025-03-01.jsonl']);
    expect(result.plan.segments.at(-1)).toMatchObject({ action: 'keep', reason: 'newest segment (the writer appends to it)' });
    // Nothing expired under hipaa: nothing removed, no tombstone.
    const dir2 = await ledger();
    const hipaa = await applyRetention(dir2, { policy: resolvePolicy('hipaa'), now: new Date('2026-01-01T00:00:00Z') });
    expect(hipaa.tombstone).toBeUndefined();
    expect(segments(dir2)).toHaveLength(5);
  });

  it('says what the standard policy cannot strip from kept records', async () => {
    const dir = await ledger();
    const result = await applyRetention(dir, { policy: resolvePolicy('standard'), now: new Date('2026-02-01T12:00:00Z'), dryRun: true });
    expect(result.plan.removeRecords).toBe(0);
    // Content hashes older than 1 year on 2026-02-01T12:00Z: the 9 January records and the three of
    // 2025-02-01 (10:00, 11:00, 12:00); all are kept for their 2-year metadata lifetime.
    expect(result.plan.overdueKept).toBe(12);
    expect(result.plan.notes.join()).toMatch(/cannot be stripped without breaking verification/);
  });

  it('refuses to apply retention to a ledger that does not verify, or that a writer holds', async () => {
    const dir = await ledger();
    const first = join(dir, 'segments', segments(dir)[0]!);
    const lines = readLines(first);
    writeFileSync(first, [lines[0], lines[2], lines[1]].map((l) => l + '\n').join(''));
    const policy = resolvePolicy('gdpr', { maxAge: '1d' });
    await expect(applyRetention(dir, { policy, now: new Date('2025-06-01T00:00:00Z') })).rejects.toMatchObject({
      code: 'LEDGER_RETENTION_REFUSED',
    });
    expect(segments(dir)).toHaveLength(5);

    const dir2 = await ledger();
    const writer = await FileLedger.open({ dir: dir2, fsync: 'none' });
    await expect(applyRetention(dir2, { policy, now: new Date('2025-06-01T00:00:00Z') })).rejects.toMatchObject({ code: 'LEDGER_LOCKED' });
    await writer.close();
  });

  it('detects a tampered tombstone and a segment removed without one', async () => {
    const { privateKey, publicKey } = keys();
    const dir = await ledger(privateKey);
    await applyRetention(dir, { policy: resolvePolicy('gdpr', { maxAge: '30d' }), now: new Date('2025-02-03T11:00:00Z'), signingKey: privateKey });
    const path = join(dir, 'checkpoints.jsonl');
    const lines = readLines(path);
    const tombstone = JSON.parse(lines.at(-1)!);
    // Claiming more was removed (hiding the 02-01 records) breaks the signature...
    const bigger = { ...tombstone, tombstone: { ...tombstone.tombstone, removed_segments: [...tombstone.tombstone.removed_segments, { name: '2025-02-01.jsonl' }] } };
    writeFileSync(path, [...lines.slice(0, -1), canonicalJson(bigger)].map((l) => l + '\n').join(''));
    await expect(verifyLedger(new FileLedgerSource(dir), { publicKey })).rejects.toMatchObject({ code: 'LEDGER_SIGNATURE_INVALID' });
    // ...and an altered frontier does not hash to the root.
    const altered = { ...tombstone, frontier: [...tombstone.frontier].reverse() };
    writeFileSync(path, [...lines.slice(0, -1), canonicalJson(altered)].map((l) => l + '\n').join(''));
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({ code: 'LEDGER_TOMBSTONE_INVALID' });
    writeFileSync(path, lines.map((l) => l + '\n').join(''));
    expect((await verifyLedger(new FileLedgerSource(dir), { publicKey })).records).toBe(6);
    // A kept segment deleted by hand is a gap.
    rmSync(join(dir, 'segments', '2025-02-01.jsonl'));
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({
      code: 'LEDGER_RECORD_MISSING',
      location: { file: 'segments/2025-03-01.jsonl', line: 1, seq: 12 },
    });
  });

  it('reports segments a crashed run left behind', async () => {
    const dir = await ledger();
    const removedCopy = readFileSync(join(dir, 'segments', '2025-01-01.jsonl'));
    await applyRetention(dir, { policy: resolvePolicy('gdpr', { maxAge: '30d' }), now: new Date('2025-02-03T11:00:00Z') });
    writeFileSync(join(dir, 'segments', '2025-01-01.jsonl'), removedCopy);
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result.warnings.join()).toMatch(/2025-01-01\.jsonl were marked removed/);
    expect(existsSync(join(dir, 'segments', '2025-01-01.jsonl'))).toBe(true);
  });
});
