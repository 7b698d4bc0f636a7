import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, expectedText, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp, type AppRun } from '../support/child-app';
import { startOtlpReceiver } from '../support/otlp-receiver';
import { startFakeBedrock } from '../support/fake-bedrock';
import * as bedrockRecordings from '../support/bedrock-recordings';
import { isCallRecord } from '../../src/ledger/record';
import { CONFIG_FIX } from '../../src/config/problems';
import { NEWER_NODE } from '../support/drivers';
import { fakeOpenaiMajor, withoutChatClass } from '../support/next-major';

// `node --require otel-llm-audit/register` and `node --import otel-llm-audit/register` with real
// apps in child processes: the SDKs get patched with no code change, spans leave over OTLP/HTTP as
// the OTEL_* variables say, and nothing of a finished call is lost at exit or on SIGTERM.

const apps = join(repoRoot, 'examples');
const CANARY = 'CANARY-register-5d1e-prompt';
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

function runApp(args: string[], env: Record<string, string>, onStdout?: (text: string, child: ChildProcess) => void): Promise<AppRun> {
  return runNodeApp(
    args,
    {
      FAKE_PROVIDER_URL: fake.url,
      APP_PROMPT: CANARY,
      OTEL_SERVICE_NAME: 'register-test-app',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_METRIC_EXPORT_INTERVAL: '60000',
      LLM_AUDIT_HASH_KEY: 'register-test-hash-key-0123',
      // Its own OTLP spool: nothing another test's app left behind can be adopted and sent here.
      LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'register-spool-')),
      ...env,
    },
    onStdout,
  );
}

const cases = [
  { label: 'CommonJS app with --require, http/json', args: ['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], protocol: 'http/json' },
  { label: 'ESM app with --import, http/json', args: ['--import', 'otel-llm-audit/register', join(apps, 'chat-app.mjs')], protocol: 'http/json' },
  { label: 'CommonJS app with --require, http/protobuf', args: ['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], protocol: 'http/protobuf' },
  { label: 'ESM app with --import, http/protobuf', args: ['--import', 'otel-llm-audit/register', join(apps, 'chat-app.mjs')], protocol: 'http/protobuf' },
];

describe.each(cases)('$label', ({ args, protocol }) => {
  it('patches both SDKs, exports one span per call with the audit attributes, leaks no prompt or key', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(args, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol });
      expect(result.stderr).not.toMatch(/Error|failed/);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout.trim())).toEqual([expectedText(), expectedText(), expectedText(), expectedText()]);

      const traces = otlp.traceExports();
      expect(traces.length).toBeGreaterThan(0);
      for (const t of traces) expect(t.contentType).toBe(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
      const bytes = otlp.allBytes();
      expect(bytes.includes(CANARY)).toBe(false);
      expect(bytes.includes('sk-app-secret-key')).toBe(false);
      expect(bytes.includes('sk-ant-app-secret-key')).toBe(false);
      expect(bytes.includes(expectedText())).toBe(false);
      // The metrics left too (gen_ai.client.* instruments).
      expect(bytes.includes('gen_ai.client.operation.duration')).toBe(true);
      expect(bytes.includes('gen_ai.client.token.usage')).toBe(true);

      if (protocol === 'http/json') {
        const spans = otlp.jsonSpans();
        expect(spans.map((s) => s.attributes['llm_audit.action']).sort()).toEqual([
          'chat.completions.create',
          'chat.completions.create',
          'messages.create',
          'messages.stream',
        ]);
        for (const span of spans) {
          expect(span.scope).toBe('otel-llm-audit');
          expect(span.kind).toBe(3); // SPAN_KIND_CLIENT in OTLP numbering
          expect(span.resource['service.name']).toBe('register-test-app');
          expect(span.attributes['user.id']).toBe('user-42');
          expect(span.attributes['session.id']).toBe('session-7');
          expect(span.attributes['llm_audit.tenant.id']).toBe('acme');
          expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:[0-9a-f]{8}:[0-9a-f]{64}$/);
          expect(span.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
        }
      } else {
        // Protobuf carries strings verbatim: the attribute keys and values are in the bytes.
        for (const needle of ['llm_audit.request_id', 'messages.stream', 'user-42', 'register-test-app', 'hmac-sha256:']) {
          expect(bytes.includes(needle)).toBe(true);
        }
      }
    } finally {
      await otlp.close();
    }
  });
});

