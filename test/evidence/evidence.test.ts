import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEvidence, verifyEvidence, type EvidenceJson } from '../../src/evidence/bundle';
import { gatherFacts } from '../../src/evidence/facts';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { runCli } from '../../src/cli/main';
import { makeRecord, tempDir } from '../ledger/helpers';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';
import { EXPECTED, FROM, HOSTILE_USER, TO, fileLedger, keys, records } from './data';

const key = keys();
const period = { from: Date.parse(FROM), to: Date.parse(TO) };

function facts(f: Awaited<ReturnType<typeof gatherFacts>>) {
  const { totals, by_user, by_tenant, by_model, by_provider, by_day, guardrails, sanitization, error_types, gaps, erasures, records: r } = f;
  return { totals, by_user, by_tenant, by_model, by_provider, by_day, guardrails, sanitization, error_types, gaps, erasures, records: { calls: r.calls, by_status: r.by_status, operations: r.operations, first: r.first, last: r.last } };
}

/** Every file of the bundle, relative paths. */
function bundleFiles(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? bundleFiles(dir, join(sub, e.name)) : [join(sub, e.name)]));
}

async function bundle(ledgerDir: string, extra: { previous?: string; signed?: boolean } = {}): Promise<string> {
  const out = tempDir('evidence-');
  await buildEvidence(new FileLedgerSource(ledgerDir), {
    framework: 'eu-ai-act',
    ...period,
    out,
    ...(extra.signed === false ? {} : { signingKey: key.privateKey }),
    ...(extra.previous ? { previous: extra.previous } : {}),
    verify: { publicKey: key.publicKey },
  });
  return out;
}

describe('evidence facts equal the hand computation', () => {
  it('file ledger', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const f = await gatherFacts(new FileLedgerSource(dir), { ...period, verify: { publicKey: key.publicKey } });
    expect(facts(f)).toEqual(EXPECTED);
    expect(f.ledger.verify).toMatchObject({ ok: true, records: records().length });
    expect(f.ledger.signed_with_given_key).toBe(true);
  });

  describe('PostgreSQL ledger', () => {
    let db: TestDatabase;
    afterAll(async () => db?.drop());
    it('the same numbers from the same records', async () => {
      postgresUrl();
      db = await createTestDatabase('evidence');
      let now = new Date(FROM);
      const writer = await PostgresLedger.open({ url: db.url, clock: () => now, signingKey: key.privateKey });
      for (const r of records()) {
        now = new Date(r.timestamp);
        await writer.append([r]);
      }
      await writer.close();
      const source = new PostgresLedgerSource(db.url);
      try {
        const f = await gatherFacts(source, { ...period, verify: { publicKey: key.publicKey } });
        expect(facts(f)).toEqual(EXPECTED);
        expect(f.ledger.verify.ok).toBe(true);
      } finally {
        await source.close();
      }
    });
  });
});

