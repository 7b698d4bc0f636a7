import { diag, trace } from '@opentelemetry/api';
import { NodeSDK, tracing, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { resolve } from 'node:path';
import { metricPipelineFromEnv, tracePipelineFromEnv, type TracePipeline } from '../export/from-env';
import type { LlmAuditHooks } from '../guardrails';
import { LlmAuditInstrumentation } from '../instrumentation';
import { LedgerSpanExporter, ledgerOptionsFromEnv } from '../ledger/span-exporter';
import { LedgerSpanProcessor } from '../ledger/span-processor';
import { loadPriceOverrides } from './prices-file';

export type AuditExporter = 'ledger' | 'otlp' | 'both' | 'console';

export interface StartedAudit {
  sdk: NodeSDK;
  instrumentation: LlmAuditInstrumentation;
  /** Ends open audit spans, flushes and shuts the SDK down. Safe to call more than once. */
  shutdown(): Promise<void>;
}

const EXPORTERS: readonly AuditExporter[] = ['ledger', 'otlp', 'both', 'console'];

/**
 * Reads `LLM_AUDIT_EXPORTER`; a value that is not known is a configuration error. Unset, the
 * spans go over OTLP when an OTLP endpoint is configured, and into the local ledger otherwise.
 */
export function exporterFromEnv(env: NodeJS.ProcessEnv = process.env): AuditExporter {
  const value = env.LLM_AUDIT_EXPORTER?.trim().toLowerCase();
  if (value === undefined || value === '') {
    return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'ledger';
  }
  if ((EXPORTERS as readonly string[]).includes(value)) return value as AuditExporter;
  throw new Error(`LLM_AUDIT_EXPORTER=${env.LLM_AUDIT_EXPORTER} is not one of ${EXPORTERS.join(', ')}`);
}

/** How long shutdown may take to flush (`LLM_AUDIT_SHUTDOWN_TIMEOUT_MS`, default 10 s). */
function shutdownTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env.LLM_AUDIT_SHUTDOWN_TIMEOUT_MS;
  if (raw === undefined || raw === '') return 10_000;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`LLM_AUDIT_SHUTDOWN_TIMEOUT_MS=${raw} is not a positive whole number of milliseconds`);
  }
  return value;
}

/**
 * Builds and starts a NodeSDK for the audit instrumentation, configured by the standard `OTEL_*`
 * variables (service name, resource, sampler, OTLP endpoint, headers and protocol: http/protobuf,
 * http/json or grpc; OTEL_LOG_LEVEL for the diag logger, which NodeSDK sets) plus the `LLM_AUDIT_*` ones, and makes sure it is flushed when the process
 * ends normally or is told to stop by SIGTERM / SIGINT.
 */
export function startAudit(env: NodeJS.ProcessEnv = process.env): StartedAudit {
  const exporter = exporterFromEnv(env);
  const timeoutMs = shutdownTimeoutMs(env);
  const instrumentation = new LlmAuditInstrumentation({ prices: loadPriceOverrides(env) });
  const ledger = exporter === 'ledger' || exporter === 'both' ? new LedgerSpanExporter(ledgerOptionsFromEnv(env)) : undefined;
  const otlp = exporter === 'otlp' || exporter === 'both' ? tracePipelineFromEnv(env, timeoutMs) : undefined;
  // With only the ledger and no OTLP endpoint there is nowhere to send metrics unless asked explicitly.
  const metricPipeline = exporter !== 'ledger' || env.OTEL_METRICS_EXPORTER ? metricPipelineFromEnv(timeoutMs) : undefined;
  const sdk = new NodeSDK({
    instrumentations: [instrumentation],
    ...exportConfiguration(exporter, ledger, otlp, env),
    metricReaders: metricPipeline?.metricReaders ?? [],
  });
  sdk.start();
  otlp?.afterStart();
  // Loaded after the SDK patches are in place, so a hooks module may itself use the LLM SDKs.
  const hooks = loadHooks(env);
  if (hooks !== undefined) instrumentation.setConfig({ ...instrumentation.getConfig(), hooks });
  // The ledger opens at the first record (a lock held by another process is not an error: this
  // one journals); a directory that cannot hold it is reported now, loudly, and never stops the app.
  void ledger?.ready();

  let done: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    done ??= (async () => {
      metricPipeline?.closing();
      instrumentation.endOpenCalls();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          diag.error(`otel-llm-audit: shutdown did not finish within ${timeoutMs} ms; unsent spans may be lost`);
          resolve();
        }, timeoutMs);
      });
      try {
        await Promise.race([flushThenShutdown(sdk), timeout]);
      } catch (error) {
        diag.error('otel-llm-audit: shutdown failed', error);
      } finally {
        clearTimeout(timer);
      }
    })();
    return done;
  };
  installExitHooks(shutdown);
  started = { sdk, instrumentation, shutdown };
  return started;
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
export function auditSpanProcessors(env: NodeJS.ProcessEnv = process.env): NonNullable<NodeSDKConfiguration['spanProcessors']> {
  const pipeline = tracePipelineFromEnv(env, shutdownTimeoutMs(env));
  // The spool's metrics go to the global meter provider, which the application's SDK installs when
  // it starts, right after this returns.
  setImmediate(() => pipeline.afterStart());
  return pipeline.spanProcessors;
}

