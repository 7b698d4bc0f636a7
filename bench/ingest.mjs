#!/usr/bin/env node
// Ingest benchmark of `llm-audit serve`: spans per second over OTLP/HTTP (protobuf, gzip, batches
// of 512 spans, as an OpenTelemetry Collector's otlphttp exporter sends them) into each backend,
// the latency of one batch, and the server's memory under a flood. Loopback only, bounded in time.
//
//   npm run build && node bench/ingest.mjs [--seconds 5] [--backends file-always,file-batch,postgres]
//                                          [--batch 512] [--out DIR] [--dist DIR]
//
// PostgreSQL: $LLM_AUDIT_BENCH_POSTGRES_URL (a superuser URL), else $LLM_AUDIT_TEST_POSTGRES_URL (the
// tests' one), else scripts/setup-postgres.sh (which starts a local server, installing PostgreSQL
// if it can). When none of them gives a server, the PostgreSQL row says "not run" and why; so does
// the row of a backend left out of --backends.
//
// Prints a markdown table on stdout and writes it to ingest.md, with every number and the run's
// metadata in ingest.json, in --out DIR (default bench/results; bench/run.mjs puts both in its
// report). --dist DIR: the build whose `llm-audit serve` is measured (default dist/cjs).
// --onto-ledger DIR / --onto-postgres URL: append to that existing ledger (e.g. the 1M-record one
// bench/scale.mjs keeps) instead of a fresh one, to see serve's memory beside a large ledger; its
// records are added to, not copied. --label NAME: write ingest-NAME.md / .json instead. Progress
// on stderr. Not run by the tests.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { machineInfo, renderIngestMarkdown } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const require = createRequire(import.meta.url);
const pb = require('otlp-transformer-protobufjs/build/src/generated/root').opentelemetry.proto.collector.trace.v1;
const { Client } = require('pg');

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    backends: { type: 'string', default: 'file-always,file-batch,postgres' },
    batch: { type: 'string', default: '512' },
    out: { type: 'string' },
    dist: { type: 'string' },
    'onto-ledger': { type: 'string' },
    'onto-postgres': { type: 'string' },
    label: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const BATCH = Number(args.batch);
const BACKENDS = {
  'file-always': 'file ledger, fsync always',
  'file-batch': 'file ledger, fsync batch',
  postgres: 'PostgreSQL',
};
const selected = args.backends.split(',').map((name) => name.trim()).filter(Boolean);
const MAIN = join(resolve(args.dist ?? join(root, 'dist/cjs')), 'cli/main.js');
const outDir = resolve(args.out ?? join(benchDir, 'results'));
const log = (line) => process.stderr.write(`bench: ${line}\n`);
const fail = (message) => {
  console.error(`ingest bench: ${message}`);
  process.exit(2);
};
if (!(SECONDS > 0)) fail('--seconds must be a positive number');
if (!Number.isInteger(BATCH) || BATCH < 1) fail('--batch must be a positive integer');
for (const name of selected) if (!BACKENDS[name]) fail(`unknown backend ${name} (known: ${Object.keys(BACKENDS).join(', ')})`);
if (!existsSync(MAIN)) fail(`${MAIN} is missing: run \`npm run build\` first`);
const started = Date.now();
const loadBefore = os.loadavg();

// --- Requests ------------------------------------------------------------------------------------

let spanCounter = 0;
const runTag = randomBytes(4).toString('hex');

/** One ExportTraceServiceRequest of `n` audit spans (fresh ids each time), protobuf + gzip. */
function batchBody(n) {
  const spans = [];
  const traceId = Buffer.concat([Buffer.from(runTag, 'hex'), randomBytes(12)]);
  const start = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < n; i++) {
    spanCounter++;
    spans.push({
      traceId,
      spanId: Buffer.from(spanCounter.toString(16).padStart(16, '0'), 'hex'),
      name: 'chat gpt-4o-mini',
      kind: 3,
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: (start + 850_000_000n).toString(),
      attributes: [
        ['gen_ai.operation.name', 'chat'],
        ['gen_ai.provider.name', 'openai'],
        ['gen_ai.request.model', 'gpt-4o-mini'],
        ['gen_ai.response.model', 'gpt-4o-mini-2024-07-18'],
        ['llm_audit.request_id', `bench-${runTag}-${spanCounter}`],
        ['llm_audit.action', 'chat.completions.create'],
        ['llm_audit.status', 'success'],
        ['llm_audit.input.hash', 'hmac-sha256:k1:' + 'ab'.repeat(32)],
        ['llm_audit.output.hash', 'hmac-sha256:k1:' + 'cd'.repeat(32)],
        ['user.id', `user-${spanCounter % 97}`],
        ['session.id', `session-${spanCounter % 1013}`],
      ]
        .map(([key, stringValue]) => ({ key, value: { stringValue } }))
        .concat([
          { key: 'gen_ai.usage.input_tokens', value: { intValue: 1000 + (spanCounter % 500) } },
          { key: 'gen_ai.usage.output_tokens', value: { intValue: 120 } },
          { key: 'gen_ai.usage.cost.amount', value: { doubleValue: 0.000231 } },
        ]),
      status: { code: 1 },
    });
  }
  const message = pb.ExportTraceServiceRequest.fromObject({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bench' } }] }, scopeSpans: [{ scope: { name: 'otel-llm-audit' }, spans }] }],
  });
  return gzipSync(pb.ExportTraceServiceRequest.encode(message).finish());
}

