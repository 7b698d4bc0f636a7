import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContentError, ContentKeystore, parseEnvelope, shredTenant, type ContentPayload, type DekEntry } from '../../../src/audit/content';
import { ROOT } from '../../cli/cli-helpers';
import { cipherFor, ensureBuiltWithContent, newKey, tempDir } from './helpers';

const P: ContentPayload = { input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'personal data' }] }] };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ContentError);
    return (error as ContentError).code;
  }
  return undefined;
}

function storeLines(dir: string): DekEntry[] {
  return readFileSync(join(dir, 'content-keystore.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as DekEntry);
}

describe('shredding', () => {
  it("makes one tenant's envelopes unreadable while others still open; the next seal for that tenant uses a new data key", () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const cipher = cipherFor(dir, key);
    const a1 = cipher.seal(P, { requestId: 'a1', tenantId: 'acme' });
    const a2 = cipher.seal(P, { requestId: 'a2', tenantId: 'acme' });
    const g1 = cipher.seal(P, { requestId: 'g1', tenantId: 'globex' });
    const n1 = cipher.seal(P, { requestId: 'n1' });
    const acmeDek = parseEnvelope(a1).dek;
    const wrapped = storeLines(dir).find((e) => e.dek === acmeDek)!.wrapped;

    const result = cipher.shred('acme', { reason: 'GDPR erasure ticket 42' });
    expect(result).toMatchObject({ v: 1, type: 'content.shred', tenant: 'acme', deks: [acmeDek], kids: ['ck-a'], pid: process.pid, reason: 'GDPR erasure ticket 42' });
    expect(result.keystore).toBe(join(dir, 'content-keystore.jsonl'));
    expect(Date.parse(result.at)).not.toBeNaN();

    for (const [env, id] of [[a1, 'a1'], [a2, 'a2']] as const) expect(codeOf(() => cipher.open(env, { requestId: id }))).toBe('CONTENT_KEY_SHREDDED');
    expect(cipher.open(g1, { requestId: 'g1' })).toEqual(P);
    expect(cipher.open(n1, { requestId: 'n1' })).toEqual(P);

    // A fresh process (new cipher, same files) sees the same.
    const reviewer = cipherFor(dir, undefined, [key]);
    expect(codeOf(() => reviewer.open(a1, { requestId: 'a1' }))).toBe('CONTENT_KEY_SHREDDED');
    expect(reviewer.open(g1, { requestId: 'g1' })).toEqual(P);

    // The wrapped key is gone from the keystore file, which holds no filler lines after compaction.
    const text = readFileSync(join(dir, 'content-keystore.jsonl'), 'utf8');
    expect(text).not.toContain(wrapped);
    expect(text).not.toContain(acmeDek);
    expect(storeLines(dir).map((e) => e.tenant).sort((x, y) => String(x).localeCompare(String(y)))).toEqual(['globex', null]);
    expect(readdirSync(dir).filter((n) => n.includes('.compact-') || n.endsWith('.lock'))).toEqual([]);
    expect(statSync(join(dir, 'content-keystore.jsonl')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'shredded.jsonl')).mode & 0o777).toBe(0o600);

    // The shred is recorded.
    const log = readFileSync(join(dir, 'shredded.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toEqual([result]);

    // New content for the tenant gets a new data key, and opens.
    const a3 = cipher.seal(P, { requestId: 'a3', tenantId: 'acme' });
    expect(parseEnvelope(a3).dek).not.toBe(acmeDek);
    expect(cipher.open(a3, { requestId: 'a3' })).toEqual(P);
  });

  it('is noticed by another cipher instance (another process) holding the key in memory, within its refresh interval', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const writer = cipherFor(dir, key, [], 0);
    const before = writer.seal(P, { requestId: 'b', tenantId: 'acme' });
    shredTenant(join(dir, 'content-keystore.jsonl'), 'acme');
    const after = writer.seal(P, { requestId: 'c', tenantId: 'acme' });
    expect(parseEnvelope(after).dek).not.toBe(parseEnvelope(before).dek);
    expect(codeOf(() => writer.open(before, { requestId: 'b' }))).toBe('CONTENT_KEY_SHREDDED');
    expect(writer.open(after, { requestId: 'c' })).toEqual(P);
  });

  it('keeps a shredded data key dead when a keystore backup is restored', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const cipher = cipherFor(dir, key);
    const env = cipher.seal(P, { requestId: 'r', tenantId: 'acme' });
    copyFileSync(join(dir, 'content-keystore.jsonl'), join(dir, 'backup.jsonl'));
    cipher.shred('acme');
    copyFileSync(join(dir, 'backup.jsonl'), join(dir, 'content-keystore.jsonl'));
    const fresh = cipherFor(dir, key);
    expect(codeOf(() => fresh.open(env, { requestId: 'r' }))).toBe('CONTENT_KEY_SHREDDED');
    // ...and sealing does not reuse it.
    expect(parseEnvelope(fresh.seal(P, { requestId: 's', tenantId: 'acme' })).dek).not.toBe(parseEnvelope(env).dek);
  });

  it('finishes an interrupted shred (filler lines written, nothing recorded) and records it', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const cipher = cipherFor(dir, key);
    const env = cipher.seal(P, { requestId: 'r', tenantId: 'acme' });
    cipher.seal(P, { requestId: 'r2', tenantId: 'other' });
    const path = join(dir, 'content-keystore.jsonl');
    // Simulate a crash after step 1: the acme line replaced by a same-length filler, no record, no compaction.
    const dek = parseEnvelope(env).dek;
    const lines = readFileSync(path, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes(dek));
    const filler = JSON.stringify({ dek, kid: 'ck-a', tenant: 'acme', type: 'shredded' });
    lines[i] = filler + ' '.repeat(lines[i]!.length - filler.length);
    writeFileSync(path, lines.join('\n'));
    expect(codeOf(() => cipherFor(dir, key).open(env, { requestId: 'r' }))).toBe('CONTENT_KEY_SHREDDED');
    const result = shredTenant(path, 'acme');
    expect(result.deks).toEqual([dek]);
    expect(readFileSync(path, 'utf8')).not.toContain(dek);
    // Shredding again destroys nothing more, and says so.
    expect(shredTenant(path, 'acme').deks).toEqual([]);
  });

  it('also destroys a damaged line that names the tenant, and never touches other lines', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const cipher = cipherFor(dir, key);
    const other = cipher.seal(P, { requestId: 'o', tenantId: 'other' });
    const path = join(dir, 'content-keystore.jsonl');
    appendFileSync(path, '{"tenant":"acme","wrapped":"SECRETISH-damaged-line\n');
    const otherLine = readFileSync(path, 'utf8').split('\n')[0];
    shredTenant(path, 'acme');
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain('SECRETISH');
    expect(text.split('\n')[0]).toBe(otherLine);
    expect(cipherFor(dir, key).open(other, { requestId: 'o' })).toEqual(P);
  });

  it('refuses an empty tenant id', () => {
    const dir = tempDir();
    expect(codeOf(() => shredTenant(join(dir, 'content-keystore.jsonl'), ''))).toBe('CONTENT_USAGE');
  });
});

