/**
 * The full audit pipeline of issue 5 with real processes, for the end-to-end tests:
 *
 *   app (--require otel-llm-audit/register) --OTLP/HTTP--> otelcol-llm-audit (collector-config.yaml)
 *       --OTLP gRPC--> Jaeger v2 (collector/jaeger-config.yaml, in-memory storage)
 *       --OTLP/HTTP JSON--> `llm-audit serve --ledger DIR` (dist/cjs/cli/main.js, the file ledger)
 *
 * Every process binds 127.0.0.1 on ports picked by freePorts(), so these tests can run beside the
 * collector smoke test; each writes its output to .cache/logs (test/support/processes.ts).
 *
 * Binaries: the build scripts run first (they return at once when the cached binaries are up to
 * date) unless LLM_AUDIT_E2E_BUILD=0; a missing binary is an error naming its build script, never
 * a skipped test.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import {
  freePorts,
  repoRoot,
  runToCompletion,
  startProcess,
  waitFor,
  waitForHttp,
  waitForPort,
  type ManagedProcess,
  type RunResult,
} from '../../support/processes';

export const HOST = '127.0.0.1';
export const binDir = join(repoRoot, '.cache', 'bin');
export const collectorBin = join(binDir, 'otelcol-llm-audit');
export const jaegerBin = join(binDir, 'jaeger');
/** The repository's own collector configuration: the tests run exactly what is shipped. */
export const collectorConfig = join(repoRoot, 'collector-config.yaml');
export const jaegerConfig = join(repoRoot, 'collector', 'jaeger-config.yaml');
export const cliPath = join(repoRoot, 'dist', 'cjs', 'cli', 'main.js');
export const BUILD_TIMEOUT_MS = 30 * 60_000;

/**
 * A small environment for child processes: nothing of the test runner leaks into them. Each gets
 * its own OTLP spool directory, so that spans one test's app had to keep (its collector was down)
 * are never adopted and sent by another test's app.
 */
export function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'e2e-spool-')) };
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * Says on the terminal what the test run is doing: vitest shows a test's output only when the
 * test ends, and a first Go build takes minutes. Written to file descriptor 2, which the test
 * worker shares with `npm test`.
 */
function announce(line: string): void {
  writeSync(2, `npm test: ${line}\n`);
}

/**
 * Runs a build script unless `script --check` finds its binary up to date (that needs no Go). A
 * build is announced (what, how long it usually takes, where its log is), then reported every
 * `everyMs`, then its time. Rejects with the log's tail when the build fails.
 */
export async function goBuild(script: string, what: string, options: { say?: (line: string) => void; everyMs?: number } = {}): Promise<'up to date' | 'built'> {
  const say = options.say ?? announce;
  try {
    execFileSync('bash', [script, '--check'], { stdio: 'ignore' });
    return 'up to date';
  } catch {
    // a build is needed
  }
  const started = Date.now();
  // Niced: the tests beside it keep their share of the machine.
  const p = startProcess(basename(script, '.sh'), 'nice', { args: ['-n', '10', 'bash', script], group: true });
  say(
    `building ${what} from Go modules (${relative(repoRoot, script)}) for the end-to-end tests; the first time, both Go builds ` +
      `take about 24 min on a 2-core machine; log: ${p.logFile} (LLM_AUDIT_E2E_BUILD=0 skips the build)`,
  );
  const minutes = () => Math.round((Date.now() - started) / 60_000);
  const heartbeat = setInterval(() => say(`still building ${what} (${minutes()} min so far; log: ${p.logFile})`), options.everyMs ?? 60_000);
  const timeout = setTimeout(() => void p.stop(5_000), BUILD_TIMEOUT_MS);
  const exit = await p.exited;
  clearInterval(heartbeat);
  clearTimeout(timeout);
  if (exit.code !== 0) throw new Error(`${relative(repoRoot, script)} failed (code ${exit.code}, signal ${exit.signal}); log ${p.logFile}:\n${p.logTail()}`);
  say(`built ${what} in ${minutes()} min`);
  return 'built';
}