function send(url, body) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
      },
    );
    req.on('error', (error) => resolve({ status: 0, ms: 0, error }));
    req.end(body);
  });
}

import { Agent } from 'node:http';
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** Clock ticks per second of /proc/PID/stat's CPU times (getconf CLK_TCK; 100 on Linux). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// --- Server --------------------------------------------------------------------------------------

async function startServe(storeArgs, extra = []) {
  const proc = spawn(process.execPath, [MAIN, 'serve', '--port', '0', ...storeArgs, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c) => (out += c));
  proc.stderr.on('data', (c) => (err += c));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${err}`)), 30_000);
    proc.stdout.on('data', () => {
      const m = /listening on (http:\/\/\S+\/v1\/traces)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return {
    url,
    pid: proc.pid,
    /** The server's CPU time so far (user + system, ms), from /proc; NaN where there is none. */
    cpuMs() {
      try {
        const fields = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
      } catch {
        return NaN;
      }
    },
    rssMiB() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        return m ? Number(m[1]) / 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((resolve) => proc.on('exit', resolve));
    },
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `clients` loops sending fresh batches for `seconds`; returns spans/s and latencies. */
async function load(url, clients, seconds, bodies) {
  const deadline = Date.now() + seconds * 1000;
  const latencies = [];
  const statuses = {};
  let spans = 0;
  let k = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < deadline) {
        const body = bodies[k++ % bodies.length];
        const r = await send(url, body.gz);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) {
          spans += body.n;
          latencies.push(r.ms);
        } else if (r.status === 503) {
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    clients,
    seconds: Number(elapsed.toFixed(2)),
    spans,
    spansPerSec: Math.round(spans / elapsed),
    p50Ms: Number(percentile(latencies, 50).toFixed(1)),
    p99Ms: Number(percentile(latencies, 99).toFixed(1)),
    statuses,
  };
}

function prepare(count) {
  // Each body is sent once per round; ids stay unique because bodies are regenerated per phase.
  return Array.from({ length: count }, () => ({ gz: batchBody(BATCH), n: BATCH }));
}

// --- Backends ------------------------------------------------------------------------------------

/** Where the PostgreSQL server came from (never the URL itself: it may hold a password). */
let postgresSource = null;

/** A superuser URL, or throws an Error saying why there is no server. */
function postgresAdminUrl() {
  for (const name of ['LLM_AUDIT_BENCH_POSTGRES_URL', 'LLM_AUDIT_TEST_POSTGRES_URL']) {
    const given = process.env[name]?.trim();
    if (given) {
      postgresSource = `$${name}`;
      return given;
    }
  }
  postgresSource = 'scripts/setup-postgres.sh';
  const run = spawnSync('bash', [join(root, 'scripts/setup-postgres.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  if (run.stderr) process.stderr.write(run.stderr);
  if (run.error || run.status !== 0) {
    const why = run.error?.message ?? `exited ${run.status ?? run.signal}: ${run.stderr.trim().split('\n').pop()}`;
    throw new Error(why);
  }
  return run.stdout.trim().split('\n').pop();
}

/** Thrown when a backend cannot be set up: its row says "not run" and why. */
class Unavailable extends Error {}

async function backend(name) {
  if ((name === 'file-always' || name === 'file-batch') && args['onto-ledger']) {
    return { label: `${BACKENDS[name]}, onto ${args['onto-ledger']}`, args: ['--ledger', resolve(args['onto-ledger']), '--fsync', name === 'file-always' ? 'always' : 'batch'], cleanup: async () => undefined };
  }
  if (name === 'postgres' && args['onto-postgres']) {
    return { label: `${BACKENDS.postgres}, onto the database ${new URL(args['onto-postgres']).pathname.slice(1)}`, args: ['--postgres', args['onto-postgres']], cleanup: async () => undefined };
  }
  if (name === 'file-always' || name === 'file-batch') {
    const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
    return {
      label: BACKENDS[name],
      args: ['--ledger', join(dir, 'ledger'), '--fsync', name === 'file-always' ? 'always' : 'batch'],
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (name === 'postgres') {
    const db = `bench_${runTag}`;
    let admin;
    try {
      admin = postgresAdminUrl();
      const c = new Client({ connectionString: admin, connectionTimeoutMillis: 15_000 });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${db}`);
      } finally {
        await c.end();
      }
    } catch (error) {
      throw new Unavailable(`PostgreSQL unavailable (${postgresSource}): ${error.message}`);
    }
    const u = new URL(admin);
    u.pathname = `/${db}`;
    const url = u.toString();
    const cleanup = async () => {
      const d = new Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await d.end();
    };
    try {
      execFileSync(process.execPath, [MAIN, 'migrate', '--postgres', url], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    } catch (error) {
      await cleanup();
      throw new Error(`llm-audit migrate failed: ${(error.stderr || error.message).trim().split('\n').pop()}`);
    }
    return { label: BACKENDS.postgres, args: ['--postgres', url], cleanup };
  }
  throw new Error(`unknown backend ${name}`);
}

