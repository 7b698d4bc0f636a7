import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { expectedText, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { startOtlpReceiver, type JsonSpan } from '../support/otlp-receiver';

// The deployment matrix (issue 25): real processes started the ways Node apps are started, with the
// real runners, bundlers and OpenTelemetry neighbours from test/deploy/apps (its own lockfile). Each
// case is judged by two things only: the app did its work (exit 0, its 3 answers printed) and each of
// its 3 openai calls is in the audit trail exactly once (ledger or OTLP).

/** The fixture package: its node_modules holds the runners and bundlers, and otel-llm-audit -> this checkout. */
export const appsDir = join(repoRoot, 'test', 'deploy', 'apps');
export const srcDir = join(appsDir, 'src');
export const REGISTER = 'otel-llm-audit/register';
export const CLI = join(repoRoot, 'dist', 'cjs', 'cli', 'main.js');

/** A tool from the fixture package's node_modules/.bin. */
export function bin(name: string): string {
  return join(appsDir, 'node_modules', '.bin', name);
}

let ensured = false;

/**
 * Makes sure the fixture package is installed (scripts/install-test-sdks.mjs: `npm ci` from its
 * lockfile, skipped while node_modules is newer than the lockfile, time printed) and that dist/ is
 * built. Missing pieces fail the test file, never skip it.
 */
export function ensureDeployApps(): void {
  if (ensured) return;
  if (!existsSync(join(repoRoot, 'dist', 'cjs', 'register.js'))) throw new Error('dist/ is not built: run `npm run build` first');
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'install-test-sdks.mjs')], { stdio: 'inherit' });
  for (const needed of ['tsx', 'esbuild', 'webpack', 'next']) {
    if (!existsSync(bin(needed))) throw new Error(`test/deploy/apps is not installed (${needed} missing): run node scripts/install-test-sdks.mjs`);
  }
  if (!existsSync(join(appsDir, 'node_modules', 'otel-llm-audit', 'package.json'))) throw new Error('test/deploy/apps/node_modules/otel-llm-audit is missing');
  ensured = true;
}

let shared: FakeProvider | undefined;

/** One fake provider per test file. */
export async function fakeProvider(): Promise<FakeProvider> {
  shared ??= await startFakeProvider();
  return shared;
}

export async function closeFakeProvider(): Promise<void> {
  await shared?.close();
  shared = undefined;
}

export type Trail = 'ledger' | 'otlp';

/** One LLM call as the audit trail shows it. */
export interface TrailCall {
  model: string | undefined;
  action: string | undefined;
  status: string | undefined;
}

export interface Deployed {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The `ANSWERS [...]` line the app printed, parsed. */
  answers: unknown;
  /** Audit records (ledger) or audit spans (OTLP). */
  calls: TrailCall[];
  /** OTLP only: every span received, whatever its scope. */
  spans: JsonSpan[];
  /** Ledger only: what `llm-audit query` said when it could not read the ledger. */
  queryError?: string;
  ledgerDir?: string;
  trail: Trail;
}

export interface DeployOptions {
  /** Executable; default: this Node. */
  command?: string;
  args: string[];
  trail: Trail;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** Ledger directory to use instead of a fresh one (the unwritable-ledger case). */
  ledgerDir?: string;
}

/**
 * Runs one deployment: the command with exactly the environment a deployment would have (PATH,
 * HOME, the fake provider, the trail's settings and `env`), then reads the trail.
 */
export async function deploy(options: DeployOptions): Promise<Deployed> {
  return withTrail(options, async (env) => {
    const run = await spawnCollect(options.command ?? process.execPath, options.args, env, options.cwd ?? srcDir, options.timeoutMs ?? 40_000);
    const answersLine = /^ANSWERS (.*)$/m.exec(run.stdout);
    return { ...run, answers: answersLine ? JSON.parse(answersLine[1]) : undefined };
  });
}

/**
 * Runs a server deployment (`next start`): starts it, waits until `url` answers, lets `work` make
 * the requests (its result is the app's answers), stops it with SIGTERM as a supervisor would, then
 * reads the trail.
 */
