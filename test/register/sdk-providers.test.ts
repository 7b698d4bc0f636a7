import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TEXT, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { ledgerBytes, storedCallRecords } from '../support/ledger-files';

// The SDKs beyond OpenAI and Anthropic under `--require otel-llm-audit/register` and `--import`
// (through the loader hook), in child processes writing the local ledger: every operation lands as
// one record with its provider, hashes and cost, and no prompt, output or key is in any ledger
// byte. Needs `npm run build`.

const CANARY = 'CANARY-providers-register-77c1';
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

const fixtures = join(repoRoot, 'test', 'fixtures');
const mistral = join(repoRoot, 'test', 'sdk-versions', 'mistral');
const register = join(repoRoot, 'dist', 'cjs', 'register.js');
const registerEsm = join(repoRoot, 'dist', 'esm', 'register.mjs');

describe.each([
  {
    label: '@google/genai, CommonJS with --require',
    args: ['--require', 'otel-llm-audit/register', join(fixtures, 'genai-app.cjs')],
    seen: [DEFAULT_TEXT, DEFAULT_TEXT, DEFAULT_TEXT, 4],
    actions: ['chats.sendMessage', 'models.embedContent', 'models.generateContent', 'models.generateContentStream'],
    providers: ['gcp.gemini', 'gcp.vertex_ai'],
    key: 'AIza-app-secret-key',
  },
  {
    label: '@google/genai, ESM with --import',
    args: ['--import', 'otel-llm-audit/register', join(fixtures, 'genai-app.mjs')],
    seen: [DEFAULT_TEXT, DEFAULT_TEXT, DEFAULT_TEXT, 4],
    actions: ['chats.sendMessage', 'models.embedContent', 'models.generateContent', 'models.generateContentStream'],
    providers: ['gcp.gemini', 'gcp.vertex_ai'],
    key: 'AIza-app-secret-key',
  },
  {
    label: '@mistralai/mistralai, require() of its ESM build with --require',
    args: ['--require', register, join(mistral, 'app.cjs')],
    seen: [DEFAULT_TEXT, DEFAULT_TEXT, 1024],
    actions: ['chat.complete', 'chat.stream', 'embeddings.create'],
    providers: ['mistral_ai'],
    key: 'mistral-app-secret-key',
  },
  {
    label: '@mistralai/mistralai, ESM with --import',
    args: ['--import', registerEsm, join(mistral, 'app.mjs')],
    seen: [DEFAULT_TEXT, DEFAULT_TEXT, 1024],
    actions: ['chat.complete', 'chat.stream', 'embeddings.create'],
    providers: ['mistral_ai'],
    key: 'mistral-app-secret-key',
  },
])('$label', ({ args, seen, actions, providers, key }) => {
  it('each operation is one ledger record with provider, hashes and cost; no prompt, output or key in the ledger', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'providers-ledger-'));
    const result = await runNodeApp(
      args,
      {
        FAKE_PROVIDER_URL: fake.url,
        APP_PROMPT: CANARY,
        LLM_AUDIT_LEDGER_DIR: dir,
        LLM_AUDIT_HASH_KEY: 'providers-register-hash-key-0123',
        OTEL_LOGS_EXPORTER: 'none',
      },
      undefined,
      // @mistralai/mistralai is 1209 ES modules: through the loader hook it took 11-23 s to load on
      // a loaded 2-core machine (6 s without register).
      100_000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toEqual(seen);
    const stored = storedCallRecords(dir);
    expect(stored.map((r) => r.action).sort()).toEqual(actions);
    for (const record of stored) {
      expect(record.status).toBe('success');
      expect(providers).toContain(record.provider);
      expect(record.input_hash).toMatch(/^hmac-sha256:/);
    }
    // Gemini API embeddings report no usage, so they have no cost; everything else is priced.
    for (const record of stored.filter((r) => r.action !== 'models.embedContent')) expect(record.cost_usd as number).toBeGreaterThan(0);
    const bytes = ledgerBytes(dir);
    for (const secret of [CANARY, key, DEFAULT_TEXT]) expect(bytes.includes(secret)).toBe(false);
  }, 120_000);
});
