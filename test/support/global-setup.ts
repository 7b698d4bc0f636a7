/**
 * Once per test run (vitest globalSetup): the PostgreSQL server that scripts/setup-postgres.sh
 * starts on demand for the tests (test/support/postgres.ts) is stopped when the run ends, if this
 * run started it. A server that ran before the run (another run in the same checkout, or
 * `bash scripts/setup-postgres.sh` by hand) and one given by LLM_AUDIT_TEST_POSTGRES_URL are left
 * alone; `npm run test:stop` stops this checkout's server whenever it is left running.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

/** The directory setup-postgres.sh keeps this checkout's cluster in. */
export function testServerDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LLM_AUDIT_PG_DIR?.trim() || join(ROOT, '.cache', 'pg');
}

export function testServerRunning(dir: string): boolean {
  return existsSync(join(dir, 'data', 'postmaster.pid'));
}

/** Stops the server in `dir` (setup-postgres.sh stop); says so on stderr. */
export function stopTestServer(dir: string): void {
  execFileSync('bash', [join(ROOT, 'scripts', 'setup-postgres.sh'), 'stop'], {
    env: { ...process.env, LLM_AUDIT_PG_DIR: dir },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
}

/** vitest's globalSetup: returns the teardown that runs when the whole run ends. */
export default function setup(): () => void {
  const dir = testServerDir();
  const given = Boolean(process.env.LLM_AUDIT_TEST_POSTGRES_URL?.trim());
  const ranBefore = testServerRunning(dir);
  return () => {
    if (!given && !ranBefore && testServerRunning(dir)) stopTestServer(dir);
  };
}