export async function serve(options: DeployOptions & { url: string; work: (url: string) => Promise<unknown> }): Promise<Deployed> {
  return withTrail(options, async (env) => {
    const running = spawnCollect(options.command ?? process.execPath, options.args, env, options.cwd ?? srcDir, options.timeoutMs ?? 120_000);
    let answers: unknown;
    let child: { code: number | null } | undefined;
    running.then((r) => (child = r)).catch(() => undefined);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child !== undefined) break;
      try {
        await fetch(options.url);
        break;
      } catch {
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (child === undefined) answers = await options.work(options.url).catch((error: Error) => `work failed: ${error.message}`);
    running.stop();
    const run = await running;
    // A server stopped by its supervisor ends with SIGTERM's exit: 0, or 143 from a default handler.
    return { ...run, code: run.code === 143 || run.signal === 'SIGTERM' ? 0 : run.code, answers };
  });
}

async function withTrail(
  options: DeployOptions,
  run: (env: Record<string, string>) => Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; answers: unknown }>,
): Promise<Deployed> {
  const fake = await fakeProvider();
  const ledgerDir = options.trail === 'ledger' ? (options.ledgerDir ?? join(mkdtempSync(join(tmpdir(), 'deploy-ledger-')), 'ledger')) : undefined;
  const otlp = options.trail === 'otlp' ? await startOtlpReceiver() : undefined;
  try {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      FAKE_PROVIDER_URL: fake.url,
      // The fake provider stands for an LLM API host: a request to it that no audited call made
      // (an inlined SDK, a bare fetch) is recorded as unaudited, as one to api.openai.com would be.
      LLM_AUDIT_LLM_HOSTS: new URL(fake.url).host,
      LLM_AUDIT_HASH_KEY: 'deploy-matrix-hash-key-0123',
      LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'deploy-spool-')),
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'none',
      NEXT_TELEMETRY_DISABLED: '1',
      ...(ledgerDir !== undefined ? { LLM_AUDIT_LEDGER_DIR: ledgerDir } : {}),
      ...(otlp !== undefined ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } : {}),
      ...options.env,
    };
    const deployed: Deployed = { ...(await run(env)), calls: [], spans: [], ledgerDir, trail: options.trail };
    if (otlp !== undefined && spooled(env.LLM_AUDIT_SPOOL_DIR!)) {
      // A process that ended with process.exit() (its own, or a framework's signal handler) left
      // its last records in the spool and said so on stderr: the next process started with the
      // same settings sends them, which is what makes them part of the trail.
      const next = await spawnCollect(process.execPath, ['--require', REGISTER, '-e', ''], env, srcDir, 30_000);
      deployed.stderr += next.stderr;
    }
    if (ledgerDir !== undefined) {
      const query = spawnSync(process.execPath, [CLI, 'query', '--ledger', ledgerDir, '--format', 'json'], { encoding: 'utf8' });
      if (query.status === 0) {
        deployed.calls = parseRows(query.stdout)
          // The calls: not the audit.start record each audited process writes.
          .filter((r) => r.action !== 'audit.start')
          .map((r) => ({ model: str(r.model_requested), action: str(r.action), status: str(r.status) }));
      } else deployed.queryError = query.stderr.trim();
    } else {
      deployed.spans = otlp!.jsonSpans();
      // The audit records: this package's spans, not the trace copies an application's SDK exports
      // (the Collector's audit route drops those too).
      deployed.calls = deployed.spans
        .filter((s) => s.scope === 'otel-llm-audit' && s.attributes['llm_audit.trace_copy'] !== true)
        .map((s) => ({ model: str(s.attributes['gen_ai.request.model']), action: str(s.attributes['llm_audit.action']), status: str(s.attributes['llm_audit.status']) }));
    }
    return deployed;
  } finally {
    await otlp?.close();
  }
}