describe('the local ledger (the default without an OTLP endpoint)', () => {
  const cli = join(repoRoot, 'dist', 'cjs', 'cli', 'main.js');
  const ledgerFiles = (dir: string): Buffer =>
    Buffer.concat(
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => readFileSync(join(entry.parentPath, entry.name))),
    );
  const records = (dir: string) =>
    readdirSync(join(dir, 'segments'))
      .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
      // A process that exited right after opening a segment leaves it empty.
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line).record)
      // The calls only: a writer starting after an exit without a final checkpoint adds a ledger.recovered record.
      .filter(isCallRecord);

  it('writes one verifiable record per call, with no prompt, output or key in any ledger byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-register-'));
    const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const stored = records(dir);
    expect(stored.map((r) => r.action).sort()).toEqual(['chat.completions.create', 'chat.completions.create', 'messages.create', 'messages.stream']);
    for (const record of stored) {
      expect(record).toMatchObject({ user_id: 'user-42', session_id: 'session-7', tenant_id: 'acme', status: 'success' });
      expect(record.input_hash).toMatch(/^hmac-sha256:/);
      expect(record.cost_usd).toBeGreaterThan(0);
    }
    const bytes = ledgerFiles(dir);
    for (const secret of [CANARY, 'sk-app-secret-key', 'sk-ant-app-secret-key', expectedText()]) expect(bytes.includes(secret)).toBe(false);
    const verify = spawnSync(process.execPath, [cli, 'verify', '--ledger', dir], { encoding: 'utf8' });
    expect(verify.stderr).toContain('not signed');
    expect(verify.status).toBe(0);
  });

  it('process.exit() right after the calls, without shutdownAudit(): appends in flight are kept in the pending journal, and the next writer appends each once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-exit-now-'));
    const app = join(repoRoot, 'test', 'fixtures', 'spool-app.cjs');
    const first = await runApp(['--require', 'otel-llm-audit/register', app], { LLM_AUDIT_LEDGER_DIR: dir, APP_CALLS: '5', APP_EXIT_NOW: '1' });
    expect(first.code).toBe(0);
    const firstIds = JSON.parse(first.stdout.split('\n')[0]!) as string[];
    expect(firstIds).toHaveLength(5);
    // Nothing lost at exit: each call is in the ledger or in the journal.
    const pendingDir = join(dir, 'pending');
    const journaled = readdirSync(pendingDir, { withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith('.jsonl') && !entry.name.startsWith('.'))
      .flatMap((entry) => readFileSync(join(pendingDir, entry.name), 'utf8').trim().split('\n'))
      // Authenticated journal lines: {mac, n, record}, and a closing {end, mac, n}.
      .map((line) => JSON.parse(line) as { record?: { request_id: string } })
      .flatMap((entry) => (entry.record ? [entry.record.request_id] : []));
    expect(journaled.length).toBeGreaterThan(0);
    expect([...new Set([...records(dir).map((r) => r.request_id as string), ...journaled])].sort()).toEqual([...firstIds].sort());

    const second = await runApp(['--require', 'otel-llm-audit/register', app], { LLM_AUDIT_LEDGER_DIR: dir, APP_CALLS: '1' });
    expect(second.code).toBe(0);
    const all = [...firstIds, ...(JSON.parse(second.stdout.split('\n')[0]!) as string[])];
    const stored = records(dir).map((r) => r.request_id as string);
    expect(stored.length).toBe(new Set(stored).size);
    expect(stored.sort()).toEqual(all.sort());
    expect(readdirSync(pendingDir).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
    const verify = spawnSync(process.execPath, [cli, 'verify', '--ledger', dir], { encoding: 'utf8' });
    expect(verify.status).toBe(0);
  });

  it('process.exit() right after awaiting shutdownAudit() loses nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-exit-'));
    const result = await runApp(['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'fixtures', 'exit-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir });
    expect(result.code).toBe(0);
    expect(records(dir)).toHaveLength(1);
  });

  it('SIGTERM: every finished call is in the ledger', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-sigterm-'));
    const result = await runApp(
      ['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')],
      { LLM_AUDIT_LEDGER_DIR: dir, APP_STAY_ALIVE: '1' },
      (stdout, child) => {
        if (stdout.includes('ready\n') && !child.killed) child.kill('SIGTERM');
      },
    );
    expect(result.signal).toBe('SIGTERM');
    expect(records(dir)).toHaveLength(4);
  });

  it('SIGTERM while calls are still running: each is recorded once, as interrupted (not as a success), with what had arrived', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-inflight-'));
    // The first call answers at once; the plain call waits 20 s for its answer; the stream sends a
    // chunk every 2 s.
    fake.enqueue({}, { headersDelayMs: 20_000 }, { chunks: 10, chunkDelayMs: 2_000 });
    const result = await runApp(['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'fixtures', 'inflight-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir, LLM_AUDIT_SHUTDOWN_TIMEOUT_MS: '2000' }, (stdout, child) => {
      if (stdout.includes('in flight\n') && !child.killed) child.kill('SIGTERM');
    });
    fake.reset();
    expect(result.signal).toBe('SIGTERM');
    const stored = records(dir);
    expect(stored.map((r) => r.status).sort()).toEqual(['interrupted', 'interrupted', 'success']);
    const interrupted = stored.filter((r) => r.status === 'interrupted');
    // The plain call had no answer yet; the stream had delivered its first chunk.
    expect(interrupted.map((r) => (r.output_hash === null ? 'none' : 'partial')).sort()).toEqual(['none', 'partial']);
  });

  it('LLM_AUDIT_EXPORTER=both: the ledger and the OTLP endpoint get every call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-both-'));
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
        LLM_AUDIT_EXPORTER: 'both',
        LLM_AUDIT_LEDGER_DIR: dir,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      expect(result.code).toBe(0);
      expect(records(dir)).toHaveLength(4);
      expect(otlp.jsonSpans()).toHaveLength(4);
    } finally {
      await otlp.close();
    }
  });

  it('LLM_AUDIT_HOOKS: the moderation example blocks a flagged prompt; the ledger records it as blocked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-hooks-'));
    const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
      LLM_AUDIT_LEDGER_DIR: dir,
      LLM_AUDIT_HOOKS: 'examples/moderation-hooks.cjs',
      APP_PROMPT: `${CANARY} violence`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('LlmRequestBlockedError: LLM request blocked by guardrail openai-moderation');
    // The hook's own moderation call is audited too (it does not run the hook again).
    const [check, record] = records(dir);
    expect(check).toMatchObject({ status: 'success', action: 'moderations.create' });
    expect(record).toMatchObject({ status: 'blocked', action: 'chat.completions.create', user_id: 'user-42' });
    expect(record.guardrails).toEqual([expect.objectContaining({ name: 'openai-moderation', action: 'blocked', category: 'violence' })]);
    expect(ledgerFiles(dir).includes(CANARY)).toBe(false);
  });

  it('LLM_AUDIT_CONTENT=encrypted: ledger holds only ciphertext; decrypt shows it; shred erases it; verify still passes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-content-'));
    const keyPath = join(mkdtempSync(join(tmpdir(), 'content-key-')), 'content.key');
    expect(spawnSync(process.execPath, [cli, 'content-key', '--out', keyPath], { encoding: 'utf8' }).status).toBe(0);
    const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
      LLM_AUDIT_LEDGER_DIR: dir,
      LLM_AUDIT_CONTENT: 'encrypted',
      LLM_AUDIT_CONTENT_KEY: keyPath,
    });
    expect(result.code).toBe(0);
    const stored = records(dir);
    expect(stored).toHaveLength(4);
    for (const record of stored) expect(record.content).toMatch(/^\{"llm_audit_envelope":1,/);
    expect(ledgerFiles(dir).includes(CANARY)).toBe(false);
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    const shown = run('decrypt', '--reason', 'review', stored[0].request_id, '--ledger', dir, '--key', keyPath, '--format', 'json');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(CANARY);
    expect(run('shred', '--tenant', 'acme', '--key', keyPath, '--yes').status).toBe(0);
    const gone = run('decrypt', '--reason', 'review', stored[0].request_id, '--ledger', dir, '--key', keyPath);
    expect(gone.status).toBe(3);
    expect(gone.stderr).toMatch(/crypto-shredding/);
    expect(run('verify', '--ledger', dir).status).toBe(0);
  });

  it('a process that makes no LLM call opens nothing: no lock, no directory (it used to create and lock the ledger at startup)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ledger-lazy-')), 'ledger');
    const result = await runApp(['--require', 'otel-llm-audit/register', '-e', 'setTimeout(() => {}, 300)'], { LLM_AUDIT_LEDGER_DIR: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  it('a second process on the same ledger runs: it journals, and the lock holder appends its records (it used to exit 78)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-locked-'));
    let second: AppRun | undefined;
    const first = await runApp(
      ['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')],
      { LLM_AUDIT_LEDGER_DIR: dir, APP_STAY_ALIVE: '1' },
      (stdout, child) => {
        if (!stdout.includes('ready\n') || second !== undefined || child.killed) return;
        second = {} as AppRun;
        void runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir }).then(async (r) => {
          second = r;
          // The holder appends the second process's journal within its poll interval.
          for (let i = 0; i < 50 && records(dir).length < 8; i++) await new Promise((resolve) => setTimeout(resolve, 100));
          child.kill('SIGTERM');
        });
      },
    );
    expect(first.signal).toBe('SIGTERM');
    expect(second?.code).toBe(0);
    expect(second?.stderr).toBe('');
    expect(records(dir)).toHaveLength(8);
    expect(readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
  });

  it('a ledger directory that cannot be used: the app runs and stderr says so at once (continue), or calls are refused (block)', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ledger-unusable-'));
    const dir = join(base, 'not-a-dir');
    writeFileSync(dir, '');
    const going = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir });
    expect(going.code).toBe(0);
    expect(JSON.parse(going.stdout.trim())).toHaveLength(4);
    expect(going.stderr).toMatch(/^otel-llm-audit: the audit trail .*not-a-dir cannot be written: .*not a directory/m);
    // The first loss at once (the process's audit.start record), the 4 calls in one summary (at the latest when the process exits).
    expect(going.stderr).toMatch(/AUDIT RECORDS LOST: 1 record\(s\) could not be written/);
    expect(going.stderr).toMatch(/AUDIT RECORDS LOST: 4 more record\(s\)/);
    expect(going.stderr.split('\n').filter((line) => line.includes('AUDIT RECORDS LOST'))).toHaveLength(2);

    const sent = fake.requests.length;
    const blocked = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_LEDGER_DIR: dir, LLM_AUDIT_ON_FAILURE: 'block' });
    expect(blocked.code).not.toBe(0);
    expect(blocked.stderr).toMatch(/LlmAuditUnavailableError: otel-llm-audit: LLM call refused \(LLM_AUDIT_ON_FAILURE=block\)/);
    // Refused before anything was sent.
    expect(fake.requests.length).toBe(sent);

    const bad = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_ON_FAILURE: 'maybe' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/LLM_AUDIT_ON_FAILURE=maybe is not one of continue, block/);
  });
});

