/**
 * Records found after the newest signed checkpoint when a writer starts (issue 14, item 4): a
 * forged, correctly chained line appended while the application was stopped must not be signed
 * over silently by the next start. The writer marks the range as recovered (a record in the chain,
 * so it cannot be removed later), and verify reports it; a real crash leaves a small such range,
 * which is reported without failing unless `strict` asks for it.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { CHECKPOINT_VERSION, finishCheckpoint, generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { leafHash } from '../../src/ledger/merkle';
import { verifyLedger } from '../../src/ledger/verify';
import { cli, ensureBuilt } from '../cli/cli-helpers';
import { startProcess, waitFor } from '../support/processes';
import { makeRecord, readLines, tempDir } from './helpers';

function keys() {
  const { privatePem, publicPem } = generateSigningKeyPair();
  return { privateKey: createPrivateKey(privatePem), publicKey: createPublicKey(publicPem) };
}

/** Appends a correctly chained entry to the newest segment, as an insider with write access could. */
function forgeEntry(dir: string, cost: number): void {
  const segments = readdirSync(join(dir, 'segments')).sort();
  const path = join(dir, 'segments', segments.at(-1)!);
  const last = readLines(path).at(-1)!;
  const seq = JSON.parse(last).seq + 1;
  appendFileSync(path, canonicalJson({ seq, prev: leafHash(last).toString('hex'), record: makeRecord({ request_id: 'forged', cost_usd: cost }) }) + '\n');
}

describe('records after the newest signed checkpoint at startup', () => {
  it('a forged chained line is reported as recovered, not signed when written, by verify --public-key', async () => {
    const { privateKey, publicKey } = keys();
    const dir = tempDir();
    const first = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    await first.append([0, 1, 2, 3, 4].map(() => makeRecord()));
    await first.close();
    forgeEntry(dir, 777);
    const next = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    await next.append([makeRecord()]);
    await next.close();

    const result = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    expect(result.recovered).toEqual([{ from_seq: 5, to_seq: 5, marker_seq: 6, at: expect.any(String) }]);
    expect(result.warnings.join('\n')).toMatch(/record 5 was recovered at startup after a crash, not signed when written/);
    await expect(verifyLedger(new FileLedgerSource(dir), { publicKey, strict: true })).rejects.toMatchObject({ code: 'LEDGER_RECORDS_RECOVERED' });
  });

  it('an unsigned checkpoint the forger adds over the line does not count as signed', async () => {
    const { privateKey, publicKey } = keys();
    const dir = tempDir();
    const first = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    await first.append([makeRecord(), makeRecord()]);
    await first.close();
    forgeEntry(dir, 777);
    // The forger's checkpoint at size 3, unsigned (no key), computed from the ledger as a verifier would.
    const state = await verifyLedger(new FileLedgerSource(dir));
    const cps = readLines(join(dir, 'checkpoints.jsonl')).map((l) => JSON.parse(l));
    const forged = finishCheckpoint(
      { ...cps.at(-1), v: CHECKPOINT_VERSION, tree_size: 3, root: state.root, last_leaf: leafHash(readLines(join(dir, 'segments', readdirSync(join(dir, 'segments'))[0]!)).at(-1)!).toString('hex'), frontier: [], position: null },
      undefined,
    );
    appendFileSync(join(dir, 'checkpoints.jsonl'), canonicalJson(forged) + '\n');
    const next = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    await next.close();
    const result = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    expect(result.recovered).toMatchObject([{ from_seq: 2, to_seq: 2 }]);
  });

  it('a writer killed with SIGKILL leaves a small recovered range that verify reports and accepts', async () => {
    ensureBuilt();
    const { privateKey, publicKey } = keys();
    const dir = tempDir();
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const script = `
      const { createPrivateKey } = require('node:crypto');
      const { FileLedger } = require(${JSON.stringify(join(__dirname, '../../dist/cjs/ledger/file/ledger.js'))});
      (async () => {
        // fsync 'batch': with 'always' and a key, every group commit is signed and a kill leaves
        // no unsigned range (docs/ledger.md); 'batch' signs only every checkpointEvery records.
        const ledger = await FileLedger.open({ dir: ${JSON.stringify(dir)}, fsync: 'batch', checkpointEvery: 1000, signingKey: createPrivateKey(${JSON.stringify(pem)}) });
        await ledger.append([${JSON.stringify(makeRecord())}]);
        await ledger.checkpoint();
        for (let i = 0; i < 3; i++) await ledger.append([${JSON.stringify(makeRecord())}]);
        console.log('appended');
        setInterval(() => {}, 1000);
      })();`;
    const child = startProcess('recovered-sigkill', process.execPath, { args: ['-e', script] });
    await waitFor('the writer to append', () => (child.log().includes('appended') ? true : undefined), { timeoutMs: 20_000 });
    child.kill('SIGKILL');
    await child.exited;

    const next = await FileLedger.open({ dir, fsync: 'none', signingKey: privateKey });
    await next.close();
    const result = await verifyLedger(new FileLedgerSource(dir), { publicKey });
    expect(result.recovered).toMatchObject([{ from_seq: 1, to_seq: 3, marker_seq: 4 }]);
    expect(result.warnings.join('\n')).toMatch(/records 1\.\.3 were recovered at startup after a crash, not signed when written/);
    const marker = JSON.parse(readLines(join(dir, 'segments', readdirSync(join(dir, 'segments'))[0]!)).at(-1)!).record;
    expect(marker).toMatchObject({ action: 'ledger.recovered', metadata: { from_seq: 1, to_seq: 3 } });
    expect(readFileSync(join(dir, 'checkpoints.jsonl'), 'utf8')).toMatch(/"tree_size":5/);

    // The CLI: reported apart from what was signed when written; --strict fails; --json exposes it.
    const pub = join(tempDir(), 'key.pub');
    writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const v = cli(['verify', '--ledger', dir, '--public-key', pub]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/records 1\.\.3: recovered at startup after a crash \(marker seq 4\), NOT signed when written/);
    expect(v.stderr).toMatch(/warning: records 1\.\.3 were recovered/);
    const strict = cli(['verify', '--ledger', dir, '--public-key', pub, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/LEDGER_RECORDS_RECOVERED: records 1\.\.3 were recovered/);
    expect(JSON.parse(cli(['verify', '--ledger', dir, '--json']).stdout).recovered).toMatchObject([{ from_seq: 1, to_seq: 3, marker_seq: 4 }]);
    expect(cli(['verify', '--help']).stdout).toMatch(/--strict/);
  }, 60_000);
});
