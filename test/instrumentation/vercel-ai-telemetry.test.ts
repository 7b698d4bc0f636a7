import { createRequire } from 'node:module';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { BasicTracerProvider, InMemorySpanExporter, RandomIdGenerator, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordIdGenerator, installAuditRecordPipeline } from '../../src/core/audit-records';
import { LlmAuditInstrumentation } from '../../src/instrumentation';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';

// The AI SDK's own spans (experimental_telemetry) beside this package, as register runs it (an
// application tracer provider and the audit record pipeline): the application's trace shows one
// GenAI span per model call, the AI SDK's `ai.*.do*` span, carrying the audit attributes; the
// ledger gets one record per call with the same span id.

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const traces = new InMemorySpanExporter();
const appProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(traces)] });
trace.setGlobalTracerProvider(appProvider);
const records = new InMemorySpanExporter();
const recordProvider = new BasicTracerProvider({ idGenerator: auditRecordIdGenerator(new RandomIdGenerator()), spanProcessors: [new SimpleSpanProcessor(records)] });
installAuditRecordPipeline({ tracer: recordProvider.getTracer('otel-llm-audit') });
registerInstrumentations({ instrumentations: [new LlmAuditInstrumentation({ hashKey: 'telemetry-test-key-0123456' })], tracerProvider: appProvider });
const load = createRequire(join(repoRoot, 'noop.js'));
const ai = load('ai');
const { createOpenAI } = load('@ai-sdk/openai');
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

describe('AI SDK telemetry on', () => {
  it('generateText (two steps), streamText and embed: one GenAI span per model call in the trace, one record each, same ids', async () => {
    const openai = createOpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL });
    const telemetry = { isEnabled: true };
    fake.enqueue({ toolCalls: [{ name: 'weather', arguments: '{"city":"Paris"}', id: 'call_1' }] }, {});
    const weather = ai.tool({ inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }), execute: async () => 'sunny' });
    await ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'hi', tools: { weather }, stopWhen: ai.stepCountIs(2), maxRetries: 0, experimental_telemetry: telemetry });
    await ai.streamText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0, experimental_telemetry: telemetry }).consumeStream();
    await ai.embed({ model: openai.embedding('text-embedding-3-small'), value: 'hi', maxRetries: 0, experimental_telemetry: telemetry });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const spans = traces.getFinishedSpans();
    const calls = spans.filter((s) => /^ai\.\w+\.do(Generate|Stream|Embed)$/.test(s.name));
    expect(calls.map((s) => s.name)).toEqual(['ai.generateText.doGenerate', 'ai.generateText.doGenerate', 'ai.streamText.doStream', 'ai.embed.doEmbed']);
    // No second GenAI span of ours beside the AI SDK's.
    expect(spans.filter((s) => s.instrumentationScope.name === 'otel-llm-audit')).toEqual([]);
    for (const span of calls) {
      expect(span.attributes['llm_audit.trace_copy']).toBe(true);
      expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
      expect(span.attributes['llm_audit.status']).toBe('success');
    }
    const written = records.getFinishedSpans();
    expect(written).toHaveLength(4);
    expect(written.map((r) => r.spanContext().spanId)).toEqual(calls.map((s) => s.spanContext().spanId));
    // The record's parent is the AI SDK's run span (ai.generateText...), not its doGenerate span.
    const runs = new Set(spans.filter((s) => !calls.includes(s)).map((s) => s.spanContext().spanId));
    for (const record of written) expect(runs.has(record.parentSpanContext!.spanId)).toBe(true);
  });
});
