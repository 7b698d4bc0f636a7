import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appsDir, bin, closeFakeProvider, deploy, ensureDeployApps, expectAppWorked, expectEachCallOnce, registerFlag, srcDir, type Trail } from './support';

// Deployment matrix, family "bundled apps": esbuild and webpack bundles in which openai is inlined
// (nothing requires the package, so the module patch never sees it), with and without auditClient().
// Issue 25.

const out = join(appsDir, 'out');
const bundles = {
  'esbuild: openai inlined': join(out, 'esbuild', 'app.cjs'),
  'webpack: openai inlined': join(out, 'webpack', 'app.cjs'),
};
const auditClientBundles = {
  esbuild: join(out, 'esbuild', 'audit-client-app.cjs'),
  webpack: join(out, 'webpack', 'audit-client-app.cjs'),
};
const externalBundles = {
  esbuild: join(out, 'esbuild', 'audit-client-app-external.cjs'),
  webpack: join(out, 'webpack', 'audit-client-app-external.cjs'),
};

/** Newest change among the app sources and the bundler config: a bundle older than that is rebuilt. */
function sourcesChanged(): number {
  return Math.max(statSync(join(appsDir, 'webpack.config.cjs')).mtimeMs, ...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs));
}

function stale(files: string[]): boolean {
  const since = sourcesChanged();
  return files.some((f) => !existsSync(f) || statSync(f).mtimeMs < since);
}

beforeAll(() => {
  ensureDeployApps();
  const esbuildOutputs = [bundles['esbuild: openai inlined'], auditClientBundles.esbuild, externalBundles.esbuild];
  if (stale(esbuildOutputs)) {
    const started = Date.now();
    const esbuild = (source: string, outfile: string, external: string[]) =>
      execFileSync(bin('esbuild'), [join(srcDir, source), '--bundle', '--platform=node', '--log-level=warning', `--outfile=${outfile}`, ...external.map((e) => `--external:${e}`)], { cwd: appsDir, stdio: 'inherit' });
    esbuild('app.cjs', esbuildOutputs[0], []);
    esbuild('audit-client-app.cjs', esbuildOutputs[1], ['otel-llm-audit']);
    esbuild('audit-client-app.cjs', esbuildOutputs[2], ['otel-llm-audit', 'openai']);
    process.stdout.write(`deploy matrix: esbuild bundles built in ${Date.now() - started} ms\n`);
  } else process.stdout.write('deploy matrix: esbuild bundles up to date (cached)\n');
  const webpackOutputs = [bundles['webpack: openai inlined'], auditClientBundles.webpack, externalBundles.webpack];
  if (stale(webpackOutputs)) {
    const started = Date.now();
    execFileSync(bin('webpack'), ['--config', join(appsDir, 'webpack.config.cjs')], { cwd: appsDir, stdio: ['ignore', 'ignore', 'inherit'] });
    process.stdout.write(`deploy matrix: webpack bundles built in ${Date.now() - started} ms\n`);
  } else process.stdout.write('deploy matrix: webpack bundles up to date (cached)\n');
  for (const f of [...esbuildOutputs, ...webpackOutputs]) if (!existsSync(f)) throw new Error(`bundle not built: ${f}`);
}, 300_000);
afterAll(() => closeFakeProvider());

const modes = ['require', 'import'] as const;
const trails: Trail[] = ['ledger', 'otlp'];

describe.concurrent.each(trails)('trail: %s', (trail) => {
  describe.each(modes)('--%s otel-llm-audit/register', (mode) => {
    it.each(Object.entries(bundles))('%s, no code change', async (_label, file) => {
      const d = await deploy({ args: [...registerFlag(mode), file], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });
  });
});

describe.concurrent.each(modes)('--%s otel-llm-audit/register', (mode) => {
  it.each(Object.entries(auditClientBundles))('%s: openai inlined, auditClient(client): 3 records', async (_label, file) => {
    const d = await deploy({ args: [...registerFlag(mode), file], trail: 'ledger' });
    expectAppWorked(d);
    expectEachCallOnce(d);
  });

  it.each(Object.entries(externalBundles))('%s: openai external (patched), auditClient(client) adds nothing: still 3 records', async (_label, file) => {
    const d = await deploy({ args: [...registerFlag(mode), file], trail: 'ledger' });
    expectAppWorked(d);
    expectEachCallOnce(d);
  });
});

it.each(Object.entries(auditClientBundles))('%s: auditClient(client) with no audit started says so on stderr, the app still works', async (_label, file) => {
  const d = await deploy({ args: [file], trail: 'ledger' });
  expectAppWorked(d);
  expect(d.stderr.match(/auditClient\(\).*not started/g)).toHaveLength(1);
});
