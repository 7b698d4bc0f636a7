import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resources } from '@opentelemetry/sdk-node';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { scanRecords } from '../../src/ledger/query';
import { LedgerSpanExporter } from '../../src/ledger/span-exporter';
import { LedgerSpanProcessor } from '../../src/ledger/span-processor';
import { tempDir } from './helpers';

describe('LedgerSpanProcessor', () => {
  it('appends a span at once even while its resource still waits for asynchronous attributes (which the ledger does not use)', async () => {
    const dir = join(tempDir(), 'ledger');
    // host.id as a detector would give it: a promise, here one that never settles.
    const resource = resources.resourceFromAttributes({ 'service.name': 'app', 'host.id': new Promise<string>(() => undefined) });
    expect(resource.asyncAttributesPending).toBe(true);
    const processor = new LedgerSpanProcessor(new LedgerSpanExporter({ dir }));
    const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
    const tracer = provider.getTracer('test');
    for (const id of ['r1', 'r2']) tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': id } }).end();
    tracer.startSpan('GET /health').end();
    await processor.forceFlush();
    const ids: (string | null)[] = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.request_id);
    expect(ids).toEqual(['r1', 'r2']);
    await processor.shutdown();
    // After shutdown nothing more is accepted, and nothing throws.
    tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': 'r3' } }).end();
    await processor.forceFlush();
  });
});
