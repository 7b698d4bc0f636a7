/**
 * `node --require otel-llm-audit/register app.js` (or `--import`, see src/esm/register.mjs): starts
 * the audit before the application loads its LLM SDKs.
 *
 * Once per thread that runs application code, never in Node's loader-hooks thread: on Node 20,
 * anything that calls `module.register()` (tsx, Sentry, any loader, and this file itself) starts
 * that thread and Node runs the `--require` preloads again inside it, where no application code
 * ever runs. Worker threads are audited like the main thread; their records reach the same ledger
 * through the ledger's multi-writer path.
 *
 * From `--require`, the ESM loader hook is registered too, so that `import 'openai'` and
 * `await import('openai')` are patched as well as `require('openai')`: one command for CommonJS,
 * ESM and TypeScript runners.
 *
 * A configuration error stops the process here, at startup, with `otel-llm-audit: CODE: message`
 * (every problem listed) and exit status 78: running without
 * the audit trail the operator asked for would be the worse failure. Problems with where the records
 * go (a locked or unwritable ledger) do not stop the application; they are reported loudly.
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort } from 'node:worker_threads';
import { AuditError, EXIT, isAuditError, renderError } from './errors';
import { HOOKED_MODULES } from './sdk/hooked-modules';
import { startAudit } from './sdk/start';
import { preloadInWorkers } from './sdk/workers';

const STARTED = Symbol.for('otel-llm-audit.register.started');
/** Set by the ESM entry point, which registers the loader hook itself before the application's graph loads. */
const ESM_HOOK = Symbol.for('otel-llm-audit.register.esm-hook');
const global = globalThis as { [STARTED]?: true; [ESM_HOOK]?: true };

const loaderHooksThread = !isMainThread && parentPort === null;

if (!loaderHooksThread && global[STARTED] === undefined) {
  global[STARTED] = true;
  try {
    startAudit(process.env);
  } catch (error) {
    // Whatever stops the start is a configuration problem to the operator: its code (CONFIG_INVALID
    // and its list, or the LEDGER_/CONTENT_ code of a key or directory that cannot be used), exit 78.
    const shown = isAuditError(error) ? error : new AuditError('CONFIG_INVALID', error instanceof Error ? error.message : String(error));
    process.stderr.write(renderError(shown, 'otel-llm-audit', process.env.LLM_AUDIT_DEBUG === '1').join('\n') + '\n');
    process.exit(EXIT.config);
  }
  if (global[ESM_HOOK] === undefined) registerEsmHook();
  preloadInWorkers(__filename);
}

function registerEsmHook(): void {
  global[ESM_HOOK] = true;
  if (typeof register !== 'function') return; // Node < 20.6: CommonJS only, as documented
  try {
    register('@opentelemetry/instrumentation/hook.mjs', pathToFileURL(__filename), { data: { include: HOOKED_MODULES } });
  } catch (error) {
    process.stderr.write(`otel-llm-audit: could not register the ESM loader hook; SDKs loaded with import are not audited: ${(error as Error).message}\n`);
  }
}
