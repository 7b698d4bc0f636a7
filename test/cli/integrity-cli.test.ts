/**
 * Issue 14, item 9: a deleted ledger.json is reported by verify and explained by the writer (and
 * `repair` brings it back); `verify-proof` without a public key does not call a forged proof OK.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { FileLedger } from '../../src/ledger/file/ledger';
import { leafHash, rootFromInclusionProof } from '../../src/ledger/merkle';
import { buildLedger, tempDir } from '../ledger/helpers';
import { cli, ensureBuilt, expectNoStack } from './cli-helpers';

beforeAll(() => ensureBuilt(), 120_000);

describe('integrity holes (issue 14)', () => {
  it('a deleted ledger.json fails verify; the writer explains the recovery; repair recreates it', async () => {
    const dir = join(tempDir('cli-'), 'ledger');
    await buildLedger(dir, 5);
    const id = JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')).ledger_id;
    rmSync(join(dir, 'ledger.json'));

    const v = cli(['verify', '--ledger', dir]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(new RegExp(`LEDGER_METADATA_MISSING: .*ledger\\.json is missing .* the checkpoints belong to ledger ${id}`));
    expectNoStack(v);

    const error = await FileLedger.open({ dir, fsync: 'none' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'LEDGER_METADATA_MISSING', message: expect.stringContaining(`llm-audit repair --ledger ${dir}`) });
    expect((error as Error).message).toMatch(/1\. restore .* 2\. run `llm-audit verify .* 3\. restart/);
    // The failed start did not make up a new identity the checkpoints would not match.
    expect(existsSync(join(dir, 'ledger.json'))).toBe(false);

    const repair = cli(['repair', '--ledger', dir]);
    expect(repair.code, repair.stderr).toBe(0);
    expect(repair.stdout).toMatch(new RegExp(`recreated ledger\\.json with ledger id ${id}`));
    const ok = cli(['verify', '--ledger', dir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/note: repair on .*: ledger\.json was missing and was recreated/);
    const writer = await FileLedger.open({ dir, fsync: 'none' });
    expect(writer.size).toBe(5);
    await writer.close();
  });

  it('verify-proof without --public-key says nothing was proven about a proof whose root a forger recomputed', async () => {
    const keyDir = tempDir('cli-');
    const key = join(keyDir, 'k.pem');
    cli(['keygen', '--out', key]);
    const dir = join(keyDir, 'ledger');
    await buildLedger(dir, 6, { signingKeyPath: key });
    const proofFile = join(keyDir, 'proof.json');
    expect(cli(['prove', '--seq', '3', '--ledger', dir, '--out', proofFile]).code).toBe(0);

    // The forgery: a cheaper record, its leaf hash, and the root that path leads to, put in the checkpoint.
    const proof = JSON.parse(readFileSync(proofFile, 'utf8'));
    proof.entry.record.cost_usd = 0;
    const leaf = leafHash(canonicalJson(proof.entry));
    proof.leaf_hash = leaf.toString('hex');
    const path = proof.path.map((h: string) => Buffer.from(h, 'hex'));
    proof.checkpoint.root = rootFromInclusionProof(proof.leaf_index, proof.tree_size, leaf, path)!.toString('hex');
    writeFileSync(proofFile, JSON.stringify(proof));

    const unkeyed = cli(['verify-proof', '--proof', proofFile]);
    expect(unkeyed.code).toBe(1);
    expect(unkeyed.stderr).toMatch(/LEDGER_PROOF_UNAUTHENTICATED: nothing was proven: no --public-key was given/);
    expect(unkeyed.stdout).toBe('');
    const allowed = cli(['verify-proof', '--proof', proofFile, '--allow-unsigned']);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^UNAUTHENTICATED: the proof's arithmetic holds .* nothing is proven/);
    expect(cli(['verify-proof', '--proof', proofFile, '--public-key', `${key}.pub`]).stderr).toMatch(/LEDGER_SIGNATURE_INVALID/);
    // A forger who also drops the signature: still nothing proven without a key.
    proof.checkpoint.signature = null;
    proof.checkpoint.key_id = null;
    writeFileSync(proofFile, JSON.stringify(proof));
    expect(cli(['verify-proof', '--proof', proofFile]).stderr).toMatch(/nothing was proven: the checkpoint in the proof is not signed/);
    expect(cli(['verify-proof', '--help']).stdout).toMatch(/--allow-unsigned/);
  });
});
