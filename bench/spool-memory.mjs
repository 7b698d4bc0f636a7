#!/usr/bin/env node
// Spool memory benchmark (issue 7): a million audited calls while the OTLP endpoint is down keep
// the process's memory bounded, and the spool then drains fully once the endpoint is back.
//
//   npm run build && node bench/spool-memory.mjs               # 1,000,000 calls (several minutes)
//   node bench/spool-memory.mjs --calls 50000                  # quicker
//
// Options: --calls N (default 1000000), --samples N (memory samples over the run, default 100),
// --provider fetch|loopback (default fetch: the openai client gets a custom `fetch` that returns a
// canned chat completion Response without a socket, so the real SDK parses a real Response and the
// package instruments the real call path, with no network; `loopback` uses the test suite's fake
// provider in its own process over HTTP), --max-bytes SIZE (LLM_AUDIT_SPOOL_MAX_BYTES, default the
// package default, 512 MiB), --out DIR (default bench/results), --keep (keep the spool directory).
//
// 1. One child process, `node --require otel-llm-audit/register`, makes the calls through the real
//    `openai` SDK (v6) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a loopback port where nothing
//    listens. It samples RSS and heapUsed every calls/samples calls, and the spool's size on disk.
// 2. It exits normally (the exit flush puts what is in memory into the spool).
// 3. An OTLP/HTTP receiver starts on that port (decoding every protobuf request with the package's
//    own ingest decoder and counting distinct span ids), and a second process with the same spool
//    directory sends everything; the drain time is measured until the receiver holds every span.
//
// Writes spool-memory.md (table) and spool-memory.json (every sample) to --out and prints the table.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const require = createRequire(join(root, 'package.json'));
const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    calls: { type: 'string', default: '1000000' },
    samples: { type: 'string', default: '100' },
    provider: { type: 'string', default: 'fetch' },
    'max-bytes': { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

/** Files and bytes of spool files under the spool root (the quarantine excluded). */
function spoolOnDisk(dir) {
  let files = 0;
  let bytes = 0;
  let entries = [];
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return { files, bytes };
  }
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.spool') || entry.parentPath.includes('quarantine')) continue;
    try {
      bytes += statSync(join(entry.parentPath, entry.name)).size;
      files += 1;
    } catch {
      // sent and deleted meanwhile
    }
  }
  return { files, bytes };
}

const MB = 1024 * 1024;
const mb = (bytes) => Math.round((bytes / MB) * 10) / 10;

if (values.child === 'run') await runCalls();
else if (values.child === 'drain') await drain();
else await main();

// ------------------------------------------------------------------------------------------------
// Child 1: the calls, endpoint down.
// ------------------------------------------------------------------------------------------------
async function runCalls() {
  const calls = Number(values.calls);
  const every = Math.max(1, Math.floor(calls / Number(values.samples)));
  const api = require('@opentelemetry/api');
  const { shutdownAudit } = require('otel-llm-audit');
  const OpenAI = require('openai');
  // The spool's drop reports, summed (they are aggregated: a few messages, not one per span).
  const dropped = { total: 0, byReason: {} };
  const log = (message) => {
    const match = /otel-llm-audit spool: dropped (\d+) audit spans? \((\w+)\)/.exec(String(message));
    if (match) {
      dropped.total += Number(match[1]);
      dropped.byReason[match[2]] = (dropped.byReason[match[2]] ?? 0) + Number(match[1]);
    }
  };
  api.diag.setLogger({ error: log, warn: log, info() {}, debug() {}, verbose() {} }, api.DiagLogLevel.WARN);

  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_763_000_000,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The quarterly report shows revenue up four percent.', refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 412, completion_tokens: 11, total_tokens: 423, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
    system_fingerprint: 'fp_bench',
  });
  // A real response arrives in a later turn of the event loop (a socket read), never in the same
  // chain of promise callbacks: the setImmediate keeps that, so timers and I/O callbacks (the
  // batching timer, the spool's writes) run between calls as they would in an app. Without it the
  // loop would be one endless microtask chain, which no application that calls an LLM can be.
  const cannedFetch = async () => {
    await new Promise((r) => setImmediate(r));
    return new Response(completion, { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': 'req_bench' } });
  };
  const client =
    process.env.BENCH_PROVIDER_URL === undefined
      ? new OpenAI({ apiKey: 'sk-bench', baseURL: 'http://provider.invalid/v1', maxRetries: 0, fetch: cannedFetch })
      : new OpenAI({ apiKey: 'sk-bench', baseURL: `${process.env.BENCH_PROVIDER_URL}/v1`, maxRetries: 0 });
  const messages = [
    { role: 'system', content: 'You are a careful financial analyst. Answer in one sentence.' },
    { role: 'user', content: '' },
  ];
  const spoolDir = process.env.LLM_AUDIT_SPOOL_DIR;
  const samples = [];
  const sample = (done) => {
    const { rss, heapUsed } = process.memoryUsage();
    samples.push({ calls: done, ms: Math.round(performance.now() - started), rss, heapUsed, spool: spoolOnDisk(spoolDir) });
  };
  const started = performance.now();
  sample(0);
  for (let i = 1; i <= calls; i++) {
    // A different prompt per call (a distinct input hash per span, as in real traffic).
    messages[1].content = `Summarise the quarterly report for the board (request ${i}): revenue, costs and the backlog.`;
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages, user: `user-${i % 100}` });
    if (i % every === 0 || i === calls) sample(i);
  }
  const callsMs = performance.now() - started;
  await shutdownAudit();
  const { maxRSS } = process.resourceUsage();
  process.stdout.write(JSON.stringify({ calls, callsMs, exitMs: performance.now() - started - callsMs, peakRssBytes: maxRSS * 1024, samples, dropped }) + '\n');
}

