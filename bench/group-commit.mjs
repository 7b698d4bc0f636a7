#!/usr/bin/env node
// Group-commit benchmark: appends/s of the file ledger with fsync=always when W writers append one
// record each, concurrently and continuously (the shape of W concurrent LLM calls each ending in
// one ledger append), with and without a signing key (a signed checkpoint per group commit).
//
//   npm run build && node bench/group-commit.mjs                      # this build
//   node bench/group-commit.mjs --dist /path/to/old/dist/cjs --label before
//
// Options: --writers W (default 8), --seconds S per row (default 5), --dist DIR (the build to
// measure, default dist/cjs), --label NAME (the row label, default "this build"), --out FILE
// (append the rows as JSON lines, e.g. bench/results/group-commit.jsonl).
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { values } = parseArgs({
  options: {
    writers: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '5' },
    dist: { type: 'string' },
    label: { type: 'string', default: 'this build' },
    out: { type: 'string' },
  },
});
const writers = Number(values.writers);
const seconds = Number(values.seconds);
const { FileLedger } = require(join(resolve(values.dist ?? join(root, 'dist/cjs')), 'ledger', 'file', 'ledger.js'));

function record(i) {
  return {
    v: 1,
    request_id: `req-${i}`,
    timestamp: new Date().toISOString(),
    trace_id: '0af7651916cd43dd8448eb211c80319c',
    span_id: i.toString(16).padStart(16, '0'),
    provider: 'openai',
    operation: 'chat',
    model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' },
    status: 'success',
    input_hash: 'hmac-sha256:k1:' + 'b'.repeat(64),
    output_hash: 'hmac-sha256:k1:' + 'c'.repeat(64),
    input_tokens: 500,
    output_tokens: 80,
  };
}

async function run(signed) {
  const dir = mkdtempSync(join(tmpdir(), 'group-commit-bench-'));
  const options = { dir, fsync: 'always' };
  if (signed) {
    const keyPath = join(dir, '..', `${dir.split('/').pop()}.pem`);
    writeFileSync(keyPath, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    options.signingKeyPath = keyPath;
  }
  const ledger = await FileLedger.open(options);
  let next = 0;
  const latencies = [];
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (Date.now() < deadline) {
        const t = process.hrtime.bigint();
        await ledger.append([record(next++)]);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    label: values.label,
    signed,
    writers,
    records: latencies.length,
    seconds: Number(elapsed.toFixed(2)),
    appendsPerSec: Math.round(latencies.length / elapsed),
    p50Ms: Number(latencies[Math.floor(latencies.length / 2)].toFixed(2)),
    p99Ms: Number(latencies[Math.floor(latencies.length * 0.99)].toFixed(2)),
    node: process.version,
    cpus: os.cpus().length,
    at: new Date().toISOString(),
  };
}

for (const signed of [false, true]) {
  const row = await run(signed);
  console.log(
    `${row.label}: fsync=always, ${writers} concurrent writers${signed ? ', signed' : ''}: ${row.appendsPerSec} appends/s (p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ${row.records} records)`,
  );
  if (values.out) appendFileSync(values.out, JSON.stringify(row) + '\n');
}
