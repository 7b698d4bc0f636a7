#!/usr/bin/env node
// Ingest benchmark of `llm-audit serve`: spans per second over OTLP/HTTP (protobuf, gzip, batches
// of 512 spans, as an OpenTelemetry Collector's otlphttp exporter sends them) into each backend,
// the latency of one batch, and the server's memory under a flood. Loopback only, bounded in time.
//
//   npm run build && node bench/ingest.mjs [--seconds 5] [--backends file-always,file-batch,postgres]
//
// PostgreSQL: $LLM_AUDIT_BENCH_POSTGRES_URL (a superuser URL), else scripts/setup-postgres.sh.
// Prints a markdown table on stdout; progress on stderr. Not run by the tests.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const MAIN = join(root, 'dist/cjs/cli/main.js');
const pb = require('otlp-transformer-protobufjs/build/src/generated/root').opentelemetry.proto.collector.trace.v1;
const { Client } = require('pg');

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    backends: { type: 'string', default: 'file-always,file-batch,postgres' },
    batch: { type: 'string', default: '512' },
  },
});
const SECONDS = Number(args.seconds);
const BATCH = Number(args.batch);
const log = (line) => process.stderr.write(`bench: ${line}\n`);

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
  return { spansPerSec: spans / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), statuses };
}

function prepare(count) {
  // Each body is sent once per round; ids stay unique because bodies are regenerated per phase.
  return Array.from({ length: count }, () => ({ gz: batchBody(BATCH), n: BATCH }));
}

// --- Backends ------------------------------------------------------------------------------------

async function postgresAdminUrl() {
  const given = process.env.LLM_AUDIT_BENCH_POSTGRES_URL?.trim();
  if (given) return given;
  const out = execFileSync('bash', [join(root, 'scripts/setup-postgres.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop();
}

async function backend(name) {
  if (name === 'file-always' || name === 'file-batch') {
    const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
    return {
      label: name === 'file-always' ? 'file ledger, fsync always' : 'file ledger, fsync batch',
      args: ['--ledger', join(dir, 'ledger'), '--fsync', name === 'file-always' ? 'always' : 'batch'],
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (name === 'postgres') {
    const admin = await postgresAdminUrl();
    const db = `bench_${runTag}`;
    const c = new Client({ connectionString: admin });
    await c.connect();
    await c.query(`CREATE DATABASE ${db}`);
    await c.end();
    const u = new URL(admin);
    u.pathname = `/${db}`;
    const url = u.toString();
    execFileSync(process.execPath, [MAIN, 'migrate', '--postgres', url], { stdio: 'ignore' });
    return {
      label: 'PostgreSQL',
      args: ['--postgres', url],
      cleanup: async () => {
        const d = new Client({ connectionString: admin });
        await d.connect();
        await d.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
        await d.end();
      },
    };
  }
  throw new Error(`unknown backend ${name}`);
}

// --- Main ----------------------------------------------------------------------------------------

const rows = [];
for (const name of args.backends.split(',')) {
  const b = await backend(name.trim());
  try {
    // 1. One client, one batch at a time: the latency of a batch and the sequential rate.
    log(`${b.label}: one client`);
    let server = await startServe(b.args);
    const one = await load(server.url, 1, SECONDS, prepare(200));
    // 2. Eight clients in parallel (a few collectors).
    log(`${b.label}: 8 clients`);
    const eight = await load(server.url, 8, SECONDS, prepare(400));
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
    rows.push({ b, one, eight, flood, idle, peak });
  } finally {
    await b.cleanup();
  }
}
agent.destroy();

const f0 = (n) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : '-');
console.log(`\nIngest over OTLP/HTTP (protobuf + gzip, ${BATCH} spans per request, ${SECONDS} s per phase, loopback, ${process.platform} ${process.arch}, Node ${process.version})\n`);
console.log('| backend | 1 client: spans/s | batch latency p50 / p99 (ms) | 8 clients: spans/s | p50 / p99 (ms) | flood (64 clients, max-inflight 16): spans/s | 200 / 503 | server RSS idle → peak (MiB) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const { b, one, eight, flood, idle, peak } of rows) {
  console.log(
    `| ${b.label} | ${f0(one.spansPerSec)} | ${f1(one.p50)} / ${f1(one.p99)} | ${f0(eight.spansPerSec)} | ${f1(eight.p50)} / ${f1(eight.p99)} | ${f0(flood.spansPerSec)} | ${flood.statuses[200] ?? 0} / ${flood.statuses[503] ?? 0} | ${f0(idle)} → ${f0(peak)} |`,
  );
}
