/**
 * What the spool tells the operator: metrics (dropped and spilled spans, files and bytes waiting)
 * and diag messages about drops.
 *
 * Drops are reported through diag.error, but aggregated: the first drop of a quiet period is
 * reported at once, later ones are summed and reported at most once per interval (and at
 * shutdown). A spool that is full during a long outage would otherwise log once per span, which is
 * a second outage (of the log pipeline) on top of the first.
 */
import { diag, type Counter, type Meter } from '@opentelemetry/api';
import {
  ATTR_AUDIT_SPOOL_DROP_REASON,
  METRIC_AUDIT_SPOOL_DROPPED_SPANS,
  METRIC_AUDIT_SPOOL_FILES,
  METRIC_AUDIT_SPOOL_SIZE,
  METRIC_AUDIT_SPOOL_SPILLED_SPANS,
} from '../semconv';

export type DropReason = 'spool_full' | 'queue_full' | 'write_failed';

export interface SpoolGaugeSource {
  readonly files: number;
  readonly bytes: number;
}

export const DROP_REPORT_INTERVAL_MS = 10_000;

export class SpoolTelemetry {
  private dropped: Counter | undefined;
  private spilled: Counter | undefined;
  /** Counts made before a meter was attached (added to the counters when it is). */
  private early = { spilled: 0, dropped: new Map<DropReason, number>() };
  /** Drops since the last diag report, by reason, with the last detail seen. */
  private unreported = new Map<DropReason, { spans: number; detail: string }>();
  private lastReportAt = -Infinity;
  private reportTimer: NodeJS.Timeout | undefined;
  private totalDropped = 0;

  constructor(
    private readonly gauges: SpoolGaugeSource,
    private readonly reportIntervalMs = DROP_REPORT_INTERVAL_MS,
  ) {}

  /** Spans dropped so far by this process (for tests and the benchmark). */
  get dropCount(): number {
    return this.totalDropped;
  }

  /**
   * Creates the instruments. Called once the SDK has installed its meter provider (instruments
   * made earlier would come from the no-op meter and record nothing).
   */
  attachMeter(meter: Meter): void {
    if (this.dropped) return;
    this.dropped = meter.createCounter(METRIC_AUDIT_SPOOL_DROPPED_SPANS, {
      description: 'Audit spans dropped because the local OTLP spool was full',
      unit: '{span}',
    });
    this.spilled = meter.createCounter(METRIC_AUDIT_SPOOL_SPILLED_SPANS, {
      description: 'Audit spans written to the local OTLP spool because the endpoint could not take them',
      unit: '{span}',
    });
    meter
      .createObservableGauge(METRIC_AUDIT_SPOOL_FILES, { description: 'Spool files waiting to be sent', unit: '{file}' })
      .addCallback((result) => result.observe(this.gauges.files));
    meter
      .createObservableGauge(METRIC_AUDIT_SPOOL_SIZE, { description: 'Bytes of spool files waiting to be sent', unit: 'By' })
      .addCallback((result) => result.observe(this.gauges.bytes));
    if (this.early.spilled > 0) this.spilled.add(this.early.spilled);
    for (const [reason, spans] of this.early.dropped) this.dropped.add(spans, { [ATTR_AUDIT_SPOOL_DROP_REASON]: reason });
    this.early = { spilled: 0, dropped: new Map() };
  }

  recordSpill(count: number): void {
    if (this.spilled) this.spilled.add(count);
    else this.early.spilled += count;
  }

  recordDrop(count: number, reason: DropReason, detail: string): void {
    this.totalDropped += count;
    if (this.dropped) this.dropped.add(count, { [ATTR_AUDIT_SPOOL_DROP_REASON]: reason });
    else this.early.dropped.set(reason, (this.early.dropped.get(reason) ?? 0) + count);
    const pending = this.unreported.get(reason);
    this.unreported.set(reason, { spans: (pending?.spans ?? 0) + count, detail });
    const now = Date.now();
    if (now - this.lastReportAt >= this.reportIntervalMs) {
      this.report();
    } else if (!this.reportTimer) {
      this.reportTimer = setTimeout(() => this.report(), this.lastReportAt + this.reportIntervalMs - now);
      this.reportTimer.unref();
    }
  }

  /** Reports the drops not yet reported (at shutdown, so none goes unsaid). */
  report(): void {
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    if (this.unreported.size === 0) return;
    this.lastReportAt = Date.now();
    for (const [reason, { spans, detail }] of this.unreported) {
      diag.error(`otel-llm-audit spool: dropped ${spans} audit span${spans === 1 ? '' : 's'} (${reason}): ${detail}`);
    }
    this.unreported.clear();
  }
}
