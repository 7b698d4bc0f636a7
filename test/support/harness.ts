import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { LlmAuditInstrumentation, type LlmAuditInstrumentationConfig } from '../../src/instrumentation';
import { contentCipherFromEnv, createContentMasterKey } from '../../src/audit/content';
import { startFakeProvider, type FakeProvider } from './fake-provider';

export const repoRoot = join(__dirname, '..', '..');

/**
 * An in-process OpenTelemetry setup for tests: real SDK tracer and meter providers with in-memory
 * exporters, the AsyncLocalStorage context manager, and the instrumentation enabled. SDK packages
 * must be loaded with `load()` (Node's own require), which the instrumentation hooks, after this.
 */
export function setupAudit(config: LlmAuditInstrumentationConfig = {}) {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(tracerProvider);
  propagation.setGlobalPropagator(new W3CBaggagePropagator());
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);

  const instrumentation = new LlmAuditInstrumentation({ hashKey: 'test-hash-key-0123456789', hashKeyId: 'test', ...config });
  instrumentation.setTracerProvider(tracerProvider);
  instrumentation.setMeterProvider(meterProvider);
  instrumentation.enable();

  return {
    exporter,
    instrumentation,
    tracerProvider,
    /** Node's require, from the repo root or from a directory under test/sdk-versions. */
    load(id: string, fromDir = repoRoot): any {
      return createRequire(join(fromDir, 'noop.js'))(id);
    },
    spans(): ReadableSpan[] {
      return exporter.getFinishedSpans();
    },
    /** The finished spans, once there are at least `count` of them. */
    spansWhen(count: number): Promise<ReadableSpan[]> {
      return eventually(() => (exporter.getFinishedSpans().length >= count ? exporter.getFinishedSpans() : undefined));
    },
    /** Spans that this package made (its instrumentation scope). */
    auditSpans(): ReadableSpan[] {
      return exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === 'otel-llm-audit');
    },
    async metrics(): Promise<ResourceMetrics> {
      const result = await reader.collect();
      return result.resourceMetrics;
    },
    reset(): void {
      exporter.reset();
    },
  };
}

export type AuditHarness = ReturnType<typeof setupAudit>;

/**
 * setupAudit with encrypted content capture on (LLM_AUDIT_CONTENT=encrypted, a fresh master key
 * in a temporary directory, set only while the instrumentation starts), and the reviewer's
 * cipher that opens the envelopes.
 */
export function setupAuditWithContent(config: LlmAuditInstrumentationConfig = {}) {
  const keyPath = join(mkdtempSync(join(tmpdir(), 'content-')), 'content.key');
  createContentMasterKey(keyPath, 'k1');
  const env = { LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath };
  Object.assign(process.env, env);
  try {
    return { audit: setupAudit(config), reviewer: contentCipherFromEnv(env)! };
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
  }
}

/** Waits until `predicate` holds (spans end asynchronously after the SDK's promise settles). */
export async function eventually<T>(fn: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Starts the fake provider for the test file and, before each test, clears it (and the spans of
 * `audit`, when given). Returns an accessor, valid once the file's tests run.
 */
export function useFakeProvider(audit?: { reset(): void }): () => FakeProvider {
  let fake: FakeProvider | undefined;
  beforeAll(async () => {
    fake = await startFakeProvider();
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(() => {
    audit?.reset();
    fake?.reset();
  });
  return () => {
    if (fake === undefined) throw new Error('the fake provider is not started yet (use it inside a test or hook)');
    return fake;
  };
}
