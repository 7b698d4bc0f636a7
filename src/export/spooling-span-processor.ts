/**
 * A span processor for the OTLP path that batches like the SDK's BatchSpanProcessor (same
 * OTEL_BSP_* settings, same exporter) but never drops a batch it could keep: a batch the endpoint
 * does not take, or spans beyond the in-memory queue's bound, go to the durable spool on disk
 * (spool-dir.ts), and the drainer (drainer.ts) sends them when the endpoint is back. Spans are
 * dropped only when the spool is at LLM_AUDIT_SPOOL_MAX_BYTES, and those drops are counted and
 * reported (telemetry.ts).
 *
 * Two modes:
 * - direct: nothing waits in the spool; batches go to the exporter as the BatchSpanProcessor
 *   would send them (one export at a time);
 * - spooling: files wait, or the last export failed; every new batch is written to the spool
 *   behind them, so spans are sent in the order they were batched and memory stays flat however
 *   long the outage. The drainer empties the spool, and the processor goes back to direct.
 *
 * Memory: at most maxQueueSize spans in the batching buffer, at most maxQueueSize queued for the
 * spool writer and at most maxQueueSize in the write under way. Past that (a disk slower than the
 * span rate), spans are dropped as `queue_full` rather than letting the heap grow.
 *
 * Delivery is at-least-once: an export that times out on our side may still have reached the
 * endpoint, and its batch is spooled and sent again (the ledger server stores each span once).
 */
import { context, diag, TraceFlags, type Context } from '@opentelemetry/api';
import { ExportResultCode, suppressTracing } from '@opentelemetry/core';
import type { tracing } from '@opentelemetry/sdk-node';
import { Drainer, type BackoffOptions } from './drainer';
import type { OtlpEndpoint } from './endpoint-probe';
import type { SpoolDirectory } from './spool-dir';
import { encodeSpoolFile, encodeSpoolFileSync } from './spool-file';
import type { SpoolTelemetry } from './telemetry';
import { atProcessExit } from '../util/exit-hook';

type ReadableSpan = tracing.ReadableSpan;
type Span = tracing.Span;
type SpanExporter = tracing.SpanExporter;
/** Spans cut from the buffer together, with the spool name reserved for them at the cut. */
interface Batch {
  spans: ReadableSpan[];
  name: string;
}
interface DirectExport {
  batch: Batch;
  /** Given up on by a flush deadline: its batch is already in the spool. */
  abandoned: boolean;
  done: Promise<void>;
}

export interface SpoolingSpanProcessorOptions {
  exporter: SpanExporter;
  spool: SpoolDirectory;
  telemetry: SpoolTelemetry;
  /** OTEL_BSP_MAX_QUEUE_SIZE: spans held in memory before they spill to the spool (default 2048). */
  maxQueueSize?: number;
  /** OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per export and per spool file (default 512). */
  maxExportBatchSize?: number;
  /** OTEL_BSP_SCHEDULE_DELAY: how long a partial batch waits for more spans (default 5000 ms). */
  scheduledDelayMillis?: number;
  /** OTEL_BSP_EXPORT_TIMEOUT: how long one export may take before its batch is spooled (default 30000 ms). */
  exportTimeoutMillis?: number;
  /**
   * LLM_AUDIT_SHUTDOWN_TIMEOUT_MS: forceFlush/shutdown try the endpoint for at most half of it,
   * then write what is left to the spool, so the spans are on disk before the process is ended.
   */
  shutdownTimeoutMillis?: number;
  backoff?: BackoffOptions;
  /**
   * The exporter's endpoint, asked before a flush hands it spans when no export has succeeded
   * lately: when nobody listens there, the spans go to the spool at once instead of into the
   * exporter's retries, whose timers would hold the process for up to OTEL_EXPORTER_OTLP_TIMEOUT.
   */
  endpoint?: OtlpEndpoint;
  /** How often to look for spool files left by processes that ended meanwhile (default 60 s). */
  adoptEveryMillis?: number;
}

