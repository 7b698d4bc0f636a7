/**
 * `require` from where @opentelemetry/sdk-node is installed. The exporters, and their configuration
 * helpers, are NodeSDK's dependencies, not this package's: resolved from there, they are exactly the
 * versions NodeSDK itself uses (the package pins @opentelemetry/sdk-node exactly).
 */
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';

/**
 * Where @opentelemetry/sdk-node's entry file is. Inside a bundle (Next.js with Turbopack or
 * webpack bundling this package into a server chunk), `require.resolve` is the bundler's and
 * answers a module id, not a path, which createRequire rejects (ERR_INVALID_ARG_VALUE, every
 * route failing): then Node's own resolution is used, from the process's directory, where the
 * app's node_modules are.
 */
function sdkNodeEntry(): string {
  let resolved: unknown;
  try {
    resolved = require.resolve('@opentelemetry/sdk-node');
  } catch {
    // not resolvable from here (a bundle that left it out): try from the app below
  }
  if (typeof resolved === 'string' && isAbsolute(resolved)) return resolved;
  return createRequire(join(process.cwd(), 'noop.js')).resolve('@opentelemetry/sdk-node');
}

export const sdkRequire = createRequire(sdkNodeEntry());

/** `require` from where one of NodeSDK's exporter packages is installed (for its own dependencies). */
export function exporterRequire(exporterPkg: string): NodeJS.Require {
  return createRequire(sdkRequire.resolve(exporterPkg));
}

// NodeSDK's own SDK packages, each loaded when first used. Never through @opentelemetry/sdk-node's
// entry point: it requires every exporter NodeSDK ships, which `register` then paid for at start
// (bench/results/startup.md) although one exporter, or none, is configured.
type SdkNode = typeof import('@opentelemetry/sdk-node');
export const sdkTracing = (): SdkNode['tracing'] => sdkRequire('@opentelemetry/sdk-trace-base') as SdkNode['tracing'];
export const sdkResources = (): SdkNode['resources'] => sdkRequire('@opentelemetry/resources') as SdkNode['resources'];
export const sdkMetrics = (): SdkNode['metrics'] => sdkRequire('@opentelemetry/sdk-metrics') as SdkNode['metrics'];