describe('evidence bundle', () => {
  it('verifies offline with the public key; the requirements read the facts', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const out = await bundle(dir);
    const check = verifyEvidence(out, { publicKey: key.publicKey });
    expect(check.signatures).toBe('verified');
    const evidence = JSON.parse(readFileSync(join(out, 'evidence.json'), 'utf8')) as EvidenceJson;
    // The sample: the period's records that the newest checkpoint covers, first, last and between.
    expect(evidence.sample.seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(check.inclusionProofs).toBe(8);
    const byId = Object.fromEntries(evidence.requirements.map((r) => [r.id, r]));
    // 3 records lost (the ledger.gap record): recording over the period is only partly shown.
    expect(byId['art12-1']!.status).toBe('partly');
    expect(byId['art12-1']!.evidence.join('\n')).toContain('3 audit records could not be written');
    expect(byId['art19']!.status).toBe('shown');
  });

  it('fails on a changed byte in any file, an added file and a removed file', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const good = await bundle(dir);
    const files = bundleFiles(good);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const copy = tempDir('evidence-bad-');
      cpSync(good, copy, { recursive: true });
      const bytes = readFileSync(join(copy, file));
      // Change one byte in the middle: a digit or letter swapped keeps JSON parseable where it can.
      const at = Math.floor(bytes.length / 2);
      bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
      writeFileSync(join(copy, file), bytes);
      let code: string | undefined;
      try {
        verifyEvidence(copy, { publicKey: key.publicKey });
      } catch (error) {
        code = (error as { code: string }).code;
      }
      expect(code, file).toBe(file === 'manifest.json' || file === 'manifest.sig.json' ? 'LEDGER_SIGNATURE_INVALID' : 'LEDGER_EVIDENCE_INVALID');
    }
    const removed = tempDir('evidence-removed-');
    cpSync(good, removed, { recursive: true });
    rmSync(join(removed, 'proofs', 'inclusion-3.json'));
    expect(() => verifyEvidence(removed, { publicKey: key.publicKey })).toThrow(/proofs\/inclusion-3\.json is listed in the manifest but missing/);
    const added = tempDir('evidence-added-');
    cpSync(good, added, { recursive: true });
    writeFileSync(join(added, 'proofs', 'extra.json'), '{}');
    expect(() => verifyEvidence(added, { publicKey: key.publicKey })).toThrow(/not in its manifest/);
  });

  it('fails on a swapped checkpoint, whether or not the manifest was re-hashed', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const older = await bundle(dir);
    // The ledger grows; a second bundle has a newer checkpoint.
    const ledger = await FileLedger.open({ dir, fsync: 'none', signingKey: key.privateKey, clock: () => new Date('2026-03-05T00:00:00.000Z') });
    await ledger.append([makeRecord({ timestamp: '2026-03-05T00:00:00.000Z', span_id: 'ffffffffffffff01' })]);
    await ledger.close();
    const newer = await bundle(dir);
    const swapped = tempDir('evidence-swap-');
    cpSync(newer, swapped, { recursive: true });
    cpSync(join(older, 'checkpoint.json'), join(swapped, 'checkpoint.json'));
    expect(() => verifyEvidence(swapped, { publicKey: key.publicKey })).toThrow(/checkpoint\.json was changed/);
    // A forger who also rewrites the manifest's hash cannot sign it again.
    const manifest = JSON.parse(readFileSync(join(swapped, 'manifest.json'), 'utf8'));
    const text = readFileSync(join(swapped, 'checkpoint.json'));
    const { createHash } = await import('node:crypto');
    const entry = manifest.files.find((f: { path: string }) => f.path === 'checkpoint.json');
    entry.sha256 = createHash('sha256').update(text).digest('hex');
    entry.bytes = text.length;
    writeFileSync(join(swapped, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    expect(() => verifyEvidence(swapped, { publicKey: key.publicKey })).toThrow(/signature does not verify/);
  });

  it('links to the previous bundle, and fails when the consistency proof does not', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const q1 = await bundle(dir);
    const ledger = await FileLedger.open({ dir, fsync: 'none', signingKey: key.privateKey, clock: () => new Date('2026-03-05T00:00:00.000Z') });
    await ledger.append([makeRecord({ timestamp: '2026-03-05T00:00:00.000Z', span_id: 'ffffffffffffff02' })]);
    await ledger.close();
    const q2 = await bundle(dir, { previous: q1 });
    expect(verifyEvidence(q2, { publicKey: key.publicKey, previous: q1 }).consistencyFrom).toBe(records().length);
    // Another ledger's bundle as "previous": the proof does not start there.
    const other = tempDir();
    await fileLedger(other, key.privateKey, records().slice(0, 4));
    const unrelated = await bundle(other);
    expect(() => verifyEvidence(q2, { publicKey: key.publicKey, previous: unrelated })).toThrow(/does not link the two bundles/);
    // A bundle built without --previous cannot be shown to follow one.
    expect(() => verifyEvidence(q1, { publicKey: key.publicKey, previous: unrelated })).toThrow(/nothing links it/);
  });

  it('the report escapes what the application sent', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const html = readFileSync(join(await bundle(dir), 'report.html'), 'utf8');
    expect(html).not.toContain(HOSTILE_USER);
    expect(html).toContain('&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});

describe('llm-audit evidence', () => {
  const io = (env: NodeJS.ProcessEnv = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { out: async (t: string) => void out.push(t), err: (l: string) => void err.push(l), env, cwd: process.cwd() }, out, err };
  };

  it('writes a bundle and verifies it; without a key, verify says nothing was proven', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const keyDir = tempDir('keys-');
    writeFileSync(join(keyDir, 'k.pem'), key.privatePem);
    writeFileSync(join(keyDir, 'k.pub'), key.publicPem);
    const out = join(tempDir('bundle-'), 'b');
    const run = io({ LLM_AUDIT_SIGNING_KEY: join(keyDir, 'k.pem') });
    const code = await runCli(['evidence', '--framework', 'hipaa', '--from', FROM, '--to', TO, '--out', out, '--ledger', dir, '--public-key', join(keyDir, 'k.pub')], run.io);
    expect(code).toBe(0);
    expect(run.out.join('')).toMatch(/manifest signed/);
    expect(run.out.join('')).toMatch(/45 CFR 164\.312\(b\)/);
    const ok = io();
    expect(await runCli(['evidence', 'verify', out, '--public-key', join(keyDir, 'k.pub')], ok.io)).toBe(0);
    expect(ok.out.join('')).toMatch(/^OK /);
    const bare = io();
    expect(await runCli(['evidence', 'verify', out], bare.io)).toBe(1);
    expect(bare.err.join('\n')).toMatch(/LEDGER_PROOF_UNAUTHENTICATED/);
    // A non-empty --out is refused: a bundle is never mixed with other files.
    const again = io();
    expect(await runCli(['evidence', '--framework', 'hipaa', '--from', FROM, '--out', out, '--ledger', dir], again.io)).toBe(3);
    expect(again.err.join('\n')).toMatch(/not empty/);
  });

  it('bad input gets a clear usage error', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['evidence', '--from', FROM, '--out', 'x'], /--framework is required/],
      [['evidence', '--framework', 'sox', '--from', FROM, '--out', 'x'], /--framework must be one of eu-ai-act, hipaa, soc2, gdpr/],
      [['evidence', '--framework', 'soc2', '--out', 'x'], /--from is required/],
      [['evidence', '--framework', 'soc2', '--from', TO, '--to', FROM, '--out', 'x'], /--to must be after --from/],
      [['evidence', 'verify'], /name the bundle directory/],
    ];
    for (const [argv, message] of cases) {
      const run = io();
      expect(await runCli(argv, run.io), argv.join(' ')).toBe(2);
      expect(run.err.join('\n')).toMatch(message);
    }
  });
});

