#!/usr/bin/env node
// Scale benchmark (issue 22): the ledger's read side at a million records, each figure beside its
// floor measured in the same run on the same machine.
//
//   npm run build && node bench/scale.mjs [--records 1000000]   # the issue's size
//   node bench/scale.mjs --records 200000 --out bench/results   # what fits a short budget
//
// 1. Loads the deterministic data set of bench/lib/dataset.mjs into a file ledger (FileLedger,
//    fsync none, 512 records per append, each record on the segment of its own day) and into a
//    fresh PostgreSQL database (PostgresLedger, 512 per append, partition of its own day): directly
//    with the writers, not through `llm-audit serve` (ingest is measured by bench/ingest.mjs);
//    loading time is reported.
// 2. Runs each read line of the issue's table as the operator would, `llm-audit ...` in a child
//    process (wall time and peak RSS from /usr/bin/time), on both backends.
// 3. Measures the floors in the same run: for verify, one Node thread reading the same segment files
//    and hashing every line as the leaf hash does (SHA-256(0x00 || line)); for each report and query,
//    the plain SQL kept in bench/sql/*.sql, run with the `pg` client.
// Records the load average before, during (sampled) and after. Writes scale.md and scale.json.
//
// Options: --records N, --seed N, --dir DIR (work there and keep it; with --reuse, a ledger and a
// database left by an earlier run with the same --dir are measured again without loading), --keep,
// --backends file,postgres, --repeat N (runs per read, the minimum is shown; default 1),
// --out DIR (default bench/results), --dist DIR (the build to measure, default dist/cjs),
// --label TEXT (names the run in the results, e.g. "before"), --reads issue|all (the issue's table;
// with --backends postgres, or with all, also every other report, evidence and the CLI's start-up),
// --database NAME (the PostgreSQL database to make, default bench_scale_<records>_<seed>),
// --only NAMES (comma-separated: only the reads whose name starts with one of them, e.g.
// `--only "query --user,report cost-by-user (,report anomalies,report error-rate"`).
// PostgreSQL: $LLM_AUDIT_BENCH_POSTGRES_URL, else $LLM_AUDIT_TEST_POSTGRES_URL (a superuser URL;
// the benchmark makes its own database and drops it unless --keep).
import { spawn, spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DAYS, END, records, userId } from './lib/dataset.mjs';
import { machineInfo } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const require = createRequire(import.meta.url);
const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '22' },
    dir: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    backends: { type: 'string', default: 'file,postgres' },
    repeat: { type: 'string', default: '1' },
    out: { type: 'string' },
    dist: { type: 'string' },
    label: { type: 'string', default: '' },
    reads: { type: 'string', default: 'issue' },
    database: { type: 'string' },
    only: { type: 'string' },
  },
});
const N = Number(values.records);
const REPEAT = Number(values.repeat);
if (!Number.isInteger(N) || N < 1000 || !Number.isInteger(REPEAT) || REPEAT < 1) {
  console.error('scale bench: --records must be an integer >= 1000 and --repeat >= 1');
  process.exit(2);
}
const backends = values.backends.split(',');
const dist = resolve(values.dist ?? join(root, 'dist/cjs'));
const MAIN = join(dist, 'cli/main.js');
if (!existsSync(MAIN)) {
  console.error(`run \`npm run build\` first (${MAIN} is missing)`);
  process.exit(2);
}
const outDir = resolve(values.out ?? join(benchDir, 'results'));
const base = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'scale-bench-'));
mkdirSync(base, { recursive: true });
const fileDir = join(base, 'ledger');
const started = Date.now();
const loadBefore = os.loadavg();
const loads = [];
const sampler = setInterval(() => loads.push(os.loadavg()[0]), 5000);
const log = (line) => process.stderr.write(`scale bench: [${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`);

const { FileLedger } = require(join(dist, 'ledger/file/ledger.js'));
const { PostgresLedger } = require(join(dist, 'ledger/postgres/writer.js'));
const { Client } = require('pg');

