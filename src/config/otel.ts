/**
 * The standard OTEL_* variables this package interprets itself, read from the environment it is
 * given (never from process.env behind its back), with NodeSDK's rules: the same defaults, the
 * same lists (deduplicated, `null` ignored, `none` alone = nothing), a value ≤ 0 warned about and
 * ignored. Reading them here, not through @opentelemetry/sdk-node's helpers, is what lets
 * `register` load only the exporter package it needs: those helpers live in a module that requires
 * every exporter NodeSDK ships (539 modules at start; bench/results/startup.md).
 *
 * What the exporter packages read themselves (endpoint, headers, compression, TLS files) they still
 * read from process.env; the endpoint the spool probes is taken from the same exporter code, so
 * the address probed is the address sent to (src/export/endpoint-probe.ts).
 */
import { diag } from '@opentelemetry/api';

export type OtlpProtocol = 'grpc' | 'http/json' | 'http/protobuf';
export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/json', 'http/protobuf'];
export const DEFAULT_OTLP_PROTOCOL: OtlpProtocol = 'http/protobuf';

/** NodeSDK's defaults for the periodic metric reader. */
export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;
export const DEFAULT_METRIC_EXPORT_TIMEOUT_MS = 30_000;

export type SamplerName = 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' | 'traceidratio' | 'parentbased_traceidratio';
const SAMPLERS: readonly SamplerName[] = ['always_on', 'always_off', 'parentbased_always_on', 'parentbased_always_off', 'traceidratio', 'parentbased_traceidratio'];

export interface OtelSettings {
  /** OTEL_LOG_LEVEL, as given (undefined: leave diag alone). */
  logLevel: string | undefined;
  /** OTEL_TRACES_EXPORTER: exporter names (otlp, console, zipkin); empty for `none`. */
  traceExporters: string[];
  /** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL (an unsupported one: http/protobuf, with a warning). */
  tracesProtocol: OtlpProtocol;
  /** OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL. */
  metricsProtocol: OtlpProtocol;
  /** OTEL_METRICS_EXPORTER: set explicitly (with only the ledger, metrics go nowhere unless asked). */
  metricsExporterSet: boolean;
  /** OTEL_METRICS_EXPORTER names (default otlp); empty for `none`. */
  metricExporters: string[];
  /** OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT (timeout clamped to the interval, as NodeSDK does). */
  metricExportIntervalMs: number;
  metricExportTimeoutMs: number;
  /** OTEL_BSP_*: undefined where unset (the processor's own default applies). */
  batch: { maxQueueSize?: number; maxExportBatchSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis?: number };
  /** OTEL_TRACES_SAMPLER and _ARG (ratio in [0, 1], default 1); undefined: parent-based always-on. */
  sampler: { name: SamplerName; ratio: number } | undefined;
  /** OTEL_RESOURCE_ATTRIBUTES (`key=value,...`, values percent-decoded), then OTEL_SERVICE_NAME as `service.name`. */
  resourceAttributes: Record<string, string>;
  /** OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the default exporter is then otlp). */
  otlpEndpointSet: boolean;
}

function str(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function list(env: NodeJS.ProcessEnv, name: string): string[] {
  return [...new Set((str(env, name) ?? '').split(',').map((v) => v.trim()).filter((v) => v !== ''))];
}

/** A positive number, as NodeSDK's getNonNegativeNumberFromEnv: ≤ 0 or not a number is warned about and ignored. */
function positiveNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (Number.isNaN(value)) {
    diag.warn(`Unknown value ${JSON.stringify(raw)} for ${name}, expected a number, using defaults`);
    return undefined;
  }
  if (value <= 0) {
    diag.warn(`${name} (${value}) is invalid, expected number greater than 0, using default.`);
    return undefined;
  }
  return value;
}

