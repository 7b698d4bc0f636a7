/**
 * The audit context follows async work through OpenTelemetry's global context manager, which the
 * application's own SDK normally installs. When nothing installed one (this package's `register`
 * registers no SDK globally), one is installed here: NodeSDK's own default, the
 * AsyncLocalStorage-based manager. Only when it is first needed (an audit scope or an audited
 * call), never at startup: an SDK the application starts later (Sentry, its own NodeSDK) must be
 * able to install its own, and the API refuses a second registration (also, with another version
 * of @opentelemetry/api, every registration of the application's SDK: tracer provider included).
 */
import { context, createContextKey, ROOT_CONTEXT, type ContextManager } from '@opentelemetry/api';
import { sdkRequire } from '../export/sdk-node-require';

const PROBE = createContextKey('otel-llm-audit context probe');
let wanted = false;
let settled = false;

/** From now on, {@link ensureContextManager} may install a manager (register calls this). */
export function wantContextManager(): void {
  wanted = true;
}

/** Installs a context manager if audit scopes need one and none works yet. Cheap once settled. */
export function ensureContextManager(): void {
  if (settled || !wanted) return;
  settled = true;
  if (context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true)) return;
  // NodeSDK's default manager, as its setupContextManager(undefined) installs it (without loading
  // NodeSDK's utils, which require every exporter it ships).
  const { AsyncLocalStorageContextManager } = sdkRequire('@opentelemetry/context-async-hooks') as {
    AsyncLocalStorageContextManager: new () => ContextManager & { enable(): ContextManager };
  };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
