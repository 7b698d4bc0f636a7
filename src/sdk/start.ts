import { diag, DiagConsoleLogger } from '@opentelemetry/api';
import { diagLogLevelFromString } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import type { resources, tracing, NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { setOnFailurePolicy } from '../audit/failure-policy';
import { startUnauditedWatcher } from '../audit/unaudited';
import { AuditError } from '../errors';
import { processEnvironment, readConfig, type AuditConfig, type AuditExporter, type OtelSettings } from '../config';
import { auditRecordIdGenerator, installAuditRecordPipeline, type TraceSampled } from '../core/audit-records';
import { metricPipeline, tracePipeline, type TracePipeline } from '../export/from-env';
import { sdkMetrics, sdkResources, sdkTracing } from '../export/sdk-node-require';
import type { LlmAuditHooks } from '../guardrails';
import { LlmAuditInstrumentation } from '../instrumentation';
import { LedgerSpanExporter } from '../ledger/span-exporter';
import { LedgerSpanProcessor } from '../ledger/span-processor';
import { INSTRUMENTATION_NAME } from '../semconv';
import { setAuditMeterProvider } from '../util/audit-meter';
import { wantContextManager } from '../util/context-manager';
import { PACKAGE_VERSION } from '../version';

type SpanProcessor = NonNullable<NodeSDKConfiguration['spanProcessors']>[number];

export { exporterFromEnv } from '../config';
export type { AuditExporter } from '../config';

export interface StartedAudit {
  instrumentation: LlmAuditInstrumentation;
  /** Ends open audit spans, flushes and shuts the SDK down. Safe to call more than once. */
  shutdown(): Promise<void>;
}

/**
 * Starts the audit for this thread, configured by the `LLM_AUDIT_*` variables and the standard
 * `OTEL_*` ones (OTLP endpoint, headers and protocol, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_METRICS_EXPORTER, OTEL_LOG_LEVEL), and makes sure the records are
 * flushed when the process ends normally or is told to stop by SIGTERM / SIGINT.
 *
 * It registers no global tracer, meter or logger provider: the audit records go through a private
 * pipeline (core/audit-records.ts), so an OpenTelemetry SDK that the application starts before or
 * after (its own NodeSDK, Sentry, @vercel/otel, auto-instrumentations) keeps its exporters, its
 * service name and its sampling, and gets the calls' trace spans like any other span. Sampling and
 * span limits never reach the audit records; `OTEL_SDK_DISABLED` switches tracing off, not the audit.
 */
export function startAudit(env: NodeJS.ProcessEnv = processEnvironment()): StartedAudit {
  // Every setting, read and checked at once: CONFIG_INVALID lists every problem.
  const config: AuditConfig = readConfig(env);
  const { exporter, otel, shutdownTimeoutMs: timeoutMs } = config;
  // OTEL_LOG_LEVEL as NodeSDK reads it (no NodeSDK is started here to do it).
  if (otel.logLevel) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(otel.logLevel) });
  // Read once, whichever trail is used: with `block`, calls are refused while it cannot be written.
  setOnFailurePolicy(config.onFailure);
  const { hashKey, hashKeyId, sanitize, content, providerHosts, prices } = config.instrumentation;
  const instrumentation = new LlmAuditInstrumentation({
    hashKey: hashKey ?? null,
    ...(hashKeyId !== undefined ? { hashKeyId } : {}),
    sanitize: { mode: sanitize },
    content,
    ...(providerHosts !== undefined ? { providerHosts } : { providerHosts: {} }),
    ...(prices !== undefined ? { prices } : {}),
  });
  const ledger = exporter === 'ledger' || exporter === 'both' ? new LedgerSpanExporter(config.ledger) : undefined;
  const otlp = exporter === 'otlp' || exporter === 'both' ? tracePipeline(config.spool, otel, timeoutMs) : undefined;
  const resource = auditResource(otel);
  // With only the ledger and no OTLP endpoint there is nowhere to send metrics unless asked explicitly.
  const metrics = exporter !== 'ledger' || otel.metricsExporterSet ? metricPipeline(otel, timeoutMs) : undefined;
  const meterProvider =
    metrics !== undefined && metrics.metricReaders.length > 0 ? new (sdkMetrics().MeterProvider)({ resource, readers: metrics.metricReaders }) : undefined;
  const { provider, uninstall } = startRecordProvider(recordProcessors(exporter, ledger, otlp), resource, traceSampled(otel));
  registerInstrumentations({ instrumentations: [instrumentation] });
  instrumentation.followGlobalTracerProvider();
  // LLM API requests that no audited call made (a bundled or unsupported client, a bare fetch).
  const stopWatcher = startUnauditedWatcher({ env });
  if (meterProvider !== undefined) {
    instrumentation.setMeterProvider(meterProvider);
    setAuditMeterProvider(meterProvider);
  }
  otlp?.afterStart();
  // Loaded after the SDK patches are in place, so a hooks module may itself use the LLM SDKs.
  const hooks = loadHooks(config.hooksPath);
  if (hooks !== undefined) instrumentation.setConfig({ ...instrumentation.getConfig(), hooks });
  // The ledger opens at the first record (a lock held by another process is not an error: this
  // one journals); a directory that cannot hold it is reported now, loudly, and never stops the app.
  void ledger?.ready();

  let done: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    done ??= (async () => {
      metrics?.closing();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          diag.error(`otel-llm-audit: shutdown did not finish within ${timeoutMs} ms; unsent spans may be lost`);
          resolve();
        }, timeoutMs);
      });
      try {
        // Calls still running get part of the budget to finish; those that do not are recorded as interrupted.
        await instrumentation.settleOpenCalls(Math.floor(timeoutMs / 4));
        await Promise.race([
          (async () => {
            await provider.forceFlush().catch((error: unknown) => diag.error('otel-llm-audit: flushing the audit records failed', error));
            await provider.shutdown();
            await meterProvider?.shutdown();
          })(),
          timeout,
        ]);
      } catch (error) {
        diag.error('otel-llm-audit: shutdown failed', error);
      } finally {
        clearTimeout(timer);
        stopWatcher();
        uninstall();
      }
    })();
    return done;
  };
  installExitHooks(shutdown);
  // The audit context needs a context manager; ours is installed only when one is needed and no
  // SDK of the application's installed its own (src/util/context-manager.ts).
  wantContextManager();
  started = { instrumentation, shutdown };
  return started;
}

