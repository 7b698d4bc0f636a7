import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FileLedger } from '../../src/ledger/file/ledger';
import { makeRecord, tempDir } from '../ledger/helpers';

export const ROOT = resolve(__dirname, '../..');
export const MAIN = join(ROOT, 'dist/cjs/cli/main.js');

function newestSource(): number {
  let newest = 0;
  for (const sub of ['src/ledger', 'src/cli']) {
    for (const name of readdirSync(join(ROOT, sub))) newest = Math.max(newest, statSync(join(ROOT, sub, name)).mtimeMs);
  }
  return newest;
}

/** The CLI tests run the compiled CLI; build it when it is missing or older than its sources. */
export function ensureBuilt(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestSource()) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: 'pipe' });
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`npm run build failed; the CLI tests need dist/cjs/cli/main.js:\n${out.slice(0, 2000)}`);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): CliResult {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Errors are one line per problem and never a stack trace. */
export function expectNoStack(result: CliResult): void {
  if (/^\s+at .+\(.*:\d+:\d+\)$/m.test(result.stderr) || /^\s+at /m.test(result.stderr)) {
    throw new Error(`stack trace printed:\n${result.stderr}`);
  }
}

/** A file ledger of `count` records 7 hours apart from 2026-03-01 (so over several daily segments), checkpointed every `every`. */
export async function ledger(opts: { key?: string; count?: number; every?: number } = {}): Promise<string> {
  const dir = join(tempDir('cli-'), 'ledger');
  let now = '2026-03-01T10:00:00.000Z';
  const writer = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now), checkpointEvery: opts.every ?? 4, ...(opts.key ? { signingKeyPath: opts.key } : {}) });
  const count = opts.count ?? 10;
  for (let i = 0; i < count; i++) {
    now = new Date(Date.parse('2026-03-01T10:00:00.000Z') + i * 3_600_000 * 7).toISOString();
    await writer.append([
      makeRecord({ timestamp: now, request_id: `r${i}`, user_id: i % 2 ? 'bob' : 'alice', status: i % 3 === 0 ? 'error' : 'success', cost_usd: 0.5, latency_ms: 100 }),
    ]);
  }
  await writer.close();
  return dir;
}
