// Reads of the audit trail are audited (issue 23, section 4), on the file ledger: decrypt appends an
// audit.read record before it prints anything and refuses when it cannot; query, report and
// evidence record the read when they can take the ledger's lock and say so when they cannot.
import { readdirSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { contentPayload } from '../../src/audit/content';
import { FileLedger } from '../../src/ledger/file/ledger';
import type { LedgerRecord } from '../../src/ledger/record';
import { cipherFor, ensureBuiltWithContent, newKey, tempDir } from '../audit/content/helpers';
import { makeRecord } from '../ledger/helpers';
import { cli, expectNoStack, ledger } from './cli-helpers';

const CANARY = 'CANARY-read-audit-7c2f';

beforeAll(() => ensureBuiltWithContent(), 120_000);

interface Fixture {
  dir: string;
  ledger: string;
  key: string;
}

/** A ledger of two calls with encrypted content (tenants acme and globex) and one without, optionally signed. */
async function fixture(signingKey?: string): Promise<Fixture> {
  const dir = tempDir('read-audit-');
  const master = newKey(dir, 'ck-read');
  const cipher = cipherFor(dir, master);
  const seal = (requestId: string, tenantId: string) =>
    cipher.seal(contentPayload('openai.chat', { messages: [{ role: 'user', content: `${tenantId} asks ${CANARY}` }] }, []), { requestId, tenantId });
  const path = join(dir, 'ledger');
  const writer = await FileLedger.open({ dir: path, fsync: 'none', ...(signingKey ? { signingKeyPath: signingKey } : {}) });
  await writer.append([
    { ...makeRecord({ request_id: 'req-acme', tenant_id: 'acme', cost_usd: 0.5 }), content: seal('req-acme', 'acme') },
    { ...makeRecord({ request_id: 'req-globex', tenant_id: 'globex', cost_usd: 0.25 }), content: seal('req-globex', 'globex') },
    makeRecord({ request_id: 'req-plain', tenant_id: 'acme', cost_usd: 1 }),
  ] as LedgerRecord[]);
  await writer.close();
  return { dir, ledger: path, key: master.path };
}

function reads(ledgerDir: string): Array<Record<string, unknown>> {
  const r = cli(['query', '--action', 'audit.read', '--ledger', ledgerDir, '--format', 'json', '--columns', 'seq,tenant_id,action']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

/** The metadata of the audit.read records, read from the segment files (query does not show metadata). */
function readMetadata(ledgerDir: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const name of readdirSync(join(ledgerDir, 'segments')).sort()) {
    const text = require('node:fs').readFileSync(join(ledgerDir, 'segments', name), 'utf8') as string;
    for (const line of text.split('\n').filter(Boolean)) {
      const { record } = JSON.parse(line) as { record: LedgerRecord };
      if (record.action === 'audit.read') out.push({ tenant_id: record.tenant_id, ...record.metadata });
    }
  }
  return out;
}

describe('decrypt is recorded before it shows anything', () => {
  it('refuses without --reason (usage, exit 2, nothing shown)', async () => {
    const f = await fixture();
    const r = cli(['decrypt', 'req-acme', '--ledger', f.ledger, '--key', f.key]);
    expectNoStack(r);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_USAGE: --reason TEXT is required/m);
    expect(r.stdout).toBe('');
    expect(readMetadata(f.ledger)).toEqual([]);
  });

  it('appends audit.read (actor, OS user, reason, the record) and then shows the content; the ledger still verifies', async () => {
    const f = await fixture();
    const r = cli(['decrypt', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--reason', 'ticket 4711', '--actor', 'alice@example.com']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`acme asks ${CANARY}`);
    const [read, ...more] = readMetadata(f.ledger);
    expect(more).toEqual([]);
    expect(read).toMatchObject({
      tenant_id: 'acme',
      command: 'decrypt',
      actor: 'alice@example.com',
      os_user: userInfo().username,
      reason: 'ticket 4711',
      request_id: 'req-acme',
      seq: 0,
      kid: 'ck-read',
    });
    // Without --actor the OS user is the actor.
    expect(cli(['decrypt', 'req-globex', '--ledger', f.ledger, '--key', f.key, '--reason', 'audit']).code).toBe(0);
    expect(readMetadata(f.ledger)[1]).toMatchObject({ tenant_id: 'globex', actor: userInfo().username, request_id: 'req-globex', seq: 1 });
    expect(reads(f.ledger).map((r) => r.seq)).toEqual([3, 4]);
    expect(cli(['verify', '--ledger', f.ledger]).code).toBe(0);
  });

  it('refuses (exit 3, nothing printed) when the ledger is locked by a running writer', async () => {
    const f = await fixture();
    const writer = await FileLedger.open({ dir: f.ledger, fsync: 'none' });
    let r;
    try {
      r = cli(['decrypt', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--reason', 'ticket 1']);
    } finally {
      await writer.close();
    }
    expectNoStack(r);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain(CANARY);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_LOCKED: decrypt shows content only once the read is recorded in the ledger \(audit\.read\), and it cannot be: .*locked by process .*nothing was shown$/m);
    expect(readMetadata(f.ledger)).toEqual([]);
  });

  it('on a signed ledger: refused without the signing key, recorded and signed with it (verify --public-key passes)', async () => {
    const keys = tempDir('read-audit-keys-');
    const signing = join(keys, 'signing.pem');
    expect(cli(['keygen', '--out', signing]).code).toBe(0);
    const f = await fixture(signing);
    const refused = cli(['decrypt', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--reason', 'r']);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/LEDGER_KEY_INVALID: .*is signed, and without its signing key/);
    const shown = cli(['decrypt', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--reason', 'r'], { LLM_AUDIT_SIGNING_KEY: signing });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(CANARY);
    const verified = cli(['verify', '--ledger', f.ledger, '--public-key', `${signing}.pub`, '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).records).toBe(4);
  });
});

describe('query, report and evidence record the read when they can take the lock', () => {
  it('query: recorded with its filter and the seqs shown; audit.read rows listed only when asked for', async () => {
    const f = await fixture();
    const r = cli(['query', '--tenant', 'acme', '--ledger', f.ledger, '--format', 'json', '--reason', 'monthly review']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect((JSON.parse(r.stdout) as Array<{ seq: number }>).map((x) => x.seq)).toEqual([0, 2]);
    expect(readMetadata(f.ledger)).toEqual([
      expect.objectContaining({ tenant_id: 'acme', command: 'query', tenant: 'acme', records: 2, seqs: [0, 2], reason: 'monthly review' }),
    ]);
    // A second query does not list the first one's audit.read record among the calls.
    const again = JSON.parse(cli(['query', '--ledger', f.ledger, '--format', 'json']).stdout) as Array<{ action: string | null }>;
    expect(again.map((x) => x.action)).not.toContain('audit.read');
    expect(reads(f.ledger)).toHaveLength(2);
  });

  it('a locked ledger: query still answers and says on stderr the read is not recorded; --require-audit refuses before reading', async () => {
    const f = await fixture();
    const writer = await FileLedger.open({ dir: f.ledger, fsync: 'none' });
    let shown;
    let strict;
    try {
      shown = cli(['query', '--ledger', f.ledger, '--format', 'json']);
      strict = cli(['query', '--ledger', f.ledger, '--format', 'json', '--require-audit']);
    } finally {
      await writer.close();
    }
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toHaveLength(3);
    expect(shown.stderr).toMatch(/^note: this read is not recorded in the ledger \(audit\.read\): .*locked by process/m);
    expectNoStack(strict);
    expect(strict.code).toBe(3);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toMatch(/^llm-audit: LEDGER_LOCKED: query: --require-audit: this read cannot be recorded/m);
    expect(readMetadata(f.ledger)).toEqual([]);
  });

  it('report: recorded, and audit.read records are not counted as calls', async () => {
    const f = await fixture();
    const usage = () =>
      JSON.parse(cli(['report', 'usage', '--by', 'tenant', '--from', '2026-01-01', '--to', '2027-01-01', '--ledger', f.ledger, '--format', 'json']).stdout) as Array<{
        tenant_id: string;
        calls: number;
      }>;
    const first = usage();
    expect(cli(['query', '--ledger', f.ledger, '--tenant', 'acme']).code).toBe(0);
    const second = usage();
    expect(second).toEqual(first);
    expect(second.find((row) => row.tenant_id === 'acme')?.calls).toBe(2);
    const summary = cli(['report', 'summary', '--from', '2026-01-01', '--to', '2027-01-01', '--ledger', f.ledger, '--format', 'json']);
    expect((JSON.parse(summary.stdout) as Array<{ provider: string; calls: number }>).find((row) => row.provider === 'all')?.calls).toBe(3);
    expect(readMetadata(f.ledger).map((m) => [m.command, m.report ?? null])).toEqual([
      ['report', 'usage'],
      ['query', null],
      ['report', 'usage'],
      ['report', 'summary'],
    ]);
  });

  it('evidence: recorded with the framework and period', async () => {
    const f = await fixture();
    const out = join(f.dir, 'bundle');
    const r = cli(['evidence', '--framework', 'eu-ai-act', '--from', '2026-01-01', '--to', '2027-01-01', '--out', out, '--ledger', f.ledger, '--reason', 'Q1 audit']);
    expect(r.code, r.stderr).toBe(0);
    expect(readMetadata(f.ledger)).toEqual([
      expect.objectContaining({ command: 'evidence', framework: 'eu-ai-act', from: '2026-01-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z', records: 3, reason: 'Q1 audit' }),
    ]);
  });
});

describe('query on a ledger whose first segment was deleted', () => {
  it('fails with LEDGER_RECORD_MISSING although later segments are there (was silent: the scan only compared seqs with each other)', async () => {
    const dir = await ledger({ count: 10, every: 4 });
    const segments = readdirSync(join(dir, 'segments')).sort();
    rmSync(join(dir, 'segments', segments[0]!));
    const r = cli(['query', '--ledger', dir, '--format', 'json']);
    expectNoStack(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_RECORD_MISSING: .*records 0\.\.\d+ are missing/m);
  });
});