describe('keystore file', () => {
  it('survives a torn last line (crash mid-append): it is ignored and the next append starts on a new line', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const path = join(dir, 'content-keystore.jsonl');
    const first = cipherFor(dir, key).seal(P, { requestId: 'r1', tenantId: 'a' });
    appendFileSync(path, '{"created":"2026-01-01T00:00:00.000Z","dek":"abc');
    const cipher = cipherFor(dir, key);
    const second = cipher.seal(P, { requestId: 'r2', tenantId: 'b' });
    expect(cipher.open(first, { requestId: 'r1' })).toEqual(P);
    expect(cipher.open(second, { requestId: 'r2' })).toEqual(P);
    const store = new ContentKeystore({ path });
    store.refresh(true);
    expect(store.list()).toHaveLength(2);
    expect(store.malformedLines).toBe(1);
  });

  it('an altered wrapped key fails with CONTENT_KEY_INVALID, a missing line with CONTENT_KEY_MISSING', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const env = cipherFor(dir, key).seal(P, { requestId: 'r', tenantId: 'a' });
    const path = join(dir, 'content-keystore.jsonl');
    const entry = storeLines(dir)[0]!;
    const bytes = Buffer.from(entry.wrapped, 'base64');
    bytes[0]! ^= 1;
    writeFileSync(path, JSON.stringify({ ...entry, wrapped: bytes.toString('base64') }) + '\n');
    expect(codeOf(() => cipherFor(dir, key).open(env, { requestId: 'r' }))).toBe('CONTENT_KEY_INVALID');
    writeFileSync(path, '');
    expect(codeOf(() => cipherFor(dir, key).open(env, { requestId: 'r' }))).toBe('CONTENT_KEY_MISSING');
  });

  it('takes over the lock of a dead process, and reports a live holder after the timeout', () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const path = join(dir, 'content-keystore.jsonl');
    writeFileSync(path + '.lock', JSON.stringify({ pid: 2 ** 22 + 12345, host: require('node:os').hostname(), at: 'then' }));
    const env = cipherFor(dir, key).seal(P, { requestId: 'r', tenantId: 'x' });
    expect(parseEnvelope(env).tenant).toBe('x');
    expect(existsSync(path + '.lock')).toBe(false);
    writeFileSync(path + '.lock', JSON.stringify({ pid: process.pid === 1 ? 2 : 1, host: 'another-host', at: 'now' }));
    const cipher = new ContentKeystore({ path, lockTimeoutMs: 100 });
    let error: unknown;
    try {
      cipher.shred('x');
    } catch (e) {
      error = e;
    }
    expect((error as ContentError).code).toBe('CONTENT_KEYSTORE_LOCKED');
    expect((error as ContentError).message).toContain('another-host');
  });
});