describe('llm-audit report usage and summary', () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { out: async (t: string) => void out.push(t), err: (l: string) => void err.push(l), env: {}, cwd: process.cwd() });
    return { code, out: out.join(''), err: err.join('\n') };
  };

  it('usage --by gives the hand-computed totals per group, --top cuts and says so', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const period = ['--from', FROM, '--to', TO, '--ledger', dir];
    const tenants = await run(['report', 'usage', '--by', 'tenant', '--format', 'json', ...period]);
    expect(tenants.code).toBe(0);
    expect(JSON.parse(tenants.out)).toEqual(EXPECTED.by_tenant);
    const providers = await run(['report', 'usage', '--by', 'provider', '--format', 'json', ...period]);
    expect(JSON.parse(providers.out)).toEqual(EXPECTED.by_provider);
    const top = await run(['report', 'usage', '--by', 'user', '--top', '1', ...period]);
    expect(top.out.trim().split('\n')).toHaveLength(3);
    expect(top.out).toContain('bob');
    expect(top.err).toContain('top 1 of 3 groups');
    const bad = await run(['report', 'usage', '--by', 'colour', ...period]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--by must be one of user, tenant, model, provider, day/);
    expect((await run(['report', 'usage', ...period])).err).toMatch(/usage needs --by/);
    expect((await run(['report', 'usage', '--by', 'user', '--top', '0', ...period])).err).toMatch(/--top must be a positive whole number/);
  });

  it('summary as rows and as one HTML page; every report renders as HTML with its chart', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const summary = await run(['report', 'summary', '--format', 'json', '--from', FROM, '--to', TO, '--ledger', dir]);
    expect(JSON.parse(summary.out).at(-1)).toEqual({ provider: 'all', model: null, ...EXPECTED.totals });
    const html = join(tempDir('html-'), 'summary.html');
    expect((await run(['report', 'summary', '--format', 'html', '--out', html, '--from', FROM, '--to', TO, '--ledger', dir])).code).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('id="chart-calls-per-day"');
    expect(page).toContain('&lt;img src=x');
    for (const name of ['cost-by-user', 'error-rate']) {
      const file = join(tempDir('html-'), `${name}.html`);
      const r = await run(['report', name, '--format', 'html', '--out', file, '--now', TO, '--hours', '96', '--ledger', dir]);
      expect(r.code, name).toBe(0);
      expect(readFileSync(file, 'utf8'), name).toContain(`id="chart-${name}"`);
    }
  });
});

describe('evidence bundle: the sample is proved with a bounded number of chain walks', () => {
  it('reads the ledger a fixed number of times, not twice more per sampled record; the proofs are those `prove` gives', async () => {
    const dir = tempDir();
    await fileLedger(dir, key.privateKey);
    const source = new FileLedgerSource(dir);
    let walks = 0;
    const items = source.items.bind(source);
    source.items = (options) => {
      walks++;
      return items(options);
    };
    const out = tempDir('evidence-');
    await buildEvidence(source, { framework: 'soc2', ...period, out, signingKey: key.privateKey, verify: { publicKey: key.publicKey } });
    const proofs = readdirSync(join(out, 'proofs')).filter((f) => f.startsWith('inclusion-'));
    expect(proofs.length).toBeGreaterThan(2);
    // verify's walk, the facts' and the sample's scans, one walk for the sampled entries and one for
    // every path's hashes: 1 + 3 + 2 here. Proving each record alone took 2 walks per record.
    expect(walks).toBeLessThanOrEqual(7);
    const { proveInclusion } = await import('../../src/ledger/proofs');
    for (const name of proofs) {
      const seq = Number(/inclusion-(\d+)\.json/.exec(name)![1]);
      expect(JSON.parse(readFileSync(join(out, 'proofs', name), 'utf8'))).toEqual(JSON.parse(JSON.stringify(await proveInclusion(new FileLedgerSource(dir), { seq }))));
    }
  });
});
