import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp, type AppRun } from '../support/child-app';
import { journaledIds, storedIds } from '../support/ledger-files';

// The ledger written by real application processes (the built package, `--require
// otel-llm-audit/register`) under load and when killed: group commit keeps the ledger up with
// the calls, so a SIGKILL loses at most the group being written and a SIGTERM loses nothing.

const cli = join(repoRoot, 'dist', 'cjs', 'cli', 'main.js');
const loadApp = join(repoRoot, 'test', 'fixtures', 'load-app.cjs');
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

function runApp(args: string[], env: Record<string, string>, onStdout?: Parameters<typeof runNodeApp>[2]): Promise<AppRun> {
  return runNodeApp(
    args,
    { FAKE_PROVIDER_URL: fake.url, OTEL_LOGS_EXPORTER: 'none', LLM_AUDIT_HASH_KEY: 'processes-test-hash-key-0123', ...env },
    onStdout,
    60_000,
  );
}

/**
 * The app's completion log: [time it logged the completion, request id]. A call the
 * instrumentation did not audit (no request id: a few do not, in old and new code alike, under
 * this load) has no record to look for and is left out.
 */
function completions(log: string): [number, string][] {
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => /^\d+ \S+$/.test(line) && !line.endsWith(' undefined'))
    .map((line) => {
      const [at, id] = line.split(' ');
      return [Number(at), id!];
    });
}

/** The longest a finished call may take to be durable in the ledger (one group commit, generously). */
const BATCH_INTERVAL_MS = 250;

describe('under load: 8 concurrent workers at full speed against the fake provider', () => {
  it('SIGTERM: every call the app finished is in the ledger (or its pending journal), once; verify OK', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-load-term-'));
    const log = join(dir, '..', `${dir.split('/').pop()}.log`);
    const result = await runApp(
      ['--require', 'otel-llm-audit/register', loadApp],
      { LLM_AUDIT_LEDGER_DIR: dir, APP_LOG: log, APP_MAX_CALLS: '20000', APP_SECONDS: '20', APP_READY_AFTER: '1' },
      (stdout, child) => {
        if (stdout.includes('ready\n') && !child.killed) setTimeout(() => child.kill('SIGTERM'), 3_000);
      },
    );
    expect(result.signal).toBe('SIGTERM');
    const done = completions(log).map(([, id]) => id);
    expect(done.length).toBeGreaterThan(100);
    const kept = [...storedIds(dir), ...journaledIds(dir)];
    const missing = done.filter((id) => !kept.includes(id));
    expect({ finished: done.length, missing: missing.map((id) => done.indexOf(id)) }).toEqual({ finished: done.length, missing: [] });
    expect(new Set(storedIds(dir)).size).toBe(storedIds(dir).length);
    const verify = spawnSync(process.execPath, [cli, 'verify', '--ledger', dir], { encoding: 'utf8' });
    expect(verify.status, verify.stderr).toBe(0);
  });

  it(`SIGKILL at a random moment: every call finished more than ${BATCH_INTERVAL_MS} ms before the kill is in the ledger`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-load-kill-'));
    const log = join(dir, '..', `${dir.split('/').pop()}.log`);
    let killedAt = 0;
    const delay = 2_000 + Math.floor(Math.random() * 3_000);
    const result = await runApp(
      ['--require', 'otel-llm-audit/register', loadApp],
      { LLM_AUDIT_LEDGER_DIR: dir, APP_LOG: log, APP_MAX_CALLS: '20000', APP_SECONDS: '20', APP_READY_AFTER: '1' },
      (stdout, child) => {
        if (stdout.includes('ready\n') && !child.killed) {
          setTimeout(() => {
            killedAt = Date.now();
            child.kill('SIGKILL');
          }, delay);
        }
      },
    );
    expect(result.signal).toBe('SIGKILL');
    const all = completions(log);
    const due = all.filter(([at]) => at < killedAt - BATCH_INTERVAL_MS).map(([, id]) => id);
    expect(due.length).toBeGreaterThan(50);
    const kept = new Set([...storedIds(dir), ...journaledIds(dir)]);
    const missing = due.filter((id) => !kept.has(id));
    expect({ due: due.length, missing: missing.map((id) => [id, killedAt - all.find(([, x]) => x === id)![0], all.findIndex(([, x]) => x === id)]) }).toEqual({ due: due.length, missing: [] });
  });
});
