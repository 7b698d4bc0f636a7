import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { auditTrailUnavailable, LlmAuditUnavailableError, setOnFailurePolicy } from '../../src/audit/failure-policy';
import { FileLedgerSource, type FileOpener } from '../../src/ledger/file-ledger';
import { scanRecords } from '../../src/ledger/query';
import { LedgerSpanExporter } from '../../src/ledger/span-exporter';
import { verifyLedger } from '../../src/ledger/verify';
import { setupAudit, useFakeProvider } from '../support/harness';
import { tempDir } from './helpers';

// Disk full (ENOSPC injected through FileLedgerOptions.openFile) and a journal that cannot be
// written either: the loss is on stderr by default, counted in llm_audit.ledger.failed_records,
// recorded as a ledger.gap record once the ledger works again (verify shows it), and under
// LLM_AUDIT_ON_FAILURE=block the LLM calls are refused meanwhile.

const audit = setupAudit();
const fake = useFakeProvider(audit);
const OpenAI = audit.load('openai').default ?? audit.load('openai');

/** A file opener whose writes fail with ENOSPC while `full.on`. */
function diskFull(): { opener: FileOpener; full: { on: boolean } } {
  const full = { on: true };
  const opener: FileOpener = async (path, flags, mode) => {
    const handle = await open(path, flags, mode);
    return {
      write: (buffer, offset, length, position) => {
        if (full.on) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
        return handle.write(buffer, offset, length, position);
      },
      datasync: () => handle.datasync(),
      truncate: (n) => handle.truncate(n),
      stat: () => handle.stat(),
      close: () => handle.close(),
    };
  };
  return { opener, full };
}

const tracer = new BasicTracerProvider().getTracer('failure-test');
function span(id: string): ReadableSpan {
  const s = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': id } });
  s.end();
  return s as unknown as ReadableSpan;
}
const exportSpan = (exporter: LedgerSpanExporter, id: string) => new Promise<ExportResult>((resolve) => exporter.export([span(id)], resolve));

async function requestIds(dir: string): Promise<(string | null)[]> {
  const ids: (string | null)[] = [];
  for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.action === 'ledger.gap' ? 'GAP' : hit.record.request_id);
  return ids;
}

afterEach(() => {
  vi.restoreAllMocks();
  setOnFailurePolicy('continue');
});

describe('an audit record that cannot be written', () => {
  it('disk full, the journal still works: nothing is lost; said once on stderr; appended when the disk has room again', async () => {
    const dir = join(tempDir(), 'ledger');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { opener, full } = diskFull();
    const exporter = new LedgerSpanExporter({ dir, hashKey: 'failure-test-hash-key', ledger: { openFile: opener } });
    for (const id of ['a', 'b', 'c']) expect((await exportSpan(exporter, id)).code).toBe(ExportResultCode.SUCCESS);
    const said = stderr.mock.calls.map((c) => String(c[0])).filter((line) => line.includes(dir));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/the audit trail .* is failing \(.*no space left.*\); its records are kept in its pending journal/);
    expect(auditTrailUnavailable()).toBeUndefined();
    // The holder's journal passes (every 200 ms) fail too meanwhile; they retry the same lines later.
    await new Promise((resolve) => setTimeout(resolve, 600));
    full.on = false;
    expect((await exportSpan(exporter, 'd')).code).toBe(ExportResultCode.SUCCESS);
    await exporter.shutdown();
    expect((await requestIds(dir)).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/works again; no record was lost/);
  });

  it.each(['continue', 'block'] as const)(
    'disk full and no journal either (LLM_AUDIT_ON_FAILURE=%s): reported, counted, refused under block, and a ledger.gap record once it works again',
    async (policy) => {
      const dir = join(tempDir(), 'ledger');
      mkdirSync(dir);
      // A file where pending/ should be: the journal cannot be created.
      writeFileSync(join(dir, 'pending'), '');
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      const { opener, full } = diskFull();
      const exporter = new LedgerSpanExporter({ dir, onFailure: policy, ledger: { openFile: opener } });
      expect((await exportSpan(exporter, 'ok-before')).code).toBe(ExportResultCode.FAILED);
      expect((await exportSpan(exporter, 'lost-2')).code).toBe(ExportResultCode.FAILED);
      const lines = stderr.mock.calls.map((c) => String(c[0])).filter((line) => line.includes(dir));
      // The first loss at once; the next one waits for the rate-limited summary.
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^otel-llm-audit: AUDIT RECORDS LOST: 1 record\(s\) could not be written to .*no space left on the device.*; and cannot create the pending journal/);
      expect(auditTrailUnavailable()).toMatch(/no space left/);
      const metrics = await audit.metrics();
      const failed = metrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'llm_audit.ledger.failed_records');
      expect(failed?.dataPoints.filter((p) => p.attributes.trail === dir).map((p) => p.value)).toEqual([2]);

      const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake().openaiBaseURL, maxRetries: 0 });
      const call = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      if (policy === 'block') {
        await expect(call).rejects.toBeInstanceOf(LlmAuditUnavailableError);
        await expect(call).rejects.toMatchObject({ code: 'LLM_AUDIT_UNAVAILABLE' });
        expect(fake().requests).toHaveLength(0);
      } else {
        await expect(call).resolves.toBeDefined();
      }

      // The disk is fixed: the gap record is appended by the retry, and calls go again.
      full.on = false;
      rmSync(join(dir, 'pending'));
      await vi.waitFor(() => expect(auditTrailUnavailable()).toBeUndefined(), { timeout: 5_000 });
      await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).resolves.toBeDefined();
      expect((await exportSpan(exporter, 'after')).code).toBe(ExportResultCode.SUCCESS);
      await exporter.shutdown();
      expect(await requestIds(dir)).toEqual(['GAP', 'after']);
      const result = await verifyLedger(new FileLedgerSource(dir));
      expect(result.warnings.join('\n')).toMatch(/2 audit record\(s\) could not be written .*ledger\.gap/);
    },
  );
});

describe('a ledger directory that cannot be used at startup', () => {
  it('is reported by ready() (never thrown), blocks calls under block, and unblocks by itself once fixed', async () => {
    const base = tempDir();
    const dir = join(base, 'ledger');
    writeFileSync(dir, '');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const exporter = new LedgerSpanExporter({ dir, onFailure: 'block' });
    await expect(exporter.ready()).resolves.toBeUndefined();
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/the audit trail .*ledger cannot be written: .*is not a directory \(LLM_AUDIT_ON_FAILURE=block/);
    expect(auditTrailUnavailable()).toMatch(/not a directory/);
    rmSync(dir);
    await vi.waitFor(() => expect(auditTrailUnavailable()).toBeUndefined(), { timeout: 5_000 });
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(/works again; its directory can be used now/);
    await exporter.shutdown();
  });
});
