import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { otlpEndpointFromEnv, type OtlpEndpoint } from '../../src/export/endpoint-probe';
import { otlpTraceExporter } from '../../src/export/from-env';
import { OWNER_FILE, SpoolDirectory } from '../../src/export/spool-dir';
import { encodeSpoolFile, readSpoolFile } from '../../src/export/spool-file';
import { SpoolingSpanProcessor } from '../../src/export/spooling-span-processor';
import { SpoolTelemetry } from '../../src/export/telemetry';
import {
  ATTR_AUDIT_SPOOL_DROP_REASON,
  METRIC_AUDIT_SPOOL_DROPPED_SPANS,
  METRIC_AUDIT_SPOOL_FILES,
  METRIC_AUDIT_SPOOL_SIZE,
  METRIC_AUDIT_SPOOL_SPILLED_SPANS,
} from '../../src/semconv';
import { freePort, startOtlpReceiver } from '../support/otlp-receiver';
import { captureDiag, makeSpans } from './helpers';

// The SpoolingSpanProcessor in front of the real OTLP/HTTP exporter (built from the environment
// exactly as register builds it) and a real OTLP/HTTP receiver on loopback that is started only
// after the spans were produced: an endpoint that is down, then up.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The processor against http://127.0.0.1:<port> (nothing listening yet), and what it writes to. */
async function setup(
  options: { maxBytes?: number; batch?: number; queue?: number; port?: number; otlpTimeoutMs?: number; adoptEveryMillis?: number; probe?: boolean } = {},
) {
  const port = options.port ?? (await freePort());
  const saved = { ...process.env };
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  process.env.OTEL_EXPORTER_OTLP_TIMEOUT = String(options.otlpTimeoutMs ?? 300);
  const exporter = otlpTraceExporter('http/json');
  // What the processor hands the exporter, and how often it asks the endpoint (probe option).
  const exported: number[] = [];
  const exportSpans = exporter.export.bind(exporter);
  exporter.export = (spans, done) => {
    exported.push(spans.length);
    exportSpans(spans, done);
  };
  const probed = { asked: 0 };
  let endpoint: OtlpEndpoint | undefined;
  if (options.probe) {
    const real = otlpEndpointFromEnv('TRACES', 'http/json', 500)!;
    endpoint = {
      url: real.url,
      reachable: () => {
        probed.asked++;
        return real.reachable();
      },
    };
  }
  process.env = saved;
  const root = mkdtempSync(join(tmpdir(), 'spool-processor-'));
  const spool = new SpoolDirectory(root, options.maxBytes ?? 1 << 30);
  spool.open();
  const telemetry = new SpoolTelemetry(spool, 60_000);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  telemetry.attachMeter(meterProvider.getMeter('spool-test'));
  const processor = new SpoolingSpanProcessor({
    exporter,
    spool,
    telemetry,
    maxExportBatchSize: options.batch ?? 10,
    ...(options.queue ? { maxQueueSize: options.queue } : {}),
    scheduledDelayMillis: 20,
    exportTimeoutMillis: 2_000,
    shutdownTimeoutMillis: 2_000,
    backoff: { initialMs: 50, maxMs: 200 },
    ...(options.adoptEveryMillis ? { adoptEveryMillis: options.adoptEveryMillis } : {}),
    endpoint,
  });
  cleanups.push(() => processor.shutdown(), () => meterProvider.shutdown());
  const metric = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name)?.dataPoints ?? [];
  };
  return { port, root, spool, processor, telemetry, metric, exported, probed };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const requestIds = (otlp: Awaited<ReturnType<typeof startOtlpReceiver>>) => otlp.jsonSpans().map((s) => s.attributes['llm_audit.request_id'] as string);

