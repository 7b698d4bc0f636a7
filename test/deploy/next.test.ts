import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/otlp-receiver';
import { repoRoot } from '../support/harness';
import { appsDir, bin, closeFakeProvider, ensureDeployApps, expectAppWorked, expectEachCallOnce, serve, type Trail } from './support';

// Deployment matrix, family "Next.js": a real Next 16 App Router app (test/deploy/apps/next-app)
// whose route handler calls openai, integrated with the one documented instrumentation line
// (`export { register } from 'otel-llm-audit/next'`) and serverExternalPackages. Built with Turbopack
// (the default) and with webpack, started with `next start`; 3 requests must give 3 records.
// The builds are cached (.next, .next-webpack, .next-bundled) and rebuilt only when the app or the
// otel-llm-audit/next entry changed (content hash).

const appDir = join(appsDir, 'next-app');
const builds = { turbopack: '.next', webpack: '.next-webpack' } as const;
type Bundler = keyof typeof builds;
/** A Turbopack build without serverExternalPackages (next.config reads DEPLOY_NO_EXTERNALS). */
const BUNDLED_DIST = '.next-bundled';

/**
 * What a build depends on: the app's files and the otel-llm-audit/next entry that is bundled into
 * its instrumentation chunk. Hashed by content, so `npm run build` rewriting dist/ unchanged does
 * not force a rebuild.
 */
function buildInputs(dir = appDir, hash = createHash('sha256')): ReturnType<typeof createHash> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.next') || entry.name === 'node_modules' || entry.name === 'AGENTS.md' || entry.name === 'CLAUDE.md') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) buildInputs(path, hash);
    else hash.update(`${path}\0`).update(readFileSync(path));
  }
  return hash;
}

function build(bundler: Bundler, dist: string = builds[bundler], env: Record<string, string> = {}): void {
  const stamp = join(appDir, dist, 'deploy-matrix-inputs');
  const inputs = buildInputs()
    .update(readFileSync(join(repoRoot, 'dist', 'cjs', 'next.js')))
    .update(readFileSync(join(repoRoot, 'dist', 'esm', 'next.mjs')))
    .update(JSON.stringify(env))
    .digest('hex');
  if (existsSync(join(appDir, dist, 'BUILD_ID')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === inputs) {
    process.stdout.write(`deploy matrix: next build (${bundler}, ${dist}) up to date (cached)\n`);
    return;
  }
  const started = Date.now();
  execFileSync(bin('next'), ['build', ...(bundler === 'webpack' ? ['--webpack'] : [])], {
    cwd: appDir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NEXT_TELEMETRY_DISABLED: '1', NEXT_DIST_DIR: dist, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(stamp, inputs);
  process.stdout.write(`deploy matrix: next build (${bundler}, ${dist}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

beforeAll(() => {
  ensureDeployApps();
  build('turbopack');
  build('webpack');
  build('turbopack', BUNDLED_DIST, { DEPLOY_NO_EXTERNALS: '1' });
}, 600_000);
afterAll(() => closeFakeProvider());

async function threeRequests(url: string): Promise<unknown[]> {
  const answers: unknown[] = [];
  for (const n of [1, 2, 3]) {
    const response = await fetch(`${url}/api/chat?n=${n}`);
    answers.push(response.status === 200 ? ((await response.json()) as { answer: unknown }).answer : `HTTP ${response.status}`);
  }
  return answers;
}

const trails: Trail[] = ['ledger', 'otlp'];

describe.each(Object.keys(builds) as Bundler[])('next build (%s)', (bundler) => {
  it.each(trails)('next start, instrumentation.ts line, 3 requests: 3 records (%s)', async (trail) => {
    const port = await freePort();
    const d = await serve({
      command: bin('next'),
      args: ['start', '-p', String(port)],
      cwd: appDir,
      trail,
      env: { NEXT_DIST_DIR: builds[bundler] },
      url: `http://127.0.0.1:${port}/`,
      work: threeRequests,
    });
    expectAppWorked(d);
    expectEachCallOnce(d);
    expect(d.stderr).not.toMatch(/bundled into the server chunks/);
  }, 120_000);
});

it('next dev (Turbopack), instrumentation.ts line, 3 requests: 3 records', async () => {
  const port = await freePort();
  const d = await serve({
    command: bin('next'),
    args: ['dev', '-p', String(port)],
    cwd: appDir,
    trail: 'ledger',
    env: { NEXT_DIST_DIR: '.next-dev' },
    url: `http://127.0.0.1:${port}/`,
    work: threeRequests,
  });
  expectAppWorked(d);
  expectEachCallOnce(d);
}, 120_000);

it('next start without serverExternalPackages: said loudly at startup; each call still in the trail once', async () => {
  const port = await freePort();
  const d = await serve({
    command: bin('next'),
    args: ['start', '-p', String(port)],
    cwd: appDir,
    trail: 'ledger',
    env: { NEXT_DIST_DIR: BUNDLED_DIST },
    url: `http://127.0.0.1:${port}/`,
    work: threeRequests,
  });
  expectAppWorked(d);
  expect(d.stderr.match(/otel-llm-audit\/next: openai(, [@\w/.-]+)* (is|are) bundled into the server chunks, so (its|their) calls are NOT audited/g), d.stderr).toHaveLength(1);
  expectEachCallOnce(d);
}, 120_000);
