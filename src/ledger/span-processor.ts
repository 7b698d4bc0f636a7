/**
 * The span processor in front of the ledger: each audited span is handed to the LedgerSpanExporter
 * the moment it ends, like the SDK's SimpleSpanProcessor, with one difference. The SimpleSpanProcessor
 * holds a span back until its resource's asynchronous attributes (host.id, detected at startup)
 * are known; a ledger record uses none of them, and a span held back is a span that
 * `process.exit()` loses (the exporter's exit journal only sees what reached export()).
 */
import { context, diag, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, suppressTracing } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { LedgerSpanExporter } from './span-exporter';

export class LedgerSpanProcessor implements SpanProcessor {
  private readonly pending = new Set<Promise<void>>();
  private shutDown = false;

  constructor(private readonly exporter: LedgerSpanExporter) {}

  onStart(_span: Span): void {}

  onEnd(span: ReadableSpan): void {
    // Also after shutdown: a call that finishes while the process stops is journaled by the
    // exporter (see LedgerSpanExporter.write), not dropped.
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    const done = new Promise<void>((resolve) => {
      // The ledger's own file work must not make spans.
      context.with(suppressTracing(context.active()), () =>
        this.exporter.export([span], (result) => {
          // The exporter reports its failures through diag; here the outcome only settles the flush.
          if (result.code !== ExportResultCode.SUCCESS) diag.debug('otel-llm-audit ledger: a span was not appended');
          resolve();
        }),
      );
    });
    this.pending.add(done);
    void done.then(() => this.pending.delete(done));
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.pending]);
    await this.exporter.forceFlush();
  }

  async shutdown(): Promise<void> {
    if (this.shutDown) return;
    this.shutDown = true;
    await Promise.all([...this.pending]);
    await this.exporter.shutdown();
  }
}
