import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { LlmAuditInstrumentation } from '../instrumentation';
import { loadPriceOverrides } from './prices-file';

export type AuditExporter = 'otlp' | 'console';

export interface StartedAudit {
  sdk: NodeSDK;
  instrumentation: LlmAuditInstrumentation;
  /** Ends open audit spans, flushes and shuts the SDK down. Safe to call more than once. */
  shutdown(): Promise<void>;
}

const EXPORTERS: readonly AuditExporter[] = ['otlp', 'console'];

/** Reads `LLM_AUDIT_EXPORTER`; a value that is not known is a configuration error. */
export function exporterFromEnv(env: NodeJS.ProcessEnv = process.env): AuditExporter {
  const value = env.LLM_AUDIT_EXPORTER?.trim().toLowerCase();
  if (value === undefined || value === '') return 'otlp';
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
 * http/json or grpc) plus the `LLM_AUDIT_*` ones, and makes sure it is flushed when the process
 * ends normally or is told to stop by SIGTERM / SIGINT.
 */
export function startAudit(env: NodeJS.ProcessEnv = process.env): StartedAudit {
  if (env.OTEL_LOG_LEVEL) {
    const level = DiagLogLevel[env.OTEL_LOG_LEVEL.toUpperCase() as keyof typeof DiagLogLevel];
    if (level !== undefined) diag.setLogger(new DiagConsoleLogger(), level);
  }
  const exporter = exporterFromEnv(env);
  const timeoutMs = shutdownTimeoutMs(env);
  const instrumentation = new LlmAuditInstrumentation({ prices: loadPriceOverrides(env) });
  const sdk = new NodeSDK({
    instrumentations: [instrumentation],
    // Left undefined, NodeSDK picks the OTLP exporter and protocol from OTEL_* variables.
    ...(exporter === 'console' ? { traceExporter: new tracing.ConsoleSpanExporter() } : {}),
  });
  sdk.start();

  let done: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    done ??= (async () => {
      instrumentation.endOpenCalls();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          diag.error(`otel-llm-audit: shutdown did not finish within ${timeoutMs} ms; unsent spans may be lost`);
          resolve();
        }, timeoutMs);
      });
      try {
        await Promise.race([sdk.shutdown(), timeout]);
      } catch (error) {
        diag.error('otel-llm-audit: shutdown failed', error);
      } finally {
        clearTimeout(timer);
      }
    })();
    return done;
  };
  installExitHooks(shutdown);
  return { sdk, instrumentation, shutdown };
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
