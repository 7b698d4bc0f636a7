#!/usr/bin/env node
// Ledger benchmark: appends/s per fsync policy, verify throughput and memory on a large ledger.
//
//   npm run build && node bench/ledger.mjs                       # 1,000,000-record verify (a few minutes)
//   node bench/ledger.mjs --records 100000 --append-records 2000 # quicker
//
// Prints a markdown table. Each measurement that needs its own memory figure runs in a child
// process (peak RSS from process.resourceUsage().maxRSS).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const dist = join(root, 'dist/cjs/ledger');
const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    'append-records': { type: 'string', default: '3000' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.records);
const APPENDS = Number(values['append-records']);
const base = values.dir ?? mkdtempSync(join(tmpdir(), 'ledger-bench-'));

let FileLedger;
try {
  ({ FileLedger } = require(join(dist, 'file-ledger.js')));
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

const rows = [];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

async function appendBench(policy, batch) {
  const dir = join(base, `append-${policy}-${batch}`);
  const ledger = await FileLedger.open({ dir, fsync: policy, checkpointEvery: 1000 });
  const count = policy === 'always' && batch === 1 ? APPENDS : APPENDS * 10;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += batch) {
    const recs = [];
    for (let j = 0; j < batch; j++) recs.push(record(i + j));
    await ledger.append(recs);
  }
  await ledger.close();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push([`append, fsync=${policy}, ${batch} record(s)/append`, `${fmt(count)} records`, `${fmt(count / s)} records/s`, '']);
}

function child(script) {
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

const bigDir = join(base, 'big');
for (const [policy, batch] of [['always', 1], ['always', 100], ['batch', 1], ['none', 1]]) await appendBench(policy, batch);

{
  const start = Date.now();
  const ledger = await FileLedger.open({ dir: bigDir, fsync: 'none', checkpointEvery: 10_000 });
  for (let i = 0; i < N; i += 1000) {
    const recs = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) recs.push(record(j));
    await ledger.append(recs);
  }
  await ledger.close();
  const s = (Date.now() - start) / 1000;
  rows.push([`build ledger (fsync=none, 1000/append)`, `${fmt(N)} records`, `${fmt(N / s)} records/s`, '']);
}

const verify = child(`
  const { verifyLedger } = require(${JSON.stringify(join(dist, 'verify.js'))});
  const { FileLedgerSource } = require(${JSON.stringify(join(dist, 'file-ledger.js'))});
  const t = Date.now();
  verifyLedger(new FileLedgerSource(${JSON.stringify(bigDir)})).then((r) => {
    console.log(JSON.stringify({ ms: Date.now() - t, records: r.records, rss: process.resourceUsage().maxRSS }));
  });
`);
rows.push(['verify (streaming)', `${fmt(verify.records)} records`, `${fmt(verify.records / (verify.ms / 1000))} records/s`, `${fmt(verify.rss / 1024)} MiB peak RSS`]);

const reopen = child(`
  const { FileLedger } = require(${JSON.stringify(join(dist, 'file-ledger.js'))});
  const t = Date.now();
  FileLedger.open({ dir: ${JSON.stringify(bigDir)}, fsync: 'none' }).then(async (l) => {
    const ms = Date.now() - t; await l.close();
    console.log(JSON.stringify({ ms, rss: process.resourceUsage().maxRSS }));
  });
`);
rows.push(['writer reopen (from newest checkpoint)', `${fmt(N)} records`, `${fmt(reopen.ms)} ms`, `${fmt(reopen.rss / 1024)} MiB peak RSS`]);

const report = child(`
  const { scanRecords } = require(${JSON.stringify(join(dist, 'query.js'))});
  const { costByUser } = require(${JSON.stringify(join(dist, 'reports.js'))});
  const { FileLedgerSource } = require(${JSON.stringify(join(dist, 'file-ledger.js'))});
  const t = Date.now();
  const src = new FileLedgerSource(${JSON.stringify(bigDir)});
  costByUser({ async *[Symbol.asyncIterator]() { for await (const h of scanRecords(src)) yield h.record; } }).then((r) => {
    console.log(JSON.stringify({ ms: Date.now() - t, rows: r.rows.length, rss: process.resourceUsage().maxRSS }));
  });
`);
rows.push(['report cost-by-user (full scan)', `${fmt(N)} records`, `${fmt(N / (report.ms / 1000))} records/s`, `${fmt(report.rss / 1024)} MiB peak RSS`]);

console.log(`\nLedger benchmark (${new Date().toISOString()}, Node ${process.version}, ${base})\n`);
console.log('| measurement | size | throughput | memory |');
console.log('| --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
if (!values.keep && !values.dir) rmSync(base, { recursive: true, force: true });
