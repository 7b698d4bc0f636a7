#!/usr/bin/env node
// Ledger benchmark: appends/s per fsync policy, verify throughput and memory on a large ledger.
//
//   npm run build && node bench/ledger.mjs                       # 1,000,000-record verify (a few minutes)
//   node bench/ledger.mjs --records 100000 --append-records 2000 # quicker (bench/run.mjs runs this)
//
// Options: --records N (the big ledger: build, verify, reopen, report), --append-records N (the
// per-record fsync=always appends; the other append rows use 10 times as many), --dir DIR (work
// there instead of a temporary directory, and keep it), --keep (keep the temporary directory),
// --out DIR (where ledger.md / ledger.json go, default bench/results), --dist DIR (the build to
// measure, default dist/cjs).
//
// Prints a markdown table and writes it to ledger.md, with every number and the run's metadata in
// ledger.json (bench/run.mjs puts both in its report). Each measurement that needs its own memory
// figure runs in a child process (peak RSS from process.resourceUsage().maxRSS).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, renderLedgerMarkdown } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const require = createRequire(import.meta.url);
const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    'append-records': { type: 'string', default: '3000' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    out: { type: 'string' },
    dist: { type: 'string' },
  },
});
const N = Number(values.records);
const APPENDS = Number(values['append-records']);
for (const [name, n] of [['--records', N], ['--append-records', APPENDS]]) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`ledger bench: ${name} must be a positive integer`);
    process.exit(2);
  }
}
const dist = join(resolve(values.dist ?? join(root, 'dist/cjs')), 'ledger');
const outDir = resolve(values.out ?? join(benchDir, 'results'));
const base = values.dir ?? mkdtempSync(join(tmpdir(), 'ledger-bench-'));
const started = Date.now();
const loadBefore = os.loadavg();
const log = (line) => process.stderr.write(`ledger bench: ${line}\n`);

let FileLedger;
try {
  ({ FileLedger } = require(join(dist, 'file', 'ledger.js')));
} catch {
  console.error('run `npm run build` first (dist/cjs/ledger is missing)');
  process.exit(2);
}

function record(i) {
  return {
    v: 1,
    request_id: `req-${i}`,
    timestamp: new Date(1_772_359_200_000 + i * 1000).toISOString(),
    trace_id: '0af7651916cd43dd8448eb211c80319c',
    span_id: 'b7ad6b7169203331',
    user_id: `user-${i % 97}`,
    session_id: `s-${i % 1013}`,
    tenant_id: 'acme',
    provider: 'openai',
    operation: 'chat',
    model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' },
    action: 'chat.completions.create',
    status: i % 50 === 0 ? 'error' : 'success',
    system_prompt_hash: 'hmac-sha256:k1:' + 'a'.repeat(64),
    input_hash: 'hmac-sha256:k1:' + 'b'.repeat(64),
    output_hash: 'hmac-sha256:k1:' + 'c'.repeat(64),
    input_tokens: 500 + (i % 300),
    output_tokens: 80 + (i % 40),
    cache_read_tokens: null,
    cache_creation_tokens: null,
    thinking_tokens: null,
    latency_ms: 800 + (i % 700),
    cost_usd: 0.0012,
    error_type: i % 50 === 0 ? 'RateLimitError' : null,
    error_message: null,
    sanitization_count: 0,
    guardrails: null,
    tools: null,
    rag_document_ids: null,
    metadata: { feature: 'bench' },
  };
}

/** One row of the table each: `label`, `records`, and `recordsPerSec` or `ms`, and `peakRssMiB` when measured. */
const measurements = [];
const rate = (count, seconds) => Math.round(count / seconds);
const mib = (maxRssKiB) => Math.round(maxRssKiB / 1024);

async function appendBench(policy, batch) {
  const dir = join(base, `append-${policy}-${batch}`);
  const ledger = await FileLedger.open({ dir, fsync: policy, checkpointEvery: 1000 });
  const count = policy === 'always' && batch === 1 ? APPENDS : APPENDS * 10;
  log(`append, fsync=${policy}, ${batch} record(s)/append: ${count} records`);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += batch) {
    const recs = [];
    for (let j = 0; j < batch; j++) recs.push(record(i + j));
    await ledger.append(recs);
  }
  await ledger.close();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  measurements.push({
    label: `append, fsync=${policy}, ${batch} record(s)/append`,
    kind: 'append',
    fsync: policy,
    recordsPerAppend: batch,
    records: count,
    seconds: Number(s.toFixed(3)),
    recordsPerSec: rate(count, s),
  });
}

