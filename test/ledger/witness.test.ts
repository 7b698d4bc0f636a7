/**
 * Issue 17 section 3: witness cosigning against a real witness, torchwood's litewitness v0.6.1
 * (c2sp.org/tlog-witness), on loopback, provisioned with its own witnessctl.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, loadPublicKey } from '../../src/ledger/checkpoint';
import { FileLedger } from '../../src/ledger/file/ledger';
import { parseVerifierKey, verifierKey } from '../../src/ledger/note';
import { NOTES_FILE } from '../../src/ledger/file/note-store';
import type { TransparencyOptions } from '../../src/ledger/transparency';
import { cli, ensureBuilt } from '../cli/cli-helpers';
import { runNodeApp } from '../support/child-app';
import { startFakeProvider } from '../support/fake-provider';
import { requireGoTools, startWitness, type Witness } from '../support/go-tools';
import { repoRoot } from '../support/harness';
import { storedIds } from '../support/ledger-files';
import { stopAll, waitFor } from '../support/processes';
import { makeRecord, tempDir } from './helpers';

beforeAll(() => {
  requireGoTools();
  ensureBuilt();
}, 600_000);
afterAll(() => stopAll(5_000));

const ORIGIN = 'audit.example.com/llm/witnessed';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  work: string;
  dir: string;
  priv: string;
  pub: string;
  witness: Witness;
  warnings: string[];
  open(extra?: Partial<TransparencyOptions>): Promise<FileLedger>;
}

async function setup(): Promise<Setup> {
  const work = tempDir('witness-');
  const dir = join(work, 'ledger');
  const { privatePem, publicPem } = generateSigningKeyPair();
  const priv = join(work, 'key.pem');
  writeFileSync(priv, privatePem, { mode: 0o600 });
  writeFileSync(`${priv}.pub`, publicPem);
  const witness = await startWitness(work, ORIGIN, verifierKey(ORIGIN, loadPublicKey(`${priv}.pub`)));
  cleanups.push(() => witness.stop());
  const warnings: string[] = [];
  const s: Setup = {
    work,
    dir,
    priv,
    pub: `${priv}.pub`,
    witness,
    warnings,
    open: async (extra = {}) => {
      const ledger = await FileLedger.open({
        dir,
        fsync: 'none',
        signingKeyPath: priv,
        checkpointEvery: 3,
        onWarning: (m) => warnings.push(m),
        transparency: {
          origin: ORIGIN,
          witnesses: [{ url: witness.url, verifier: parseVerifierKey(witness.vkey) }],
          witnessRetryMs: { min: 100, max: 400 },
          ...extra,
        },
      });
      cleanups.push(() => ledger.close().catch(() => undefined));
      return ledger;
    },
  };
  return s;
}

/** What the key holder can do to a (one-segment) file ledger: keep its first `size` records, and the checkpoints and notes up to them. */
function cutBack(dir: string, size: number): void {
  const keepLines = (path: string, keep: (line: string, i: number) => boolean): void => {
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    writeFileSync(path, lines.filter(keep).join('\n') + '\n');
  };
  const segDir = join(dir, 'segments');
  const [segment] = readdirSync(segDir);
  keepLines(join(segDir, segment!), (_line, i) => i < size);
  keepLines(join(dir, 'checkpoints.jsonl'), (line) => JSON.parse(line).tree_size <= size);
  keepLines(join(dir, NOTES_FILE), (line) => Number((JSON.parse(line).note as string).split('\n')[1]) <= size);
}

async function appendSome(ledger: FileLedger, n: number, user = 'alice'): Promise<void> {
  for (let i = 0; i < n; i++) await ledger.append([makeRecord({ user_id: user })]);
}

