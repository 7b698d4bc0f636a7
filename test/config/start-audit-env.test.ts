/**
 * startAudit(env) honours every part of its env argument (issue 20): the hash key, the sanitize
 * mode and the provider hosts used to fall back to process.env in the instrumentation's
 * constructor, so an application passing its own environment object got unkeyed hashes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { scanRecords } from '../../src/ledger/query';
import { isCallRecord, type LedgerRecord } from '../../src/ledger/record';
import { runNodeApp } from '../support/child-app';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';

let provider: FakeProvider;
beforeAll(async () => {
  provider = await startFakeProvider();
});
afterAll(async () => {
  await provider.close();
});

describe('startAudit(env)', () => {
  it('takes the hash key, sanitize mode and provider hosts from its argument, not from process.env', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'start-audit-env-')), 'ledger');
    const key = 'start-audit-env-key-0123456789';
    const port = new URL(provider.url).port;
    const env = {
      LLM_AUDIT_EXPORTER: 'ledger',
      LLM_AUDIT_LEDGER_DIR: dir,
      LLM_AUDIT_HASH_KEY: key,
      LLM_AUDIT_HASH_KEY_ID: 'k1',
      LLM_AUDIT_SANITIZE: 'detect',
      LLM_AUDIT_PROVIDER_HOSTS: `127.0.0.1:${port}=vllm`,
    };
    const run = await runNodeApp([join('test', 'fixtures', 'start-audit-env-app.cjs')], { FAKE_PROVIDER_URL: provider.url, AUDIT_ENV: JSON.stringify(env) });
    expect(run.stderr).not.toMatch(/unkeyed|plain SHA-256|app failed/i);
    expect(run.code).toBe(0);
    const records: LedgerRecord[] = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) if (isCallRecord(hit.record)) records.push(hit.record);
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record!.input_hash).toMatch(/^hmac-sha256:k1:[0-9a-f]{64}$/);
    expect(record!.sanitization_count).toBe(1);
    expect(record!.provider).toBe('vllm');
  });
});
