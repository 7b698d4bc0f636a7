import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, resolve } from 'node:path';

/** Repository root (test/support/../..). */
export const repoRoot = resolve(__dirname, '..', '..');
/** Where every spawned process writes its stdout and stderr. */
export const logDir = join(repoRoot, '.cache', 'logs');

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** File that receives the process's stdout and stderr. */
  readonly logFile: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Sends a signal (to the process group when started with `group`). */
  kill(signal: NodeJS.Signals): void;
  /** Set once the process has exited. */
  exitInfo(): ExitInfo | undefined;
  /** The last `lines` lines of the log file. */
  logTail(lines?: number): string;
  /** The whole log file. */
  log(): string;
  /** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. Safe to call twice. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface StartOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Run in a process group of its own and signal the whole group on stop (for scripts whose
   * children, such as a `go build`, must not outlive them).
   */
  group?: boolean;
}

const running = new Set<ManagedProcess>();

// Last resort when a test run is torn down without afterAll hooks (a crash, a worker killed on a
// timeout): never leave a collector or a Jaeger behind holding ports and lock files.
process.once('exit', () => {
  for (const p of running) {
    if (p.exitInfo() === undefined) p.kill('SIGKILL');
  }
});

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Spawns `command` with stdout and stderr going straight to a file under .cache/logs (named after
 * `name` and the time), so the output survives the test process and can be read while it runs.
 */
export function startProcess(name: string, command: string, options: StartOptions = {}): ManagedProcess {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}-${timestamp()}-${process.pid}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, options.args ?? [], {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: options.group === true,
    });
  } finally {
    closeSync(fd);
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (options.group && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  let info: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolveExit) => {
    child.once('exit', (code, signal) => {
      info = { code, signal };
      resolveExit(info);
    });
    child.once('error', (error) => {
      // spawn failure (ENOENT, EACCES): no 'exit' follows.
      info = { code: null, signal: null };
      try {
        appendFileSync(logFile, `\n[spawn error] ${error.message}\n`);
      } catch {
        // ignore
      }
      resolveExit(info);
    });
  });
  const managed: ManagedProcess = {
    name,
    child,
    logFile,
    exited,
    kill: signal,
    exitInfo: () => info,
    logTail: (lines = 40) => tail(logFile, lines),
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async stop(graceMs = 10_000) {
      if (info) {
        running.delete(managed);
        return info;
      }
      signal('SIGTERM');
      const timer = new Promise<'timeout'>((r) => {
        const t = setTimeout(() => r('timeout'), graceMs);
        t.unref();
      });
      if ((await Promise.race([exited, timer])) === 'timeout') {
        signal('SIGKILL');
      }
      const result = await exited;
      running.delete(managed);
      return result;
    },
  };
  running.add(managed);
  return managed;
}

/** Stops every process started through startProcess that is still running (in parallel). */
export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(graceMs)));
}

function describeExit(p: ManagedProcess): string {
  const info = p.exitInfo();
  return `${p.name} exited (code ${info?.code}, signal ${info?.signal}); log ${p.logFile}:\n${p.logTail()}`;
}

/**
 * Reserves `count` distinct free TCP ports on 127.0.0.1 by binding them all at once and then
 * releasing them. Another process could still take one before it is used; with ports from the
 * kernel's ephemeral range that is rare enough for tests.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolveListen, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolveListen(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Fail at once, with its log, if this process exits while waiting. */
  process?: ManagedProcess;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolveConnect(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/** Waits until a TCP connection to host:port succeeds. */
export async function waitForPort(host: string, port: number, options: WaitOptions = {}): Promise<void> {
  const { timeoutMs = 30_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (options.process?.exitInfo()) throw new Error(`waiting for ${host}:${port}: ${describeExit(options.process)}`);
    if (await canConnect(host, port)) return;
    if (Date.now() > deadline) {
      const extra = options.process ? `\n${options.process.name} log ${options.process.logFile}:\n${options.process.logTail()}` : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${host}:${port} to accept connections${extra}`);
    }
    await sleep(intervalMs);
  }
}

export interface WaitForHttpOptions extends WaitOptions {
  /** Which statuses count as ready (default: 2xx). */
  ready?: (status: number, body: string) => boolean;
}

/** Polls `url` with GET until `ready` accepts the answer; returns the last body. */
export async function waitForHttp(url: string, options: WaitForHttpOptions = {}): Promise<string> {
  const { timeoutMs = 30_000, intervalMs = 200, ready = (status: number) => status >= 200 && status < 300 } = options;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (options.process?.exitInfo()) throw new Error(`waiting for ${url}: ${describeExit(options.process)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      last = `HTTP ${res.status}: ${body.slice(0, 300)}`;
      if (ready(res.status, body)) return body;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) {
      const extra = options.process ? `\n${options.process.name} log ${options.process.logFile}:\n${options.process.logTail()}` : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${url} (last: ${last})${extra}`);
    }
    await sleep(intervalMs);
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 200 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (options.process?.exitInfo()) throw new Error(`waiting for ${what}: ${describeExit(options.process)}`);
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const extra = options.process ? `\n${options.process.name} log ${options.process.logFile}:\n${options.process.logTail()}` : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${extra}`);
    }
    await sleep(intervalMs);
  }
}

export interface RunResult extends ExitInfo {
  logFile: string;
  output: string;
}

/**
 * Runs a command to completion with its output in a log file under .cache/logs. Rejects (with
 * the log's tail) when it exits non-zero or takes longer than `timeoutMs` (then it is killed).
 */
export async function runToCompletion(name: string, command: string, options: StartOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const p = startProcess(name, command, options);
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void p.stop(5_000);
  }, timeoutMs);
  const info = await p.exited;
  clearTimeout(timer);
  running.delete(p);
  const output = p.log();
  if (timedOut) throw new Error(`${name} (${command} ${(options.args ?? []).join(' ')}) timed out after ${timeoutMs}ms; log ${p.logFile}:\n${p.logTail()}`);
  if (info.code !== 0) {
    throw new Error(`${name} (${command} ${(options.args ?? []).join(' ')}) failed (code ${info.code}, signal ${info.signal}); log ${p.logFile}:\n${p.logTail()}`);
  }
  return { ...info, logFile: p.logFile, output };
}

/** Ensures a directory exists and returns it. */
export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
