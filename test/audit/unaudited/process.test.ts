import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileLedgerSource } from '../../../src/ledger/file/ledger';
import { scanRecords } from '../../../src/ledger/query';
import type { LedgerRecord } from '../../../src/ledger/record';
import { verifyLedger } from '../../../src/ledger/verify';
import { runNodeApp } from '../../support/child-app';
import { startFakeProvider, type FakeProvider } from '../../support/fake-provider';
import { repoRoot } from '../../support/harness';
import { isAuditStart } from '../../support/otlp-receiver';

// The watcher in a real process with the real pipeline (`--require otel-llm-audit/register`, the
// built package, the default file ledger): stderr, exit status, and what the ledger holds.

let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

async function run(env: Record<string, string>) {
  const ledger = join(mkdtempSync(join(tmpdir(), 'unaudited-app-')), 'ledger');
  const app = await runNodeApp(['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'fixtures', 'unaudited-app.cjs')], {
    FAKE_PROVIDER_URL: fake.url,
    LLM_AUDIT_HASH_KEY: 'unaudited-test-hash-key-0123',
    LLM_AUDIT_LEDGER_DIR: ledger,
    LLM_AUDIT_LLM_HOSTS: new URL(fake.url).host,
    ...env,
  });
  // Three records and the process's audit.start.
  expect(await verifyLedger(new FileLedgerSource(ledger))).toMatchObject({ records: 4, removed: 0 });
  const records: LedgerRecord[] = [];
  for await (const hit of scanRecords(new FileLedgerSource(ledger))) if (!isAuditStart(hit.record as never)) records.push(hit.record);
  return { app, records, warnings: app.stderr.split('\n').filter((line) => line.includes('otel-llm-audit: WARNING')) };
}

describe('unaudited requests in a real process', () => {
  it('are warned once on stderr and written to the ledger beside the audited call; the app runs', async () => {
    const { app, records, warnings } = await run({});
    expect(app.code).toBe(0);
    expect(JSON.parse(app.stdout)).toEqual(['ok', 'ok', 'ok']);
    expect(fake.requests).toHaveLength(3);
    expect(warnings).toHaveLength(1);
    const summary = records.map((r) => [r.user_id, r.status, r.http?.path ?? null]).sort();
    expect(summary).toEqual([
      ['fetch-user', 'unaudited', '/v1/chat/completions'],
      ['http-user', 'unaudited', '/v1/embeddings'],
      ['sdk-user', 'success', null],
    ]);
    expect(JSON.stringify(records)).not.toContain('QUERY-SECRET');
  });

  it('are refused with LLM_AUDIT_ON_FAILURE=block, and recorded as refused', async () => {
    const { app, records, warnings } = await run({ LLM_AUDIT_ON_FAILURE: 'block' });
    expect(app.code).toBe(0);
    expect(JSON.parse(app.stdout)).toEqual(['ok', 'UnauditedLlmRequestError', 'UnauditedLlmRequestError']);
    expect(fake.requests.map((r) => r.headers['user-agent'])).toEqual([expect.stringMatching(/^OpenAI\/JS/)]);
    expect(warnings).toHaveLength(1);
    expect(records.filter((r) => r.status === 'unaudited').map((r) => r.error_type)).toEqual(['UnauditedLlmRequestError', 'UnauditedLlmRequestError']);
  });
});
