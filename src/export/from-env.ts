/**
 * The trace pipeline NodeSDK would build from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and
 * OTEL_BSP_*, with one difference: the OTLP exporter is fed by the SpoolingSpanProcessor instead of
 * the BatchSpanProcessor. Console and Zipkin stay exactly as NodeSDK makes them. Likewise the metric
 * readers from OTEL_METRICS_EXPORTER, the OTLP one wrapped so that it does not hold the process at
 * exit while the collector is down (endpoint-probe.ts).
 *
 * The exporters are NodeSDK's own: the same packages, resolved from @opentelemetry/sdk-node's
 * location (which the package pins exactly) and chosen by its getOtlpProtocolFromEnv, so endpoint,
 * headers, compression, timeout, TLS and protocol (http/protobuf, http/json, grpc) follow the
 * OTEL_EXPORTER_OTLP_* variables exactly as without the spool, for first sends and re-sends alike.
 */
import { diag } from '@opentelemetry/api';
import { getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core';
import { metrics as sdkMetrics, tracing, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { auditMeter } from '../util/audit-meter';
import { spoolConfigFromEnv } from './config';
import { otlpEndpointFromEnv } from './endpoint-probe';
import { ProbedMetricExporter } from './probed-metric-exporter';
import { sdkRequire } from './sdk-node-require';
import { SpoolDirectory } from './spool-dir';
import { SpoolingSpanProcessor } from './spooling-span-processor';
import { SpoolTelemetry } from './telemetry';

type SpanProcessor = NonNullable<NodeSDKConfiguration['spanProcessors']>[number];
type MetricReader = NonNullable<NodeSDKConfiguration['metricReaders']>[number];

interface SdkNodeUtils {
  getOtlpProtocolFromEnv(): string;
  getNonNegativeNumberFromEnv(name: string): number | undefined;
  getSpanProcessorsFromEnv(selfObsMeterProvider: undefined): SpanProcessor[];
  getOtlpMetricExporterFromEnv(): sdkMetrics.PushMetricExporter;
  getPeriodicExportingMetricReaderFromEnv(exporter: sdkMetrics.PushMetricExporter): MetricReader;
}
interface SdkNodeCreateFromEnv {
  createBatchSpanProcessorFromEnv(exporter: tracing.SpanExporter, selfObsMeterProvider: undefined): SpanProcessor;
}

// NodeSDK does not export these from its entry point; the package pins @opentelemetry/sdk-node
// exactly, and the register tests cover every path that uses them.
const sdkUtils = (): SdkNodeUtils => sdkRequire('./utils') as SdkNodeUtils;
const sdkCreateFromEnv = (): SdkNodeCreateFromEnv => sdkRequire('./create-from-env') as SdkNodeCreateFromEnv;

export interface TracePipeline {
  spanProcessors: SpanProcessor[];
  /** The spool's processor when OTLP is among the exporters and the spool is on. */
  spool: SpoolingSpanProcessor | undefined;
  /** To call once NodeSDK has started (its meter provider is installed then): registers the spool's metrics. */
  afterStart(): void;
}

/**
 * The span processors for OTEL_TRACES_EXPORTER (default `otlp`), the OTLP one spooled unless
 * LLM_AUDIT_SPOOL=off. Throws a configuration error for bad LLM_AUDIT_SPOOL_* values or an
 * unusable spool directory.
 */
export function tracePipelineFromEnv(env: NodeJS.ProcessEnv, shutdownTimeoutMillis: number): TracePipeline {
  const config = spoolConfigFromEnv(env);
  if (!config.enabled) {
    return { spanProcessors: sdkUtils().getSpanProcessorsFromEnv(undefined), spool: undefined, afterStart: () => undefined };
  }
  const spanProcessors: SpanProcessor[] = [];
  let spool: SpoolingSpanProcessor | undefined;
  let telemetry: SpoolTelemetry | undefined;
  for (const name of traceExporterNames()) {
    if (name === 'otlp') {
      const directory = new SpoolDirectory(config.dir, config.maxBytes);
      directory.open();
      telemetry = new SpoolTelemetry(directory);
      spool = new SpoolingSpanProcessor({
        exporter: otlpTraceExporterFromEnv(),
        spool: directory,
        telemetry,
        ...batchSettingsFromEnv(),
        shutdownTimeoutMillis,
        endpoint: otlpEndpointFromEnv('TRACES', tracesProtocol(), probeTimeoutMillis(shutdownTimeoutMillis)),
      });
      spanProcessors.push(spool);
    } else if (name === 'console') {
      spanProcessors.push(new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter()));
    } else if (name === 'zipkin') {
      const { ZipkinExporter } = sdkRequire('@opentelemetry/exporter-zipkin') as { ZipkinExporter: new () => tracing.SpanExporter };
      spanProcessors.push(sdkCreateFromEnv().createBatchSpanProcessorFromEnv(new ZipkinExporter(), undefined));
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

/** OTEL_TRACES_EXPORTER as NodeSDK reads it: deduplicated, `null` ignored, empty → otlp, `none` → nothing. */
function traceExporterNames(): string[] {
  let names = [...new Set(getStringListFromEnv('OTEL_TRACES_EXPORTER') ?? [])].filter((name) => name !== 'null');
  if (names[0] === 'none') {
    diag.warn('OTEL_TRACES_EXPORTER contains "none". SDK will not be initialized.');
    return [];
  }
  if (names.length === 0) names = ['otlp'];
  else if (names.length > 1 && names.includes('none')) {
    diag.warn('OTEL_TRACES_EXPORTER contains "none" along with other exporters. Using default otlp exporter.');
    names = ['otlp'];
  }
  return names;
}

const TRACE_EXPORTER_PACKAGES: Record<string, string> = {
  grpc: '@opentelemetry/exporter-trace-otlp-grpc',
  'http/json': '@opentelemetry/exporter-trace-otlp-http',
  'http/protobuf': '@opentelemetry/exporter-trace-otlp-proto',
};

/** OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL as NodeSDK reads it; an unsupported one falls back to http/protobuf. */
function tracesProtocol(): string {
  const protocol = sdkUtils().getOtlpProtocolFromEnv();
  return TRACE_EXPORTER_PACKAGES[protocol] !== undefined ? protocol : 'http/protobuf';
}

/** The OTLP trace exporter NodeSDK builds for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL. */
export function otlpTraceExporterFromEnv(): tracing.SpanExporter {
  const asked = sdkUtils().getOtlpProtocolFromEnv();
  const protocol = tracesProtocol();
  if (protocol !== asked) diag.warn(`Unsupported OTLP traces protocol: ${asked}. Using http/protobuf.`);
  const { OTLPTraceExporter } = sdkRequire(TRACE_EXPORTER_PACKAGES[protocol]!) as { OTLPTraceExporter: new () => tracing.SpanExporter };
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
export function metricPipelineFromEnv(shutdownTimeoutMillis: number): MetricPipeline {
  const names = [...new Set(getStringListFromEnv('OTEL_METRICS_EXPORTER') ?? [])];
  if (names.length === 0) names.push('otlp');
  if (names.includes('none')) {
    diag.info('OTEL_METRICS_EXPORTER contains "none". Metric provider will not be initialized.');
    return { metricReaders: [], closing: () => undefined };
  }
  const metricReaders: MetricReader[] = [];
  const probed: ProbedMetricExporter[] = [];
  for (const name of names) {
    if (name === 'otlp') {
      let exporter = sdkUtils().getOtlpMetricExporterFromEnv();
      // The same protocol choice as the exporter's (OTLP/HTTP and JSON share their URL rules).
      const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL');
      const endpoint = otlpEndpointFromEnv('METRICS', protocol?.trim() === 'grpc' ? 'grpc' : 'http/protobuf', probeTimeoutMillis(shutdownTimeoutMillis));
      if (endpoint !== undefined) {
        const gated = new ProbedMetricExporter(exporter, endpoint);
        probed.push(gated);
        exporter = gated;
      }
      metricReaders.push(sdkUtils().getPeriodicExportingMetricReaderFromEnv(exporter));
    } else if (name === 'console') {
      metricReaders.push(new sdkMetrics.PeriodicExportingMetricReader({ exporter: new sdkMetrics.ConsoleMetricExporter() }));
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

/** OTEL_BSP_* through NodeSDK's own reader (a value ≤ 0 is warned about and ignored, as there). */
function batchSettingsFromEnv(): { maxQueueSize?: number; maxExportBatchSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis?: number } {
  const read = sdkUtils().getNonNegativeNumberFromEnv;
  const settings = {
    maxQueueSize: read('OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    scheduledDelayMillis: read('OTEL_BSP_SCHEDULE_DELAY') ?? AUDIT_BATCH_DELAY_MS,
    exportTimeoutMillis: read('OTEL_BSP_EXPORT_TIMEOUT'),
  };
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}
