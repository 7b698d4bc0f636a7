/**
 * The error codes (issue 20): docs/errors.md is ERROR_CODES, the exit statuses the older docs
 * promise have not moved, and every code is produced by some test: here for the ones no other test
 * produced, elsewhere (named in the test that produces it) for the rest.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contentCipherFromEnv, createContentMasterKey } from '../../src/audit/content';
import { AuditError, ERROR_CODES, exitStatusFor, renderError, type AuditErrorCode } from '../../src/errors';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { checkApplied, LATEST_VERSION, SCHEMA } from '../../src/ledger/postgres/migrations';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { inclusionPath, proveInclusion } from '../../src/ledger/proofs';
import { applyRetention, resolvePolicy } from '../../src/ledger/retention';
import { generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord, tempDir } from '../ledger/helpers';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/postgres';

const ROOT = join(__dirname, '../..');

/** `| \`CODE\`, \`CODE2\` | exit | ... |` rows of a markdown file. */
function documented(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    const m = /^\| ((?:`[A-Z_]+`(?:, )?)+) \| (\d+) \|/.exec(line);
    if (m === null) continue;
    for (const [, code] of m[1]!.matchAll(/`([A-Z_]+)`/g)) out.set(code!, Number(m[2]));
  }
  return out;
}