export class SpoolingSpanProcessor {
  private buffer: ReadableSpan[] = [];
  /** Batches of the spool write under way that are not durable yet, and the file being written now. */
  private writing: Batch[] = [];
  private writingFile: { name: string; batches: Batch[] } | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The direct export under way (one at a time, as in the BatchSpanProcessor). */
  private inFlight: DirectExport | undefined;
  /** Batches waiting for the spool writer, and the writer while it runs. */
  private toWrite: Batch[] = [];
  private writer: Promise<void> | undefined;
  /** Spans in toWrite (at most maxQueueSize) and spans in toWrite or being written (at most twice that). */
  private queuedSpans = 0;
  private writingSpans = 0;
  private shuttingDown = false;
  /** When an export last succeeded (direct or drain); -Infinity before the first. */
  private lastSuccessAt = -Infinity;
  private readonly adoptTimer: NodeJS.Timeout;
  private shutdownDone: Promise<void> | undefined;
  private readonly cancelExitSpill: () => void;
  private readonly drainer: Drainer;
  private readonly maxQueueSize: number;
  private readonly maxExportBatchSize: number;
  private readonly scheduledDelayMillis: number;
  private readonly exportTimeoutMillis: number;
  private readonly flushTimeoutMillis: number;
  private readonly exporter: SpanExporter;
  private readonly spool: SpoolDirectory;
  private readonly telemetry: SpoolTelemetry;
  private readonly endpoint: OtlpEndpoint | undefined;

  constructor(options: SpoolingSpanProcessorOptions) {
    this.exporter = options.exporter;
    this.spool = options.spool;
    this.telemetry = options.telemetry;
    this.endpoint = options.endpoint;
    this.maxQueueSize = options.maxQueueSize ?? 2048;
    this.maxExportBatchSize = Math.min(options.maxExportBatchSize ?? 512, this.maxQueueSize);
    this.scheduledDelayMillis = options.scheduledDelayMillis ?? 5000;
    this.exportTimeoutMillis = options.exportTimeoutMillis ?? 30_000;
    this.flushTimeoutMillis = Math.min(this.exportTimeoutMillis, Math.floor((options.shutdownTimeoutMillis ?? 10_000) / 2));
    this.drainer = new Drainer(
      this.spool,
      (spans) => this.send(spans, this.exportTimeoutMillis),
      () => this.inFlight === undefined,
      options.backoff,
      () => this.schedule(),
      this.maxExportBatchSize,
    );
    // process.exit() runs no flush: what is in memory then goes to the spool synchronously.
    this.cancelExitSpill = atProcessExit(() => this.spillOnExit());
    // Files adopted from an earlier process are sent as soon as the SDK is up.
    setImmediate(() => this.drainer.kick()).unref();
    // A process that dies while this one runs leaves files nobody would send until the next start.
    this.adoptTimer = setInterval(() => {
      try {
        if (this.spool.adoptOrphans() > 0) this.drainer.kick();
      } catch (error) {
        diag.warn(`otel-llm-audit spool: looking for files left by ended processes: ${(error as Error).message}`);
      }
    }, options.adoptEveryMillis ?? 60_000);
    this.adoptTimer.unref();
  }

  /** Spans dropped so far (spool full, queue full or write failures). */
  get droppedSpans(): number {
    return this.telemetry.dropCount;
  }

  /** Spans held in memory: batching, queued for the spool writer, being written (each at most maxQueueSize). */
  get spansInMemory(): number {
    return this.buffer.length + this.writingSpans;
  }

