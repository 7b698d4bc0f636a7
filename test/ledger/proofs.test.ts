import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, readCheckpointFile } from '../../src/ledger/checkpoint';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { proveConsistency, proveInclusion, verifyProof } from '../../src/ledger/proofs';
import { buildLedger, tempDir } from './helpers';

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

describe('proofs', () => {
  it('proves every record of a ledger and rejects altered proofs', async () => {
    const { privateKey, publicKey } = keys();
    const dir = tempDir();
    await buildLedger(dir, 13, { signingKey: privateKey, checkpointEvery: 5 }, (i) => ({ request_id: `r${i}` }));
    const source = new FileLedgerSource(dir);
    for (let i = 0; i < 13; i++) {
      const proof = await proveInclusion(source, { requestId: `r${i}` });
      expect(proof).toMatchObject({ leaf_index: i, tree_size: 13 });
      expect(verifyProof(proof, publicKey)).toMatchObject({ type: 'inclusion', signatures: 'verified' });
    }
    const proof = await proveInclusion(source, { seq: 6 });
    const altered = JSON.parse(JSON.stringify(proof));
    altered.entry.record.cost_usd = 0;
    expect(() => verifyProof(altered)).toThrow(/altered/);
    delete altered.leaf_hash;
    expect(() => verifyProof(altered)).toThrow(/does not lead to the checkpoint root/);
    const badSig = JSON.parse(JSON.stringify(proof));
    badSig.checkpoint.root = badSig.path[0];
    expect(() => verifyProof(badSig, publicKey)).toThrow();
    expect(() => verifyProof(proof, keys().publicKey)).toThrow(/not validly signed/);
    await expect(proveInclusion(source, { requestId: 'nope' })).rejects.toMatchObject({ code: 'LEDGER_RECORD_NOT_FOUND' });
  });

  it('proves and checks consistency between checkpoints, and catches a rewritten history', async () => {
    const dir = tempDir();
    await buildLedger(dir, 11, { checkpointEvery: 3 });
    const checkpoints = readCheckpointFile(join(dir, 'checkpoints.jsonl'));
    expect(checkpoints.map((c) => c.tree_size)).toEqual([3, 6, 9, 11]);
    const source = new FileLedgerSource(dir);
    for (const [a, b] of [[0, 3], [1, 3], [0, 1], [2, 2]] as const) {
      const proof = await proveConsistency(source, checkpoints[a]!, checkpoints[b]!);
      expect(verifyProof(proof).type).toBe('consistency');
    }
    // Someone rewrites history (and the checkpoints file) after the checkpoint of size 6 was copied away.
    const kept = checkpoints[1]!;
    const forged = tempDir();
    await buildLedger(forged, 11, { checkpointEvery: 3 });
    // Same ledger id, different records: the forged copy's checkpoints cannot extend the kept one.
    const meta = readFileSync(join(dir, 'ledger.json'));
    writeFileSync(join(forged, 'ledger.json'), meta);
    const forgedNewest = { ...readCheckpointFile(join(forged, 'checkpoints.jsonl')).at(-1)!, ledger_id: kept.ledger_id };
    await expect(proveConsistency(new FileLedgerSource(forged), kept, forgedNewest)).rejects.toMatchObject({ code: 'LEDGER_CONSISTENCY_FAILED' });
  });
});