// ------------------------------------------------------------------------------------------------
// Child 2: the next process on the same spool directory, endpoint up: stays until the spool is empty.
// ------------------------------------------------------------------------------------------------
async function drain() {
  const spoolDir = process.env.LLM_AUDIT_SPOOL_DIR;
  while (spoolOnDisk(spoolDir).files > 0) await new Promise((r) => setTimeout(r, 100));
}

// ------------------------------------------------------------------------------------------------
// Parent.
// ------------------------------------------------------------------------------------------------
function child(mode, env, onLine) {
  return new Promise((resolveChild, reject) => {
    const proc = spawn(
      process.execPath,
      ['--require', join(root, 'dist/cjs/register.js'), fileURLToPath(import.meta.url), '--child', mode, '--calls', values.calls, '--samples', values.samples],
      { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      onLine?.(out);
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => (code === 0 ? resolveChild(out) : reject(new Error(`${mode} child ended with ${code ?? signal}`))));
  });
}

/** A loopback OTLP/HTTP receiver that decodes protobuf trace requests and counts distinct span ids. */
async function startReceiver(port) {
  const { decodeProtobufRequest } = require(join(root, 'dist/cjs/ingest/otlp.js'));
  const spanIds = new Set();
  const state = { requests: 0, spans: 0, duplicates: 0, lastAt: 0 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.url === '/v1/traces') {
        for (const span of decodeProtobufRequest(body)) {
          state.spans += 1;
          if (spanIds.has(span.spanId)) state.duplicates += 1;
          else spanIds.add(span.spanId);
        }
        state.requests += 1;
        state.lastAt = performance.now();
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise((r, j) => {
    server.once('error', j);
    server.listen(port, '127.0.0.1', r);
  });
  return { state, distinct: () => spanIds.size, close: () => new Promise((r) => server.close(r)) };
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function startLoopbackProvider() {
  const proc = spawn(process.execPath, [join(benchDir, 'fake-provider-process.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise((r, j) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) r(JSON.parse(out.split('\n')[0]));
    });
    proc.on('exit', () => j(new Error('the fake provider process ended')));
  });
  return { url: info.url, stop: () => proc.kill('SIGTERM') };
}

async function main() {
  const calls = Number(values.calls);
  if (!Number.isInteger(calls) || calls < 1) {
    console.error('spool bench: --calls must be a positive integer');
    process.exit(2);
  }
  if (!['fetch', 'loopback'].includes(values.provider)) {
    console.error('spool bench: --provider must be fetch or loopback');
    process.exit(2);
  }
  const log = (line) => process.stderr.write(`spool bench: ${line}\n`);
  const outDir = resolve(values.out ?? join(benchDir, 'results'));
  const base = join(root, '.cache', 'bench');
  mkdirSync(base, { recursive: true });
  const spoolDir = mkdtempSync(join(base, 'spool-'));
  const port = await freePort();
  const provider = values.provider === 'loopback' ? await startLoopbackProvider() : undefined;
  const env = {
    PATH: process.env.PATH ?? '',
    OTEL_SERVICE_NAME: 'spool-bench',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    LLM_AUDIT_HASH_KEY: 'spool-bench-hash-key-0123456789',
    LLM_AUDIT_SPOOL_DIR: spoolDir,
    ...(values['max-bytes'] ? { LLM_AUDIT_SPOOL_MAX_BYTES: values['max-bytes'] } : {}),
    ...(provider ? { BENCH_PROVIDER_URL: provider.url } : {}),
  };
  const loadBefore = os.loadavg();
  log(`${calls} calls (${values.provider}), OTLP endpoint http://127.0.0.1:${port} down, spool ${spoolDir}`);
  let run;
  try {
    run = JSON.parse(await child('run', env));
  } finally {
    provider?.stop();
  }
  const leftOnDisk = spoolOnDisk(spoolDir);
  log(`calls done in ${(run.callsMs / 1000).toFixed(1)} s; peak RSS ${mb(run.peakRssBytes)} MB; spool ${leftOnDisk.files} files, ${mb(leftOnDisk.bytes)} MB; dropped ${run.dropped.total} ${JSON.stringify(run.dropped.byReason)}`);

  const receiver = await startReceiver(port);
  const expected = calls - run.dropped.total;
  const drainStart = performance.now();
  await child('drain', env);
  const drainProcessMs = performance.now() - drainStart;
  // The drain child exits once no file is left; the last request's spans are counted by then.
  const drainMs = receiver.state.lastAt - drainStart;
  await receiver.close();
  if (!values.keep) rmSync(spoolDir, { recursive: true, force: true });

  const at = (fraction) => run.samples.find((s) => s.calls >= Math.round(calls * fraction)) ?? run.samples.at(-1);
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemMB: Math.round(os.totalmem() / MB), node: process.version, loadBefore, loadAfter: os.loadavg() },
    provider: values.provider === 'fetch' ? 'custom fetch returning a canned chat.completion Response (no socket)' : 'loopback fake provider process (HTTP)',
    sdk: `openai ${JSON.parse(readFileSync(join(root, 'node_modules/openai/package.json'), 'utf8')).version}`,
    maxBytes: values['max-bytes'] ?? '512MiB (default)',
    calls,
    callsPerSecond: Math.round(calls / (run.callsMs / 1000)),
    callsSeconds: Math.round(run.callsMs / 100) / 10,
    exitFlushMs: Math.round(run.exitMs),
    peakRssMB: mb(run.peakRssBytes),
    rssMB: { start: mb(run.samples[0].rss), at10: mb(at(0.1).rss), at50: mb(at(0.5).rss), at100: mb(at(1).rss) },
    heapUsedMB: { start: mb(run.samples[0].heapUsed), at10: mb(at(0.1).heapUsed), at50: mb(at(0.5).heapUsed), at100: mb(at(1).heapUsed), max: mb(Math.max(...run.samples.map((s) => s.heapUsed))) },
    spoolAtExit: { files: leftOnDisk.files, bytes: leftOnDisk.bytes, MB: mb(leftOnDisk.bytes) },
    dropped: run.dropped,
    drain: {
      expectedSpans: expected,
      arrivedSpans: receiver.state.spans,
      distinctSpanIds: receiver.distinct(),
      duplicates: receiver.state.duplicates,
      requests: receiver.state.requests,
      seconds: Math.round(drainMs / 100) / 10,
      processSeconds: Math.round(drainProcessMs / 100) / 10,
      spansPerSecond: Math.round(receiver.state.spans / (drainMs / 1000)),
      complete: receiver.distinct() === expected && receiver.state.duplicates === 0,
    },
    samples: run.samples,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'spool-memory.json'), JSON.stringify(result, null, 2) + '\n');
  const markdown = render(result);
  writeFileSync(join(outDir, 'spool-memory.md'), markdown);
  process.stdout.write(markdown);
  if (!result.drain.complete) process.exitCode = 1;
}