// The reads, as the issue's table names them. `now` is the data set's end: the windows hold data.
const NOW = new Date(END).toISOString();
const FROM30 = new Date(END - 30 * 86_400_000).toISOString();
const USER = userId(7);
const READS = [
  { name: 'verify', args: ['verify'], floor: 'hash', targets: [{ backend: 'file', floorTimes: 1.5 }, { backend: 'postgres', fileTimes: 2 }] },
  { name: `query --user (one user of 500)`, args: ['query', '--user', USER, '--format', 'json'], sql: 'query-user', params: [USER], targets: [{ backend: 'postgres', floorTimes: 2 }, { backend: 'file', seconds: 1 }] },
  { name: 'report cost-by-user (30 days)', args: ['report', 'cost-by-user', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'cost-by-user', params: [FROM30, NOW], targets: [{ backend: 'postgres', floorTimes: 2 }] },
  { name: 'report anomalies', args: ['report', 'anomalies', '--now', NOW, '--format', 'json'], sql: 'anomalies', params: [NOW], targets: [{ backend: 'postgres', floorTimes: 2 }, { backend: 'file', seconds: 2 }] },
  { name: 'report error-rate (24 h)', args: ['report', 'error-rate', '--now', NOW, '--format', 'json'], sql: 'error-rate', params: [NOW], targets: [{ backend: 'postgres', floorTimes: 2 }, { backend: 'file', seconds: 0.5 }] },
  { name: 'report usage --by user (30 days)', args: ['report', 'usage', '--by', 'user', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'usage-user', params: [FROM30, NOW] },
  // The other reports on PostgreSQL (--backends postgres; --reads all adds them on the file ledger too).
  { name: 'report cost-by-user --env prod (30 days)', args: ['report', 'cost-by-user', '--env', 'prod', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'cost-by-user-env', params: [FROM30, NOW, 'prod'], extra: true },
  { name: 'query --service svc-1', args: ['query', '--service', 'svc-1', '--format', 'json'], sql: 'query-service', params: ['svc-1'], extra: true },
  { name: 'report summary (30 days)', args: ['report', 'summary', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'summary', params: [FROM30, NOW], extra: true },
  { name: 'report guardrails (30 days)', args: ['report', 'guardrails', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'guardrails', params: [FROM30, NOW], extra: true },
  { name: 'report sanitization (30 days)', args: ['report', 'sanitization', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'sanitization', params: [FROM30, NOW], extra: true },
  { name: 'report events (30 days)', args: ['report', 'events', '--from', FROM30, '--to', NOW, '--format', 'json'], sql: 'events', params: [FROM30, NOW], extra: true },
  { name: 'evidence (30 days)', args: ['evidence', '--framework', 'soc2', '--from', FROM30, '--to', NOW, '--out', '{tmp}/evidence'], floor: 'none', extra: true },
  { name: 'CLI start-up (llm-audit --help)', args: ['--help'], floor: 'none', noLedger: true, extra: true },
];

// --- PostgreSQL ----------------------------------------------------------------------------------

function adminUrl() {
  for (const name of ['LLM_AUDIT_BENCH_POSTGRES_URL', 'LLM_AUDIT_TEST_POSTGRES_URL']) {
    const given = process.env[name]?.trim();
    if (given) return { url: given, source: `$${name}` };
  }
  return undefined;
}
const admin = backends.includes('postgres') ? adminUrl() : undefined;
const dbName = values.database ?? `bench_scale_${N}_${values.seed}`;
const dbUrl = admin ? Object.assign(new URL(admin.url), { pathname: `/${dbName}` }).toString() : undefined;

async function sql(url, text, params = []) {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

// --- Loading -------------------------------------------------------------------------------------

const BATCH = 512;

/** Appends the data set with `append`, setting `clock` to each batch's first record (segment per day). */
async function load(label, ledgerFor) {
  const t0 = performance.now();
  let day = { now: new Date(0) };
  const ledger = await ledgerFor(() => day.now);
  let batch = [];
  let done = 0;
  let nextLog = N / 10;
  // Each batch is appended one second after its LAST record's timestamp: a record is never appended
  // before its span started, as in production, so a batch that crosses midnight lands on the new
  // day's segment (appended at its first record's time, the records after midnight sat on the
  // previous day's segment, which the readers' append-day rule then leaves out of windows starting
  // at midnight).
  const append = (batch) => {
    day.now = new Date(Date.parse(batch[batch.length - 1].timestamp) + 1000);
    return ledger.append(batch);
  };
  for (const r of records({ count: N, seed: Number(values.seed) })) {
    batch.push(r);
    if (batch.length === BATCH) {
      await append(batch);
      done += batch.length;
      batch = [];
      if (done >= nextLog) {
        log(`${label}: loaded ${done.toLocaleString('en')} of ${N.toLocaleString('en')} (${Math.round(done / ((performance.now() - t0) / 1000))} records/s)`);
        nextLog += N / 10;
      }
    }
  }
  if (batch.length > 0) await append(batch);
  await ledger.close();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds: round(seconds, 1), recordsPerSecond: Math.round(N / seconds) };
}

function diskBytes(dir) {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true })) {
    const s = statSync(join(dir, name));
    if (s.isFile()) total += s.size;
  }
  return total;
}

// --- Measuring -----------------------------------------------------------------------------------

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * Runs `llm-audit args` REPEAT times: the fastest wall time, its peak RSS and CPU time (user +
 * system: on a loaded machine the wall time mostly measures the wait for a core), the output size.
 */
async function runCli(args) {
  let best;
  for (let i = 0; i < REPEAT; i++) {
    const r = await spawned('/usr/bin/time', ['-f', '%e %M %U %S', process.execPath, MAIN, ...args]);
    const timeLine = r.stderr.trim().split('\n').pop();
    const [wall, rssKb, user, sys] = timeLine.split(' ').map(Number);
    if (r.status !== 0) {
      const problem = r.stderr.trim().split('\n').slice(-3).join(' / ');
      return { error: `exit ${r.status}: ${problem}` };
    }
    const rows = r.stdout.startsWith('[') ? JSON.parse(r.stdout).length : undefined;
    const run = { seconds: wall, cpuSeconds: round(user + sys), rssMiB: Math.round(rssKb / 1024), ...(rows !== undefined ? { rows } : {}) };
    if (!best || run.seconds < best.seconds) best = run;
  }
  return best;
}

/**
 * A child process, awaited: spawnSync would block the event loop, and with it the load sampler,
 * for the whole of each read (the load average during the run came out empty).
 */
function spawned(command, args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** The verify floor: read every segment file and hash each line as the leaf hash does, one thread. */
function hashFloor(ledger) {
  const dir = join(ledger, 'segments');
  const segments = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(f)).sort();
  const t0 = performance.now();
  let lines = 0;
  let bytes = 0;
  const prefix = Buffer.from([0]);
  for (const name of segments) {
    const buf = readFileSync(join(dir, name));
    bytes += buf.length;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      hash('sha256', Buffer.concat([prefix, buf.subarray(start, nl)]), 'buffer');
      lines++;
      start = nl + 1;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (lines === 0) throw new Error(`no segment lines under ${dir}`);
  return { seconds: round(seconds, 3), lines, bytes, microsecondsPerRecord: round((seconds * 1e6) / lines, 2) };
}

async function sqlFloor(name, params) {
  const text = readFileSync(join(benchDir, 'sql', `${name}.sql`), 'utf8');
  let best;
  for (let i = 0; i < Math.max(REPEAT, 2); i++) {
    const c = new Client({ connectionString: dbUrl });
    await c.connect();
    try {
      const t0 = performance.now();
      const r = await c.query(text, params);
      const seconds = (performance.now() - t0) / 1000;
      if (!best || seconds < best.seconds) best = { seconds: round(seconds, 3), rows: r.rowCount };
    } finally {
      await c.end();
    }
  }
  return best;
}

// --- Main ----------------------------------------------------------------------------------------

const result = {
  date: new Date().toISOString(),
  label: values.label,
  command: `node bench/scale.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  records: N,
  days: DAYS,
  seed: Number(values.seed),
  dist,
  load: {},
  disk: {},
  reads: [],
};
try {
  if (backends.includes('file') && !(values.reuse && existsSync(fileDir))) {
    rmSync(fileDir, { recursive: true, force: true });
    log(`loading ${N.toLocaleString('en')} records into the file ledger ${fileDir}`);
    result.load.file = await load('file', (clock) => FileLedger.open({ dir: fileDir, fsync: 'none', clock, checkpointEvery: 10_000 }));
    log(`file ledger loaded: ${JSON.stringify(result.load.file)}`);
  }
  if (backends.includes('file')) result.disk.file = diskBytes(fileDir);
  if (backends.includes('postgres')) {
    if (!admin) throw new Error('PostgreSQL: set LLM_AUDIT_BENCH_POSTGRES_URL or LLM_AUDIT_TEST_POSTGRES_URL (a superuser URL)');
    result.postgres = admin.source;
    const exists = (await sql(admin.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [dbName])).rowCount > 0;
    if (!(values.reuse && exists)) {
      await sql(admin.url, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await sql(admin.url, `CREATE DATABASE ${dbName}`);
      const m = spawnSync(process.execPath, [MAIN, 'migrate', '--postgres', dbUrl], { encoding: 'utf8' });
      if (m.status !== 0) throw new Error(`llm-audit migrate failed: ${m.stderr}`);
      log(`loading ${N.toLocaleString('en')} records into PostgreSQL (database ${dbName})`);
      result.load.postgres = await load('postgres', (clock) => PostgresLedger.open({ url: dbUrl, clock, checkpointEvery: 10_000 }));
      log(`PostgreSQL loaded: ${JSON.stringify(result.load.postgres)}`);
      await sql(dbUrl, 'VACUUM ANALYZE');
    } else {
      // A database kept from a run of an older build: brought to this build's schema (timed: the
      // migrations that fill in new columns rewrite every row).
      const t0 = performance.now();
      const m = spawnSync(process.execPath, [MAIN, 'migrate', '--postgres', dbUrl], { encoding: 'utf8' });
      if (m.status !== 0) throw new Error(`llm-audit migrate failed: ${m.stderr}`);
      result.migrate = { seconds: round((performance.now() - t0) / 1000, 1), output: m.stdout.trim() };
      log(`migrate: ${JSON.stringify(result.migrate)}`);
      await sql(dbUrl, 'VACUUM ANALYZE');
    }
    result.disk.postgres = Number((await sql(dbUrl, 'SELECT pg_database_size(current_database())::text AS b')).rows[0].b);
  }

  for (const read of READS) {
    if (read.extra && values.reads !== 'all' && !(values.reads === 'issue' && !backends.includes('file'))) continue;
    if (values.only !== undefined && !values.only.split(',').some((prefix) => read.name.startsWith(prefix))) continue;
    const row = { name: read.name };
    for (const b of backends) {
      log(`${read.name} on ${b}...`);
      const args = read.args.map((a) => a.replace('{tmp}', join(base, `out-${b}-${Date.now()}`)));
      row[b] = await runCli(read.noLedger ? args : [...args, ...(b === 'file' ? ['--ledger', fileDir] : ['--postgres', dbUrl])]);
      log(`  ${JSON.stringify(row[b])}`);
    }
    if (read.floor === 'hash' && backends.includes('file')) {
      row.floor = { what: 'one thread reading the segment files and hashing every line (SHA-256(0x00 || line))', ...hashFloor(fileDir) };
    } else if (read.sql && backends.includes('postgres')) {
      row.floor = { what: `plain SQL (bench/sql/${read.sql}.sql)`, ...(await sqlFloor(read.sql, read.params)) };
    }
    if (row.floor) log(`  floor ${JSON.stringify(row.floor)}`);
    result.reads.push(row);
  }
} finally {
  clearInterval(sampler);
  if (admin && !values.keep && !values.dir) await sql(admin.url, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  if (!values.keep && !values.dir) rmSync(base, { recursive: true, force: true });
}
result.durationSeconds = round((Date.now() - started) / 1000, 1);
result.machine = { ...machineInfo(loadBefore), loadAverageDuring: loads.length ? { min: round(Math.min(...loads)), max: round(Math.max(...loads)), samples: loads.length } : null };

/** The issue's target lines for this run: each read's wall time against its floor, the file ledger's or a fixed time. */
function targetLines() {
  const rows = [];
  for (const read of READS) {
    const row = result.reads.find((r) => r.name === read.name);
    for (const t of read.targets ?? []) {
      const got = row?.[t.backend];
      if (!got || got.error) continue;
      const [limit, against] =
        t.floorTimes !== undefined ? [row.floor?.seconds * t.floorTimes, `≤ ${t.floorTimes}× the floor (${row.floor?.seconds} s)`]
        : t.fileTimes !== undefined ? [row.file?.seconds * t.fileTimes, `≤ ${t.fileTimes}× the file ledger (${row.file?.seconds} s)`]
        : [t.seconds, `≤ ${t.seconds} s`];
      if (!Number.isFinite(limit)) continue;
      const ratio = t.seconds !== undefined ? '' : `${round(got.seconds / (limit / (t.floorTimes ?? t.fileTimes)), 2)}×`;
      rows.push(`| ${read.name} | ${t.backend === 'file' ? 'file ledger' : 'PostgreSQL'} | ${got.seconds} s | ${against} | ${ratio} | ${got.seconds <= limit ? 'met' : '**not met**'} |`);
    }
  }
  if (rows.length === 0) return [];
  return ['## Targets (issue 22), wall time', '', '| read | backend | measured | target | ratio | result |', '|---|---|---:|---|---:|---|', ...rows, ''];
}

/**
 * A larger ledger, extrapolated (not measured): every read here streams the records of its period
 * or of the whole ledger, so its time and the disk grow linearly with the records; the peak RSS is
 * the measured one, since no read holds the ledger in memory.
 */
function extrapolation(records) {
  const k = records / N;
  const t = (m) => (m && !m.error ? `${round(m.seconds * k, 0)} s` : '');
  const disk = Object.entries(result.disk).map(([b, d]) => `${b} ${round((d * k) / 2 ** 30, 1)} GiB`).join(', ');
  return [
    `## ${records.toLocaleString('en')} records, extrapolated (not measured)`,
    '',
    `Linear in the records (×${round(k, 2)} this run's wall times and disk), with the same 35 days, so ×${round(k, 2)} the records per day: each read streams its period's or the whole ledger's records (the process start in each time is scaled too, which overstates the short reads). Memory is not extrapolated: the reads stream, and their peak RSS is the one measured above. Disk: ${disk}.`,
    '',
    '| operation | file ledger | PostgreSQL |',
    '|---|---:|---:|',
    ...result.reads.filter((r) => !READS.find((x) => x.name === r.name)?.noLedger).map((r) => `| ${r.name} | ${t(r.file)} | ${t(r.postgres)} |`),
    '',
  ];
}

const cell = (m) => (m === undefined ? '' : m.error ? `failed: ${m.error}` : `${m.seconds} s (cpu ${m.cpuSeconds} s), ${m.rssMiB} MiB${m.rows !== undefined ? `, ${m.rows} rows` : ''}`);
const md = [
  `# Scale benchmark${values.label ? ` (${values.label})` : ''}`,
  '',
  `${N.toLocaleString('en')} records (bench/lib/dataset.mjs, seed ${result.seed}, ${DAYS} days), run ${result.date} with \`${result.command}\` ` +
    `(${result.durationSeconds} s; Node ${result.machine.node}, ${result.machine.cores} cores, load average before ${result.machine.loadAverageBefore.join(' / ')}, ` +
    `during ${result.machine.loadAverageDuring ? `${result.machine.loadAverageDuring.min}..${result.machine.loadAverageDuring.max}` : 'n/a'}, after ${result.machine.loadAverageAfter.join(' / ')}).`,
  '',
  `Loaded directly with the writers (512 records per append): ${Object.entries(result.load).map(([b, l]) => `${b} ${l.seconds} s (${l.recordsPerSecond} records/s)`).join(', ') || 'reused'}; ` +
    `disk ${Object.entries(result.disk).map(([b, d]) => `${b} ${Math.round(d / 2 ** 20)} MiB`).join(', ')}.` +
    (result.migrate ? ` The kept database migrated by this build in ${result.migrate.seconds} s (${result.migrate.output.replace(/\s+/g, ' ')}).` : ''),
  '',
  '| operation | file ledger | PostgreSQL | floor (same run) |',
  '|---|---:|---:|---|',
  ...result.reads.map((r) => `| ${r.name} | ${cell(r.file)} | ${cell(r.postgres)} | ${r.floor ? `${r.floor.seconds} s: ${r.floor.what}` : ''} |`),
  '',
  'Wall time of `llm-audit` in a child process (process start included), its CPU time (user + system) and peak RSS from /usr/bin/time.',
  '',
  ...targetLines(),
  ...extrapolation(10_000_000),
].join('\n');
process.stdout.write(md);
mkdirSync(outDir, { recursive: true });
const stem = `scale${values.label ? `-${values.label}` : ''}`;
writeFileSync(join(outDir, `${stem}.md`), md);
writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(result, null, 2) + '\n');
log(`wrote ${join(outDir, `${stem}.md`)} and ${stem}.json`);