function protocol(raw: string | undefined, signal: string): OtlpProtocol {
  if (raw === undefined) return DEFAULT_OTLP_PROTOCOL;
  if ((OTLP_PROTOCOLS as readonly string[]).includes(raw)) return raw as OtlpProtocol;
  diag.warn(`Unsupported OTLP ${signal} protocol: ${raw}. Using http/protobuf.`);
  return DEFAULT_OTLP_PROTOCOL;
}

/** OTEL_TRACES_EXPORTER as NodeSDK reads it: deduplicated, `null` ignored, empty → otlp, `none` → nothing. */
function traceExporters(env: NodeJS.ProcessEnv): string[] {
  let names = list(env, 'OTEL_TRACES_EXPORTER').filter((name) => name !== 'null');
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

function sampler(env: NodeJS.ProcessEnv): OtelSettings['sampler'] {
  const name = str(env, 'OTEL_TRACES_SAMPLER');
  if (name === undefined) return undefined;
  if (!(SAMPLERS as readonly string[]).includes(name)) {
    diag.error(`unknown OTEL_TRACES_SAMPLER value "${name}", using default`);
    return undefined;
  }
  let ratio = 1;
  if (name.endsWith('traceidratio')) {
    const raw = str(env, 'OTEL_TRACES_SAMPLER_ARG');
    const value = raw === undefined ? NaN : Number(raw);
    if (Number.isNaN(value) || value < 0 || value > 1) diag.error(`OTEL_TRACES_SAMPLER_ARG=${raw ?? ''} is blank or out of range ([0..1]), defaulting to 1.`);
    else ratio = value;
  }
  return { name: name as SamplerName, ratio };
}

/** OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME as the SDK's envDetector reads them (a bad entry is reported through diag and skipped). */
function resourceAttributes(env: NodeJS.ProcessEnv): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const entry of (str(env, 'OTEL_RESOURCE_ATTRIBUTES') ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const at = entry.indexOf('=');
    const key = at < 0 ? '' : entry.slice(0, at).trim();
    try {
      if (key === '') throw new Error('no key=value');
      attributes[key] = decodeURIComponent(entry.slice(at + 1).trim());
    } catch (error) {
      diag.error(`OTEL_RESOURCE_ATTRIBUTES: cannot use ${JSON.stringify(entry)}: ${(error as Error).message}`);
    }
  }
  const service = str(env, 'OTEL_SERVICE_NAME');
  if (service !== undefined) attributes['service.name'] = service;
  return attributes;
}

/**
 * The OTEL_* settings from `env`. Never throws: NodeSDK treats a bad OTEL_* value as a warning and
 * falls back to the default, and an application moving to this package keeps that behaviour.
 */
export function otelSettings(env: NodeJS.ProcessEnv): OtelSettings {
  const metrics = list(env, 'OTEL_METRICS_EXPORTER');
  const interval = positiveNumber(env, 'OTEL_METRIC_EXPORT_INTERVAL') ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
  const timeout = positiveNumber(env, 'OTEL_METRIC_EXPORT_TIMEOUT') ?? DEFAULT_METRIC_EXPORT_TIMEOUT_MS;
  const batch = {
    maxQueueSize: positiveNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    maxExportBatchSize: positiveNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    scheduledDelayMillis: positiveNumber(env, 'OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: positiveNumber(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
  };
  return {
    logLevel: str(env, 'OTEL_LOG_LEVEL'),
    traceExporters: traceExporters(env),
    tracesProtocol: protocol(str(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL'), 'traces'),
    metricsProtocol: protocol(str(env, 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL'), 'metrics'),
    metricsExporterSet: str(env, 'OTEL_METRICS_EXPORTER') !== undefined,
    metricExporters: metrics.includes('none') ? [] : metrics.length === 0 ? ['otlp'] : metrics,
    metricExportIntervalMs: interval,
    metricExportTimeoutMs: Math.min(timeout, interval),
    batch: Object.fromEntries(Object.entries(batch).filter(([, value]) => value !== undefined)),
    sampler: sampler(env),
    resourceAttributes: resourceAttributes(env),
    otlpEndpointSet: str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined || str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined,
  };
}
