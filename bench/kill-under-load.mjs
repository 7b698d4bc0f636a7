#!/usr/bin/env node
// What a killed application loses from the default file ledger under load: 8 concurrent workers
// (test/fixtures/load-app.cjs) make openai calls at full speed against the fake provider (in a
// process of its own) through `--require <root>/dist/cjs/register.js`; the app logs each finished
// call. SIGKILL after --kill-after s, SIGTERM after --term-after s; then the finished calls are
// compared with the ledger (segments, plus pending journals the next writer appends).
//
//   npx tsc -p tsconfig.demo.json && npm run build && node bench/kill-under-load.mjs
//   node bench/kill-under-load.mjs --root /path/to/old/checkout --label before   # same fixture there
//
// Options: --root DIR (the checkout whose dist/ and test/fixtures/load-app.cjs run, default this
// one), --label NAME, --workers N (8), --kill-after S (5), --term-after S (12), --out FILE (append
// the rows as JSON lines). Memory: the app's peak RSS (VmHWM) when it was signalled.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benchDir = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    root: { type: 'string', default: join(benchDir, '..') },
    label: { type: 'string', default: 'this build' },
    workers: { type: 'string', default: '8' },
    'kill-after': { type: 'string', default: '5' },
    'term-after': { type: 'string', default: '12' },
    out: { type: 'string' },
  },
});
const root = resolve(values.root);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const fake = spawn(process.execPath, [join(benchDir, 'fake-provider-process.mjs'), join(benchDir, '..', '.cache/demo/fake-provider.js')], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const { url } = await new Promise((resolveUrl) => {
  let text = '';
  fake.stdout.on('data', (d) => {
    text += d;
    if (text.includes('\n')) resolveUrl(JSON.parse(text.split('\n')[0]));
  });
});

function lines(path) {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}
function recorded(dir) {
  const ids = new Set();
  const each = (sub, pick) => {
    let names = [];
    try {
      names = readdirSync(join(dir, sub)).filter((n) => n.endsWith('.jsonl'));
    } catch {
      return;
    }
    for (const name of names) for (const line of lines(join(dir, sub, name))) {
      try {
        const id = pick(JSON.parse(line));
        if (id) ids.add(id);
      } catch {
        // a torn last line
      }
    }
  };
  each('segments', (e) => e.record?.request_id);
  const inLedger = ids.size;
  each('pending', (e) => (e.record ?? e).request_id);
  return { inLedger, all: ids };
}
function peakRssMb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

async function run(signal, afterS) {
  const dir = mkdtempSync(join(tmpdir(), 'kill-bench-'));
  const log = join(dir, 'completions.log');
  const child = spawn(process.execPath, ['--require', join(root, 'dist/cjs/register.js'), join(root, 'test/fixtures/load-app.cjs')], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      FAKE_PROVIDER_URL: url,
      LLM_AUDIT_LEDGER_DIR: join(dir, 'ledger'),
      LLM_AUDIT_HASH_KEY: 'kill-bench-hash-key-0123',
      OTEL_LOGS_EXPORTER: 'none',
      APP_LOG: log,
      APP_WORKERS: values.workers,
      APP_MAX_CALLS: '1000000',
      APP_SECONDS: String(Number(afterS) + 60),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.once('exit', r));
  await sleep(Number(afterS) * 1000);
  const rss = peakRssMb(child.pid);
  const killedAt = Date.now();
  child.kill(signal);
  await exited;
  const done = lines(log).map((l) => l.split(' ')).filter(([, id]) => id !== 'undefined');
  const { inLedger, all } = recorded(join(dir, 'ledger'));
  const missing = done.filter(([, id]) => !all.has(id));
  const row = {
    label: values.label,
    signal,
    afterS: Number(afterS),
    workers: Number(values.workers),
    finished: done.length,
    inLedger,
    inLedgerOrJournal: done.length - missing.length,
    missing: missing.length,
    missingFinishedMoreThan250msBefore: missing.filter(([at]) => Number(at) < killedAt - 250).length,
    newestMissingMsBeforeKill: missing.length ? killedAt - Math.min(...missing.map(([at]) => Number(at))) : null,
    peakRssMb: rss,
    stderrLines: stderr.split('\n').filter(Boolean).length,
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(row));
  if (values.out) appendFileSync(values.out, JSON.stringify(row) + '\n');
}

try {
  await run('SIGKILL', values['kill-after']);
  await run('SIGTERM', values['term-after']);
} finally {
  fake.kill('SIGTERM');
}
