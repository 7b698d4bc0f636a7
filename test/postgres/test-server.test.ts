/**
 * The test PostgreSQL server's life (issue 21): a test run stops the server it started when it
 * ends, leaves one that ran before it alone, `setup-postgres.sh stop` (npm run test:stop) stops
 * it, and two checkouts' servers run side by side. Every server here lives in a directory of its
 * own (LLM_AUDIT_PG_DIR), never the checkout's or a shared one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import setup, { stopTestServer, testServerRunning } from '../support/global-setup';
import { repoRoot } from '../support/processes';

const dirs: string[] = [];
function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pg-life-'));
  dirs.push(dir);
  return dir;
}

/** setup-postgres.sh with its cluster in `dir`; returns the URL it prints. */
function start(dir: string): string {
  const out = execFileSync('bash', [join(repoRoot, 'scripts/setup-postgres.sh')], { env: { ...process.env, LLM_AUDIT_PG_DIR: dir }, encoding: 'utf8', timeout: 300_000 });
  return out.trim().split('\n').pop()!;
}

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The run's globalSetup as vitest calls it, for a run whose test server lives in `dir`. */
function runOver(dir: string): () => void {
  const saved = { dir: process.env.LLM_AUDIT_PG_DIR, url: process.env.LLM_AUDIT_TEST_POSTGRES_URL };
  process.env.LLM_AUDIT_PG_DIR = dir;
  delete process.env.LLM_AUDIT_TEST_POSTGRES_URL;
  try {
    const teardown = setup();
    return () => {
      process.env.LLM_AUDIT_PG_DIR = dir;
      try {
        teardown();
      } finally {
        if (saved.dir === undefined) delete process.env.LLM_AUDIT_PG_DIR;
        else process.env.LLM_AUDIT_PG_DIR = saved.dir;
      }
    };
  } finally {
    if (saved.dir === undefined) delete process.env.LLM_AUDIT_PG_DIR;
    else process.env.LLM_AUDIT_PG_DIR = saved.dir;
    if (saved.url !== undefined) process.env.LLM_AUDIT_TEST_POSTGRES_URL = saved.url;
  }
}

afterAll(() => {
  for (const dir of dirs) {
    if (testServerRunning(dir)) stopTestServer(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('the test PostgreSQL server', () => {
  it('is stopped when the run that started it ends', async () => {
    const dir = newDir();
    const teardown = runOver(dir);
    const url = start(dir); // what test/support/postgres.ts does on the first test that needs it
    expect(await answers(url)).toBe(true);
    teardown();
    expect(testServerRunning(dir)).toBe(false);
    expect(await answers(url)).toBe(false);
  }, 300_000);

  it('is left alone when it ran before the run; `setup-postgres.sh stop` stops it', async () => {
    const dir = newDir();
    const url = start(dir);
    runOver(dir)();
    expect(await answers(url)).toBe(true);
    stopTestServer(dir);
    expect(await answers(url)).toBe(false);
    expect(existsSync(join(dir, 'data', 'postmaster.pid'))).toBe(false);
    stopTestServer(dir); // nothing running: still fine
  }, 300_000);

  it('two checkouts run their servers side by side, each stopped on its own', async () => {
    const [a, b] = [newDir(), newDir()];
    const [urlA, urlB] = [start(a), start(b)];
    expect(new URL(urlA).port).not.toBe(new URL(urlB).port);
    expect(await answers(urlA)).toBe(true);
    expect(await answers(urlB)).toBe(true);
    stopTestServer(a);
    expect(await answers(urlA)).toBe(false);
    expect(await answers(urlB)).toBe(true);
  }, 300_000);
});