describe('witness cosigning with litewitness', () => {
  it('collects cosignatures beside the checkpoints; verify --witness checks them; notes and proofs carry them', async () => {
    const s = await setup();
    const ledger = await s.open();
    await appendSome(ledger, 10);
    // close() writes the final checkpoint (size 10) and waits (boundedly) for its cosignature.
    await ledger.close();
    expect(s.warnings).toEqual([]);
    expect(ledger.publisher.witnesses[0]!.cosigned).toBeGreaterThanOrEqual(1);
    const cosigned = readFileSync(join(s.dir, NOTES_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { note: string; witness?: string });
    expect(cosigned.filter((c) => c.witness === s.witness.name).length).toBeGreaterThanOrEqual(1);

    const ok = cli(['verify', '--ledger', s.dir, '--public-key', s.pub, '--witness', s.witness.vkey]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/witnessed: the newest checkpoint carries 1 valid cosignature \(witness\.test\/w1\), 1 required/);
    const note = cli(['checkpoint', '--ledger', s.dir, '--format', 'note']).stdout;
    expect(note).toMatch(new RegExp(`^${ORIGIN}\\n10\\n\\S+\\n\\n\u2014 ${ORIGIN} \\S+\\n\u2014 witness\\.test/w1 \\S+\\n$`));
    expect(cli(['prove', '--seq', '4', '--ledger', s.dir, '--format', 'tlog-proof']).stdout).toContain('\u2014 witness.test/w1 ');

    // A witness whose key the ledger never saw: no cosignature, so the quorum fails.
    const stranger = verifierKey('witness.test/other', loadPublicKey(s.pub), 4);
    const bad = cli(['verify', '--ledger', s.dir, '--witness', s.witness.vkey, '--witness', stranger, '--witness-quorum', '2']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/LEDGER_WITNESS_QUORUM: the newest checkpoint \(tree size 10\) has 1 valid cosignature \(witness\.test\/w1\), 2 required/);
  });

  it('a truncated and re-signed history is refused by the witness and caught by verify --witness (not by verify with the key alone)', async () => {
    const s = await setup();
    let ledger = await s.open();
    await appendSome(ledger, 10);
    await ledger.close();
    expect(cli(['verify', '--ledger', s.dir, '--witness', s.witness.vkey]).code).toBe(0);

    // The operator, holding the signing key, cuts the ledger back to its first 3 records, then
    // lets the writer carry on with other records.
    cutBack(s.dir, 3);

    ledger = await s.open();
    await appendSome(ledger, 9, 'mallory');
    await ledger.close();
    expect(s.warnings.join('\n')).toMatch(/witness witness\.test\/w1 REFUSED tree size \d+: 422 .*not consistent with the tree size 10 the witness cosigned/);

    // Signed with the right key, internally consistent: verify with the key alone cannot tell.
    const keyOnly = cli(['verify', '--ledger', s.dir, '--public-key', s.pub]);
    expect(keyOnly.code, keyOnly.stderr).toBe(0);
    const witnessed = cli(['verify', '--ledger', s.dir, '--public-key', s.pub, '--witness', s.witness.vkey]);
    expect(witnessed.code).toBe(1);
    expect(witnessed.stderr).toMatch(/LEDGER_WITNESS_QUORUM: the newest checkpoint \(tree size 12\) has 0 valid cosignatures, 1 required/);
  });

  it('a ledger cut shorter than what the witness cosigned is not submitted and is reported', async () => {
    const s = await setup();
    let ledger = await s.open();
    await appendSome(ledger, 7);
    await ledger.close();
    cutBack(s.dir, 3);
    ledger = await s.open();
    await appendSome(ledger, 1, 'mallory');
    await ledger.close();
    expect(s.warnings.join('\n')).toMatch(/REFUSED tree size 4: it has already cosigned tree size 7, larger than this ledger's 4/);
    expect(cli(['verify', '--ledger', s.dir, '--witness', s.witness.vkey]).stderr).toMatch(/LEDGER_WITNESS_QUORUM/);
  });

  it('the ledger keeps working while the witness is down, and the witness catches up when it is back', async () => {
    const s = await setup();
    const ledger = await s.open();
    await appendSome(ledger, 3);
    await ledger.publisher.idle();
    const client = ledger.publisher.witnesses[0]!;
    const before = client.cosigned;
    expect(before).toBeGreaterThanOrEqual(1);

    await s.witness.stop();
    const started = Date.now();
    await appendSome(ledger, 12);
    await ledger.checkpoint();
    const elapsed = Date.now() - started;
    expect(ledger.size).toBe(15);
    expect(elapsed).toBeLessThan(3_000);
    await waitFor('the unreachable warning', () => s.warnings.find((w) => /witness witness\.test\/w1 unreachable/.test(w)), { timeoutMs: 10_000 });

    await s.witness.start();
    // Retries with backoff (100..400 ms here) reach it without any new checkpoint.
    await waitFor('the witness to cosign again', () => (client.cosigned > before ? true : undefined), { timeoutMs: 15_000 });
    await ledger.publisher.idle();
    await ledger.close();
    await ledger.publisher.idle();
    expect(s.warnings.join('\n')).toMatch(/reachable again; cosigned tree size 15/);
    const ok = cli(['verify', '--ledger', s.dir, '--witness', s.witness.vkey]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a witness that accepts the connection and never answers does not slow appends, and close waits for it only boundedly', async () => {
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as { port: number }).port;
    const work = tempDir('witness-');
    const { privatePem } = generateSigningKeyPair();
    writeFileSync(join(work, 'k'), privatePem, { mode: 0o600 });
    const ledger = await FileLedger.open({
      dir: join(work, 'l'),
      fsync: 'none',
      signingKeyPath: join(work, 'k'),
      checkpointEvery: 1,
      transparency: {
        origin: ORIGIN,
        witnesses: [{ url: `http://127.0.0.1:${port}`, verifier: parseVerifierKey(verifierKey('hang.test', loadPublicKey(join(work, 'k')), 4)) }],
        witnessCloseWaitMs: 500,
      },
    });
    const started = Date.now();
    await appendSome(ledger, 30);
    const appendMs = Date.now() - started;
    const closeStarted = Date.now();
    await ledger.close();
    await ledger.publisher.idle();
    const closeMs = Date.now() - closeStarted;
    expect(sockets.size).toBeGreaterThanOrEqual(1);
    expect(appendMs).toBeLessThan(3_000);
    expect(closeMs).toBeGreaterThanOrEqual(450);
    expect(closeMs).toBeLessThan(1_500);
  });
});

describe('witnesses from a real app (otel-llm-audit/register, LLM_AUDIT_WITNESSES)', () => {
  it('the app runs normally while the witness is down; its next run gets the newest checkpoint cosigned', async () => {
    const fake = await startFakeProvider();
    cleanups.push(() => fake.close());
    const s = await setup();
    const app = join(repoRoot, 'test', 'fixtures', 'exit-writer-app.cjs');
    const env = {
      FAKE_PROVIDER_URL: fake.url,
      OTEL_LOGS_EXPORTER: 'none',
      LLM_AUDIT_LEDGER_DIR: s.dir,
      LLM_AUDIT_SIGNING_KEY: s.priv,
      LLM_AUDIT_LOG_ORIGIN: ORIGIN,
      LLM_AUDIT_WITNESSES: `${s.witness.url} ${s.witness.vkey}`,
      EXIT_HOW: 'shutdown',
    };
    await s.witness.stop();
    let callsDoneAt = 0;
    const down = await runNodeApp(['--require', 'otel-llm-audit/register', app], { ...env, EXIT_CALLS: '5' }, (out) => {
      if (!callsDoneAt && out.includes('ids ')) callsDoneAt = Date.now();
    });
    const shutdownMs = Date.now() - callsDoneAt;
    expect(down.code, down.stderr).toBe(0);
    const ids = JSON.parse(/^ids (.*)$/m.exec(down.stdout)![1]!) as string[];
    expect(ids).toHaveLength(5);
    expect(storedIds(s.dir).sort()).toEqual([...ids].sort());
    // Down: shutdown does not wait out retries (one more try, then it ends), nor the 3 s close wait.
    expect(shutdownMs).toBeLessThan(3_000);
    expect(cli(['verify', '--ledger', s.dir, '--public-key', s.pub]).code).toBe(0);
    expect(cli(['verify', '--ledger', s.dir, '--witness', s.witness.vkey]).stderr).toMatch(/LEDGER_WITNESS_QUORUM: the newest checkpoint \(tree size 6\) has 0 valid/); // 5 calls and audit.start

    await s.witness.start();
    const up = await runNodeApp(['--require', 'otel-llm-audit/register', app], { ...env, EXIT_CALLS: '2' });
    expect(up.code, up.stderr).toBe(0);
    const ok = cli(['verify', '--ledger', s.dir, '--public-key', s.pub, '--witness', s.witness.vkey]);
    expect(ok.code, ok.stderr).toBe(0);
    // The 7 calls and each process's audit.start record.
    expect(ok.stdout).toMatch(/9 records verified/);
  }, 90_000);
});
