// `node --import otel-llm-audit/register app.mjs`
//
// ESM modules are linked before any of the application's code runs, so the loader hook that lets
// the instrumentation see `import 'openai'` must be installed before the application's graph is
// loaded: that is why this entry point is ESM and registers the hook first. Only the SDK packages
// this package patches are routed through the hook, which keeps every other module untouched.
// The CommonJS register does the rest (and, told by the flag, does not register the hook again).
import { register } from 'node:module';
import { createRequire } from 'node:module';
import { isMainThread, parentPort } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const ESM_HOOK = Symbol.for('otel-llm-audit.register.esm-hook');
// Node's loader-hooks thread runs no application code: nothing to do there.
if ((isMainThread || parentPort !== null) && globalThis[ESM_HOOK] === undefined) {
  globalThis[ESM_HOOK] = true;
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { include: require('../cjs/sdk/hooked-modules.js').HOOKED_MODULES },
  });
}

require('../cjs/register.js');
