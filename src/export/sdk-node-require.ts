/**
 * `require` from where @opentelemetry/sdk-node is installed. The exporters, and their configuration
 * helpers, are NodeSDK's dependencies, not this package's: resolved from there, they are exactly the
 * versions NodeSDK itself uses (the package pins @opentelemetry/sdk-node exactly).
 */
import { createRequire } from 'node:module';

export const sdkRequire = createRequire(require.resolve('@opentelemetry/sdk-node'));

/** `require` from where one of NodeSDK's exporter packages is installed (for its own dependencies). */
export function exporterRequire(exporterPkg: string): NodeJS.Require {
  return createRequire(sdkRequire.resolve(exporterPkg));
}
