import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/otlp-receiver';
import { repoRoot } from '../support/harness';
import { appsDir, bin, closeFakeProvider, ensureDeployApps, expectAppWorked, expectEachCallOnce, serve, type Trail } from './support';

// Deployment matrix, family "Next.js": a real Next 16 App Router app (test/deploy/apps/next-app)
// whose route handler calls openai, integrated with the one documented instrumentation line
// (`export { register } from 'otel-llm-audit/next'`) and serverExternalPackages. Built with Turbopack
// (the default) and with webpack, started with `next start`; 3 requests must give 3 records.
// The builds are cached (.next, .next-webpack) and rebuilt only when the app or dist changed.

const appDir = join(appsDir, 'next-app');
const builds = { turbopack: '.next', webpack: '.next-webpack' } as const;
type Bundler = keyof typeof builds;

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.next') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

function build(bundler: Bundler): void {
  const distDir = join(appDir, builds[bundler]);
  const buildId = join(distDir, 'BUILD_ID');
  const since = Math.max(newest(appDir), statSync(join(repoRoot, 'dist', 'cjs', 'next.js')).mtimeMs);
  if (existsSync(buildId) && statSync(buildId).mtimeMs >= since) {
    process.stdout.write(`deploy matrix: next build (${bundler}) up to date (cached)\n`);
    return;
  }
  const started = Date.now();
  execFileSync(bin('next'), ['build', ...(bundler === 'webpack' ? ['--webpack'] : [])], {
    cwd: appDir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NEXT_TELEMETRY_DISABLED: '1', NEXT_DIST_DIR: builds[bundler] },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  process.stdout.write(`deploy matrix: next build (${bundler}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

beforeAll(() => {
  ensureDeployApps();
  build('turbopack');
  build('webpack');
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
