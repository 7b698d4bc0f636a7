import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKeyFiles } from '../../src/ledger/checkpoint';
import { isCallRecord, type LedgerRecord } from '../../src/ledger/record';
import { runNodeApp } from '../support/child-app';
import { expectedText, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';
import { cli } from '../cli/cli-helpers';
import { ensureBuilt } from '../ingest/helpers';

// LLM_AUDIT_EXPORTER=ledger with LLM_AUDIT_POSTGRES_URL: a real app (node --require
// otel-llm-audit/register) appends its audit records to PostgreSQL itself, with no collector and
// no `llm-audit serve` (issue 17 §1). Before, the exporter ignored the URL and wrote a file ledger.

const app = join(repoRoot, 'examples', 'chat-app.cjs');
let fake: FakeProvider;
let db: TestDatabase;

beforeAll(async () => {
  ensureBuilt();
  postgresUrl();
  fake = await startFakeProvider();
  db = await createTestDatabase('exporter');
}, 600_000);
afterAll(async () => {
  await fake?.close();
  await db?.drop();
});

function runApp(env: Record<string, string>) {
  return runNodeApp(['--require', 'otel-llm-audit/register', app], {
    FAKE_PROVIDER_URL: fake.url,
    OTEL_SERVICE_NAME: 'pg-exporter-app',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
    LLM_AUDIT_EXPORTER: 'ledger',
    LLM_AUDIT_HASH_KEY: 'pg-exporter-hash-key-0123',
    ...env,
  });
}

function storedCalls(): LedgerRecord[] {
  const r = cli(['query', '--postgres', db.url, '--format', 'json', '--columns', 'seq,action,status,user_id,tenant_id,request_id']);
  expect(r.code, r.stderr).toBe(0);
  // The calls: not the operation records, nor the audit.start record each process writes first.
  return (JSON.parse(r.stdout) as LedgerRecord[]).filter((record) => isCallRecord(record) && record.action !== 'audit.start');
}

describe('LLM_AUDIT_EXPORTER=ledger with LLM_AUDIT_POSTGRES_URL', () => {
  it('a real app appends its records to PostgreSQL, signed; verify passes; no file ledger is created', async () => {
    const keys = writeKeyFiles(join(mkdtempSync(join(tmpdir(), 'pg-exporter-key-')), 'ledger-key'));
    const dir = join(mkdtempSync(join(tmpdir(), 'pg-exporter-')), 'journals');
    const run = await runApp({ LLM_AUDIT_POSTGRES_URL: db.url, LLM_AUDIT_LEDGER_DIR: dir, LLM_AUDIT_SIGNING_KEY: keys.privatePath });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual([expectedText(), expectedText(), expectedText(), expectedText()]);

    const calls = storedCalls();
    expect(calls.map((r) => r.action).sort()).toEqual(['chat.completions.create', 'chat.completions.create', 'messages.create', 'messages.stream']);
    expect(calls.every((r) => r.status === 'success' && r.tenant_id === 'acme')).toBe(true);
    const verify = cli(['verify', '--postgres', db.url, '--public-key', keys.publicPath, '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    // The four calls and the process's audit.start record.
    expect(JSON.parse(verify.stdout)).toMatchObject({ records: 5 });
    // The read commands take the ledger from the same variable as the writers.
    const byEnv = cli(['verify', '--json'], { LLM_AUDIT_POSTGRES_URL: db.url });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    expect(JSON.parse(byEnv.stdout)).toMatchObject({ records: 5 });
    // Nothing went to a file ledger (and no journal was needed).
    expect(existsSync(join(dir, 'segments'))).toBe(false);
    expect(existsSync(join(dir, 'ledger.json'))).toBe(false);
  }, 120_000);

  it('with the database unreachable the app works, the failure is loud, the records wait in the journal; the next run appends them once', async () => {
    const before = storedCalls().length;
    const dir = join(mkdtempSync(join(tmpdir(), 'pg-exporter-down-')), 'journals');
    const down = new URL(db.url);
    down.port = '1'; // nothing listens there
    const first = await runApp({ LLM_AUDIT_POSTGRES_URL: down.toString(), LLM_AUDIT_LEDGER_DIR: dir });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout.trim())).toHaveLength(4);
    expect(first.stderr).toMatch(/otel-llm-audit: .*cannot reach PostgreSQL/);
    expect(first.stderr).not.toMatch(/RECORDS LOST/);
    const journals = readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl'));
    expect(journals).toHaveLength(1);
    expect(storedCalls()).toHaveLength(before);

    // The next run (any process of the app) appends the journal of the process that is gone.
    const second = await runApp({ LLM_AUDIT_POSTGRES_URL: db.url, LLM_AUDIT_LEDGER_DIR: dir });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(storedCalls()).toHaveLength(before + 8);
    expect(readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
    const verify = cli(['verify', '--postgres', db.url, '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  }, 120_000);
});
