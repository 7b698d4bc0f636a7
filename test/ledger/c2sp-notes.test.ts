/**
 * Issue 17 section 2: checkpoints as C2SP signed notes and proofs in the C2SP formats, checked by
 * a stock implementation (test/go/tlogcheck: golang.org/x/mod/sumdb/note and sumdb/tlog), not
 * only by this project's code.
 */
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { checkpointBody, defaultOrigin, parseCheckpointNote, signCheckpointNote } from '../../src/ledger/note';
import { NOTES_FILE } from '../../src/ledger/file/note-store';
import { consistencyPath } from '../../src/ledger/proofs';
import { ledgerOptionsFromEnv } from '../../src/ledger/span-exporter';
import { transparencyFromEnv } from '../../src/ledger/transparency';
import { cli, ensureBuilt } from '../cli/cli-helpers';
import { requireGoTools, tlogcheck } from '../support/go-tools';
import { makeRecord, tempDir } from './helpers';

beforeAll(() => {
  requireGoTools();
  ensureBuilt();
}, 600_000);

function keyFiles(dir: string): { priv: string; pub: string } {
  const { privatePem, publicPem } = generateSigningKeyPair();
  const priv = join(dir, 'key.pem');
  writeFileSync(priv, privatePem, { mode: 0o600 });
  writeFileSync(`${priv}.pub`, publicPem);
  return { priv, pub: `${priv}.pub` };
}

async function signedLedger(records: number, origin?: string): Promise<{ dir: string; work: string; priv: string; pub: string; vkey: string }> {
  const work = tempDir('c2sp-');
  const dir = join(work, 'ledger');
  const { priv, pub } = keyFiles(work);
  const ledger = await FileLedger.open({ dir, fsync: 'none', signingKeyPath: priv, checkpointEvery: 5, transparency: origin ? { origin } : {} });
  for (let i = 0; i < records; i++) await ledger.append([makeRecord()]);
  await ledger.close();
  const vk = cli(['verifier-key', '--public-key', pub, ...(origin ? ['--origin', origin] : ['--ledger', dir])]);
  expect(vk.code, vk.stderr).toBe(0);
  return { dir, work, priv, pub, vkey: vk.stdout.trim() };
}