// --- Main ----------------------------------------------------------------------------------------

const rows = [];
for (const name of Object.keys(BACKENDS)) {
  if (!selected.includes(name)) {
    rows.push({ backend: name, label: BACKENDS[name], status: 'not run', reason: 'left out by --backends' });
    continue;
  }
  let b;
  try {
    b = await backend(name);
  } catch (error) {
    const status = error instanceof Unavailable ? 'not run' : 'failed';
    log(`${BACKENDS[name]}: ${status}: ${error.message}`);
    rows.push({ backend: name, label: BACKENDS[name], status, reason: error.message });
    continue;
  }
  try {
    // 1. One client, one batch at a time: the latency of a batch and the sequential rate.
    log(`${b.label}: one client`);
    let server = await startServe(b.args);
    const one = await load(server.url, 1, SECONDS, prepare(200));
    // 2. Eight clients in parallel (a few collectors).
    log(`${b.label}: 8 clients`);
    // The server's CPU per stored span in this phase: the steadier measure on a shared machine.
    const bodies = prepare(400);
    const cpuBefore = server.cpuMs();
    const eight = await load(server.url, 8, SECONDS, bodies);
    const cpu = server.cpuMs() - cpuBefore;
    eight.serverCpuUsPerSpan = eight.spans > 0 && Number.isFinite(cpu) ? Number(((cpu * 1000) / eight.spans).toFixed(1)) : null;
    await server.stop();

    // 3. A flood: 64 clients against --max-inflight 16; memory sampled every 100 ms.
    log(`${b.label}: flood`);
    server = await startServe(b.args, ['--max-inflight', '16']);
    const idle = server.rssMiB();
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, server.rssMiB())), 100);
    const flood = await load(server.url, 64, SECONDS, prepare(400));
    clearInterval(sampler);
    await server.stop();
    const round = (mib) => (Number.isFinite(mib) ? Math.round(mib) : null);
    rows.push({
      backend: name,
      label: b.label,
      status: 'ok',
      oneClient: one,
      eightClients: eight,
      flood: { ...flood, maxInflight: 16 },
      rssIdleMiB: round(idle),
      rssPeakMiB: round(peak),
    });
  } catch (error) {
    log(`${b.label}: failed: ${error.stack ?? error}`);
    rows.push({ backend: name, label: b.label, status: 'failed', reason: error.message });
  } finally {
    await b.cleanup().catch((error) => log(`${b.label}: clean-up failed: ${error.message}`));
  }
}
agent.destroy();

// Paths relative to the repository; a database URL without its password.
const shown = (arg) => (arg.startsWith(`${root}/`) ? relative(root, arg) : arg.replace(/^(postgres(?:ql)?:\/\/[^:/@]+):[^@]*@/, '$1@'));
const result = {
  benchmark: 'ingest',
  date: new Date().toISOString(),
  command: ['node bench/ingest.mjs', ...process.argv.slice(2).map(shown)].join(' '),
  options: { seconds: SECONDS, batch: BATCH, backends: selected, postgres: postgresSource, dist: shown(dirname(dirname(MAIN))) },
  machine: machineInfo(loadBefore),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  backends: rows,
};
const markdown = renderIngestMarkdown(result);
mkdirSync(outDir, { recursive: true });
const stem = args.label ? `ingest-${args.label}` : 'ingest';
writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(result, null, 1) + '\n');
writeFileSync(join(outDir, `${stem}.md`), markdown);
process.stdout.write(`\n${markdown}`);
log(`wrote ${join(outDir, `${stem}.md`)} and ${stem}.json`);
