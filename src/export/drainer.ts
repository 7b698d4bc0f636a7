/**
 * Sends the spool's files, oldest first, through the OTLP exporter, and deletes each file only
 * once its export succeeded. While the endpoint fails, it waits between attempts with a capped
 * exponential backoff (with jitter, so that many processes restarting together do not all knock
 * at the same instant), and it is the spool's only prober: the processor keeps writing new batches
 * to the spool while files wait, so the first success after an outage is a drain success.
 *
 * A file that cannot be read back (truncated, corrupt, unknown version) is reported once through
 * diag.error and moved to the quarantine directory, never deleted and never retried forever.
 */
import { diag } from '@opentelemetry/api';
import type { tracing } from '@opentelemetry/sdk-node';
import type { SpoolDirectory } from './spool-dir';
import { readSpoolFile, SpoolFileError } from './spool-file';

export interface BackoffOptions {
  /** First wait after a failed export (default 1 s). */
  initialMs?: number;
  /** Longest wait between attempts (default 60 s). */
  maxMs?: number;
}

export type SendSpans = (spans: tracing.ReadableSpan[]) => Promise<boolean>;

export class Drainer {
  /** True from a failed export until the next successful one: the endpoint is taken to be down. */
  failing = false;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextBackoffMs: number;
  private stopped = false;
  private readonly initialMs: number;
  private readonly maxMs: number;
  /** Spans already sent from a file whose sending was interrupted by a failure (this process only). */
  private readonly progress = new Map<string, number>();

  constructor(
    private readonly spool: SpoolDirectory,
    private readonly send: SendSpans,
    /** False while something else must go first (a direct export whose batch would sort earlier). */
    private readonly mayRun: () => boolean,
    backoff: BackoffOptions = {},
    /** Called after each file sent or set aside, so the processor can refill or switch back to direct. */
    private readonly onProgress: () => void = () => undefined,
    /** Spans per export (OTEL_BSP_MAX_EXPORT_BATCH_SIZE): what the endpoint is known to accept in one request. */
    private readonly sliceSize = 512,
  ) {
    this.initialMs = backoff.initialMs ?? 1_000;
    this.maxMs = Math.max(backoff.maxMs ?? 60_000, this.initialMs);
    this.nextBackoffMs = this.initialMs;
  }

  /** Whether an attempt is in progress or scheduled. */
  get busy(): boolean {
    return this.running !== undefined || this.timer !== undefined;
  }

  /** An export failed outside the drainer (a direct batch): back off before the first drain attempt. */
  noteFailure(): void {
    if (this.failing) return;
    this.setFailing(true);
    this.schedule();
  }

  /** Says when the endpoint goes down and comes back (once each, not per attempt). */
  private setFailing(failing: boolean): void {
    if (failing === this.failing) return;
    this.failing = failing;
    if (failing) diag.warn(`otel-llm-audit spool: the OTLP endpoint does not take spans; they are kept in ${this.spool.root} until it does`);
    else diag.info(`otel-llm-audit spool: the OTLP endpoint takes spans again; sending the ${this.spool.files} spool files`);
  }

  /** Starts draining now, unless a drain is running, a backoff is pending or nothing waits. */
  kick(): void {
    if (this.stopped || this.running || this.timer || this.spool.files === 0 || !this.mayRun()) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when the attempt in progress (if any) is over. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** No further attempts (shutdown); one in progress finishes on its own. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async drain(): Promise<void> {
    for (let file = this.spool.oldest(); file && !this.stopped && this.mayRun(); file = this.spool.oldest()) {
      let spans: tracing.ReadableSpan[];
      try {
        ({ spans } = await readSpoolFile(file.path));
      } catch (error) {
        await this.setAside(file.name, error);
        this.onProgress();
        continue;
      }
      // A file may hold several batches (spool writes coalesce under load): it is sent one
      // export-sized slice at a time, and a retry resumes after the slices already sent.
      let sent = this.progress.get(file.name) ?? 0;
      while (sent < spans.length) {
        if (!(await this.send(spans.slice(sent, sent + this.sliceSize)))) {
          this.progress.set(file.name, sent);
          this.setFailing(true);
          this.schedule();
          return;
        }
        sent += this.sliceSize;
        this.setFailing(false);
        this.nextBackoffMs = this.initialMs;
      }
      this.progress.delete(file.name);
      try {
        await this.spool.remove(file.name);
      } catch (error) {
        // Sent but not deletable: it would be sent again by every later attempt. Stop and say so.
        diag.error(`otel-llm-audit spool: cannot delete ${file.path} after sending it: ${(error as Error).message}`);
        this.stop();
        return;
      }
      this.onProgress();
    }
  }

  private async setAside(name: string, error: unknown): Promise<void> {
    const why = error instanceof SpoolFileError ? `${error.problem}: ${error.message}` : (error as Error).message;
    try {
      const target = await this.spool.quarantine(name);
      diag.error(`otel-llm-audit spool: ${name} cannot be read back (${why}); moved to ${target}`);
    } catch (moveError) {
      diag.error(`otel-llm-audit spool: ${name} cannot be read back (${why}) nor moved aside (${(moveError as Error).message}); draining stops`);
      this.stop();
    }
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const wait = this.nextBackoffMs * (0.8 + Math.random() * 0.4);
    this.nextBackoffMs = Math.min(this.nextBackoffMs * 2, this.maxMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, wait);
    // The spool is on disk: a pending retry is no reason to keep the process alive.
    this.timer.unref();
  }
}