describe('checkpoint notes', () => {
  it('every signed checkpoint is stored as a signed note that Go note.Open accepts', async () => {
    const { dir, work, vkey } = await signedLedger(12);
    const checkpoints = (await new FileLedgerSource(dir).checkpoints()).map((c) => c.checkpoint);
    const stored = readFileSync(join(dir, NOTES_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l).note as string);
    expect(stored.length).toBe(checkpoints.length);
    const ledgerId = checkpoints[0]!.ledger_id;
    expect(vkey.startsWith(`${defaultOrigin(ledgerId)}+`)).toBe(true);
    for (const [i, note] of stored.entries()) {
      const r = tlogcheck(work, ['note', vkey, `n${i}`], { [`n${i}`]: note });
      expect(r.code, r.stderr).toBe(0);
      const root64 = Buffer.from(checkpoints[i]!.root, 'hex').toString('base64');
      expect(r.stdout.trim()).toBe(`${defaultOrigin(ledgerId)} ${checkpoints[i]!.tree_size} ${root64}`);
    }
    // `checkpoint --format note` prints the newest one.
    const out = cli(['checkpoint', '--ledger', dir, '--format', 'note']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(stored[stored.length - 1]);
    expect(out.stdout).toMatch(/^otel-llm-audit\.invalid\/ledger\/[0-9a-f-]{36}\n12\n[A-Za-z0-9+/]{43}=\n\n\u2014 otel-llm-audit\.invalid\/ledger\/\S+ \S+\n$/);
  });

  it('a note changed by one byte, or checked with another key, is rejected by Go note.Open', async () => {
    const { dir, work, vkey } = await signedLedger(3, 'audit.example.com/llm/test');
    const note = cli(['checkpoint', '--ledger', dir, '--format', 'note']).stdout;
    expect(note.startsWith('audit.example.com/llm/test\n3\n')).toBe(true);
    expect(tlogcheck(work, ['note', vkey, 'n'], { n: note }).code).toBe(0);
    const forged = note.replace('\n3\n', '\n2\n');
    expect(tlogcheck(work, ['note', vkey, 'f'], { f: forged }).stderr).toMatch(/note\.Open: invalid signature for key audit\.example\.com\/llm\/test/);
    const other = keyFiles(tempDir());
    const otherVkey = cli(['verifier-key', '--public-key', other.pub, '--origin', 'audit.example.com/llm/test']).stdout.trim();
    const r = tlogcheck(work, ['note', otherVkey, 'n'], { n: note });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/note\.Open/);
  });

  it('keygen prints the verifier key in note format when the origin is known', () => {
    const dir = tempDir();
    const r = cli(['keygen', '--out', join(dir, 'k'), '--origin', 'audit.example.com/llm/prod']);
    expect(r.code, r.stderr).toBe(0);
    const vkey = /verifier key: (\S+)/.exec(r.stdout)?.[1];
    expect(vkey).toMatch(/^audit\.example\.com\/llm\/prod\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(cli(['verifier-key', '--public-key', join(dir, 'k.pub'), '--origin', 'audit.example.com/llm/prod']).stdout.trim()).toBe(vkey);
    // The note verifier key also works with the private key file (its public half).
    const body = checkpointBody('audit.example.com/llm/prod', 1, 'ab'.repeat(32));
    const { createPrivateKey } = require('node:crypto') as typeof import('node:crypto');
    const note = signCheckpointNote(body, 'audit.example.com/llm/prod', createPrivateKey(readFileSync(join(dir, 'k'), 'utf8')));
    expect(tlogcheck(dir, ['note', vkey!, 'n'], { n: note }).code).toBe(0);
  });

  it('a bad LLM_AUDIT_LOG_ORIGIN is refused with a clear error', () => {
    for (const bad of ['has space', 'a+b', '']) {
      if (bad === '') {
        expect(transparencyFromEnv({ LLM_AUDIT_LOG_ORIGIN: '' }).origin).toBeUndefined();
        continue;
      }
      expect(() => transparencyFromEnv({ LLM_AUDIT_LOG_ORIGIN: bad })).toThrow(/LLM_AUDIT_LOG_ORIGIN .* is not a valid log origin/);
    }
    expect(transparencyFromEnv({ LLM_AUDIT_LOG_ORIGIN: ' audit.example.com/x ' }).origin).toBe('audit.example.com/x');
    // The exporter's options check them at start, as they check the other variables.
    expect(() => ledgerOptionsFromEnv({ LLM_AUDIT_LOG_ORIGIN: 'a b' })).toThrow(/LLM_AUDIT_LOG_ORIGIN "a b" is not a valid log origin/);
    expect(() => ledgerOptionsFromEnv({ LLM_AUDIT_WITNESSES: 'http://127.0.0.1:1' })).toThrow(/LLM_AUDIT_WITNESSES: "http:\/\/127.0.0.1:1" must be "<url> <verifier key>"/);
    expect(() => ledgerOptionsFromEnv({ LLM_AUDIT_WITNESSES: 'ftp://x w+00000000+AAAA' })).toThrow(/must be http\(s\)/);
    const logKey = cli(['keygen', '--out', join(tempDir(), 'k'), '--origin', 'w.example']).stdout.match(/verifier key: (\S+)/)![1]!;
    expect(() => ledgerOptionsFromEnv({ LLM_AUDIT_WITNESSES: `http://127.0.0.1:1 ${logKey}` })).toThrow(/not a witness \(cosignature\/v1\) key/);
    expect(ledgerOptionsFromEnv({ LLM_AUDIT_LOG_ORIGIN: 'audit.example.com/x' }).ledger?.transparency).toEqual({ origin: 'audit.example.com/x' });
    const r = cli(['keygen', '--out', join(tempDir(), 'k'), '--origin', 'bad origin']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/LEDGER_USAGE: --origin "bad origin" is not a valid log origin/);
  });

  it('verify catches a note that signs another root for a checkpoint size (a second history)', async () => {
    const { dir, priv, pub } = await signedLedger(6);
    expect(cli(['verify', '--ledger', dir, '--public-key', pub]).stdout).toMatch(/2 C2SP checkpoint notes match the checkpoints and are validly signed/);
    const note = parseCheckpointNote(cli(['checkpoint', '--ledger', dir, '--format', 'note']).stdout, 'x');
    const { createPrivateKey } = require('node:crypto') as typeof import('node:crypto');
    const other = signCheckpointNote(checkpointBody(note.origin, note.treeSize, 'ee'.repeat(32)), note.origin, createPrivateKey(readFileSync(priv, 'utf8')));
    appendFileSync(join(dir, NOTES_FILE), JSON.stringify({ note: other }) + '\n');
    const r = cli(['verify', '--ledger', dir, '--public-key', pub]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LEDGER_NOTE_INVALID: the C2SP note of tree size 6 has root e{64}, but the checkpoint of that size has/);
  });

  it('a writer start writes the newest note again when a crash lost it, and cuts a torn note line', async () => {
    const { dir, priv, pub } = await signedLedger(7);
    const path = join(dir, NOTES_FILE);
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    const newest = cli(['checkpoint', '--ledger', dir, '--format', 'note']).stdout;
    // The last note lost, and half of the one before it written.
    writeFileSync(path, lines.slice(0, -2).join('\n') + '\n' + lines[lines.length - 2]!.slice(0, 40));
    expect(cli(['checkpoint', '--ledger', dir, '--format', 'note']).stderr).toMatch(/LEDGER_NOTE_UNAVAILABLE/);
    const ledger = await FileLedger.open({ dir, fsync: 'none', signingKeyPath: priv, transparency: {} });
    await ledger.close();
    expect(cli(['checkpoint', '--ledger', dir, '--format', 'note']).stdout).toBe(newest);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    const verified = cli(['verify', '--ledger', dir, '--public-key', pub]);
    expect(verified.code, verified.stderr).toBe(0);
  });

  it('an unsigned ledger has no notes, and says why when one is asked for', async () => {
    const dir = join(tempDir(), 'l');
    const ledger = await FileLedger.open({ dir, fsync: 'none', transparency: {} });
    await ledger.append([makeRecord()]);
    await ledger.close();
    const r = cli(['checkpoint', '--ledger', dir, '--format', 'note']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/LEDGER_NOTE_UNAVAILABLE: .* notes are written only for signed checkpoints/);
  });
});

describe('proofs in the C2SP formats', () => {
  it('the consistency path a witness gets, read from the stored checkpoint on, is the one computed from the whole ledger', async () => {
    const work = tempDir('c2sp-');
    const dir = join(work, 'ledger');
    const ledger = await FileLedger.open({ dir, fsync: 'none', checkpointEvery: 7, transparency: {} });
    for (let i = 0; i < 40; i++) await ledger.append([makeRecord()]);
    await ledger.close();
    const source = new FileLedgerSource(dir);
    const checkpoints = (await source.checkpoints()).map((c) => c.checkpoint);
    expect(checkpoints.map((c) => c.tree_size)).toEqual([7, 14, 21, 28, 35, 40]);
    for (const old of checkpoints) {
      for (const size of [old.tree_size + 1, 33, 40].filter((n) => n > old.tree_size && n <= 40)) {
        expect(await consistencyPath(source, old.tree_size, size, old)).toEqual(await consistencyPath(source, old.tree_size, size));
      }
    }
  });

  it('prove --format tlog-proof verifies with Go tlog.CheckRecord and note.Open; a changed entry does not', async () => {
    const { dir, work, vkey } = await signedLedger(23);
    for (const seq of [0, 7, 22]) {
      const p = cli(['prove', '--seq', String(seq), '--ledger', dir, '--format', 'tlog-proof']);
      expect(p.code, p.stderr).toBe(0);
      expect(p.stdout.startsWith(`c2sp.org/tlog-proof@v1\nextra `)).toBe(true);
      expect(p.stdout).toContain(`\nindex ${seq}\n`);
      const r = tlogcheck(work, ['proof', vkey, `p${seq}`], { [`p${seq}`]: p.stdout });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`OK record ${seq} is in .* at size 23`));
    }
    const p = cli(['prove', '--seq', '7', '--ledger', dir, '--format', 'tlog-proof']).stdout;
    const extra = /^extra (\S+)$/m.exec(p)![1]!;
    const entry = Buffer.from(extra, 'base64').toString('utf8').replace('"alice"', '"mallory"');
    const forged = p.replace(extra, Buffer.from(entry).toString('base64'));
    const r = tlogcheck(work, ['proof', vkey, 'forged'], { forged });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tlog\.CheckRecord/);
  });

  it('consistency --format witness is the add-checkpoint body, and Go tlog.CheckTree accepts it', async () => {
    const work = tempDir('c2sp-');
    const dir = join(work, 'ledger');
    const { priv, pub } = keyFiles(work);
    const ledger = await FileLedger.open({ dir, fsync: 'none', signingKeyPath: priv, checkpointEvery: 1000, transparency: {} });
    for (let i = 0; i < 5; i++) await ledger.append([makeRecord()]);
    await ledger.checkpoint();
    writeFileSync(join(work, 'old.json'), cli(['checkpoint', '--ledger', dir]).stdout);
    const oldNote = cli(['checkpoint', '--ledger', dir, '--format', 'note']).stdout;
    for (let i = 0; i < 14; i++) await ledger.append([makeRecord()]);
    await ledger.close();
    writeFileSync(join(work, 'new.json'), cli(['checkpoint', '--ledger', dir]).stdout);
    const c = cli(['consistency', join(work, 'old.json'), join(work, 'new.json'), '--ledger', dir, '--format', 'witness']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^old 5\n([A-Za-z0-9+/]{43}=\n)+\n/);
    const vkey = cli(['verifier-key', '--public-key', pub, '--ledger', dir]).stdout.trim();
    const r = tlogcheck(work, ['consistency', vkey, 'old', 'body'], { old: oldNote, body: c.stdout });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/size 19 extends size 5/);
    // A proof hash changed: the stock check refuses it.
    const bad = c.stdout.replace(/^old 5\n(.)/, (_m, ch: string) => `old 5\n${ch === 'A' ? 'B' : 'A'}`);
    expect(tlogcheck(work, ['consistency', vkey, 'old', 'bad'], { bad }).code).toBe(1);
  });
});