/**
 * Builds (or finds up to date) the collector and Jaeger binaries, and checks that the package is
 * compiled. Throws with the command to run when something is missing.
 */
export async function ensureBinaries(): Promise<void> {
  if (process.env.LLM_AUDIT_E2E_BUILD !== '0') {
    // One after the other: two Go builds at once starve each other on small machines.
    await goBuild(join(repoRoot, 'scripts', 'build-jaeger.sh'), 'Jaeger v2 (where the collector sends traces)');
    await goBuild(join(repoRoot, 'scripts', 'build-collector.sh'), 'the OpenTelemetry Collector (otelcol-llm-audit)');
  }
  const missing: string[] = [];
  if (!existsSync(collectorBin)) missing.push(`${collectorBin} is missing: build it with \`bash scripts/build-collector.sh\` (needs Go and the Go module proxy)`);
  if (!existsSync(jaegerBin)) missing.push(`${jaegerBin} is missing: build it with \`bash scripts/build-jaeger.sh\` (needs Go and the Go module proxy)`);
  for (const file of [cliPath, join(repoRoot, 'dist', 'cjs', 'register.js'), join(repoRoot, 'dist', 'cjs', 'index.js')]) {
    if (!existsSync(file)) missing.push(`${file} is missing: compile the package with \`npm run build\``);
  }
  if (missing.length > 0) throw new Error(missing.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Jaeger

export interface Jaeger {
  process: ManagedProcess;
  /** host:port of its OTLP gRPC receiver (where the collector exports). */
  otlpGrpc: string;
  /** Base URL of the query service (/api/v3/...). */
  queryUrl: string;
}

export async function startJaeger(): Promise<Jaeger> {
  const [grpc, http, queryHttp, queryGrpc, health] = await freePorts(5);
  const p = startProcess('jaeger', jaegerBin, {
    args: ['--config', jaegerConfig],
    env: baseEnv({
      JAEGER_OTLP_GRPC_ENDPOINT: `${HOST}:${grpc}`,
      JAEGER_OTLP_HTTP_ENDPOINT: `${HOST}:${http}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `${HOST}:${queryHttp}`,
      JAEGER_QUERY_GRPC_ENDPOINT: `${HOST}:${queryGrpc}`,
      JAEGER_HEALTH_CHECK_ENDPOINT: `${HOST}:${health}`,
    }),
  });
  const queryUrl = `http://${HOST}:${queryHttp}`;
  await waitForPort(HOST, grpc!, { process: p, timeoutMs: 30_000 });
  await waitForHttp(`${queryUrl}/api/v3/services`, { process: p, timeoutMs: 30_000 });
  return { process: p, otlpGrpc: `${HOST}:${grpc}`, queryUrl };
}

export interface JaegerAnswer {
  status: number;
  /** The response body exactly as received (scanned for leaked content). */
  raw: string;
  spans: OtlpJsonSpan[];
}

/** GET /api/v3/traces/{traceId}: 404 gives no spans. */
export async function jaegerTrace(jaeger: Jaeger, traceId: string): Promise<JaegerAnswer> {
  const res = await fetch(`${jaeger.queryUrl}/api/v3/traces/${traceId}`, { signal: AbortSignal.timeout(10_000) });
  const raw = await res.text();
  if (res.status === 404) return { status: 404, raw, spans: [] };
  if (res.status !== 200) throw new Error(`Jaeger answered ${res.status} for trace ${traceId}: ${raw.slice(0, 500)}`);
  return { status: 200, raw, spans: spansOf(JSON.parse(raw).result) };
}

/** GET /api/v3/traces?query.service_name=...: every span of a service's traces in a time window. */
export async function jaegerFindTraces(jaeger: Jaeger, service: string, since: Date, numTraces = 1000): Promise<JaegerAnswer> {
  // query.num_traces must stay below the memstore's max_traces (collector/jaeger-config.yaml).
  const params = new URLSearchParams({
    'query.service_name': service,
    'query.start_time_min': new Date(since.getTime() - 60_000).toISOString(),
    'query.start_time_max': new Date(Date.now() + 60_000).toISOString(),
    'query.num_traces': String(numTraces),
  });
  const res = await fetch(`${jaeger.queryUrl}/api/v3/traces?${params}`, { signal: AbortSignal.timeout(10_000) });
  const raw = await res.text();
  if (res.status === 404) return { status: 404, raw, spans: [] };
  if (res.status !== 200) throw new Error(`Jaeger answered ${res.status} for the traces of ${service}: ${raw.slice(0, 500)}`);
  return { status: 200, raw, spans: spansOf(JSON.parse(raw).result) };
}

// ---------------------------------------------------------------------------------------------
// The collector (collector-config.yaml as shipped; only its environment variables are set)

export interface CollectorOptions {
  jaegerEndpoint: string;
  ledgerUrl: string;
  token: string;
  fileStorageDir: string;
  /** Extra variables collector-config.yaml reads (retry intervals, log level). */
  env?: Record<string, string>;
  /** Run as this uid (and gid), as the collector image does (needs root). */
  runAs?: number;
}

/** `command args` run as `uid`:`uid` with no supplementary groups (util-linux setpriv; needs root). */
export function asUid(uid: number | undefined, command: string, args: string[]): [string, string[]] {
  return uid === undefined ? [command, args] : ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', command, ...args]];
}

export class Collector {
  readonly otlpHttpUrl: string;
  readonly healthUrl: string;
  readonly metricsUrl: string;
  /** Every process started so far, the current one last. */
  readonly runs: ManagedProcess[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private readonly otlpHttpPort: number;
  private readonly runAs: number | undefined;

  private constructor(ports: number[], options: CollectorOptions) {
    this.runAs = options.runAs;
    const [grpc, http, health, metrics] = ports as [number, number, number, number];
    this.otlpHttpPort = http;
    this.otlpHttpUrl = `http://${HOST}:${http}`;
    this.healthUrl = `http://${HOST}:${health}/`;
    this.metricsUrl = `http://${HOST}:${metrics}/metrics`;
    this.env = baseEnv({
      OTELCOL_OTLP_GRPC_ENDPOINT: `${HOST}:${grpc}`,
      OTELCOL_OTLP_HTTP_ENDPOINT: `${HOST}:${http}`,
      OTELCOL_HEALTH_CHECK_ENDPOINT: `${HOST}:${health}`,
      OTELCOL_METRICS_HOST: HOST,
      OTELCOL_METRICS_PORT: String(metrics),
      OTELCOL_JAEGER_ENDPOINT: options.jaegerEndpoint,
      LLM_AUDIT_LEDGER_ENDPOINT: options.ledgerUrl,
      LLM_AUDIT_INGEST_TOKEN: options.token,
      OTELCOL_FILE_STORAGE_DIR: options.fileStorageDir,
      ...options.env,
    });
  }

  static async create(options: CollectorOptions): Promise<Collector> {
    return new Collector(await freePorts(4), options);
  }

  get process(): ManagedProcess | undefined {
    return this.runs[this.runs.length - 1];
  }

  /** Starts a collector process and waits until it is healthy and its OTLP/HTTP port accepts. */
  async start(): Promise<ManagedProcess> {
    const [command, args] = asUid(this.runAs, collectorBin, ['--config', collectorConfig]);
    const p = startProcess('otelcol-llm-audit', command, { args, env: this.env });
    this.runs.push(p);
    await waitForHttp(this.healthUrl, { process: p, timeoutMs: 30_000 });
    await waitForPort(HOST, this.otlpHttpPort, { process: p, timeoutMs: 10_000 });
    return p;
  }

  /** SIGTERM (SIGKILL after the grace period); throws unless it ended cleanly with status 0. */
  async stop(graceMs = 15_000): Promise<void> {
    const p = this.process;
    if (!p || p.exitInfo()) return;
    const exit = await p.stop(graceMs);
    if (exit.code !== 0) throw new Error(`the collector did not stop cleanly on SIGTERM (code ${exit.code}, signal ${exit.signal}); log ${p.logFile}:\n${p.logTail()}`);
  }

  /** Sends a signal (SIGKILL: a crash) and waits for the process to end, whatever its status. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const p = this.process;
    if (!p || p.exitInfo()) return;
    p.kill(signal);
    await p.stop(15_000);
  }

  /** The whole output of every collector process, in order. */
  log(): string {
    return this.runs.map((p) => p.log()).join('\n');
  }

  /** The collector's own Prometheus metrics (text format). */
  async metrics(): Promise<string> {
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(5_000) });
    return res.text();
  }
}

/** Sum of the samples of a Prometheus metric whose labels contain every `labels` entry. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let found = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    found = true;
    sum += Number(m[3]);
  }
  return found ? sum : undefined;
}

// ---------------------------------------------------------------------------------------------
// The ledger server: `llm-audit serve --ledger DIR`, used as a black box through the compiled CLI

export class LedgerServer {
  readonly url: string;
  readonly runs: ManagedProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly token: string,
    private readonly store: string[],
  ) {
    this.url = `http://${HOST}:${port}`;
  }

  /** A server on the file ledger in `dir`, or, with `postgresUrl`, on that database. */
  static async create(dir: string, token: string, postgresUrl?: string): Promise<LedgerServer> {
    const [port] = await freePorts(1);
    return new LedgerServer(dir, port!, token, postgresUrl === undefined ? ['--ledger', dir] : ['--postgres', postgresUrl]);
  }

  get process(): ManagedProcess | undefined {
    return this.runs[this.runs.length - 1];
  }

  /** Starts `llm-audit serve` on the ledger directory and waits for GET /healthz to answer 200. */
  async start(): Promise<ManagedProcess> {
    const p = startProcess('llm-audit-serve', process.execPath, {
      args: [cliPath, 'serve', ...this.store, '--host', HOST, '--port', String(this.port)],
      env: baseEnv({ LLM_AUDIT_INGEST_TOKEN: this.token }),
    });
    this.runs.push(p);
    await waitForHttp(`${this.url}/healthz`, { process: p, timeoutMs: 30_000 });
    return p;
  }

  /** SIGTERM; throws unless it finished its requests and exited with status 0. */
  async stop(graceMs = 15_000): Promise<void> {
    const p = this.process;
    if (!p || p.exitInfo()) return;
    const exit = await p.stop(graceMs);
    if (exit.code !== 0) throw new Error(`llm-audit serve did not stop cleanly on SIGTERM (code ${exit.code}, signal ${exit.signal}); log ${p.logFile}:\n${p.logTail()}`);
  }

  log(): string {
    return this.runs.map((p) => p.log()).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the file ledger (docs/ledger.md: DIR/segments/<day>.jsonl, one canonical JSON entry a line)

export interface LedgerEntry {
  seq: number;
  prev: string;
  record: Record<string, any>;
}

/** Every complete entry of the ledger, in file order (a line still being written is left out). */
export function ledgerEntries(dir: string): LedgerEntry[] {
  const segments = join(dir, 'segments');
  if (!existsSync(segments)) return [];
  const out: LedgerEntry[] = [];
  for (const name of readdirSync(segments).filter((n) => n.endsWith('.jsonl')).sort()) {
    const text = readFileSync(join(segments, name), 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    for (const line of complete.split('\n')) if (line) out.push(JSON.parse(line) as LedgerEntry);
  }
  return out;
}

/** Every byte of every file under the ledger directory. */
export function ledgerBytes(dir: string): Buffer {
  if (!existsSync(dir)) return Buffer.alloc(0);
  return Buffer.concat(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(join(entry.parentPath, entry.name))),
  );
}

/** `llm-audit verify --ledger DIR`; rejects (with its output) unless it exits 0. */
export function verifyLedger(dir: string): Promise<RunResult> {
  return runToCompletion('llm-audit-verify', process.execPath, { args: [cliPath, 'verify', '--ledger', dir], env: baseEnv(), timeoutMs: 60_000 });
}

/**
 * Waits until the ledger has stopped growing: the same number of entries for `quietMs` in a row
 * and, when `settled` is given, that check passing too (e.g. the collector's queue to the ledger
 * being empty). Returns the entries.
 */
export async function waitLedgerQuiet(
  dir: string,
  options: { quietMs?: number; timeoutMs?: number; settled?: () => Promise<boolean>; process?: ManagedProcess } = {},
): Promise<LedgerEntry[]> {
  const { quietMs = 3_000, timeoutMs = 60_000 } = options;
  let lastCount = -1;
  let since = Date.now();
  return waitFor(
    'the ledger to stop growing',
    async () => {
      const entries = ledgerEntries(dir);
      if (entries.length !== lastCount) {
        lastCount = entries.length;
        since = Date.now();
        return undefined;
      }
      if (Date.now() - since < quietMs) return undefined;
      if (options.settled && !(await options.settled())) {
        since = Date.now();
        return undefined;
      }
      return entries;
    },
    { timeoutMs, intervalMs: 250, ...(options.process ? { process: options.process } : {}) },
  );
}

// ---------------------------------------------------------------------------------------------
// OTLP JSON

export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
  events?: { name: string; attributes?: { key: string; value: Record<string, unknown> }[] }[];
  /** Added by spansOf: the resource attributes and the scope of the span. */
  resource?: Record<string, unknown>;
  scope?: string;
  [field: string]: unknown;
}

function scalar(value: Record<string, any> | undefined): unknown {
  if (!value) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('boolValue' in value) return value.boolValue;
  if ('arrayValue' in value) return (value.arrayValue?.values ?? []).map((v: Record<string, any>) => scalar(v));
  return value;
}

/** The attributes of an OTLP JSON span (or resource, or event) as a plain object. */
export function attributesOf(item: { attributes?: { key: string; value: Record<string, unknown> }[] } | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of item?.attributes ?? []) out[a.key] = scalar(a.value);
  return out;
}

/** Every span of an OTLP JSON TracesData, with its resource and scope attached. */
export function spansOf(doc: any): OtlpJsonSpan[] {
  const out: OtlpJsonSpan[] = [];
  for (const rs of doc?.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource);
    for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) out.push({ ...span, resource, scope: ss.scope?.name });
  }
  return out;
}

/** POSTs one OTLP/HTTP JSON export and checks that every span was accepted. */
export async function postOtlpJson(baseUrl: string, service: string, scope: string, spans: object[]): Promise<void> {
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ scope: { name: scope, version: '1.0.0' }, spans }],
      },
    ],
  };
  const res = await fetch(`${baseUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the collector answered ${res.status}: ${text}`);
  const answer = text ? JSON.parse(text) : {};
  if (Number(answer.partialSuccess?.rejectedSpans ?? 0) !== 0) throw new Error(`the collector rejected spans: ${text}`);
}

// ---------------------------------------------------------------------------------------------
// The whole stack, as every end-to-end test starts it

export interface Stack {
  jaeger: Jaeger;
  ledger: LedgerServer;
  collector: Collector;
}

/**
 * Jaeger, `llm-audit serve` (on `runDir/ledger`, or on PostgreSQL with `postgresUrl`) and the
 * collector with the repo's collector-config.yaml wired to both, each started and ready.
 */
export async function startStack(options: { runDir: string; token: string; postgresUrl?: string; collectorEnv?: Record<string, string> }): Promise<Stack> {
  const jaeger = await startJaeger();
  const ledger = await LedgerServer.create(join(options.runDir, 'ledger'), options.token, options.postgresUrl);
  await ledger.start();
  const collector = await Collector.create({
    jaegerEndpoint: jaeger.otlpGrpc,
    ledgerUrl: ledger.url,
    token: options.token,
    fileStorageDir: join(options.runDir, 'file_storage'),
    ...(options.collectorEnv ? { env: options.collectorEnv } : {}),
  });
  await collector.start();
  return { jaeger, ledger, collector };
}