/** Whether a spool directory holds batches (files ending in .spool, in any process's subdirectory). */
function spooled(dir: string): boolean {
  try {
    return readdirSync(dir, { recursive: true }).some((name) => String(name).endsWith('.spool'));
  } catch {
    return false;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `query --format json` prints one array, or one object per line: accept both. */
function parseRows(text: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) return JSON.parse(trimmed);
  return trimmed.split('\n').map((line) => JSON.parse(line));
}

/** A child in a process group of its own; `stop()` sends SIGTERM to the whole group. */
function spawnCollect(command: string, args: string[], env: Record<string, string>, cwd: string, timeoutMs: number) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      // The whole group: npm, a spawning parent or a cluster primary must not leave children behind.
      group('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return Object.assign(done, { stop: () => group('SIGTERM') });
}

/** Judge (a): the app did its work. */
export function expectAppWorked(d: Deployed): void {
  const said = d.stderr.trim().split('\n').find((l) => /otel-llm-audit|error/i.test(l)) ?? d.stderr.trim().split('\n')[0] ?? '';
  const symptom = `SYMPTOM: app did not do its work: exit ${d.code ?? d.signal}, ${Array.isArray(d.answers) ? d.answers.length : 0} answers; stderr: ${said.slice(0, 200)}`;
  expect({ code: d.code, answers: d.answers }, `${symptom}\nstderr:\n${d.stderr}\nstdout:\n${d.stdout}`).toEqual({
    code: 0,
    answers: [expectedText(), expectedText(), expectedText()],
  });
}

/**
 * Judge (b): each of the 3 calls (models deploy-model-1..3) is in the trail exactly once, audited,
 * or recorded as unaudited. Over OTLP, also one GenAI span per call whichever instrumentation made
 * it (no second span from another instrumentation of the same call).
 */
export function expectEachCallOnce(d: Deployed): void {
  const said = d.stderr.trim().split('\n').find((l) => /otel-llm-audit/i.test(l)) ?? '';
  const symptom = `SYMPTOM: ${d.calls.length} audit ${d.trail === 'ledger' ? 'records' : 'spans'} for 3 calls${said === '' ? ', silent' : `; stderr: ${said.slice(0, 200)}`}`;
  const context = `${symptom}\nstderr:\n${d.stderr}\nquery: ${d.queryError ?? ''}\ntrail: ${JSON.stringify(d.calls)}`;
  const audited = d.calls.filter((c) => c.model?.startsWith('deploy-model-'));
  const unaudited = d.calls.filter((c) => c.status === 'unaudited');
  // The ledger keeps the response's model (the fake adds a snapshot date), OTLP the request's.
  const perModel = [1, 2, 3].map((n) => audited.filter((c) => new RegExp(`^deploy-model-${n}(-|$)`).test(c.model!)).length);
  expect({ perModel, total: audited.length + unaudited.length }, context).toEqual({
    // With unaudited records, a call may be there as one of those instead of under its model.
    perModel: unaudited.length > 0 ? perModel.map((k) => Math.min(k, 1)) : [1, 1, 1],
    total: 3,
  });
  if (d.spans.length > 0) {
    // What the tracing backend shows: the Collector's Jaeger route drops records that are not to be
    // forwarded (their call's trace span comes from the application's SDK, or was sampled out).
    const genAi = d.spans.filter((s) => String(s.attributes['gen_ai.request.model'] ?? '').startsWith('deploy-model-') && s.attributes['llm_audit.trace.forward'] !== false);
    // At most one per call: none when the application's own SDK exports the calls' trace spans
    // elsewhere (its exporter is not this endpoint), never two.
    const perCall = [1, 2, 3].map((n) => genAi.filter((x) => String(x.attributes['gen_ai.request.model']) === `deploy-model-${n}`).length);
    expect(perCall.every((k) => k <= 1), `SYMPTOM: ${genAi.length} GenAI spans for 3 calls (${[...new Set(genAi.map((x) => x.scope))].join(', ')})\n${context}`).toBe(true);
  }
}

/** The registration flag for a register mode. */
export function registerFlag(mode: 'require' | 'import'): string[] {
  return [`--${mode}`, REGISTER];
}
