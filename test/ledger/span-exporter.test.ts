import { SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLedgerSource, type FileOpener } from '../../src/ledger/file/ledger';
import { scanRecords } from '../../src/ledger/query';
import { LedgerSpanExporter, ledgerOptionsFromEnv } from '../../src/ledger/span-exporter';
import { verifyLedger } from '../../src/ledger/verify';
import { tempDir } from './helpers';

describe('LedgerSpanExporter', () => {
  it('writes one verified record per audited span, skips others, checkpoints on shutdown', async () => {
    const dir = join(tempDir(), 'ledger');
    const exporter = new LedgerSpanExporter({ dir, checkpointEvery: 100 });
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('test');
    for (let i = 0; i < 3; i++) {
      const span = tracer.startSpan('chat gpt-4o', {
        attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': `r${i}`, 'user.id': 'alice', 'gen_ai.usage.input_tokens': 10 + i },
      });
      if (i === 2) {
        span.setAttribute('error.type', 'APIError');
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
    tracer.startSpan('GET /health').end();
    await provider.forceFlush();
    expect(existsSync(join(dir, 'ledger.lock'))).toBe(true);
    await provider.shutdown();
    expect(existsSync(join(dir, 'ledger.lock'))).toBe(false);

    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result).toMatchObject({ records: 3, newestCheckpointSize: 3 });
    const records = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) records.push(hit.record);
    expect(records.map((r) => [r.request_id, r.user_id, r.input_tokens, r.status])).toEqual([
      ['r0', 'alice', 10, null],
      ['r1', 'alice', 11, null],
      ['r2', 'alice', 12, 'error'],
    ]);
  });

  it('calls back FAILED with the ledger error when the append fails', async () => {
    const base = tempDir();
    writeFileSync(join(base, 'file'), '');
    const exporter = new LedgerSpanExporter({ dir: join(base, 'file') });
    const span = { attributes: { 'gen_ai.operation.name': 'chat' }, startTime: [0, 0], duration: [0, 1], events: [], status: { code: 0 }, spanContext: () => ({ traceId: 't', spanId: 's', traceFlags: 1 }) } as unknown as ReadableSpan;
    const result = await new Promise<ExportResult>((resolve) => exporter.export([span], resolve));
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(result.error).toMatchObject({ code: 'LEDGER_UNREADABLE' });
    await exporter.shutdown();
    // After shutdown a span is journaled rather than refused; here the journal cannot be written either.
    const after = await new Promise<ExportResult>((resolve) => exporter.export([span], resolve));
    expect(after.code).toBe(ExportResultCode.FAILED);
    expect(after.error?.message).toMatch(/cannot create the pending journal/);
  });

  it('a span that ends after shutdown (a call finishing while the process stops) is journaled, and the next writer appends it', async () => {
    const dir = join(tempDir(), 'ledger');
    const exporter = new LedgerSpanExporter({ dir, hashKey: 'span-exporter-test-hash-key' });
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('test');
    tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': 'before' } }).end();
    await provider.forceFlush();
    await exporter.shutdown();
    const late = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': 'late' } });
    const result = await new Promise<ExportResult>((resolve) => exporter.export([late as unknown as ReadableSpan], resolve));
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    exporter.journalOnExit();
    const next = new LedgerSpanExporter({ dir, hashKey: 'span-exporter-test-hash-key' });
    const third = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(next)] });
    third.getTracer('test').startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': 'next' } }).end();
    await third.shutdown();
    const ids = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.request_id);
    expect(ids).toEqual(['before', 'late', 'next']);
  });

  it('reads its options from the environment', () => {
    expect(ledgerOptionsFromEnv({})).toEqual({ dir: './llm-audit-ledger' });
    expect(
      ledgerOptionsFromEnv({ LLM_AUDIT_LEDGER_DIR: '/var/audit', LLM_AUDIT_FSYNC: 'batch', LLM_AUDIT_SIGNING_KEY: '/k.pem', LLM_AUDIT_CHECKPOINT_EVERY: '50' }),
    ).toEqual({ dir: '/var/audit', fsync: 'batch', signingKeyPath: '/k.pem', checkpointEvery: 50 });
    expect(() => ledgerOptionsFromEnv({ LLM_AUDIT_FSYNC: 'often' })).toThrow(/LLM_AUDIT_FSYNC must be one of always, batch, none/);
  });
});

describe('LedgerSpanExporter backlog bound', () => {
  it('past maxBacklog records waiting for a slow disk, records go synchronously to the journal; all end up in the ledger once', async () => {
    const { open } = await import('node:fs/promises');
    const dir = join(tempDir(), 'ledger');
    let syncs = 0;
    // A disk whose fdatasync takes 50 ms: the ledger falls behind 100 spans exported at once.
    const slow: FileOpener = async (path, flags, mode) => {
      const handle = await open(path, flags, mode);
      return {
        write: (b, o, l, p) => handle.write(b, o, l, p),
        datasync: async () => {
          syncs++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return handle.datasync();
        },
        truncate: (n) => handle.truncate(n),
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
    };
    const exporter = new LedgerSpanExporter({ dir, maxBacklog: 10, hashKey: 'backlog-test-hash-key', ledger: { openFile: slow } });
    const tracer = new BasicTracerProvider().getTracer('backlog');
    const span = (i: number) => {
      const s = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': `b${i}` } });
      s.end();
      return s as unknown as ReadableSpan;
    };
    // The first export opens the ledger; then 100 at once.
    await new Promise<ExportResult>((resolve) => exporter.export([span(0)], resolve));
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => new Promise<ExportResult>((resolve) => exporter.export([span(i + 1)], resolve))));
    expect(results.every((r) => r.code === ExportResultCode.SUCCESS)).toBe(true);
    // Most of the 100 did not wait for the ledger: they went to the journal (one fdatasync each).
    const journaled = readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl'));
    expect(journaled).toHaveLength(1);
    expect(syncs).toBeLessThan(20);
    await exporter.shutdown();
    const ids = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.request_id);
    expect(ids.sort()).toEqual(Array.from({ length: 101 }, (_, i) => `b${i}`).sort());
    expect(readdirSync(join(dir, 'pending')).filter((name) => name.endsWith('.jsonl'))).toEqual([]);
  });
});