/** The code of what `work` throws (or rejects with). */
async function codeOf(work: () => unknown): Promise<string | undefined> {
  try {
    await work();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('the error codes', () => {
  it('docs/errors.md lists exactly ERROR_CODES, with their exit statuses and meanings', () => {
    const rows = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8')
      .split('\n')
      .filter((line) => /^\| `[A-Z_]+` \|/.test(line));
    expect(rows).toEqual(Object.entries(ERROR_CODES).map(([code, [exit, meaning]]) => `| \`${code}\` | ${exit} | ${meaning} |`));
  });

  it('the exit statuses docs/ledger.md and docs/content-encryption.md promise are unchanged', () => {
    const promised = new Map([...documented('docs/ledger.md'), ...documented('docs/content-encryption.md')]);
    expect(promised.size).toBeGreaterThan(50);
    for (const [code, exit] of promised) {
      expect(code in ERROR_CODES, `${code} is a code`).toBe(true);
      expect(ERROR_CODES[code as AuditErrorCode][0], code).toBe(exit);
    }
  });

  it('every code is produced by a test', () => {
    const mentioned = execFileSync('grep', ['-rhoE', '[A-Z]+_[A-Z_]+', join(ROOT, 'test'), '--include=*.ts', '--exclude=codes.test.ts'], { encoding: 'utf8' });
    const produced = new Set([...mentioned.split('\n'), ...PRODUCED_HERE]);
    expect(Object.keys(ERROR_CODES).filter((code) => !produced.has(code))).toEqual([]);
  });
});

/** The codes no other test produced; each is produced below. */
const PRODUCED_HERE = ['LEDGER_CHAIN_BROKEN', 'LEDGER_NOT_CHECKPOINTED', 'LEDGER_PROOF_UNAVAILABLE', 'LEDGER_SCHEMA_MISMATCH', 'LEDGER_SEGMENT_UNEXPECTED', 'CONTENT_KEYSTORE_IO', 'INTERNAL'];

describe('codes no other test produced', () => {
  it('LEDGER_CHAIN_BROKEN: the first record no longer continues the ledger', async () => {
    const dir = join(tempDir('codes-'), 'ledger');
    const ledger = await FileLedger.open({ dir, fsync: 'none' });
    for (let i = 0; i < 3; i++) await ledger.append([makeRecord({ request_id: `r${i}`, span_id: (0x100 + i).toString(16).padStart(16, '0') })]);
    await ledger.close();
    const segment = join(dir, 'segments', (await new FileLedgerSource(dir).segments())[0]!);
    const lines = readFileSync(segment, 'utf8').split('\n');
    lines[0] = lines[0]!.replace(/"prev":"([0-9a-f])/, (_, c: string) => `"prev":"${c === '0' ? '1' : '0'}`);
    writeFileSync(segment, lines.join('\n'));
    expect(await codeOf(() => verifyLedger(new FileLedgerSource(dir)))).toBe('LEDGER_CHAIN_BROKEN');
  });

  it('LEDGER_NOT_CHECKPOINTED: a proof asked of a ledger with no checkpoint', async () => {
    const dir = join(tempDir('codes-'), 'ledger');
    const ledger = await FileLedger.open({ dir, fsync: 'none', checkpointEvery: 1_000_000, checkpointIntervalMs: 3_600_000 });
    await ledger.append([makeRecord({ request_id: 'only' })]);
    expect(await codeOf(() => proveInclusion(new FileLedgerSource(dir), { requestId: 'only' }))).toBe('LEDGER_NOT_CHECKPOINTED');
    await ledger.close();
  });

  it('LEDGER_PROOF_UNAVAILABLE: an inclusion proof in a tree size that predates the records retention removed', async () => {
    const { privatePem } = generateSigningKeyPair();
    const signingKey = createPrivateKey(privatePem);
    const dir = join(tempDir('codes-'), 'ledger');
    let now = '2025-01-01T00:00:00Z';
    const ledger = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now), checkpointEvery: 4, signingKey });
    for (const day of ['2025-01-01', '2025-01-02', '2025-03-01']) {
      for (let h = 10; h < 13; h++) {
        now = `${day}T${h}:00:00.000Z`;
        await ledger.append([makeRecord({ timestamp: now, request_id: `${day}-${h}` })]);
      }
    }
    await ledger.close();
    await applyRetention(dir, { policy: resolvePolicy('gdpr', { maxAge: '30d' }), now: new Date('2025-02-15T00:00:00Z'), signingKey });
    expect(await codeOf(() => inclusionPath(new FileLedgerSource(dir), 0, 4))).toBe('LEDGER_PROOF_UNAVAILABLE');
  });

  it('LEDGER_SCHEMA_MISMATCH: a schema version newer than this llm-audit knows', () => {
    expect(() => checkApplied([{ version: LATEST_VERSION + 1, name: 'from the future', checksum: '0' }])).toThrow(expect.objectContaining({ code: 'LEDGER_SCHEMA_MISMATCH' }));
  });

  describe('LEDGER_SEGMENT_UNEXPECTED (PostgreSQL)', () => {
    let db: TestDatabase | undefined;
    afterAll(async () => db?.drop());
    it('a partition of the records table that llm-audit did not create', async () => {
      db = await createTestDatabase('codes');
      await adminQuery(db.url, `CREATE TABLE ${SCHEMA}.records_by_hand PARTITION OF ${SCHEMA}.records FOR VALUES FROM ('1990-01-01') TO ('1990-01-02')`);
      const source = new PostgresLedgerSource(db.url);
      try {
        expect(await codeOf(async () => {
          for await (const _ of source.items()) void _;
        })).toBe('LEDGER_SEGMENT_UNEXPECTED');
      } finally {
        await source.close();
      }
    });
  });

  it('CONTENT_KEYSTORE_IO: a keystore directory that cannot be created', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codes-'));
    const { path } = createContentMasterKey(join(dir, 'content.key'));
    const env = { LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: path, LLM_AUDIT_CONTENT_KEYSTORE: join(path, 'under-a-file', 'keystore.jsonl') };
    expect(() => contentCipherFromEnv(env)).toThrow(expect.objectContaining({ code: 'CONTENT_KEYSTORE_IO' }));
  });

  it('INTERNAL: anything that is not an AuditError, exit 70, no stack unless asked', () => {
    const bug = new TypeError('x is not a function');
    expect(renderError(bug, 'llm-audit')).toEqual(['llm-audit: INTERNAL: x is not a function (set LLM_AUDIT_DEBUG=1 for details, and please report it)']);
    expect(exitStatusFor(bug)).toBe(ERROR_CODES.INTERNAL[0]);
    expect(renderError(bug, 'llm-audit', true)[1]).toMatch(/^TypeError: x is not a function\n\s+at /);
    expect(renderError(new AuditError('CONFIG_INVALID', 'one\ntwo', { fix: 'do this' }), 'otel-llm-audit')).toEqual(['otel-llm-audit: CONFIG_INVALID: one', 'two', 'fix: do this']);
  });
});
