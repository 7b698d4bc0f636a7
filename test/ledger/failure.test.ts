import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { auditTrailUnavailable, LlmAuditUnavailableError, setOnFailurePolicy } from '../../src/audit/failure-policy';
import { FileLedgerSource, type FileOpener } from '../../src/ledger/file/ledger';
import { scanRecords } from '../../src/ledger/query';
import { LedgerSpanExporter } from '../../src/ledger/span-exporter';
import { verifyLedger } from '../../src/ledger/verify';
import { ensureBuilt } from '../cli/cli-helpers';
import { setupAudit, useFakeProvider } from '../support/harness';
import { repoRoot } from '../support/processes';
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

describe('the ledger.gap record itself is never lost', () => {
  // Before, the gap record lived only in memory until the ledger took it: a process that exited
  // (or was killed, or shut down) while the ledger still failed, or before the once-a-second retry,
  // took the only trace of the loss with it. It now goes to the journal like any record.

  /**
   * A real process: its ledger's disk is full and its journal cannot be created, so two records
   * are lost; then the journal can be written again (the ledger still cannot), and the process ends
   * as `how` says.
   */
  const child = (dir: string, how: 'exit' | 'kill-after-retry') => `
    const { open } = require('node:fs/promises');
    const { rmSync } = require('node:fs');
    const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');
    const { LedgerSpanExporter } = require(${JSON.stringify(join(repoRoot, 'dist/cjs/ledger/span-exporter.js'))});
    const opener = async (path, flags, mode) => {
      const h = await open(path, flags, mode);
      return { write: () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })),
        datasync: () => h.datasync(), truncate: (n) => h.truncate(n), stat: () => h.stat(), close: () => h.close() };
    };
    const dir = ${JSON.stringify(dir)};
    const exporter = new LedgerSpanExporter({ dir, hashKey: 'gap-test-hash-key', ledger: { openFile: opener } });
    const tracer = new BasicTracerProvider().getTracer('gap');
    const send = (id) => new Promise((resolve) => {
      const s = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': id } });
      s.end();
      exporter.export([s], resolve);
    });
    (async () => {
      const results = [await send('lost-1'), await send('lost-2')];
      if (results.some((r) => r.code === 0)) throw new Error('expected the records to be lost');
      rmSync(dir + '/pending');
      ${how === 'exit' ? 'process.exit(0);' : "setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1500);"}
    })();
  `;

  async function runChild(dir: string, how: 'exit' | 'kill-after-retry'): Promise<void> {
    ensureBuilt();
    mkdirSync(dir);
    writeFileSync(join(dir, 'pending'), '');
    const result = spawnSync(process.execPath, ['-e', child(dir, how)], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toMatch(/AUDIT RECORDS LOST: 1 record\(s\)/);
    expect(how === 'exit' ? result.status : result.signal).toBe(how === 'exit' ? 0 : 'SIGKILL');
  }

  async function nextWriterAppends(dir: string): Promise<void> {
    const next = new LedgerSpanExporter({ dir, hashKey: 'gap-test-hash-key' });
    expect((await exportSpan(next, 'next')).code).toBe(ExportResultCode.SUCCESS);
    await next.shutdown();
  }

  it.each(['exit', 'kill-after-retry'] as const)('the ledger still failing when the process ends (%s): the gap record is journaled, the next writer appends it', async (how) => {
    const dir = join(tempDir(), 'ledger');
    await runChild(dir, how);
    await nextWriterAppends(dir);
    expect((await requestIds(dir)).sort()).toEqual(['GAP', 'next']);
    expect((await verifyLedger(new FileLedgerSource(dir))).warnings.join('\n')).toMatch(/2 audit record\(s\) could not be written/);
  }, 60_000);

  it('shut down before the retry: the gap record is written by shutdown()', async () => {
    const dir = join(tempDir(), 'ledger');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pending'), '');
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const { opener, full } = diskFull();
    const exporter = new LedgerSpanExporter({ dir, hashKey: 'gap-test-hash-key', ledger: { openFile: opener } });
    expect((await exportSpan(exporter, 'lost-1')).code).toBe(ExportResultCode.FAILED);
    rmSync(join(dir, 'pending'));
    full.on = false;
    await exporter.shutdown();
    expect(await requestIds(dir)).toEqual(['GAP']);
    expect(auditTrailUnavailable()).toBeUndefined();
  });
});

describe('a span made by the application that claims an operation record', () => {
  // Operation records (content.shred, ledger.recovered, ledger.gap) are left out of the reports:
  // an app-made span claiming one would be stored as an erasure and hide its cost. Ingest refused
  // them; the in-process exporter took them. Now it refuses them too, loudly and counted.
  it('is refused (the other spans of the batch are written), said on stderr, counted in llm_audit.ledger.refused_records', async () => {
    const dir = join(tempDir(), 'ledger');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const exporter = new LedgerSpanExporter({ dir });
    const forged = tracer.startSpan('shred', { attributes: { 'llm_audit.action': 'content.shred', 'gen_ai.usage.cost.amount': 777, 'llm_audit.request_id': 'forged' } });
    forged.end();
    const gap = tracer.startSpan('gap', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.action': 'ledger.gap', 'llm_audit.request_id': 'forged-gap' } });
    gap.end();
    const result = await new Promise<ExportResult>((resolve) => exporter.export([span('real'), forged as unknown as ReadableSpan, gap as unknown as ReadableSpan], resolve));
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    await exporter.shutdown();
    expect(await requestIds(dir)).toEqual(['real']);
    const said = stderr.mock.calls.map((c) => String(c[0])).join('');
    expect(said).toMatch(/REFUSED.*llm_audit\.action=content\.shred is an operation record; only the llm-audit tool that performs the operation writes it/);
    const metrics = await audit.metrics();
    const refused = metrics.scopeMetrics.flatMap((m) => m.metrics).find((m) => m.descriptor.name === 'llm_audit.ledger.refused_records');
    expect(refused?.dataPoints.filter((p) => p.attributes.trail === dir).map((p) => p.value)).toEqual([2]);
  });
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