function render(r) {
  const lines = [
    `# Spool memory: ${r.calls.toLocaleString('en-US')} calls with the OTLP endpoint down`,
    '',
    `${r.date}; ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.totalMemMB} MB, Node ${r.machine.node}; load ${r.machine.loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${r.machine.loadAfter.map((l) => l.toFixed(2)).join(' ')} after.`,
    `Calls: ${r.sdk} \`chat.completions.create\` under \`--require otel-llm-audit/register\`, provider: ${r.provider}. Exporter: OTLP http/protobuf to a port where nothing listens; spool bound ${r.maxBytes}.`,
    '',
    '| measure | value |',
    '|---|---:|',
    `| calls | ${r.calls.toLocaleString('en-US')} in ${r.callsSeconds} s (${r.callsPerSecond.toLocaleString('en-US')} calls/s) |`,
    `| peak RSS (maxRSS) | ${r.peakRssMB} MB |`,
    `| RSS at start / 10% / 50% / 100% of the calls | ${r.rssMB.start} / ${r.rssMB.at10} / ${r.rssMB.at50} / ${r.rssMB.at100} MB |`,
    `| heapUsed at start / 10% / 50% / 100% (max) | ${r.heapUsedMB.start} / ${r.heapUsedMB.at10} / ${r.heapUsedMB.at50} / ${r.heapUsedMB.at100} (${r.heapUsedMB.max}) MB |`,
    `| exit flush | ${r.exitFlushMs} ms |`,
    `| spool at exit | ${r.spoolAtExit.files.toLocaleString('en-US')} files, ${r.spoolAtExit.MB} MB (${Math.round(r.spoolAtExit.bytes / Math.max(1, r.calls - r.dropped.total))} bytes/span) |`,
    `| dropped (past the bound) | ${r.dropped.total.toLocaleString('en-US')}${Object.keys(r.dropped.byReason).length ? ` (${Object.entries(r.dropped.byReason).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''} |`,
    `| drained by the next process | ${r.drain.distinctSpanIds.toLocaleString('en-US')} distinct spans of ${r.drain.expectedSpans.toLocaleString('en-US')} expected (calls − dropped), ${r.drain.duplicates} duplicates, ${r.drain.requests.toLocaleString('en-US')} requests |`,
    `| drain time | ${r.drain.seconds} s (${r.drain.spansPerSecond.toLocaleString('en-US')} spans/s) |`,
    `| complete | ${r.drain.complete ? 'yes' : '**NO**'} |`,
    '',
  ];
  return lines.join('\n');
}
