/**
 * The contrib OpenAI instrumentation (what @opentelemetry/auto-instrumentations-node loads) beside
 * this package, in one process: a global tracer provider for the application's traces, this
 * package's audit record pipeline, both instrumentations enabled in the given order (the one
 * enabled first wraps the SDK method first, that is inside the other).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';
import { auditRecordIdGenerator, installAuditRecordPipeline } from '../../src/core/audit-records';
import { LlmAuditInstrumentation } from '../../src/instrumentation';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { startFakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';

export async function callsBesideContrib(order: 'contrib-first' | 'ours-first'): Promise<void> {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const traces = new InMemorySpanExporter();
  const appProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(traces)] });
  trace.setGlobalTracerProvider(appProvider);
  const records = new InMemorySpanExporter();
  const recordProvider = new BasicTracerProvider({
    idGenerator: auditRecordIdGenerator(new RandomIdGenerator()),
    spanProcessors: [new SimpleSpanProcessor(records)],
  });
  installAuditRecordPipeline({ tracer: recordProvider.getTracer('otel-llm-audit') });
  // As NodeSDK and auto-instrumentations-node do it: registerInstrumentations, in the given order.
  const contrib = new OpenAIInstrumentation({ enabled: false });
  const ours = new LlmAuditInstrumentation({ hashKey: 'beside-contrib-key-0123456', enabled: false });
  registerInstrumentations({ instrumentations: order === 'contrib-first' ? [contrib, ours] : [ours, contrib], tracerProvider: appProvider });
  const fake = await startFakeProvider();
  try {
    const OpenAI = createRequire(join(repoRoot, 'noop.js'))('openai');
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _chunk of stream) void _chunk;
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    await fake.close();
  }
  // One GenAI span per call in the application's trace, carrying the audit attributes...
  const genai = traces.getFinishedSpans().filter((s) => s.attributes['gen_ai.operation.name'] !== undefined);
  expect(genai).toHaveLength(2);
  for (const span of genai) {
    expect(span.attributes['llm_audit.trace_copy']).toBe(true);
    expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
  }
  // ...and one complete audit record per call, with the same ids.
  const written = records.getFinishedSpans();
  expect(written).toHaveLength(2);
  for (const record of written) {
    expect(record.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);
    expect(record.attributes['llm_audit.status']).toBe('success');
    expect(genai.map((s) => s.spanContext().spanId)).toContain(record.spanContext().spanId);
    // Same span, same parent: never its own parent.
    const traced = genai.find((s) => s.spanContext().spanId === record.spanContext().spanId)!;
    expect(record.parentSpanContext?.spanId).toBe(traced.parentSpanContext?.spanId);
    expect(record.spanContext().traceId).toBe(traced.spanContext().traceId);
  }
}
