/**
 * The package's main entry exports `startAudit`, `auditSpanProcessors` and `shutdownAudit` through
 * these functions so that `sdk/start` (and with it the SDK packages, exporters and resource
 * detectors it builds on) is loaded only when one of them is called. An application that brings
 * its own OpenTelemetry SDK and registers only the instrumentation never pays for that half.
 * Documentation of each function is on its implementation in ./start.ts.
 */
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type * as Start from './start';

function start(): typeof Start {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./start');
}

/** See {@link Start.startAudit}. */
export function startAudit(env?: NodeJS.ProcessEnv): Start.StartedAudit {
  return start().startAudit(env);
}

/** See {@link Start.auditSpanProcessors}. */
export function auditSpanProcessors(env?: NodeJS.ProcessEnv): NonNullable<NodeSDKConfiguration['spanProcessors']> {
  return start().auditSpanProcessors(env);
}

/** See {@link Start.shutdownAudit}. Nothing was started when ./start was never loaded. */
export function shutdownAudit(): Promise<void> {
  return require.cache[require.resolve('./start')] === undefined ? Promise.resolve() : start().shutdownAudit();
}