/**
 * The private tracer provider of the audit records (see core/audit-records.ts): every call
 * recorded, nothing cut, ids shared with the call's trace span, registered nowhere globally.
 */
function startRecordProvider(
  spanProcessors: SpanProcessor[],
  resource: resources.Resource,
  traceSampled: TraceSampled | undefined,
): { provider: tracing.BasicTracerProvider; uninstall: () => void } {
  const tracing = sdkTracing();
  const provider = new tracing.BasicTracerProvider({
    sampler: new tracing.AlwaysOnSampler(),
    // Explicit, so that no OTEL_*_LIMIT variable ever cuts an audit record.
    spanLimits: {
      attributeValueLengthLimit: Infinity,
      attributeCountLimit: Infinity,
      linkCountLimit: Infinity,
      eventCountLimit: Infinity,
      attributePerEventCountLimit: Infinity,
      attributePerLinkCountLimit: Infinity,
    },
    generalLimits: { attributeValueLengthLimit: Infinity, attributeCountLimit: Infinity },
    idGenerator: auditRecordIdGenerator(new tracing.RandomIdGenerator()),
    resource,
    spanProcessors,
  });
  const uninstall = installAuditRecordPipeline({
    tracer: provider.getTracer(INSTRUMENTATION_NAME, PACKAGE_VERSION),
    ...(traceSampled ? { traceSampled } : {}),
  });
  return { provider, uninstall };
}

/**
 * The resource of the audit records as NodeSDK builds it: the SDK defaults, the process and host,
 * and OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME as read by src/config. (A trace span of the
 * application's own SDK keeps its own resource.)
 */
function auditResource(otel: OtelSettings): resources.Resource {
  const r = sdkResources();
  return r
    .defaultResource()
    .merge(r.detectResources({ detectors: [r.processDetector, r.hostDetector] }))
    .merge(r.resourceFromAttributes(otel.resourceAttributes));
}

/**
 * OTEL_TRACES_SAMPLER (and _ARG) as NodeSDK reads it: what the tracing backend would keep of the
 * calls when the audit records are their only trace spans (`llm_audit.trace.forward`).
 */
function traceSampled(otel: OtelSettings): TraceSampled {
  const tracing = sdkTracing();
  const root = (name: string | undefined): tracing.Sampler => {
    if (name === 'always_off') return new tracing.AlwaysOffSampler();
    if (name === 'traceidratio') return new tracing.TraceIdRatioBasedSampler(otel.sampler!.ratio);
    return new tracing.AlwaysOnSampler();
  };
  const name = otel.sampler?.name;
  const sampler =
    name === undefined || name.startsWith('parentbased_')
      ? new tracing.ParentBasedSampler({ root: root(name?.slice('parentbased_'.length)) })
      : root(name);
  return (parent, traceId, spanName, kind, attributes) =>
    sampler.shouldSample(parent, traceId, spanName, kind, attributes, []).decision === tracing.SamplingDecision.RECORD_AND_SAMPLED;
}