describe('SpoolingSpanProcessor', () => {
  it('endpoint up: batches go straight to it and nothing is written to disk', async () => {
    const { port, root, processor } = await setup();
    const otlp = await startOtlpReceiver({ port });
    cleanups.push(() => otlp.close());
    for (const span of makeSpans(25)) processor.onEnd(span);
    await processor.forceFlush();
    expect(requestIds(otlp).sort()).toEqual(makeSpans(25).map((s) => s.attributes['llm_audit.request_id']).sort());
    expect(readdirSync(root)).toEqual([]);
  });

  it('endpoint down then up in the same process: every span arrives exactly once, in batch order, and the spool empties', async () => {
    const { port, root, spool, processor, metric } = await setup();
    const spans = makeSpans(95);
    for (const span of spans.slice(0, 60)) processor.onEnd(span);
    await until(() => processor.spooling && spool.files > 0, 'the first spill');
    for (const span of spans.slice(60)) processor.onEnd(span);
    await processor.forceFlush();
    // Down: all 95 are on disk, none in memory.
    expect(processor.spansInMemory).toBe(0);
    expect(spool.files).toBeGreaterThan(0);
    expect(spool.bytes).toBeGreaterThan(0);
    expect((await metric(METRIC_AUDIT_SPOOL_SPILLED_SPANS))[0]?.value).toBe(95);
    expect((await metric(METRIC_AUDIT_SPOOL_FILES))[0]?.value).toBe(spool.files);
    expect((await metric(METRIC_AUDIT_SPOOL_SIZE))[0]?.value).toBe(spool.bytes);

    const otlp = await startOtlpReceiver({ port });
    cleanups.push(() => otlp.close());
    await until(() => spool.files === 0 && !processor.spooling, 'the spool to drain');
    const arrived = requestIds(otlp);
    expect(arrived).toEqual(spans.map((s) => s.attributes['llm_audit.request_id'])); // each once, oldest first
    expect(readdirSync(spool.directory!).filter((n) => n.endsWith('.spool'))).toEqual([]);

    // Back to direct: new spans are sent without touching the disk.
    for (const span of makeSpans(3, 'after')) processor.onEnd(span);
    await processor.forceFlush();
    expect(requestIds(otlp).slice(95)).toEqual(['after-0', 'after-1', 'after-2']);
    expect((await metric(METRIC_AUDIT_SPOOL_SPILLED_SPANS))[0]?.value).toBe(95);
    await processor.shutdown();
    expect(readdirSync(root)).toEqual([]); // the process's empty subdirectory is removed
  });

  it('past LLM_AUDIT_SPOOL_MAX_BYTES: drops are counted in the metric and reported once through diag; the spans within the bound still arrive', async () => {
    const fileBytes = (await encodeSpoolFile(makeSpans(10))).length;
    // Room for 20 spans, not 30 (the encodings differ by a few bytes).
    const { port, spool, processor, metric } = await setup({ maxBytes: Math.floor(fileBytes * 2.5) });
    const diagCapture = captureDiag();
    cleanups.push(() => diagCapture.stop());
    const spans = makeSpans(50);
    for (const span of spans) processor.onEnd(span);
    await until(() => processor.spooling, 'the first failed export');
    await processor.forceFlush();
    expect(processor.droppedSpans).toBe(30);
    let onDisk = 0;
    for (const name of readdirSync(spool.directory!).filter((n) => n.endsWith('.spool'))) onDisk += (await readSpoolFile(join(spool.directory!, name))).spans.length;
    expect(onDisk).toBe(20);
    expect(spool.bytes).toBeLessThanOrEqual(spool.maxBytes);
    const dropped = await metric(METRIC_AUDIT_SPOOL_DROPPED_SPANS);
    expect(dropped.map((p) => [p.attributes[ATTR_AUDIT_SPOOL_DROP_REASON], p.value])).toEqual([['spool_full', 30]]);
    // Aggregated: the first drop at once, the rest summed (here at shutdown), never once per batch.
    await processor.shutdown();
    const drops = diagCapture.errors().filter((m) => m.includes('spool_full'));
    expect(drops.length).toBeLessThanOrEqual(2);
    expect(drops[0]).toMatch(/^otel-llm-audit spool: dropped 10 audit spans \(spool_full\): the spool holds \d+ bytes of its \d+ \(LLM_AUDIT_SPOOL_MAX_BYTES\)$/);
    expect(drops.map((m) => Number(/dropped (\d+)/.exec(m)![1])).reduce((a, b) => a + b, 0)).toBe(30);

    // The 20 spans within the bound are sent by the next process on this spool directory.
    const otlp = await startOtlpReceiver({ port });
    cleanups.push(() => otlp.close());
    const next = new SpoolDirectory(spool.root, 1 << 30);
    next.open();
    expect(next.files).toBeGreaterThan(0);
    const again = await setupOn(next, port);
    await until(() => next.files === 0, 'the next process to drain');
    expect(requestIds(otlp)).toEqual(spans.slice(0, 20).map((s) => s.attributes['llm_audit.request_id']));
    await again.shutdown();
  });
});

