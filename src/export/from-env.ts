/**
 * The trace pipeline NodeSDK would build from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and
 * OTEL_BSP_*, with one difference: the OTLP exporter is fed by the SpoolingSpanProcessor instead of
 * the BatchSpanProcessor. Console and Zipkin stay as NodeSDK makes them. Likewise the metric readers
 * from OTEL_METRICS_EXPORTER, the OTLP one wrapped so that it does not hold the process at exit
 * while the collector is down (endpoint-probe.ts).
 *
 * The settings come from src/config (OtelSettings, read with NodeSDK's rules); the exporters are
 * NodeSDK's own packages, resolved from @opentelemetry/sdk-node's location (which the package pins
 * exactly), and only the one configured is loaded: endpoint, headers, compression, timeout and TLS
 * follow the OTEL_EXPORTER_OTLP_* variables exactly as without the spool, for first sends and
 * re-sends alike.
 */
import { diag } from '@opentelemetry/api';
import type { metrics as sdkMetricsTypes, tracing, NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type { OtelSettings, OtlpProtocol } from '../config/otel';
import { auditMeter } from '../util/audit-meter';
import type { SpoolConfig } from './config';
import { otlpEndpointFromEnv } from './endpoint-probe';
import { ProbedMetricExporter } from './probed-metric-exporter';
import { sdkMetrics, sdkRequire, sdkTracing } from './sdk-node-require';
import { SpoolDirectory } from './spool-dir';
import { SpoolingSpanProcessor } from './spooling-span-processor';
import { SpoolTelemetry } from './telemetry';

type SpanProcessor = NonNullable<NodeSDKConfiguration['spanProcessors']>[number];
type MetricReader = NonNullable<NodeSDKConfiguration['metricReaders']>[number];

export interface TracePipeline {
  spanProcessors: SpanProcessor[];
  /** The spool's processor when OTLP is among the exporters and the spool is on. */
  spool: SpoolingSpanProcessor | undefined;
  /** To call once NodeSDK has started (its meter provider is installed then): registers the spool's metrics. */
  afterStart(): void;
}

/**
 * The span processors for OTEL_TRACES_EXPORTER (default `otlp`), the OTLP one spooled unless
 * LLM_AUDIT_SPOOL=off. Throws a configuration error for an unusable spool directory.
 */
export function tracePipeline(spoolConfig: SpoolConfig, otel: OtelSettings, shutdownTimeoutMillis: number): TracePipeline {
  const spanProcessors: SpanProcessor[] = [];
  let spool: SpoolingSpanProcessor | undefined;
  let telemetry: SpoolTelemetry | undefined;
  for (const name of otel.traceExporters) {
    if (name === 'otlp' && spoolConfig.enabled) {
      const directory = new SpoolDirectory(spoolConfig.dir, spoolConfig.maxBytes);
      directory.open();
      telemetry = new SpoolTelemetry(directory);
      spool = new SpoolingSpanProcessor({
        exporter: otlpTraceExporter(otel.tracesProtocol),
        spool: directory,
        telemetry,
        ...otel.batch,
        scheduledDelayMillis: otel.batch.scheduledDelayMillis ?? AUDIT_BATCH_DELAY_MS,
        shutdownTimeoutMillis,
        endpoint: otlpEndpointFromEnv('TRACES', otel.tracesProtocol, probeTimeoutMillis(shutdownTimeoutMillis)),
      });
      spanProcessors.push(spool);
    } else if (name === 'otlp') {
      // LLM_AUDIT_SPOOL=off: the plain BatchSpanProcessor, as NodeSDK builds it.
      spanProcessors.push(new (sdkTracing().BatchSpanProcessor)(otlpTraceExporter(otel.tracesProtocol), otel.batch));
    } else if (name === 'console') {
      const t = sdkTracing();
      spanProcessors.push(new t.SimpleSpanProcessor(new t.ConsoleSpanExporter()));
    } else if (name === 'zipkin') {
      const { ZipkinExporter } = sdkRequire('@opentelemetry/exporter-zipkin') as { ZipkinExporter: new () => tracing.SpanExporter };
      spanProcessors.push(new (sdkTracing().BatchSpanProcessor)(new ZipkinExporter(), otel.batch));
    } else {
      diag.warn(`Unrecognized OTEL_TRACES_EXPORTER value: ${name}.`);
    }
  }
  return {
    spanProcessors,
    spool,
    afterStart: () => telemetry?.attachMeter(auditMeter()),
  };
}

/** The package of NodeSDK's OTLP trace exporter for each protocol: the only one `register` loads. */
const TRACE_EXPORTER_PACKAGES: Record<OtlpProtocol, string> = {
  grpc: '@opentelemetry/exporter-trace-otlp-grpc',
  'http/json': '@opentelemetry/exporter-trace-otlp-http',
  'http/protobuf': '@opentelemetry/exporter-trace-otlp-proto',
};

const METRIC_EXPORTER_PACKAGES: Record<OtlpProtocol, string> = {
  grpc: '@opentelemetry/exporter-metrics-otlp-grpc',
  'http/json': '@opentelemetry/exporter-metrics-otlp-http',
  'http/protobuf': '@opentelemetry/exporter-metrics-otlp-proto',
};

/** The OTLP trace exporter NodeSDK builds for the protocol. */
export function otlpTraceExporter(protocol: OtlpProtocol): tracing.SpanExporter {
  const { OTLPTraceExporter } = sdkRequire(TRACE_EXPORTER_PACKAGES[protocol]) as { OTLPTraceExporter: new () => tracing.SpanExporter };
  return new OTLPTraceExporter();
}

/**
 * How long a flush or the last metrics export waits to learn whether the endpoint listens: a
 * second, or less when the whole shutdown may take less (a quarter of it).
 */
function probeTimeoutMillis(shutdownTimeoutMillis: number): number {
  return Math.max(1, Math.min(1_000, Math.floor(shutdownTimeoutMillis / 4)));
}

export interface MetricPipeline {
  metricReaders: MetricReader[];
  /** To call when the process starts ending: the last OTLP metrics export first asks whether the endpoint listens. */
  closing(): void;
}

/**
 * The metric readers NodeSDK would build from OTEL_METRICS_EXPORTER (default `otlp`; `none`,
 * `console`, `prometheus`) and OTEL_METRIC_EXPORT_*, with one difference: the OTLP exporter is
 * wrapped in a ProbedMetricExporter, so that the process does not wait for its retries at exit
 * when the collector is down.
 */
export function metricPipeline(otel: OtelSettings, shutdownTimeoutMillis: number): MetricPipeline {
  if (otel.metricExporters.length === 0) {
    diag.info('OTEL_METRICS_EXPORTER contains "none". Metric provider will not be initialized.');
    return { metricReaders: [], closing: () => undefined };
  }
  const metricReaders: MetricReader[] = [];
  const probed: ProbedMetricExporter[] = [];
  const periodic = (exporter: sdkMetricsTypes.PushMetricExporter): MetricReader =>
    new (sdkMetrics().PeriodicExportingMetricReader)({
      exporter,
      exportIntervalMillis: otel.metricExportIntervalMs,
      exportTimeoutMillis: otel.metricExportTimeoutMs,
    });
  for (const name of otel.metricExporters) {
    if (name === 'otlp') {
      const { OTLPMetricExporter } = sdkRequire(METRIC_EXPORTER_PACKAGES[otel.metricsProtocol]) as {
        OTLPMetricExporter: new () => sdkMetricsTypes.PushMetricExporter;
      };
      let exporter: sdkMetricsTypes.PushMetricExporter = new OTLPMetricExporter();
      // OTLP/HTTP and JSON share their URL rules.
      const endpoint = otlpEndpointFromEnv('METRICS', otel.metricsProtocol === 'grpc' ? 'grpc' : 'http/protobuf', probeTimeoutMillis(shutdownTimeoutMillis));
      if (endpoint !== undefined) {
        const gated = new ProbedMetricExporter(exporter, endpoint);
        probed.push(gated);
        exporter = gated;
      }
      metricReaders.push(periodic(exporter));
    } else if (name === 'console') {
      metricReaders.push(periodic(new (sdkMetrics().ConsoleMetricExporter)()));
    } else if (name === 'prometheus') {
      const { PrometheusExporter } = sdkRequire('@opentelemetry/exporter-prometheus') as { PrometheusExporter: new () => MetricReader };
      metricReaders.push(new PrometheusExporter());
    } else {
      diag.warn(`Unsupported OTEL_METRICS_EXPORTER value: "${name}". Supported values are: otlp, console, prometheus, none.`);
    }
  }
  return { metricReaders, closing: () => probed.forEach((exporter) => exporter.closing()) };
}

/**
 * How long a partial batch of audit records waits unless OTEL_BSP_SCHEDULE_DELAY says otherwise:
 * 500 ms rather than the SDK's 5 s. An audit record should leave the process soon after its call
 * (an LLM call takes hundreds of milliseconds, so the batches stay large): a SIGKILL, or a framework
 * that calls process.exit() from its own signal handler (next start), then finds little in memory.
 */
export const AUDIT_BATCH_DELAY_MS = 500;