function child(script) {
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

const bigDir = join(base, 'big');
for (const [policy, batch] of [['always', 1], ['always', 100], ['batch', 1], ['none', 1]]) await appendBench(policy, batch);

{
  log(`building a ${N}-record ledger`);
  const start = Date.now();
  const ledger = await FileLedger.open({ dir: bigDir, fsync: 'none', checkpointEvery: 10_000 });
  for (let i = 0; i < N; i += 1000) {
    const recs = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) recs.push(record(j));
    await ledger.append(recs);
  }
  await ledger.close();
  const s = (Date.now() - start) / 1000;
  measurements.push({ label: 'build ledger (fsync=none, 1000/append)', kind: 'build', fsync: 'none', recordsPerAppend: 1000, records: N, seconds: s, recordsPerSec: rate(N, s) });
}

log('verify');
const verify = child(`
  const { verifyLedger } = require(${JSON.stringify(join(dist, 'verify.js'))});
  const { FileLedgerSource } = require(${JSON.stringify(join(dist, 'file', 'ledger.js'))});
  const t = Date.now();
  verifyLedger(new FileLedgerSource(${JSON.stringify(bigDir)})).then((r) => {
    console.log(JSON.stringify({ ms: Date.now() - t, records: r.records, checkpointsMatched: r.checkpointsMatched, rss: process.resourceUsage().maxRSS }));
  });
`);
measurements.push({
  label: 'verify (streaming)',
  kind: 'verify',
  records: verify.records,
  ms: verify.ms,
  recordsPerSec: rate(verify.records, verify.ms / 1000),
  checkpointsMatched: verify.checkpointsMatched,
  peakRssMiB: mib(verify.rss),
});

log('writer reopen');
const reopen = child(`
  const { FileLedger } = require(${JSON.stringify(join(dist, 'file', 'ledger.js'))});
  const t = Date.now();
  FileLedger.open({ dir: ${JSON.stringify(bigDir)}, fsync: 'none' }).then(async (l) => {
    const ms = Date.now() - t; await l.close();
    console.log(JSON.stringify({ ms, rss: process.resourceUsage().maxRSS }));
  });
`);
measurements.push({ label: 'writer reopen (from newest checkpoint)', kind: 'reopen', records: N, ms: reopen.ms, peakRssMiB: mib(reopen.rss) });

log('report cost-by-user');
const report = child(`
  const { scanRecords } = require(${JSON.stringify(join(dist, 'query.js'))});
  const { costByUser } = require(${JSON.stringify(join(dist, 'reports.js'))});
  const { FileLedgerSource } = require(${JSON.stringify(join(dist, 'file', 'ledger.js'))});
  const t = Date.now();
  const src = new FileLedgerSource(${JSON.stringify(bigDir)});
  costByUser({ async *[Symbol.asyncIterator]() { for await (const h of scanRecords(src)) yield h.record; } }).then((r) => {
    console.log(JSON.stringify({ ms: Date.now() - t, rows: r.rows.length, rss: process.resourceUsage().maxRSS }));
  });
`);
measurements.push({
  label: 'report cost-by-user (full scan)',
  kind: 'report',
  records: N,
  ms: report.ms,
  recordsPerSec: rate(N, report.ms / 1000),
  users: report.rows,
  peakRssMiB: mib(report.rss),
});

if (!values.keep && !values.dir) rmSync(base, { recursive: true, force: true });

const shown = (arg) => (arg.startsWith(`${root}/`) ? relative(root, arg) : arg);
const result = {
  benchmark: 'ledger',
  date: new Date().toISOString(),
  command: ['node bench/ledger.mjs', ...process.argv.slice(2).map(shown)].join(' '),
  options: { records: N, appendRecords: APPENDS, dir: values.dir ?? null, kept: Boolean(values.keep || values.dir), dist: shown(dirname(dist)) },
  machine: machineInfo(loadBefore),
  durationSeconds: Math.round((Date.now() - started) / 1000),
  measurements,
};
const markdown = renderLedgerMarkdown(result);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'ledger.json'), JSON.stringify(result, null, 1) + '\n');
writeFileSync(join(outDir, 'ledger.md'), markdown);
process.stdout.write(`\n${markdown}`);
log(`wrote ${join(outDir, 'ledger.md')} and ledger.json${values.keep || values.dir ? ` (ledgers kept in ${base})` : ''}`);
