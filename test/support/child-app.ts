import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './harness';

/** How a child-process application ended, with everything it printed. */
export interface AppRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node <args>` from the repository root with exactly `env` (plus PATH): nothing of the test
 * runner's own environment (OTEL_*, LLM_AUDIT_*) leaks into the application. `onStdout` sees the
 * output so far each time more arrives (to signal the child at the right moment). A child still
 * running after `timeoutMs` is killed and the run fails with what it printed.
 */
export function runNodeApp(
  args: string[],
  env: Record<string, string>,
  onStdout?: (text: string, child: ChildProcess) => void,
  timeoutMs = 30_000,
  /** The Node binary (another line than the runner's: test/support/node24.ts). */
  node = process.execPath,
): Promise<AppRun> {
  return new Promise<AppRun>((resolve, reject) => {
    const child = spawn(node, args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`app timed out; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
