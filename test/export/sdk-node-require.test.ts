import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import { expect, it } from 'vitest';
import { repoRoot } from '../support/harness';

// Inside a bundle (Next.js with Turbopack or webpack bundling this package into a server chunk)
// `require.resolve('@opentelemetry/sdk-node')` answers the bundler's module id, not a path, and
// createRequire(id) threw ERR_INVALID_ARG_VALUE: every Next route answered 500. The module must
// then fall back to Node's own resolution. Run the built module as a bundler runs it: with a
// `require` whose `resolve` gives a module id.

function loadAsBundled(resolved: unknown): { sdkRequire: NodeJS.Require; exporterRequire(pkg: string): NodeJS.Require } {
  const file = join(repoRoot, 'dist', 'cjs', 'export', 'sdk-node-require.js');
  const wrapper = runInThisContext(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`);
  const real = createRequire(file);
  const bundlerRequire = Object.assign((id: string) => real(id), { resolve: () => resolved });
  const module = { exports: {} as any };
  wrapper(module.exports, bundlerRequire, module, '/ROOT/chunk.js', '/ROOT');
  return module.exports;
}

it.each([
  ['a Turbopack/webpack module id', 4242],
  ['a relative id', './node_modules/@opentelemetry/sdk-node/build/src/index.js'],
])('require.resolve giving %s: falls back to Node resolution from the app directory', (_label, id) => {
  const { sdkRequire, exporterRequire } = loadAsBundled(id);
  const exporter = sdkRequire.resolve('@opentelemetry/exporter-trace-otlp-http');
  expect(exporter).toMatch(/exporter-trace-otlp-http/);
  expect(exporterRequire('@opentelemetry/exporter-trace-otlp-http').resolve('@opentelemetry/otlp-exporter-base')).toMatch(/otlp-exporter-base/);
});