describe('standard OTEL_* variables', () => {
  it('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS are honoured', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/custom/traces`,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token,x-tenant=acme',
        OTEL_METRICS_EXPORTER: 'none',
      });
      expect(result.code).toBe(0);
      const exports = otlp.received.filter((r) => r.path === '/custom/traces');
      expect(exports.length).toBeGreaterThan(0);
      expect(exports[0].headers.authorization).toBe('Bearer collector-token');
      expect(exports[0].headers['x-tenant']).toBe('acme');
    } finally {
      await otlp.close();
    }
  });

});

describe('sanitization through register', () => {
  it('LLM_AUDIT_SANITIZE=redact: the provider gets placeholders; no PII or secret in any exported byte', async () => {
    const otlp = await startOtlpReceiver();
    const pii = ['auditor.canary@example.com', '4111 1111 1111 1111', 'sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0'];
    try {
      fake.reset();
      const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        LLM_AUDIT_SANITIZE: 'redact',
        APP_PROMPT: `mail ${pii[0]}, card ${pii[1]}, key ${pii[2]}`,
      });
      expect(result.code).toBe(0);
      const sent = fake.requests.map((r) => r.rawBody).join('\n');
      for (const value of pii) expect(sent.includes(value)).toBe(false);
      expect(sent).toContain('mail [EMAIL], card [CARD], key [SECRET]');
      const bytes = otlp.allBytes();
      for (const value of pii) expect(bytes.includes(value)).toBe(false);
      const spans = otlp.jsonSpans();
      expect(spans).toHaveLength(4);
      for (const span of spans) expect(span.attributes['llm_audit.sanitization.count']).toBeGreaterThanOrEqual(3);
    } finally {
      await otlp.close();
    }
  });
});

// openai 7 needs Node >= 22: the test:node24 leg runs it (on Node 20 the list is empty).
const openai7 = join(repoRoot, 'test', 'sdk-versions', 'openai-7');
const openai7Apps = NEWER_NODE
  ? [
      { label: 'CommonJS, --require', args: ['--require', 'otel-llm-audit/register', join(openai7, 'app.cjs')] },
      { label: 'ESM, --import', args: ['--import', 'otel-llm-audit/register', join(openai7, 'app.mjs')] },
    ]
  : [];

describe.each(openai7Apps)('openai 7 app ($label)', ({ args }) => {
  it('is patched: one span per call (chat, stream, responses.stream), usage and no prompt exported', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(args, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRICS_EXPORTER: 'none' });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout.trim())).toEqual([expectedText(), expectedText(), expectedText()]);
      const spans = otlp.jsonSpans();
      expect(spans.map((s) => s.attributes['llm_audit.action']).sort()).toEqual(['chat.completions.create', 'chat.completions.create', 'responses.stream']);
      for (const span of spans) expect(span.attributes['llm_audit.usage.status']).toBe('reported');
      expect(otlp.allBytes().includes(CANARY)).toBe(false);
    } finally {
      await otlp.close();
    }
  });
});

describe('an SDK whose shape the patch does not know (a fake openai 99 without OpenAI.Chat)', () => {
  let app: string;
  beforeAll(() => {
    const dir = fakeOpenaiMajor(mkdtempSync(join(tmpdir(), 'register-next-major-')), '99.0.0', withoutChatClass);
    app = join(dir, 'app.cjs');
    writeFileSync(app, readFileSync(join(openai7, 'app.cjs'), 'utf8').replace(/client\.responses\.stream\([^)]*\)\.finalResponse\(\)/, 'Promise.resolve({ output_text: "" })'));
  });

  it('runs unaudited, with one line on stderr saying so', async () => {
    const result = await runApp(['--require', 'otel-llm-audit/register', app], { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout.trim()).slice(0, 2)).toEqual([expectedText(), expectedText()]);
    const lines = result.stderr.split('\n').filter((line) => line.includes('NOT audited'));
    expect(lines).toEqual([expect.stringContaining('otel-llm-audit: openai 99.0.0 lacks what the audit wraps (OpenAI.Chat.Completions.prototype.create), so its calls are NOT audited')]);
  });

  it('LLM_AUDIT_ON_FAILURE=block: the app does not start, and says why', async () => {
    const result = await runApp(['--require', 'otel-llm-audit/register', app], {
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'none',
      LLM_AUDIT_ON_FAILURE: 'block',
    });
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('LlmAuditUnavailableError: otel-llm-audit: openai 99.0.0 lacks what the audit wraps');
    expect(result.stderr).toContain('LLM_AUDIT_ON_FAILURE=block refuses to load an SDK it cannot audit');
  });
});

describe('older SDK majors', () => {
  it('openai 4 imported as ESM under --import is patched and keeps working', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(
        ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(repoRoot, 'test', 'sdk-versions', 'openai-4', 'esm-app.mjs')],
        { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRICS_EXPORTER: 'none' },
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout.trim())).toEqual([expectedText()]);
      const spans = otlp.jsonSpans();
      expect(spans).toHaveLength(1);
      expect(spans[0].attributes['llm_audit.action']).toBe('chat.completions.create');
    } finally {
      await otlp.close();
    }
  });
});

describe('AWS Bedrock Runtime', () => {
  it.each([
    ['ESM app with --import', ['--import', 'otel-llm-audit/register']],
    ['ESM app with --require (the ESM hook is installed by the preload)', ['--require', 'otel-llm-audit/register']],
  ])('%s: Converse, ConverseStream and a bidirectional stream session are audited', async (_label, preload) => {
    const otlp = await startOtlpReceiver();
    const bedrock = await startFakeBedrock();
    try {
      const result = await runApp([...preload, join(repoRoot, 'test', 'support', 'bedrock-app.mjs')], {
        BEDROCK_URL: bedrock.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRICS_EXPORTER: 'none',
      });
      expect(result.code, result.stderr).toBe(0);
      const text = bedrockRecordings.converseClaude.output.message.content[0]!.text;
      expect(JSON.parse(result.stdout.trim())).toEqual([text, text, 'It is sunny in Paris.']);
      const spans = otlp.jsonSpans();
      expect(spans.map((span) => span.attributes['llm_audit.action']).sort()).toEqual(['Converse', 'ConverseStream', 'InvokeModelWithBidirectionalStream']);
      for (const span of spans) expect(span.attributes['gen_ai.provider.name']).toBe('aws.bedrock');
      expect(JSON.stringify(spans)).not.toContain(CANARY);
    } finally {
      await bedrock.close();
      await otlp.close();
    }
  });
});

describe('shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s flushes every finished call before the process ends with the signal', async (signal) => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runApp(
        ['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')],
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          // A long batch delay: without the flush on SIGTERM nothing would have been sent.
          OTEL_BSP_SCHEDULE_DELAY: '60000',
          APP_STAY_ALIVE: '1',
        },
        (stdout, child) => {
          if (stdout.includes('ready\n') && !child.killed) child.kill(signal);
        },
      );
      expect(result.signal).toBe(signal);
      expect(otlp.jsonSpans()).toHaveLength(4);
    } finally {
      await otlp.close();
    }
  });

  it('a configuration error stops the app at startup with its code, the problem and the fix', async () => {
    const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], { LLM_AUDIT_EXPORTER: 'carrier-pigeon' });
    expect(result.code).toBe(78);
    expect(result.stderr).toBe(`otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_EXPORTER=carrier-pigeon is not one of ledger, otlp, both, console\nfix: ${CONFIG_FIX}\n`);
  });

  it('every configuration problem is reported together, each naming its variable', async () => {
    const result = await runApp(['--require', 'otel-llm-audit/register', join(apps, 'chat-app.cjs')], {
      LLM_AUDIT_EXPORTER: 'carrier-pigeon',
      LLM_AUDIT_FSYNC: 'sometimes',
      LLM_AUDIT_HASH_KEY: 'short',
      LLM_AUDIT_SANITIZE: 'scrub',
    });
    expect(result.code).toBe(78);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('otel-llm-audit: CONFIG_INVALID: 4 problems in the configuration:');
    expect(lines.slice(1, 5)).toEqual([
      '  - LLM_AUDIT_EXPORTER=carrier-pigeon is not one of ledger, otlp, both, console',
      expect.stringMatching(/^  - LLM_AUDIT_HASH_KEY: the hash key is 5 bytes; at least 16 are required/),
      '  - LLM_AUDIT_SANITIZE must be one of off, detect, redact; got "scrub"',
      '  - LLM_AUDIT_FSYNC must be one of always, batch, none, got "sometimes"',
    ]);
    expect(lines[5]).toBe(`fix: ${CONFIG_FIX}`);
  });
});
