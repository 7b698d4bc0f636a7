/**
 * `otel-llm-audit/next`: the Next.js integration, one line in the app's `instrumentation.ts`:
 *
 *     export { register } from 'otel-llm-audit/next';
 *
 * Next calls `register()` once in each server process before it serves requests (`next start`,
 * `next dev`, Turbopack or webpack). It starts the audit there, and only there: not in the Edge
 * runtime (no Node modules to patch) and not during `next build` (which makes no LLM call and whose
 * workers must not open the ledger).
 *
 * Next bundles server code: the LLM SDKs are audited when they stay external, which the app's
 * next.config says with `serverExternalPackages: ['openai', '@anthropic-ai/sdk']` (or when each client
 * is passed to auditClient()). That setting is checked here at startup, from the build's own record
 * of its configuration, and a missing one is said loudly on stderr.
 *
 * This module may itself be bundled into the instrumentation chunk: it loads the audit with Node's
 * own resolution and import (from the app's directory), so that the instrumentation, its module hooks and its
 * exporters are the installed package, never a bundled copy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The SDK packages the instrumentation patches: they must not be bundled into server chunks. */
export const LLM_SDK_PACKAGES: readonly string[] = ['openai', '@anthropic-ai/sdk', '@aws-sdk/client-bedrock-runtime', '@google/genai', '@mistralai/mistralai', 'ai'];

const REGISTERED = Symbol.for('otel-llm-audit.next.registered');

function say(message: string): void {
  process.stderr.write(`otel-llm-audit/next: ${message}\n`);
}

/** Node's require from the app's directory (where `next start` / `next dev` run). */
function appRequire(): NodeJS.Require {
  // turbopackIgnore: a path known only at run time, not a file for the build to trace.
  return createRequire(join(/*turbopackIgnore: true*/ process.cwd(), 'noop.js'));
}

/**
 * The LLM SDKs the app has installed that its build bundled instead of keeping external. Read from
 * the build's required-server-files.json (written by `next build` with the resolved config, so a
 * config function or wrapper is taken into account); empty when there is no such file (`next dev`).
 */
export function bundledLlmSdks(distDir = join(/*turbopackIgnore: true*/ process.cwd(), process.env.NEXT_DIST_DIR ?? '.next')): string[] {
  const file = join(/*turbopackIgnore: true*/ distDir, 'required-server-files.json');
  if (!existsSync(file)) return [];
  let external: unknown;
  try {
    external = JSON.parse(readFileSync(file, 'utf8'))?.config?.serverExternalPackages;
  } catch (error) {
    say(`cannot read ${file} to check serverExternalPackages: ${(error as Error).message}`);
    return [];
  }
  const listed = Array.isArray(external) ? external : [];
  const installed = (name: string): boolean => {
    try {
      // The package itself: openai does not export its package.json.
      appRequire().resolve(name);
      return true;
    } catch {
      return false;
    }
  };
  return LLM_SDK_PACKAGES.filter((name) => !listed.includes(name) && installed(name));
}

/** Node's own dynamic import, out of the bundler's sight (a bundled `import()` would be the bundler's). */
const nativeImport = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;

/** Next.js instrumentation hook: starts the audit in the Node.js server runtime. */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== undefined && process.env.NEXT_RUNTIME !== 'nodejs') return;
  if (process.env.NEXT_PHASE === 'phase-production-build') return;
  const global = globalThis as Record<symbol, unknown>;
  if (global[REGISTERED] === true) return;
  global[REGISTERED] = true;
  const bundled = bundledLlmSdks();
  if (bundled.length > 0) {
    say(
      `${bundled.join(', ')} ${bundled.length > 1 ? 'are' : 'is'} bundled into the server chunks, so ${bundled.length > 1 ? 'their' : 'its'} calls are NOT audited. ` +
        `Add serverExternalPackages: ${JSON.stringify([...LLM_SDK_PACKAGES])} to next.config, or pass each client to auditClient() (docs/deployment.md).`,
    );
  }
  // The ESM entry: Next loads external packages with import() (under a hashed name with
  // Turbopack), so the loader hook must be installed, which only the ESM entry does.
  const cjsEntry = appRequire().resolve('otel-llm-audit/register');
  await nativeImport(pathToFileURL(join(dirname(cjsEntry), '..', 'esm', 'register.mjs')).href);
}
