import { RECORD_VERSION } from '../../src/ledger/record';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider, type Scenario } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { freePort, isAuditStart, startOtlpReceiver } from '../support/otlp-receiver';

// Issue 14 item 5: provider errors that quote the request (prompt, system prompt, the URL with an
// API key in its query string) must not carry that text out of the process: not in the ledger, not
// over OTLP, not in the spool, not in the debug log. The app runs under `--require
// otel-llm-audit/register` (the compiled package: npm run build first) with the real SDKs.

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const CANARY = `CANARY-${hex(12)}`;
const SYSTEM_CANARY = `SYSCANARY-${hex(12)}`;
const QUERY_KEY = `AIzaQueryKey${hex(12)}`;
// A quote and a newline: the JSON-escaped form of the prompt differs from the prompt.
const PROMPT = `Q: ${CANARY} "quoted"\nline two ${CANARY}`;
const SYSTEM = `System: ${SYSTEM_CANARY} be brief`;
const APP = join(repoRoot, 'test', 'fixtures', 'error-echo-app.cjs');

// In the order of the app's calls (test/fixtures/error-echo-app.cjs).
const SCENARIOS: Scenario[] = [
  { status: 400, echoRequest: 'full' },
  { status: 500, echoRequest: 'full' },
  { status: 400, echoRequest: 'prefix' },
  { status: 400, echoRequest: 'full' },
  { failAfterChunks: 1, echoRequest: 'full' },
  { status: 400, echoRequest: 'full' },
  { status: 500, echoRequest: 'full' },
  { status: 400, echoRequest: 'prefix' },
  { failAfterChunks: 1, echoRequest: 'full' },
];
const SEEN = [
  'BadRequestError 400',
  'InternalServerError 500',
  'BadRequestError 400',
  'BadRequestError 400',
  'APIError undefined',
  'BadRequestError 400',
  'InternalServerError 500',
  'BadRequestError 400',
  'APIError undefined',
];

/** Every 10-character piece of the canaries, and the query key: a quoted fragment is a leak too. */
const NEEDLES = [
  ...[CANARY, SYSTEM_CANARY].flatMap((canary) => Array.from({ length: canary.length - 9 }, (_, i) => canary.slice(i, i + 10))),
  QUERY_KEY,
];

function leaks(where: string, bytes: Buffer | string): string[] {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  const found = NEEDLES.filter((needle) => text.includes(needle));
  return found.length === 0 ? [] : [`${where}: ${found.length} fragments, e.g. ${found[0]}`];
}

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => ({ path: join(entry.parentPath, entry.name), bytes: readFileSync(join(entry.parentPath, entry.name)) }));
}

/** A spool file's header line, then its gzip body. */
function spoolText(bytes: Buffer): string {
  const newline = bytes.indexOf(0x0a);
  return bytes.subarray(0, newline + 1).toString('utf8') + gunzipSync(bytes.subarray(newline + 1)).toString('utf8');
}

let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

async function runApp(env: Record<string, string>) {
  fake.reset();
  fake.enqueue(...SCENARIOS);
  const run = await runNodeApp(['--require', 'otel-llm-audit/register', APP], {
    FAKE_PROVIDER_URL: fake.url,
    APP_PROMPT: PROMPT,
    APP_SYSTEM: SYSTEM,
    APP_QUERY_KEY: QUERY_KEY,
    OTEL_SERVICE_NAME: 'error-leak-test-app',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOG_LEVEL: 'debug',
    LLM_AUDIT_HASH_KEY: 'error-leak-test-hash-key-0123',
    ...env,
  });
  expect(run.code, run.stderr).toBe(0);
  const result = /^RESULT (.*)$/m.exec(run.stdout);
  expect(result, run.stdout).not.toBeNull();
  expect(JSON.parse(result![1]!)).toEqual(SEEN);
  // The provider really quoted the canaries and the key back (the test would prove nothing otherwise).
  expect(fake.requests).toHaveLength(SCENARIOS.length);
  for (const request of fake.requests) expect(request.rawBody).toContain(CANARY);
  return run;
}

describe('provider errors that quote the request', () => {
  it('ledger and OTLP (debug log on, stdout and stderr): no canary, fragment or query key in any exported byte; status, class and provider type recorded', async () => {
    const otlp = await startOtlpReceiver();
    const ledgerDir = mkdtempSync(join(tmpdir(), 'error-leak-ledger-'));
    try {
      const run = await runApp({
        LLM_AUDIT_EXPORTER: 'both',
        LLM_AUDIT_LEDGER_DIR: ledgerDir,
        LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'error-leak-spool-')),
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      const found = [
        ...leaks('stderr', run.stderr),
        ...leaks('stdout', run.stdout),
        ...filesUnder(ledgerDir).flatMap((file) => leaks(file.path, file.bytes)),
        ...otlp.received.flatMap((request) => leaks(`OTLP ${request.path}`, request.body)),
      ];
      expect(found).toEqual([]);
      // The debug log was on (it is part of what is scanned).
      expect(run.stdout + run.stderr).toMatch(/otel-llm-audit/);

      const spans = otlp.jsonSpans().filter((span) => span.scope === 'otel-llm-audit');
      expect(spans).toHaveLength(SCENARIOS.length);
      const records = filesUnder(join(ledgerDir, 'segments'))
        .flatMap((file) => file.bytes.toString('utf8').split('\n'))
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line).record)
        .filter((record) => !isAuditStart(record));
      expect(records).toHaveLength(SCENARIOS.length);
      for (const record of records) {
        expect(record.status).toBe('error');
        expect(record.error_type).toBeTruthy();
        // What is left of the message: the status and the provider's error type, the quoted text masked.
        expect(record.error_message).toMatch(/invalid_request_error|server_error|api_error|overloaded_error/);
        expect(record.error_message).toContain('[REDACTED');
      }
      const statuses = spans.map((span) => span.attributes['http.response.status_code']).filter((status) => status !== undefined);
      expect(statuses.sort()).toEqual([400, 400, 400, 400, 400, 500, 500]);
      // The record keeps the HTTP status and the error type as fields of their own (since record v2), not
      // only inside the message text: the stream errors (no HTTP status) have null.
      expect(records.map((record) => record.v)).toEqual(SCENARIOS.map(() => RECORD_VERSION));
      expect(records.map((record) => record.http_status)).toEqual(SCENARIOS.map((s) => s.status ?? null));
      expect(records.map((record) => typeof record.error_type)).toEqual(SCENARIOS.map(() => 'string'));
    } finally {
      await otlp.close();
    }
  });

  it('spool (collector down, debug log on, stdout and stderr): no canary, fragment or query key in any spooled byte', async () => {
    const spoolDir = mkdtempSync(join(tmpdir(), 'error-leak-spool-'));
    const run = await runApp({
      LLM_AUDIT_EXPORTER: 'otlp',
      LLM_AUDIT_SPOOL_DIR: spoolDir,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    const spooled = filesUnder(spoolDir).filter((file) => file.path.endsWith('.spool'));
    expect(spooled.length).toBeGreaterThan(0);
    const texts = spooled.map((file) => ({ path: file.path, text: spoolText(file.bytes) }));
    // The spool holds the calls' spans (decompressed, so the scan below sees their text).
    expect(texts.map((t) => t.text).join('').split('llm_audit.request_id').length - 1).toBe(SCENARIOS.length);
    expect([...leaks('stderr', run.stderr), ...leaks('stdout', run.stdout), ...texts.flatMap((t) => leaks(t.path, t.text))]).toEqual([]);
  });
});
