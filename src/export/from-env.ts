/**
 * The trace pipeline NodeSDK would build from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and
 * OTEL_BSP_*, with one difference: the OTLP exporter is fed by the SpoolingSpanProcessor instead of
 * the BatchSpanProcessor. Console and Zipkin stay exactly as NodeSDK makes them.
 *
 * The exporters are NodeSDK's own: the same packages, resolved from @opentelemetry/sdk-node's
 * location (which the package pins exactly) and chosen by its getOtlpProtocolFromEnv, so endpoint,
 * headers, compression, timeout, TLS and protocol (http/protobuf, http/json, grpc) follow the
 * OTEL_EXPORTER_OTLP_* variables exactly as without the spool, for first sends and re-sends alike.
 */
import { diag, metrics } from '@opentelemetry/api';
import { getStringListFromEnv } from '@opentelemetry/core';
import { tracing, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { createRequire } from 'node:module';
import { INSTRUMENTATION_NAME } from '../semconv';
import { PACKAGE_VERSION } from '../version';
import { spoolConfigFromEnv } from './config';
import { SpoolDirectory } from './spool-dir';
import { SpoolingSpanProcessor } from './spooling-span-processor';
import { SpoolTelemetry } from './telemetry';

type SpanProcessor = NonNullable<NodeSDKConfiguration['spanProcessors']>[number];

interface SdkNodeUtils {
  getOtlpProtocolFromEnv(): string;
  getNonNegativeNumberFromEnv(name: string): number | undefined;
  getSpanProcessorsFromEnv(selfObsMeterProvider: undefined): SpanProcessor[];
}
interface SdkNodeCreateFromEnv {
  createBatchSpanProcessorFromEnv(exporter: tracing.SpanExporter, selfObsMeterProvider: undefined): SpanProcessor;
}

// NodeSDK does not export these from its entry point; the package pins @opentelemetry/sdk-node
// exactly, and the register tests cover every path that uses them.
const sdkRequire = createRequire(require.resolve('@opentelemetry/sdk-node'));
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
    afterStart: () => telemetry?.attachMeter(metrics.getMeter(INSTRUMENTATION_NAME, PACKAGE_VERSION)),
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

/** The OTLP trace exporter NodeSDK builds for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL. */
export function otlpTraceExporterFromEnv(): tracing.SpanExporter {
  const protocol = sdkUtils().getOtlpProtocolFromEnv();
  const packages: Record<string, string> = {
    grpc: '@opentelemetry/exporter-trace-otlp-grpc',
    'http/json': '@opentelemetry/exporter-trace-otlp-http',
    'http/protobuf': '@opentelemetry/exporter-trace-otlp-proto',
  };
  let pkg = packages[protocol];
  if (pkg === undefined) {
    diag.warn(`Unsupported OTLP traces protocol: ${protocol}. Using http/protobuf.`);
    pkg = packages['http/protobuf']!;
  }
  const { OTLPTraceExporter } = sdkRequire(pkg) as { OTLPTraceExporter: new () => tracing.SpanExporter };
  return new OTLPTraceExporter();
}

/** OTEL_BSP_* through NodeSDK's own reader (a value ≤ 0 is warned about and ignored, as there). */
function batchSettingsFromEnv(): { maxQueueSize?: number; maxExportBatchSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis?: number } {
  const read = sdkUtils().getNonNegativeNumberFromEnv;
  const settings = {
    maxQueueSize: read('OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    scheduledDelayMillis: read('OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: read('OTEL_BSP_EXPORT_TIMEOUT'),
  };
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}