/**
 * Flushes the span processors, then shuts the SDK down. The flush matters: a span that ended while
 * the resource's asynchronous attributes (host.id...) were still pending waits for them before it
 * is exported, and a processor's shutdown alone does not wait for such exports.
 */
async function flushThenShutdown(sdk: NodeSDK): Promise<void> {
  const global = trace.getTracerProvider() as { getDelegate?(): unknown; forceFlush?(): Promise<void> };
  const provider = (global.getDelegate?.() ?? global) as { forceFlush?(): Promise<void> };
  try {
    await provider.forceFlush?.();
  } catch (error) {
    diag.error('otel-llm-audit: flushing the spans failed', error);
  }
  await sdk.shutdown();
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
function loadHooks(env: NodeJS.ProcessEnv): LlmAuditHooks | undefined {
  const path = env.LLM_AUDIT_HOOKS?.trim();
  if (!path) return undefined;
  let loaded: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(resolve(path));
  } catch (error) {
    throw new Error(`LLM_AUDIT_HOOKS=${path} cannot be loaded: ${(error as Error).message}`);
  }
  const hooks = loaded?.beforeRequest || loaded?.afterResponse ? loaded : loaded?.default;
  const { beforeRequest, afterResponse } = hooks ?? {};
  if (typeof beforeRequest !== 'function' && typeof afterResponse !== 'function') {
    throw new Error(`LLM_AUDIT_HOOKS=${path} exports neither a beforeRequest nor an afterResponse function`);
  }
  return {
    ...(typeof beforeRequest === 'function' ? { beforeRequest } : {}),
    ...(typeof afterResponse === 'function' ? { afterResponse } : {}),
  };
}

/**
 * The span pipeline for each `LLM_AUDIT_EXPORTER` value. The ledger gets each span as soon as it
 * ends (LedgerSpanProcessor): with the default fsync policy a finished call is on disk within
 * milliseconds, not held in a batch queue that a crash would lose. OTLP keeps the standard
 * batching and every `OTEL_*` setting, as NodeSDK builds it from the environment, except that the
 * OTLP exporter's batches spill to the durable spool (src/export) instead of being dropped when the
 * endpoint is down (unless LLM_AUDIT_SPOOL=off).
 */
function exportConfiguration(
  exporter: AuditExporter,
  ledger: LedgerSpanExporter | undefined,
  otlp: TracePipeline | undefined,
  env: NodeJS.ProcessEnv,
): Partial<NodeSDKConfiguration> {
  switch (exporter) {
    case 'otlp':
      // Built once, here (with LLM_AUDIT_SPOOL=off, exactly what NodeSDK would build from the
      // environment): leaving it to NodeSDK as well would build its exporters, and say its
      // warnings, a second time.
      return { spanProcessors: otlp!.spanProcessors };
    case 'console':
      return { traceExporter: new tracing.ConsoleSpanExporter() };
    case 'ledger':
      return {
        spanProcessors: [new LedgerSpanProcessor(ledger!)],
        // With no OTLP endpoint there is nowhere to send logs unless asked explicitly.
        ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
      };
    case 'both':
      return { spanProcessors: [new LedgerSpanProcessor(ledger!), ...otlp!.spanProcessors] };
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
