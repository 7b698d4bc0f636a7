import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { createContentHasher } from '../../src/audit/hashing';
import { runNodeApp } from '../support/child-app';
import { useFakeRealtime, USAGE, type FakeRealtime } from '../support/fake-realtime';
import { ledgerBytes, storedCallRecords } from '../support/ledger-files';
import { node24 } from '../support/node24';

// The Realtime clients in real processes under `register`, against the local Realtime server.
// openai's OpenAIRealtimeWebSocket runs on the global WebSocket, which Node has from 22 on: that app
// runs on this Node when it is 22 or later (the Node 24 leg), else on the Node 24 that
// scripts/install-node.sh installs. A Node without a global WebSocket fails the test (the app
// exits 3 saying so); it is never skipped. The ESM app checks that the SDK's ESM build is patched.

const HASH_KEY = 'websocket-test-hash-key-0123456789';
const realtime = useFakeRealtime();
let fake: FakeRealtime;
beforeAll(() => {
  fake = realtime();
});

it('OpenAIRealtimeWebSocket (global WebSocket): a response record and a session record in the ledger, nothing unaudited, no plaintext', async () => {
  const node = Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : node24();
  const ledger = mkdtempSync(join(tmpdir(), 'realtime-websocket-'));
  const run = await runNodeApp(
    ['--require', './dist/cjs/register.js', 'test/support/realtime-websocket-app.cjs'],
    {
      LLM_AUDIT_LEDGER_DIR: ledger,
      LLM_AUDIT_HASH_KEY: HASH_KEY,
      LLM_AUDIT_HASH_KEY_ID: 'ws',
      LLM_AUDIT_LLM_HOSTS: `127.0.0.1:${fake.port}`,
      NODE_EXTRA_CA_CERTS: fake.caFile,
      REALTIME_BASE_URL: fake.baseURL,
      OTEL_SERVICE_NAME: 'realtime-websocket-app',
    },
    undefined,
    60_000,
    node,
  );
  expect(run.stderr).not.toMatch(/NO_GLOBAL_WEBSOCKET|REALTIME_ERROR|WARNING/);
  expect(run.code).toBe(0);
  // The app's listeners got exactly what the server sent.
  expect(JSON.parse(run.stdout.trim().split('\n').pop()!).events).toEqual(fake.sent[fake.sent.length - 1]);

  const records = storedCallRecords(ledger).filter((r) => r.action !== 'audit.start');
  expect(records.map((r) => r.action).sort()).toEqual(['realtime.response', 'realtime.session']);
  const response = records.find((r) => r.action === 'realtime.response')!;
  const session = records.find((r) => r.action === 'realtime.session')!;
  const hasher = createContentHasher({ key: HASH_KEY, keyId: 'ws' });
  expect(response).toMatchObject({
    status: 'success',
    provider: 'openai',
    user_id: 'websocket-user',
    tenant_id: 'tenant-ws',
    model: { request: 'gpt-realtime' },
    input_tokens: USAGE.text.input_tokens,
    output_tokens: USAGE.text.output_tokens,
    cache_read_tokens: USAGE.text.input_token_details.cached_tokens,
    input_hash: hasher.hash([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello over the global WebSocket' }] }]),
  });
  expect(response.cost_usd).toBeCloseTo((100 * 4 + 20 * 0.4 + 30 * 16) / 1e6, 12);
  expect(session).toMatchObject({ status: 'success', user_id: 'websocket-user' });
  const bytes = ledgerBytes(ledger).toString('latin1');
  for (const secret of ['sk-websocket-secret-key', 'Hello over the global WebSocket', 'Hello there']) expect(bytes).not.toContain(secret);
}, 90_000);

it('an ES module app under --import (openai/realtime/ws.mjs): its response and session are in the ledger', async () => {
  const ledger = mkdtempSync(join(tmpdir(), 'realtime-esm-'));
  const run = await runNodeApp(
    ['--import', './dist/esm/register.mjs', 'test/support/realtime-ws-app.mjs'],
    {
      LLM_AUDIT_LEDGER_DIR: ledger,
      LLM_AUDIT_HASH_KEY: HASH_KEY,
      LLM_AUDIT_LLM_HOSTS: `127.0.0.1:${fake.port}`,
      REALTIME_BASE_URL: fake.baseURL,
      REALTIME_CA: fake.caFile,
    },
    undefined,
    60_000,
  );
  expect(run.stderr).not.toMatch(/REALTIME_ERROR|WARNING/);
  expect(run.code).toBe(0);
  const records = storedCallRecords(ledger).filter((r) => r.action !== 'audit.start');
  expect(records.map((r) => [r.action, r.status]).sort()).toEqual([
    ['realtime.response', 'success'],
    ['realtime.session', 'success'],
  ]);
}, 90_000);

it('SIGTERM while a response streams: the response and the session are recorded once each, as interrupted', async () => {
  const ledger = mkdtempSync(join(tmpdir(), 'realtime-shutdown-'));
  fake.plan = ['until-cancel'];
  const run = await runNodeApp(
    ['--require', './dist/cjs/register.js', 'test/support/realtime-shutdown-app.cjs'],
    { LLM_AUDIT_LEDGER_DIR: ledger, LLM_AUDIT_HASH_KEY: HASH_KEY, REALTIME_BASE_URL: fake.baseURL, REALTIME_CA: fake.caFile, LLM_AUDIT_SHUTDOWN_TIMEOUT_MS: '2000' },
    (stdout, child) => {
      if (stdout.includes('STREAMING') && child.signalCode === null && !child.killed) child.kill('SIGTERM');
    },
    60_000,
  );
  expect(run.stderr).not.toMatch(/REALTIME_ERROR/);
  const records = storedCallRecords(ledger).filter((r) => r.action !== 'audit.start');
  expect(records.map((r) => [r.action, r.status]).sort()).toEqual([
    ['realtime.response', 'interrupted'],
    ['realtime.session', 'interrupted'],
  ]);
}, 90_000);
