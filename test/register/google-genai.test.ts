import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TEXT, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { isCallRecord } from '../../src/ledger/record';

// @google/genai under `--require otel-llm-audit/register` (CommonJS build) and `--import` (ESM
// build, through the loader hook), in child processes writing the local ledger: every operation
// lands as one record, and no prompt, output or key is in any ledger byte. Needs `npm run build`.

const CANARY = 'CANARY-genai-register-77c1';
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

const ledgerBytes = (dir: string): Buffer =>
  Buffer.concat(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(join(entry.parentPath, entry.name))),
  );
const records = (dir: string) =>
  readdirSync(join(dir, 'segments'))
    .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line).record)
    .filter(isCallRecord);

describe.each([
  ['CommonJS with --require', ['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'fixtures', 'genai-app.cjs')]],
  ['ESM with --import', ['--import', 'otel-llm-audit/register', join(repoRoot, 'test', 'fixtures', 'genai-app.mjs')]],
])('%s', (_label, args) => {
  it('each operation is one ledger record with hashes, tokens and cost; no prompt, output or key in the ledger', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'genai-ledger-'));
    const result = await runNodeApp(args, {
      FAKE_PROVIDER_URL: fake.url,
      APP_PROMPT: CANARY,
      LLM_AUDIT_LEDGER_DIR: dir,
      LLM_AUDIT_HASH_KEY: 'genai-register-hash-key-0123',
      OTEL_LOGS_EXPORTER: 'none',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toEqual([DEFAULT_TEXT, DEFAULT_TEXT, DEFAULT_TEXT, 4]);
    const stored = records(dir);
    expect(stored.map((r) => r.action).sort()).toEqual(['chats.sendMessage', 'models.embedContent', 'models.generateContent', 'models.generateContentStream']);
    for (const record of stored) {
      expect(record).toMatchObject({ user_id: 'user-42', tenant_id: 'acme', status: 'success' });
      expect(['gcp.gemini', 'gcp.vertex_ai']).toContain(record.provider);
      expect(record.input_hash).toMatch(/^hmac-sha256:/);
    }
    const chats = stored.filter((r) => r.action !== 'models.embedContent');
    for (const record of chats) expect(record.cost_usd).toBeGreaterThan(0);
    const bytes = ledgerBytes(dir);
    for (const secret of [CANARY, 'AIza-app-secret-key', DEFAULT_TEXT]) expect(bytes.includes(secret)).toBe(false);
  });
});