describe('two processes', () => {
  beforeAll(() => ensureBuiltWithContent(), 120_000);

  it('creating data keys at the same time neither corrupt the store nor split a tenant across keys', async () => {
    const dir = tempDir();
    const key = newKey(dir, 'ck-a');
    const tenants = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
    const script = `
      const c = require(${JSON.stringify(join(ROOT, 'dist/cjs/audit/content'))});
      const cipher = c.createContentCipher({ masterKey: c.loadContentMasterKey(process.argv[1]), keystorePath: process.argv[2], refreshMs: 0 });
      const tenants = JSON.parse(process.argv[3]);
      if (process.argv[4] === 'reverse') tenants.reverse();
      const out = [];
      // Wait for the common start time so both processes really race.
      while (Date.now() < Number(process.argv[5])) {}
      for (const t of tenants) out.push({ t, e: cipher.seal({ input_messages: [{ role: 'user', parts: [{ type: 'text', content: t }] }] }, { requestId: 'r-' + t, tenantId: t }) });
      process.stdout.write(JSON.stringify(out));
    `;
    const start = String(Date.now() + 400);
    const run = (order: string) =>
      new Promise<Array<{ t: string; e: string }>>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', script, key.path, join(dir, 'content-keystore.jsonl'), JSON.stringify(tenants), order, start], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const [one, two] = await Promise.all([run('forward'), run('reverse')]);

    const lines = readFileSync(join(dir, 'content-keystore.jsonl'), 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const entries = lines.map((l) => JSON.parse(l) as DekEntry);
    expect(entries).toHaveLength(tenants.length);
    expect(new Set(entries.map((e) => e.tenant)).size).toBe(tenants.length);

    const reviewer = cipherFor(dir, undefined, [key]);
    const byTenant = new Map(one.map((x) => [x.t, x.e]));
    for (const { t, e } of two) {
      expect(parseEnvelope(e).dek).toBe(parseEnvelope(byTenant.get(t)!).dek);
      expect(reviewer.open(e, { requestId: 'r-' + t, tenantId: t }).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: t }] }]);
      expect(reviewer.open(byTenant.get(t)!, { requestId: 'r-' + t, tenantId: t }).input_messages).toHaveLength(1);
    }
  });
});
