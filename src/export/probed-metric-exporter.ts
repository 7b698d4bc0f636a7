import { diag } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { metrics } from '@opentelemetry/sdk-node';
import type { OtlpEndpoint } from './endpoint-probe';

type PushMetricExporter = metrics.PushMetricExporter;
type ResourceMetrics = metrics.ResourceMetrics;

/**
 * The OTLP metric exporter NodeSDK would use, unchanged while the process runs. Once the process
 * is ending (`closing()`), each export first asks whether anything listens at the endpoint and
 * fails at once when not: the SDK's last metrics export would otherwise retry a refused connection
 * for up to OTEL_EXPORTER_OTLP_TIMEOUT with timers that keep the process from exiting. Metrics are
 * aggregates, not audit records: the audit spans themselves are kept in the spool either way.
 */
export class ProbedMetricExporter implements PushMetricExporter {
  private ending = false;
  readonly selectAggregationTemporality?: PushMetricExporter['selectAggregationTemporality'];
  readonly selectAggregation?: PushMetricExporter['selectAggregation'];

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly endpoint: OtlpEndpoint,
  ) {
    // Temporality and aggregation preferences (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE...)
    // are the inner exporter's.
    this.selectAggregationTemporality = inner.selectAggregationTemporality?.bind(inner);
    this.selectAggregation = inner.selectAggregation?.bind(inner);
  }

  /** The process is ending: from now on, exports go only to an endpoint that answers. */
  closing(): void {
    this.ending = true;
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    if (!this.ending) {
      this.inner.export(metrics, resultCallback);
      return;
    }
    void this.endpoint.reachable().then((answers) => {
      if (answers) {
        this.inner.export(metrics, resultCallback);
        return;
      }
      const error = new Error(`nothing listens at ${this.endpoint.url}; the last metrics of this process are not sent`);
      diag.warn(`otel-llm-audit: ${error.message}`);
      resultCallback({ code: ExportResultCode.FAILED, error });
    });
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
