/**
 * Issue 5, end to end with real processes: the demo app (examples/chat-app.cjs, real `openai` and
 * `@anthropic-ai/sdk` against the local fake provider) runs under
 * `node --require otel-llm-audit/register` and exports OTLP/HTTP to the project's collector
 * (.cache/bin/otelcol-llm-audit running the repo's collector-config.yaml), which sends every span
 * to a real Jaeger v2 and the audit spans to `llm-audit serve --ledger DIR` (the compiled CLI).
 *
 * Proves: each call's span is in Jaeger with its audit attributes; each call is in the ledger
 * exactly once and nothing else of the app is; the ledger verifies; the prompt (a canary) is in
 * no Jaeger answer and no ledger byte; plaintext content another instrumentation sends through
 * the collector is removed before Jaeger, and reaches the ledger only when the span is an LLM
 * span, and then without the content.
 *
 * Binaries are built (or found up to date) by scripts/build-jaeger.sh and
 * scripts/build-collector.sh first; LLM_AUDIT_E2E_BUILD=0 skips that. Missing binaries or an
 * uncompiled package (npm run build) fail every test. Logs: .cache/logs.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedText, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { ensureDir, repoRoot, runToCompletion, stopAll, waitFor } from '../support/processes';
import {
  attributesOf,
  baseEnv,
  BUILD_TIMEOUT_MS,
  Collector,
  ensureBinaries,
  type Jaeger,
  type JaegerAnswer,
  jaegerFindTraces,
  jaegerTrace,
  ledgerBytes,
  ledgerEntries,
  type LedgerEntry,
  LedgerServer,
  metricValue,
  type OtlpJsonSpan,
  postOtlpJson,
  startStack,
  verifyLedger,
  waitLedgerQuiet,
} from './support/stack';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const CANARY = `CANARY-pipeline-${hex(6)}`;
const APP_SERVICE = `pipeline-e2e-app-${hex(3)}`;
const FOREIGN_SERVICE = `pipeline-e2e-foreign-${hex(3)}`;
const TOKEN = `ingest-token-${hex(8)}`;
const HASH_KEY = `pipeline-e2e-hash-key-${hex(8)}`;
const SECRETS = ['sk-app-secret-key', 'sk-ant-app-secret-key', TOKEN, HASH_KEY];
const ACTIONS = ['chat.completions.create', 'chat.completions.create', 'messages.create', 'messages.stream'];

describe('audit pipeline: demo app -> collector -> Jaeger and llm-audit serve (file ledger)', () => {
  let fake: FakeProvider | undefined;
  let jaeger: Jaeger;
  let collector: Collector;
  let ledger: LedgerServer;
  let runDir: string | undefined;
  let ledgerDir: string;
  let setupError: unknown;
  let failed = false;
  const startedAt = new Date();
  /** Every answer Jaeger gave, scanned for the canary at the end. */
  const jaegerAnswers: JaegerAnswer[] = [];
  /** The app's records, set by the first test. */
  let appRecords: Record<string, any>[] = [];
  let foreign: { plainTrace: string; llmTrace: string; llmSpan: string } | undefined;

  async function trace(traceId: string): Promise<JaegerAnswer> {
    const answer = await jaegerTrace(jaeger, traceId);
    jaegerAnswers.push(answer);
    return answer;
  }

  /** Polls Jaeger until the trace holds the span. */
  async function jaegerSpan(traceId: string, spanId: string): Promise<OtlpJsonSpan> {
    return waitFor(
      `span ${spanId} of trace ${traceId} in Jaeger`,
      async () => (await trace(traceId)).spans.find((s) => s.spanId === spanId),
      { process: jaeger.process, timeoutMs: 20_000, intervalMs: 250 },
    );
  }

  /** The collector's queue to the ledger is empty (nothing waiting or being retried). */
  async function ledgerQueueEmpty(): Promise<boolean> {
    const size = metricValue(await collector.metrics(), 'otelcol_exporter_queue_size', { exporter: 'otlp_http/ledger' });
    return size === undefined || size === 0;
  }

  beforeAll(async () => {
    try {
      await ensureBinaries();
      runDir = ensureDir(join(repoRoot, '.cache', 'e2e', `pipeline-${process.pid}-${Date.now()}`));
      ledgerDir = join(runDir, 'ledger');
      fake = await startFakeProvider();
      ({ jaeger, ledger, collector } = await startStack({ runDir, token: TOKEN }));
    } catch (error) {
      setupError = error;
    }
  }, BUILD_TIMEOUT_MS * 2 + 120_000);

  afterAll(async () => {
    await stopAll(10_000);
    await fake?.close();
    // Kept after a failure, for a look at the ledger and the queue.
    if (runDir && !failed && !setupError) rmSync(runDir, { recursive: true, force: true });
  }, 60_000);

  /** A test that fails (never skips) when the set-up failed, and marks the run as failed. */
  function check(name: string, fn: () => Promise<void>, timeoutMs: number): void {
    it(name, async () => {
      try {
        if (setupError) throw setupError;
        await fn();
      } catch (error) {
        failed = true;
        throw error;
      }
    }, timeoutMs);
  }

  check('puts each call of the demo app in Jaeger, with its audit attributes, and in the ledger exactly once', async () => {
    const app = await runToCompletion('chat-app', process.execPath, {
      args: ['--require', 'otel-llm-audit/register', join(repoRoot, 'examples', 'chat-app.cjs')],
      env: baseEnv({
        FAKE_PROVIDER_URL: fake!.url,
        APP_PROMPT: CANARY,
        OTEL_SERVICE_NAME: APP_SERVICE,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpUrl,
        // The collector has no metrics or logs pipeline.
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
        LLM_AUDIT_HASH_KEY: HASH_KEY,
      }),
      timeoutMs: 60_000,
    });
    // The app works as before (its four answers) and printed nothing else: no export error.
    expect(app.output.trim()).toBe(JSON.stringify(ACTIONS.map(() => expectedText())));
    // The canary really was the prompt of all four calls.
    expect(fake!.requests.filter((r) => r.rawBody.includes(CANARY))).toHaveLength(4);

    // The ledger: four records, once each, when everything in flight has landed.
    await waitFor('4 records in the ledger', () => (ledgerEntries(ledgerDir).length >= 4 ? true : undefined), {
      process: ledger.process,
      timeoutMs: 30_000,
    });
    const entries = await waitLedgerQuiet(ledgerDir, { quietMs: 1_500, timeoutMs: 30_000, settled: ledgerQueueEmpty, process: ledger.process });
    // The app's calls: each audited process also writes one audit.start record (its settings).
    appRecords = entries.map((e) => e.record).filter((r) => r.action !== 'audit.start');
    expect(appRecords.map((r) => r.action).sort()).toEqual(ACTIONS);
    const requestIds = appRecords.map((r) => r.request_id);
    for (const id of requestIds) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Set(requestIds).size).toBe(4);
    expect(new Set(appRecords.map((r) => `${r.trace_id}/${r.span_id}`)).size).toBe(4);
    for (const r of appRecords) {
      expect(r).toMatchObject({ user_id: 'user-42', session_id: 'session-7', tenant_id: 'acme', status: 'success' });
      expect(r.input_hash).toMatch(/^hmac-sha256:[0-9a-f]{8}:[0-9a-f]{64}$/);
      expect(r.output_tokens).toBeGreaterThan(0);
    }

    // Jaeger: each record's span, found by the trace id the ledger recorded, with the same facts.
    for (const r of appRecords) {
      const span = await jaegerSpan(r.trace_id, r.span_id);
      const a = attributesOf(span);
      expect(span.resource?.['service.name']).toBe(APP_SERVICE);
      expect(span.scope).toBe('otel-llm-audit');
      expect(a['llm_audit.request_id']).toBe(r.request_id);
      expect(a['llm_audit.action']).toBe(r.action);
      expect(a['gen_ai.operation.name']).toBe(r.operation);
      expect(a['gen_ai.provider.name']).toBe(r.provider);
      expect(a['gen_ai.request.model']).toBe(r.model.request);
      expect(a['gen_ai.usage.input_tokens']).toBe(r.input_tokens);
      expect(a['gen_ai.usage.output_tokens']).toBe(r.output_tokens);
      expect(a['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(a['gen_ai.usage.cost.amount']).toBeCloseTo(r.cost_usd, 12);
      expect(a['user.id']).toBe('user-42');
      expect(a['session.id']).toBe('session-7');
      expect(a['llm_audit.tenant.id']).toBe('acme');
      expect(a['llm_audit.input.hash']).toBe(r.input_hash);
      expect(a['llm_audit.output.hash']).toBe(r.output_hash);
    }
    const systemPrompted = appRecords.find((r) => r.action === 'messages.create')!;
    expect(systemPrompted.system_prompt_hash).toMatch(/^hmac-sha256:/);

    // Jaeger holds exactly these four spans for the app: every call once, nothing else.
    const all = await jaegerFindTraces(jaeger, APP_SERVICE, startedAt);
    jaegerAnswers.push(all);
    expect(all.spans.map((s) => `${s.traceId}/${s.spanId}`).sort()).toEqual(appRecords.map((r) => `${r.trace_id}/${r.span_id}`).sort());
  }, 120_000);

  check('removes plaintext content sent by another instrumentation; only an LLM span of it reaches the ledger, without the content', async () => {
    expect(appRecords).toHaveLength(4);
    const now = BigInt(Date.now()) * 1_000_000n;
    const messages = (role: string) => JSON.stringify([{ role, parts: [{ type: 'text', content: `say ${CANARY}` }] }]);
    const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
    const span = (traceId: string, name: string, attributes: object[]) => ({
      traceId,
      spanId: hex(8),
      name,
      kind: 3,
      startTimeUnixNano: String(now),
      endTimeUnixNano: String(now + 42_000_000n),
      attributes,
    });
    // Not an LLM audit span (no gen_ai.operation.name, no llm_audit.* key): Jaeger only.
    const plain = span(hex(16), 'render prompt', [str('app.step', 'render'), str('gen_ai.input.messages', messages('user'))]);
    // An LLM span of another GenAI instrumentation, content capture switched on.
    const llm = span(hex(16), 'chat gpt-4o-mini', [
      str('gen_ai.operation.name', 'chat'),
      str('gen_ai.provider.name', 'openai'),
      str('gen_ai.request.model', 'gpt-4o-mini'),
      { key: 'gen_ai.usage.input_tokens', value: { intValue: '12' } },
      str('gen_ai.input.messages', messages('user')),
      str('gen_ai.output.messages', messages('assistant')),
      str('gen_ai.system_instructions', `be brief ${CANARY}`),
    ]);
    foreign = { plainTrace: plain.traceId, llmTrace: llm.traceId, llmSpan: llm.spanId };
    await postOtlpJson(collector.otlpHttpUrl, FOREIGN_SERVICE, '@opentelemetry/instrumentation-openai', [plain, llm]);

    // Jaeger: both spans, content attributes gone, the rest kept.
    const storedPlain = attributesOf(await jaegerSpan(plain.traceId, plain.spanId));
    expect(storedPlain['app.step']).toBe('render');
    expect(storedPlain).not.toHaveProperty('gen_ai.input.messages');
    const storedLlm = attributesOf(await jaegerSpan(llm.traceId, llm.spanId));
    expect(storedLlm['gen_ai.operation.name']).toBe('chat');
    expect(storedLlm['gen_ai.usage.input_tokens']).toBe(12);
    for (const key of ['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.system_instructions']) expect(storedLlm).not.toHaveProperty(key);

    // Ledger: the LLM span once, as a record without content; the other span never.
    await waitFor('the foreign LLM span in the ledger', () => (ledgerEntries(ledgerDir).some((e) => e.record.trace_id === llm.traceId) ? true : undefined), {
      process: ledger.process,
      timeoutMs: 20_000,
    });
    const entries: LedgerEntry[] = await waitLedgerQuiet(ledgerDir, { quietMs: 1_500, timeoutMs: 30_000, settled: ledgerQueueEmpty, process: ledger.process });
    expect(entries.filter((e) => e.record.action !== 'audit.start')).toHaveLength(5);
    expect(entries.filter((e) => e.record.trace_id === plain.traceId)).toEqual([]);
    const records = entries.filter((e) => e.record.trace_id === llm.traceId).map((e) => e.record);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ span_id: llm.spanId, operation: 'chat', provider: 'openai', input_tokens: 12, request_id: null });
    expect(JSON.stringify(records[0])).not.toContain(CANARY);
  }, 90_000);

  check('the ledger verifies, and neither Jaeger nor the ledger holds the prompt or a secret', async () => {
    expect(foreign).toBeDefined();
    // Verified live (the server holds the ledger), then after the server's graceful stop, which
    // writes a checkpoint of all five records (docs/ledger.md, checkpoints.jsonl).
    expect((await verifyLedger(ledgerDir)).code).toBe(0);
    await ledger.stop();
    const checkpoints = readFileSync(join(ledgerDir, 'checkpoints.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((c) => c.type === 'checkpoint');
    expect(checkpoints.at(-1)?.tree_size).toBe(6); // and the app process's audit.start record
    expect((await verifyLedger(ledgerDir)).code).toBe(0);

    const bytes = ledgerBytes(ledgerDir);
    expect(bytes.length).toBeGreaterThan(0);
    for (const needle of [CANARY, expectedText(), ...SECRETS]) expect(bytes.includes(needle), `${needle} in the ledger`).toBe(false);

    // Every Jaeger answer so far, plus a fresh look at everything Jaeger holds for both services.
    const appAll = await jaegerFindTraces(jaeger, APP_SERVICE, startedAt);
    const foreignAll = await jaegerFindTraces(jaeger, FOREIGN_SERVICE, startedAt);
    expect(appAll.spans).toHaveLength(4);
    expect(foreignAll.spans).toHaveLength(2);
    jaegerAnswers.push(appAll, foreignAll);
    for (const id of [foreign!.plainTrace, foreign!.llmTrace, ...appRecords.map((r) => r.trace_id)]) {
      const answer = await trace(id);
      expect(answer.status, `trace ${id} in Jaeger`).toBe(200);
    }
    const raw = jaegerAnswers.map((a) => a.raw).join('\n');
    for (const needle of [CANARY, expectedText(), ...SECRETS]) expect(raw.includes(needle), `${needle} in a Jaeger answer`).toBe(false);
  }, 90_000);
});