/** A processor for an already opened spool directory, against the endpoint on `port`. */
async function setupOn(spool: SpoolDirectory, port: number): Promise<SpoolingSpanProcessor> {
  const saved = { ...process.env };
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  const exporter = otlpTraceExporter('http/json');
  process.env = saved;
  const processor = new SpoolingSpanProcessor({ exporter, spool, telemetry: new SpoolTelemetry(spool), backoff: { initialMs: 50 } });
  cleanups.push(() => processor.shutdown());
  return processor;
}

describe('an endpoint that hangs, a process that dies', () => {
  it('a flush does not wait past its budget for an endpoint that accepts connections and never answers: the batch is spooled', async () => {
    const hung = createServer(() => undefined); // reads nothing, answers nothing
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const sockets = new Set<Socket>();
    hung.on('connection', (socket) => sockets.add(socket));
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => hung.close(() => resolve()));
    });
    // The exporter would wait 10 s; the flush budget is half of the 2 s shutdown timeout.
    const { spool, processor } = await setup({ port: (hung.address() as AddressInfo).port, otlpTimeoutMs: 10_000 });
    for (const span of makeSpans(5)) processor.onEnd(span);
    const started = Date.now();
    await processor.forceFlush();
    expect(Date.now() - started).toBeLessThan(1_900);
    expect(sockets.size).toBeGreaterThan(0); // the export did reach the endpoint
    expect(processor.spooling).toBe(true);
    let onDisk = 0;
    for (const name of readdirSync(spool.directory!).filter((n) => n.endsWith('.spool'))) onDisk += (await readSpoolFile(join(spool.directory!, name))).spans.length;
    expect(onDisk).toBe(5);
  });

  it('a flush with nothing listening at the endpoint asks once and spools at once: the exporter never gets the batch, so none of its retries can hold the process', async () => {
    // An OTLP timeout far longer than the flush budget: had the batch gone to the exporter, the
    // flush would have waited for the budget and the exporter kept retrying afterwards.
    const { root, processor, exported, probed } = await setup({ probe: true, otlpTimeoutMs: 60_000 });
    const diagCapture = captureDiag();
    cleanups.push(() => diagCapture.stop());
    const spans = makeSpans(7);
    for (const span of spans) processor.onEnd(span);
    await processor.forceFlush();
    expect(exported).toEqual([]);
    expect(probed.asked).toBe(1);
    expect(processor.spooling).toBe(true);
    expect(processor.spansInMemory).toBe(0);
    const onDisk: string[] = [];
    for (const name of readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.spool'))) {
      for (const span of (await readSpoolFile(join(root, name))).spans) onDisk.push(span.attributes['llm_audit.request_id'] as string);
    }
    expect(onDisk.sort()).toEqual(spans.map((s) => s.attributes['llm_audit.request_id']).sort());
    expect(diagCapture.messages.some((m) => m.level === 'warn' && m.text.includes('does not take spans'))).toBe(true);
  });

  it('with the endpoint up, the first flush asks it once; flushes after a successful export do not ask again', async () => {
    const { port, root, processor, exported, probed } = await setup({ probe: true });
    const otlp = await startOtlpReceiver({ port });
    cleanups.push(() => otlp.close());
    for (const span of makeSpans(4, 'first')) processor.onEnd(span);
    await processor.forceFlush();
    expect(probed.asked).toBe(1);
    for (const span of makeSpans(3, 'second')) processor.onEnd(span);
    await processor.forceFlush();
    expect(probed.asked).toBe(1);
    expect(exported).toEqual([4, 3]);
    expect(requestIds(otlp)).toEqual(['first-0', 'first-1', 'first-2', 'first-3', 'second-0', 'second-1', 'second-2']);
    expect(readdirSync(root)).toEqual([]);
  });

  it('files left by a process that died while this one runs are adopted and sent', async () => {
    const port = await freePort();
    const otlp = await startOtlpReceiver({ port });
    cleanups.push(() => otlp.close());
    const { root } = await setup({ port, adoptEveryMillis: 50 });
    // Written as by a process that is gone now (its pid is dead).
    const pid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const dir = join(root, `proc-${pid}-1700000000000`);
    const bytes = await encodeSpoolFile(makeSpans(3, 'orphan'));
    mkdirSync(join(root, 'staging'));
    writeFileSync(join(root, 'staging', `001700000000000-${pid}-0000000001.spool`), bytes);
    writeFileSync(join(root, 'staging', OWNER_FILE), JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z' }));
    renameSync(join(root, 'staging'), dir); // appears whole
    await until(() => requestIds(otlp).length === 3, 'the orphaned spans to arrive');
    expect(requestIds(otlp)).toEqual(['orphan-0', 'orphan-1', 'orphan-2']);
    await until(() => !existsSync(dir), 'the dead process\'s directory to be removed');
  });
});