let started: StartedAudit | undefined;

/**
 * For an application that builds its own NodeSDK: the trace span processors `register` uses for
 * OTLP (from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and OTEL_BSP_*, the OTLP exporter behind
 * the durable spool unless LLM_AUDIT_SPOOL=off). Pass them as NodeSDK's `spanProcessors`; the
 * SDK's shutdown flushes them (to the endpoint, or to the spool when it is down).
 *
 * @throws Error for bad LLM_AUDIT_SPOOL_* or LLM_AUDIT_SHUTDOWN_TIMEOUT_MS values, or a spool
 *   directory that cannot be written.
 */
export function auditSpanProcessors(env: NodeJS.ProcessEnv = processEnvironment()): NonNullable<NodeSDKConfiguration['spanProcessors']> {
  const config = readConfig(env);
  const pipeline = tracePipeline(config.spool, config.otel, config.shutdownTimeoutMs);
  // The spool's metrics go to the global meter provider, which the application's SDK installs when
  // it starts, right after this returns.
  setImmediate(() => pipeline.afterStart());
  // The audit records reach the same processors apart from the application's sampler and limits;
  // the application's SDK shuts the processors down, which flushes both.
  startRecordProvider(pipeline.spanProcessors, auditResource(config.otel), undefined);
  return pipeline.spanProcessors;
}

/**
 * Flushes and stops what `otel-llm-audit/register` (or startAudit) started: call and await it
 * before `process.exit()`, which would otherwise end the process with the last records in flight.
 */
export function shutdownAudit(): Promise<void> {
  return started?.shutdown() ?? Promise.resolve();
}

/**
 * `LLM_AUDIT_HOOKS`: a CommonJS module (path relative to the working directory) exporting
 * `beforeRequest` and/or `afterResponse` (see docs/guardrails.md).
 */
function loadHooks(path: string | undefined): LlmAuditHooks | undefined {
  if (path === undefined) return undefined;
  let loaded: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(path);
  } catch (error) {
    throw new AuditError('CONFIG_INVALID', `LLM_AUDIT_HOOKS=${path} cannot be loaded: ${(error as Error).message}`);
  }
  const hooks = loaded?.beforeRequest || loaded?.afterResponse ? loaded : loaded?.default;
  const { beforeRequest, afterResponse } = hooks ?? {};
  if (typeof beforeRequest !== 'function' && typeof afterResponse !== 'function') {
    throw new AuditError('CONFIG_INVALID', `LLM_AUDIT_HOOKS=${path} exports neither a beforeRequest nor an afterResponse function`);
  }
  return {
    ...(typeof beforeRequest === 'function' ? { beforeRequest } : {}),
    ...(typeof afterResponse === 'function' ? { afterResponse } : {}),
  };
}

/**
 * Where the audit records go for each `LLM_AUDIT_EXPORTER` value. The ledger gets each record as
 * soon as its call ends (LedgerSpanProcessor): with the default fsync policy a finished call is on
 * disk within milliseconds, not held in a batch queue that a crash would lose. OTLP keeps the
 * standard batching and every `OTEL_*` setting, as NodeSDK builds it from the environment, except
 * that the OTLP exporter's batches spill to the durable spool (src/export) instead of being dropped
 * when the endpoint is down (unless LLM_AUDIT_SPOOL=off).
 */
function recordProcessors(exporter: AuditExporter, ledger: LedgerSpanExporter | undefined, otlp: TracePipeline | undefined): SpanProcessor[] {
  switch (exporter) {
    case 'otlp':
      return otlp!.spanProcessors;
    case 'console': {
      const tracing = sdkTracing();
      return [new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter())];
    }
    case 'ledger':
      return [new LedgerSpanProcessor(ledger!)];
    case 'both':
      return [new LedgerSpanProcessor(ledger!), ...otlp!.spanProcessors];
  }
}

/**
 * `beforeExit` covers a process whose event loop drained. For SIGTERM and SIGINT, listening
 * replaces Node's default "terminate": when the application has no handler of its own, the signal
 * is raised again after the flush so the process still ends the way its supervisor expects (and
 * with the signal's exit status). When the application handles the signal itself, it decides.
 */
function installExitHooks(shutdown: () => Promise<void>): void {
  process.once('beforeExit', () => {
    void shutdown();
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const onSignal = (): void => {
      const appHandles = process.listenerCount(signal) > 1;
      void shutdown().finally(() => {
        if (appHandles) return;
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      });
    };
    process.on(signal, onSignal);
  }
}