  /** True while batches go to the spool rather than straight to the exporter. */
  get spooling(): boolean {
    return this.spool.files > 0 || this.writingSpans > 0 || this.drainer.failing;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.shuttingDown || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.buffer.length >= this.maxQueueSize) {
      // The endpoint is slow (an export in flight) or the spool writes lag: keep memory bounded by
      // moving what is queued to the spool rather than dropping the new span.
      while (this.buffer.length > 0) this.toSpool(this.cut());
    }
    this.buffer.push(span);
    this.schedule();
  }

  forceFlush(): Promise<void> {
    return this.shutdownDone ?? this.flushAll();
  }

  shutdown(): Promise<void> {
    this.shutdownDone ??= this.doShutdown();
    return this.shutdownDone;
  }

  private async doShutdown(): Promise<void> {
    // register's exit path runs forceFlush (up to flushTimeoutMillis) and then this; the drain
    // below gets at most half as much again, which keeps the whole within the shutdown timeout.
    const started = Date.now();
    const remaining = (): number => Math.max(0, Math.floor(this.flushTimeoutMillis / 2) - (Date.now() - started));
    await this.flushAll();
    this.shuttingDown = true;
    clearInterval(this.adoptTimer);
    // With the endpoint up, a short-lived process sends what waits in the spool (its own spills and
    // adopted files) before it ends, within the same budget. With the endpoint down it does not
    // wait for a backoff: the files are on disk and the next process sends them.
    if (!this.drainer.failing) {
      this.drainer.kick();
      await withDeadline(this.drainer.idle(), remaining());
    }
    this.drainer.stop();
    // A drain export still in flight against a working endpoint may finish within the budget (and
    // delete its file rather than leave it to be sent twice). Against a failing one it would only
    // be retrying: its file is on disk (deleted only after a success), so there is no wait.
    if (!this.drainer.failing) await withDeadline(this.drainer.idle(), remaining());
    this.telemetry.report();
    try {
      this.spool.close();
    } catch (error) {
      diag.error(`otel-llm-audit spool: releasing ${this.spool.directory}: ${(error as Error).message}`);
    }
    this.cancelExitSpill();
    // The exporter's shutdown waits for its requests in flight, retries included; bounded too.
    await withDeadline(this.exporter.shutdown(), 1_000);
  }

  /**
   * The last resort when the process ends without a shutdown (`process.exit()` right after a
   * call, an uncaught exception): on the `exit` event, synchronously, every span still in memory
   * (batching, queued for the spool, being written, or in an export whose outcome is unknown) is
   * written to the spool, for the next process to send. An export that did in fact succeed is then
   * sent twice, which is at-least-once as everywhere else in the spool. Past the byte bound the
   * spans are counted as dropped; any other failure is reported, never thrown (this runs while the
   * process exits).
   */
  spillOnExit(): void {
    this.cancelExitSpill();
    clearTimeout(this.timer);
    clearInterval(this.adoptTimer);
    const batches: Batch[] = [];
    if (this.inFlight !== undefined && !this.inFlight.abandoned) batches.push(this.inFlight.batch);
    // The file being written may already be in place (renamed, its directory not yet synced).
    const file = this.writingFile;
    const durable = file !== undefined && this.spool.holds(file.name) ? file.batches : [];
    batches.push(...this.writing.filter((batch) => !durable.includes(batch)), ...this.toWrite);
    while (this.buffer.length > 0) batches.push(this.cut());
    let spilled = 0;
    for (const batch of batches) {
      try {
        const bytes = encodeSpoolFileSync(batch.spans);
        if (!this.spool.hasRoomFor(bytes.length)) {
          this.dropSpoolFull(batch.spans.length);
          continue;
        }
        // A fresh name: the asynchronous write of this batch may hold its temporary file.
        this.spool.writeSync(this.spool.reserveName(), bytes);
        this.telemetry.recordSpill(batch.spans.length);
        spilled += batch.spans.length;
      } catch (error) {
        this.telemetry.recordDrop(batch.spans.length, 'write_failed', `cannot write to ${this.spool.directory ?? this.spool.root} at exit: ${(error as Error).message}`);
      }
    }
    // Said on stderr, not only through diag: an application that calls process.exit() should learn
    // that its last calls reach the collector only when a later process starts.
    if (spilled > 0) {
      process.stderr.write(
        `otel-llm-audit: process.exit() before the last ${spilled} span(s) were sent; they are in the spool ${this.spool.directory ?? this.spool.root} and the next process sends them. Await shutdownAudit() before process.exit() to send them now.\n`,
      );
    }
    this.telemetry.report();
    try {
      this.spool.close();
    } catch {
      // The files are still adopted once this pid is seen dead.
    }
  }

  /**
   * Sends or spools whatever is in memory; resolves once every span is with the endpoint or on disk,
   * within flushTimeoutMillis: a direct export still running at the deadline is given up on, and
   * its batch is spooled (it may then arrive twice, if that export ends up succeeding).
   */
  private async flushAll(): Promise<void> {
    const deadline = Date.now() + this.flushTimeoutMillis;
    const left = (): number => Math.max(1, deadline - Date.now());
    clearTimeout(this.timer);
    this.timer = undefined;
    // (A direct export asks the endpoint first, startDirect; one still running from before the
    // flush is not waited for when nobody listens any more: its batch goes to the spool now.)
    if (this.inFlight && !this.spooling && !(await this.endpointAnswers())) {
      this.drainer.noteFailure();
      await this.settleInFlight(1);
    }
    while (this.buffer.length > 0) {
      if (this.spooling) {
        this.toSpool(this.cut());
      } else if (this.inFlight) {
        await this.settleInFlight(left());
      } else {
        this.startDirect(this.cut(), left());
      }
    }
    if (this.inFlight) await this.settleInFlight(left());
    while (this.writer) await this.writer;
  }

  /**
   * False when the endpoint is known not to listen. Asked only when no export has succeeded for
   * RECENT_SUCCESS_MS (a short-lived process has had none): a process whose exports go through
   * does not pay a connect per flush.
   */
  private async endpointAnswers(): Promise<boolean> {
    if (this.endpoint === undefined || Date.now() - this.lastSuccessAt < RECENT_SUCCESS_MS) return true;
    if (await this.endpoint.reachable()) return true;
    diag.debug(`otel-llm-audit spool: nothing listens at ${this.endpoint.url}; flushing to the spool`);
    return false;
  }

  /** Waits for the direct export in flight up to `ms`; past that, spools its batch. */
  private async settleInFlight(ms: number): Promise<void> {
    const flight = this.inFlight!;
    await withDeadline(flight.done, ms);
    if (this.inFlight !== flight) return;
    flight.abandoned = true;
    this.inFlight = undefined;
    this.drainer.noteFailure();
    this.toSpool(flight.batch);
  }

  /** Ships full batches now and starts the timer for a partial one. */
  private schedule(): void {
    if (this.shuttingDown) return;
    while (this.buffer.length >= this.maxExportBatchSize) {
      if (this.spooling) this.toSpool(this.cut());
      else if (!this.inFlight) this.startDirect(this.cut(), this.exportTimeoutMillis);
      else return; // waits for the direct export in flight (onEnd spills past maxQueueSize)
    }
    if (this.buffer.length > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.buffer.length === 0) return;
        if (this.spooling) this.toSpool(this.cut());
        else if (!this.inFlight) this.startDirect(this.cut(), this.exportTimeoutMillis);
        this.schedule();
      }, this.scheduledDelayMillis);
      this.timer.unref();
    }
  }

  private cut(): Batch {
    const spans = this.buffer.length <= this.maxExportBatchSize ? this.buffer : this.buffer.slice(0, this.maxExportBatchSize);
    this.buffer = this.buffer.length <= this.maxExportBatchSize ? [] : this.buffer.slice(this.maxExportBatchSize);
    return { spans, name: this.spool.reserveName() };
  }

  private startDirect(batch: Batch, timeoutMs: number): void {
    const flight: DirectExport = { batch, abandoned: false, done: Promise.resolve() };
    // Asked before the exporter is: once called, an OTLP exporter retries a refused connection
    // with timers that hold the event loop for its whole timeout, so a process that ends while the
    // collector is down would wait for them (endpointAnswers asks only while nothing got through).
    flight.done = this.endpointAnswers().then((answers) => (answers ? this.send(batch.spans, timeoutMs) : false)).then((ok) => {
      if (this.inFlight === flight) this.inFlight = undefined;
      if (!ok) {
        this.drainer.noteFailure();
        // An abandoned export's batch was spooled when it was given up on.
        if (!flight.abandoned) this.toSpool(batch);
      }
      this.drainer.kick();
      this.schedule();
    });
    this.inFlight = flight;
  }

  /**
   * Queues a batch's durable write. Batches that queue up while a write is under way are written
   * together as one file at the next write (named after the first, which keeps the order): one
   * fsync for many batches, so a burst of spans costs fewer disk round trips and the writer keeps
   * up with the app. Past maxQueueSize spans waiting for the write after the one under way, spans
   * are dropped (`queue_full`): the disk is slower than the span rate, and memory must stay bounded.
   */
  private toSpool(batch: Batch): void {
    const count = batch.spans.length;
    if (count === 0) return;
    if (this.queuedSpans + count > this.maxQueueSize && this.queuedSpans > 0) {
      this.telemetry.recordDrop(count, 'queue_full', `spool writes lag behind (${this.writingSpans} spans waiting for the disk)`);
      return;
    }
    this.writingSpans += count;
    this.queuedSpans += count;
    this.toWrite.push(batch);
    this.writer ??= this.writeQueued();
  }

  private async writeQueued(): Promise<void> {
    try {
      while (this.toWrite.length > 0) {
        const batches = this.toWrite;
        this.toWrite = [];
        this.queuedSpans = 0;
        await this.writeBatches(batches);
      }
    } finally {
      // Cleared in the same synchronous step as the loop's last check of toWrite, so a batch queued
      // after that check finds no writer and starts one (clearing it in a `.finally()` callback, a
      // tick later, would leave such a batch stranded).
      this.writer = undefined;
    }
  }

  /** One file for all the batches if it fits under the bound, else batch by batch. */
  private async writeBatches(batches: Batch[]): Promise<void> {
    const spans = batches.length === 1 ? batches[0]!.spans : batches.flatMap((b) => b.spans);
    // The smallest reserved name: the file sorts where its oldest batch belongs.
    const name = batches.reduce((min, b) => (b.name < min ? b.name : min), batches[0]!.name);
    // Spans accounted for (written or dropped), so that a failure counts only the others.
    let settled = 0;
    this.writing = [...batches];
    try {
      await resourcesSettled(spans);
      const bytes = await encodeSpoolFile(spans);
      if (this.spool.hasRoomFor(bytes.length)) {
        this.writingFile = { name, batches };
        await this.spool.write(name, bytes);
        this.writing = [];
        this.telemetry.recordSpill(spans.length);
      } else if (batches.length > 1) {
        // Near the bound, one batch at a time: as many as fit are kept, only the rest dropped.
        for (const batch of batches) {
          await this.writeOne(batch);
          settled += batch.spans.length;
        }
      } else {
        this.dropSpoolFull(spans.length);
      }
    } catch (error) {
      const lost = spans.length - settled;
      this.telemetry.recordDrop(lost, 'write_failed', `cannot write to ${this.spool.directory ?? this.spool.root}: ${(error as Error).message}`);
    } finally {
      this.writing = [];
      this.writingFile = undefined;
      this.writingSpans -= spans.length;
      this.drainer.kick();
    }
  }

  private async writeOne(batch: Batch): Promise<void> {
    const bytes = await encodeSpoolFile(batch.spans);
    if (this.spool.hasRoomFor(bytes.length)) {
      this.writingFile = { name: batch.name, batches: [batch] };
      await this.spool.write(batch.name, bytes);
      this.telemetry.recordSpill(batch.spans.length);
    } else {
      this.dropSpoolFull(batch.spans.length);
    }
    // Settled either way: an exit from here on does not write it again (nor count it twice).
    this.writing = this.writing.filter((b) => b !== batch);
  }

  private dropSpoolFull(count: number): void {
    this.telemetry.recordDrop(count, 'spool_full', `the spool holds ${this.spool.bytes} bytes of its ${this.spool.maxBytes} (LLM_AUDIT_SPOOL_MAX_BYTES)`);
  }

  /** One export, resolved true on success, false on failure or after timeoutMs. */
  private async send(spans: ReadableSpan[], timeoutMs: number): Promise<boolean> {
    await resourcesSettled(spans);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        diag.warn(`otel-llm-audit spool: OTLP export of ${spans.length} spans took longer than ${timeoutMs} ms`);
        resolve(false);
      }, timeoutMs);
      // As the BatchSpanProcessor does: the exporter's own HTTP calls must not make spans.
      context.with(suppressTracing(context.active()), () => {
        try {
          this.exporter.export(spans, (result) => {
            clearTimeout(timer);
            if (result.code === ExportResultCode.SUCCESS) this.lastSuccessAt = Date.now();
            else diag.debug(`otel-llm-audit spool: OTLP export failed: ${result.error?.message ?? 'unknown error'}`);
            resolve(result.code === ExportResultCode.SUCCESS);
          });
        } catch (error) {
          clearTimeout(timer);
          diag.debug(`otel-llm-audit spool: OTLP export threw: ${(error as Error).message}`);
          resolve(false);
        }
      });
    });
  }
}

/** An export this recent vouches for the endpoint at a flush (see endpointAnswers). */
const RECENT_SUCCESS_MS = 30_000;

/** Waits for resource attributes still being detected (host.id...), as the BatchSpanProcessor does before exporting. */
async function resourcesSettled(spans: readonly ReadableSpan[]): Promise<void> {
  const pending = new Set<Promise<void>>();
  for (const span of spans) {
    if (span.resource.asyncAttributesPending && span.resource.waitForAsyncAttributes) pending.add(span.resource.waitForAsyncAttributes());
  }
  if (pending.size > 0) await Promise.all(pending);
}

function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