describe('a disk that refuses the write', () => {
  it('the batch is counted as write_failed and reported; the process goes on', async () => {
    const { spool, processor, metric } = await setup();
    const diagCapture = captureDiag();
    cleanups.push(() => diagCapture.stop());
    for (const span of makeSpans(10, 'first')) processor.onEnd(span);
    await processor.forceFlush(); // the endpoint is down: these are on disk
    expect(spool.files).toBeGreaterThan(0);
    // The process's spool directory is replaced by a file: every later write fails (ENOTDIR).
    const dir = spool.directory!;
    rmSync(dir, { recursive: true });
    writeFileSync(dir, 'not a directory');
    for (const span of makeSpans(10, 'second')) processor.onEnd(span);
    await processor.forceFlush();
    expect(processor.droppedSpans).toBe(10);
    const dropped = await metric(METRIC_AUDIT_SPOOL_DROPPED_SPANS);
    expect(dropped.map((p) => [p.attributes[ATTR_AUDIT_SPOOL_DROP_REASON], p.value])).toEqual([['write_failed', 10]]);
    expect(diagCapture.errors().join('\n')).toMatch(/dropped 10 audit spans \(write_failed\): cannot write to .*ENOTDIR/);
  });
});

describe('memory bound', () => {
  it('with the endpoint down, spans beyond maxQueueSize spill to disk instead of piling up in memory; none is dropped', async () => {
    const { spool, processor } = await setup({ batch: 50, queue: 200 });
    // 10× the queue, produced about as fast as a busy app's LLM calls end (10 spans per 2 ms).
    const spans = makeSpans(2_000);
    let peak = 0;
    for (let i = 0; i < spans.length; i++) {
      processor.onEnd(spans[i]!);
      peak = Math.max(peak, processor.spansInMemory);
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await processor.forceFlush();
    expect(processor.droppedSpans).toBe(0);
    expect(peak).toBeLessThanOrEqual(600); // buffer + queued for the writer + being written
    expect(processor.spansInMemory).toBe(0);
    expect(spool.files).toBeGreaterThan(0);
  });
});
