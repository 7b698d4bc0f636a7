/**
 * A call made where the application switched tracing off (`suppressTracing`, which exporters use
 * for their own requests) is still a call to audit: its record is written, while its trace span
 * follows the application's tracing and is not recorded.
 */
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { installAuditRecordPipeline, startCallSpans } from '../../src/core/audit-records';

describe('the audit record under suppressed tracing', () => {
  it('is recorded and exported although the trace span is not', () => {
    const traces = new InMemorySpanExporter();
    const records = new InMemorySpanExporter();
    const appProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(traces)] });
    const recordProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(records)] });
    const uninstall = installAuditRecordPipeline({ tracer: recordProvider.getTracer('otel-llm-audit') });
    try {
      const suppressed = suppressTracing(ROOT_CONTEXT);
      const spans = startCallSpans(appProvider.getTracer('app'), 'chat gpt-4o-mini', { 'gen_ai.operation.name': 'chat' }, suppressed);
      expect(spans.trace.isRecording()).toBe(false);
      expect(spans.record.isRecording()).toBe(true);
      spans.record.setAttribute('llm_audit.status', 'success');
      spans.record.end();
      expect(traces.getFinishedSpans()).toHaveLength(0);
      const [record] = records.getFinishedSpans();
      expect(record?.name).toBe('chat gpt-4o-mini');
      expect(record?.attributes['llm_audit.status']).toBe('success');
    } finally {
      uninstall();
    }
  });
});
