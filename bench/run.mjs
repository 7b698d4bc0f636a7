#!/usr/bin/env node
// `node bench/run.mjs [--rounds N] [--calls N] [--stream-calls N] [--quick] [--profile] ...`
//
// Overhead of otel-llm-audit against no instrumentation, a hand-written span and the peer
// instrumentations, with the real `openai` (6 and 5) and `@anthropic-ai/sdk` clients against the
// test suite's fake provider in a separate process. See bench/README.md for the method.
//
// Then runs the ledger's and the ingest server's own benchmarks (bench/ledger.mjs, bench/ingest.mjs)
// as child processes, and reads bench/spool-memory.mjs's last result when there is one.
//
// Writes bench/results/latest.md and bench/results/latest.json, and prints the markdown.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyseGroup, budget, scaling } from './lib/analyse.mjs';
import { CONFIGS, configsFor, DEFAULT_SIZE, SCALING_SIZES, SDKS } from './lib/configs.mjs';
import { machineInfo, renderMarkdown } from './lib/report.mjs';
import { summariseProfile } from './lib/profile.mjs';
import { runBenchChild, startFakeProcess } from './lib/children.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const scratch = join(root, '.cache/bench');

const HELP = `usage: node bench/run.mjs [options]

  --rounds N         interleaved rounds (default 5; --quick: 1)
  --calls N          measured plain calls per child at 10 KB (default 1500; --quick: 100)
  --stream-calls N   measured streaming calls per child (default 300; --quick: 30)
  --warmup N         warm-up calls per child (default: a third of the measured calls)
  --abandon N        streams abandoned after 3 chunks, per stream child (default 10)
  --sdk LIST         comma-separated subset of: ${Object.keys(SDKS).join(', ')}
  --config LIST      comma-separated subset of the configurations (baseline is always kept)
  --no-scaling       skip the conversation-size series
  --messages LIST    reused,fresh (default both): how the application holds its conversation.
                     reused: the same message objects every call (an agent loop, a chat session
                     kept in memory); fresh: new objects parsed from JSON every call (a server that
                     receives the whole conversation with each request). The scaling series uses fresh.
  --exporter LIST    comma-separated, each a group of its own in the same interleaved rounds
                     (default otlp-proto,count). otlp-proto: the exporter encodes every batch to
                     OTLP/protobuf, as the default OTLP exporter does before sending; otlp-json: to
                     OTLP/JSON; count: it only counts the spans (hides what the attributes cost to
                     export, which favours the peers that record the conversation as attributes)
  --transport KIND   loopback (default): the SDKs call the fake provider over a socket; replay: each
                     child records the fake provider's answer once per call shape and its client's
                     fetch replays it (no socket work, much less noise; see bench/lib/replay.mjs)
  --profile          also run otel-llm-audit children under --cpu-prof and summarise the profile
  --profile-only     only the profile (no rounds)
  --quick            one round, fewer calls, small ledger and ingest runs: a smoke run
  --no-ledger        do not run bench/ledger.mjs after the rounds
  --ledger-records N its big ledger: build, verify, reopen, report (default 100000; --quick: 10000)
  --ledger-appends N its fsync=always appends of one record (default 2000; --quick: 300)
  --no-ingest        do not run bench/ingest.mjs after the rounds
  --ingest-seconds S its seconds per phase, 3 phases per backend (default 5; --quick: 1)
  --out DIR          where latest.md / latest.json go, and ledger.* / ingest.* (default bench/results)
  --reanalyse FILE   only re-render the report from an earlier latest.json (no measurement)
`;

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string' },
    calls: { type: 'string' },
    'stream-calls': { type: 'string' },
    warmup: { type: 'string' },
    abandon: { type: 'string' },
    sdk: { type: 'string' },
    config: { type: 'string' },
    'no-scaling': { type: 'boolean', default: false },
    messages: { type: 'string', default: 'reused,fresh' },
    exporter: { type: 'string', default: 'otlp-proto,count' },
    transport: { type: 'string', default: 'loopback' },
    profile: { type: 'boolean', default: false },
    'profile-only': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'no-ledger': { type: 'boolean', default: false },
    'ledger-records': { type: 'string' },
    'ledger-appends': { type: 'string' },
    'no-ingest': { type: 'boolean', default: false },
    'ingest-seconds': { type: 'string' },
    out: { type: 'string' },
    reanalyse: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const int = (value, fallback) => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`bench: expected a non-negative integer, got ${value}`);
    process.exit(2);
  }
  return n;
};
const quick = opts.quick;
const settings = {
  rounds: opts['profile-only'] ? 0 : int(opts.rounds, quick ? 1 : 5),
  calls: int(opts.calls, quick ? 100 : 1500),
  streamCalls: int(opts['stream-calls'], quick ? 30 : 300),
  warmup: opts.warmup === undefined ? undefined : int(opts.warmup),
  abandon: int(opts.abandon, 10),
  exporters: opts.exporter.split(','),
  transport: opts.transport,
  scaling: !opts['no-scaling'],
  messages: opts.messages.split(','),
  // The ledger's and the ingest server's benchmarks, after the rounds (false: not run).
  ledger: opts['no-ledger'] || opts['profile-only'] ? false : { records: int(opts['ledger-records'], quick ? 10_000 : 100_000), appendRecords: int(opts['ledger-appends'], quick ? 300 : 2000) },
  ingest: opts['no-ingest'] || opts['profile-only'] ? false : { seconds: int(opts['ingest-seconds'], quick ? 1 : 5) },
};
if (settings.ledger && (settings.ledger.records < 1 || settings.ledger.appendRecords < 1)) {
  console.error('bench: --ledger-records and --ledger-appends must be positive');
  process.exit(2);
}
if (settings.ingest && settings.ingest.seconds < 1) {
  console.error('bench: --ingest-seconds must be positive');
  process.exit(2);
}
if (settings.messages.length === 0 || settings.messages.some((m) => m !== 'reused' && m !== 'fresh')) {
  console.error('bench: --messages must list reused and/or fresh');
  process.exit(2);
}
if (!['loopback', 'replay'].includes(settings.transport)) {
  console.error(`bench: --transport must be loopback or replay`);
  process.exit(2);
}
if (settings.exporters.length === 0 || settings.exporters.some((e) => !['otlp-proto', 'otlp-json', 'count'].includes(e))) {
  console.error(`bench: --exporter must list otlp-proto, otlp-json and/or count`);
  process.exit(2);
}
const sdks = opts.sdk ? opts.sdk.split(',') : Object.keys(SDKS);
for (const sdk of sdks) if (!SDKS[sdk]) (console.error(`bench: unknown sdk ${sdk}`), process.exit(2));
const configFilter = opts.config ? new Set(['baseline', ...opts.config.split(',')]) : undefined;
for (const c of configFilter ?? []) if (!CONFIGS[c]) (console.error(`bench: unknown configuration ${c}`), process.exit(2));
const outDir = resolve(opts.out ?? join(benchDir, 'results'));
/** A path as shown in the report: relative to the repository when inside it. */
const shown = (path) => (path.startsWith(`${root}/`) ? relative(root, path) : path);

/**
 * bench/spool-memory.mjs's last result (that script is run on its own: `npm run bench:spool`), for
 * the report: `{ file, date, command, markdown }`, `{ file, missing: true }` or `{ file, error }`.
 * Looked for in the output directory, then in bench/results; `saved` (from a latest.json being
 * re-rendered) is kept when there is no such file now.
 */
function readSpoolMemory(saved) {
  const candidates = [...new Set([join(outDir, 'spool-memory.json'), join(benchDir, 'results', 'spool-memory.json')])];
  const file = candidates.find((f) => existsSync(f));
  if (!file) return saved && !saved.missing ? saved : { file: 'bench/results/spool-memory.json', missing: true };
  try {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const mdFile = file.replace(/\.json$/, '.md');
    const markdown =
      typeof json.markdown === 'string' ? json.markdown : typeof json.table === 'string' ? json.table : existsSync(mdFile) ? readFileSync(mdFile, 'utf8') : undefined;
    return {
      file: shown(file),
      date: json.date ?? `${statSync(file).mtime.toISOString()} (the file's modification time)`,
      command: typeof json.command === 'string' ? json.command : undefined,
      markdown,
      keys: Object.keys(json),
    };
  } catch (error) {
    return { file: shown(file), error: error.message.replace(/\s+/g, ' ') };
  }
}

/**
 * Analyses the rounds and writes latest.md / latest.json (and prints the markdown).
 * `meta.groups[i]` is a group definition, `meta.rounds[i]` its results, one object per round.
 */
function writeReport(meta) {
  const { groups, rounds, ...rest } = meta;
  const analysed = groups.map((group, gi) => analyseGroup(group, rounds[gi]));
  const report = {
    ...rest,
    groups: analysed.map((g, gi) => ({ ...g, rawRounds: rounds[gi].map((round, ri) => slimRound(round, ri === rounds[gi].length - 1)) })),
    budget: budget(analysed),
    scaling: scaling(analysed),
    spoolMemory: readSpoolMemory(rest.spoolMemory),
  };
  const markdown = renderMarkdown(report);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.md'), markdown);
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, roundNumbers, 1) + '\n');
  process.stdout.write(markdown);
  process.stderr.write(`bench: wrote ${join(outDir, 'latest.md')} and latest.json\n`);
}

/** A child's result as kept in latest.json: no job echo or per-segment detail, a sample span only in the last round. */
function slimRound(round, last) {
  const out = {};
  for (const [config, result] of Object.entries(round)) {
    if (!result) continue;
    const { job, sampleSpan, segments, measureWindowUs, ...kept } = result;
    out[config] = last && sampleSpan ? { ...kept, sampleSpan } : kept;
  }
  return out;
}

/** JSON replacer: 4 significant digits below 100, one decimal above (µs do not need more). */
function roundNumbers(key, value) {
  if (typeof value !== 'number' || Number.isInteger(value) || !Number.isFinite(value)) return value;
  return Math.abs(value) >= 100 ? Math.round(value * 10) / 10 : Number(value.toPrecision(4));
}

if (opts.reanalyse) {
  // Re-render the report of an earlier run from its latest.json (after a change to the analysis or
  // the report), without measuring anything.
  const saved = JSON.parse(readFileSync(opts.reanalyse, 'utf8'));
  const { groups: savedGroups, budget: _b, scaling: _s, ...meta } = saved;
  writeReport({
    ...meta,
    reanalysed: { date: new Date().toISOString(), from: shown(resolve(opts.reanalyse)) },
    // Runs from before --exporter took a list measured one exporter, named in their settings.
    groups: savedGroups.map(({ key, sdk, shape, bytes, messages, exporter, configs, scaling: isScaling }) => ({
      key,
      sdk,
      shape,
      bytes,
      messages: messages ?? 'reused',
      exporter: exporter ?? meta.settings?.exporter ?? 'otlp-proto',
      configs,
      scaling: isScaling,
    })),
    rounds: savedGroups.map((g) => g.rawRounds),
  });
  process.exit(0);
}

const log = (line) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// Preparation: a snapshot of this package's build, the compiled fake provider, the fake's process
// ---------------------------------------------------------------------------------------------

const distSrc = join(root, 'dist/cjs');
if (!existsSync(join(distSrc, 'index.js'))) {
  console.error('bench: dist/cjs is missing: run `npm run build` first (or `npm run bench`, which builds)');
  process.exit(1);
}
// Other work may rebuild dist/ while the benchmark runs (the build deletes it first): measure one
// consistent copy. Under .cache/ of the repo, so that its requires still find node_modules.
const dist = join(scratch, 'dist-cjs');
rmSync(dist, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
cpSync(distSrc, dist, { recursive: true });

const { fake, process: fakeProcess } = await startFakeProcess(scratch, log);

// ---------------------------------------------------------------------------------------------
// The jobs
// ---------------------------------------------------------------------------------------------

const sizeKey = (bytes) => (bytes >= 1 << 20 ? `${bytes >> 20}MB` : `${bytes >> 10}KB`);
/** Fewer calls for big conversations: about the same time per child whatever the size. */
const callsFor = (shape, bytes) => {
  const base = shape === 'plain' ? settings.calls : settings.streamCalls;
  if (bytes <= DEFAULT_SIZE) return base;
  return Math.max(10, Math.round(base * Math.sqrt(DEFAULT_SIZE / bytes)));
};
const keep = (config) => !configFilter || configFilter.has(config);

const groups = [];
// The first exporter is the one the scaling series and the profile use; each further one only adds
// the main groups again (the budget is judged under every exporter).
const [mainExporter] = settings.exporters;
for (const exporter of settings.exporters) {
  for (const messages of settings.messages) {
    for (const sdk of sdks) {
      for (const shape of ['plain', 'stream']) {
        const key = `${sdk}/${shape}/${sizeKey(DEFAULT_SIZE)}${messages === 'fresh' ? '/fresh' : ''}${exporter === mainExporter ? '' : `/${exporter}`}`;
        groups.push({ key, sdk, shape, bytes: DEFAULT_SIZE, messages, exporter, configs: configsFor(sdk).filter(keep) });
      }
    }
  }
}
// The scaling series shows what hashing costs as the conversation grows, so its messages are fresh
// objects each call (with reused ones, earlier turns are not hashed again).
if (settings.scaling && sdks.includes('openai6')) {
  for (const bytes of SCALING_SIZES.filter((b) => b !== DEFAULT_SIZE || !settings.messages.includes('fresh'))) {
    groups.push({
      key: `openai6/plain/${sizeKey(bytes)}/fresh`,
      sdk: 'openai6',
      shape: 'plain',
      bytes,
      messages: 'fresh',
      scaling: true,
      exporter: mainExporter,
      configs: ['baseline', 'otel-llm-audit'].filter(keep),
    });
  }
}

function jobFor(group, config, round) {
  const calls = callsFor(group.shape, group.bytes);
  return {
    id: `${round}-${group.key.replaceAll('/', '_')}-${config}`,
    sdk: group.sdk,
    config,
    shape: group.shape,
    bytes: group.bytes,
    messages: group.messages ?? 'reused',
    calls,
    warmup: settings.warmup ?? Math.max(5, Math.round(calls / 3)),
    abandonCalls: group.shape === 'stream' ? settings.abandon : 0,
    hashProbe: config === 'otel-llm-audit' && group.shape === 'plain',
    exporter: group.exporter,
    transport: settings.transport,
    fake,
    dist,
  };
}

const resultsDir = join(scratch, 'results');
rmSync(resultsDir, { recursive: true, force: true });
mkdirSync(resultsDir, { recursive: true });
const runChild = (job, execArgv) => runBenchChild(job, resultsDir, execArgv);

// ---------------------------------------------------------------------------------------------
// The rounds: a fresh child per configuration per round; within a group the configurations run
// one after the other, in alternating order (A B C, then C B A), so that a slow drift of the
// machine's load does not favour whoever runs first.
// ---------------------------------------------------------------------------------------------

const started = Date.now();
const loadBefore = os.loadavg();
const perRound = groups.reduce((n, g) => n + g.configs.length, 0);
const total = perRound * settings.rounds;
const rounds = groups.map(() => []);
let done = 0;
for (let round = 0; round < settings.rounds; round++) {
  for (let gi = 0; gi < groups.length; gi++) {
    const group = groups[gi];
    const order = round % 2 === 0 ? group.configs : [...group.configs].reverse();
    const results = {};
    for (const config of order) {
      const result = await runChild(jobFor(group, config, round));
      results[config] = result;
      done++;
      const elapsed = (Date.now() - started) / 1000;
      const eta = (elapsed / done) * (total - done);
      const what = result.error
        ? `ERROR ${result.error.stage}: ${result.error.message.slice(0, 100)}`
        : `cpu ${result.cpuPerCallUs.toFixed(0)} µs/call  latency p50 ${(result.latency.median / 1000).toFixed(2)} ms  spans/call ${result.spansPerCall.toFixed(2)}`;
      log(`[round ${round + 1}/${settings.rounds} ${done}/${total} eta ${Math.round(eta)}s] ${group.key} ${config}: ${what}`);
    }
    rounds[gi].push(results);
  }
}
const machine = machineInfo(loadBefore);

// ---------------------------------------------------------------------------------------------
// Profile (optional): otel-llm-audit under --cpu-prof, summarised to this package's functions
// ---------------------------------------------------------------------------------------------

let profiles;
if (opts.profile || opts['profile-only']) {
  profiles = [];
  const srcHint = (rel) => `src/${rel.replace(/\.js$/, '.ts')}`;
  const targets = sdks.includes('openai6') ? ['openai6'] : [sdks[0]];
  if (sdks.includes('anthropic')) targets.push('anthropic');
  for (const sdk of targets) {
    for (const shape of ['plain', 'stream']) {
      const dir = join(scratch, 'profiles', `${sdk}-${shape}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const group = { key: `profile/${sdk}/${shape}`, sdk, shape, bytes: DEFAULT_SIZE, exporter: mainExporter };
      const job = { ...jobFor(group, 'otel-llm-audit', 'profile'), calls: shape === 'plain' ? 3000 : 600, warmup: 200, abandonCalls: 0 };
      log(`bench: profiling otel-llm-audit, ${sdk} ${shape} (${job.calls} calls)`);
      const result = await runChild(job, ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir]);
      if (result.error) {
        log(`bench: profile run failed: ${result.error.message}`);
        continue;
      }
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) continue;
      const summary = summariseProfile(join(dir, file), { packageDir: dist, srcHint, window: result.measureWindowUs, calls: job.calls });
      profiles.push({ sdk, shape, calls: job.calls, cpuPerCallUs: result.cpuPerCallUs, ...summary, file: join(dir, file) });
    }
  }
}

fakeProcess.stdin.end();
const overheadSeconds = Math.round((Date.now() - started) / 1000);

// ---------------------------------------------------------------------------------------------
// The ledger's and the ingest server's own benchmarks, each a child process that writes its
// ledger.json / ingest.json (and .md) next to latest.json; their JSON goes into the report.
// ---------------------------------------------------------------------------------------------

/** Runs bench/<name>.mjs with `args`; its JSON result, or `{ status: 'failed', command, error }`. */
function runSideBenchmark(name, args) {
  const fullArgs = [...args, '--out', outDir, '--dist', dist];
  const command = ['node', `bench/${name}.mjs`, ...fullArgs.map(shown)].join(' ');
  log(`bench: ${command}`);
  const file = join(outDir, `${name}.json`);
  const since = Date.now();
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(benchDir, `${name}.mjs`), ...fullArgs], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (data) => {
      process.stderr.write(data);
      tail = (tail + data).slice(-2000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const lastLine = tail.trim().split('\n').pop() ?? '';
      if (code !== 0) return resolvePromise({ status: 'failed', command, error: `exited ${signal ?? code}: ${lastLine}` });
      try {
        const result = JSON.parse(readFileSync(file, 'utf8'));
        if (Date.parse(result.date) < since) throw new Error(`${shown(file)} was not rewritten`);
        resolvePromise(result);
      } catch (error) {
        resolvePromise({ status: 'failed', command, error: error.message });
      }
    });
  });
}

/** `{ status: 'skipped', reason }`, with the results an earlier run left in the output directory. */
function skipped(name, reason) {
  const file = join(outDir, `${name}.json`);
  const entry = { status: 'skipped', reason };
  try {
    if (existsSync(file)) entry.earlier = { file: shown(file), result: JSON.parse(readFileSync(file, 'utf8')) };
  } catch {
    // An unreadable earlier result is simply not shown.
  }
  return entry;
}

const whySkipped = (option) => (opts['profile-only'] ? '`--profile-only`' : `\`${option}\``);
const ledger = settings.ledger
  ? await runSideBenchmark('ledger', ['--records', String(settings.ledger.records), '--append-records', String(settings.ledger.appendRecords)])
  : skipped('ledger', whySkipped('--no-ledger'));
const ingest = settings.ingest ? await runSideBenchmark('ingest', ['--seconds', String(settings.ingest.seconds)]) : skipped('ingest', whySkipped('--no-ingest'));

// ---------------------------------------------------------------------------------------------
// Analysis and report
// ---------------------------------------------------------------------------------------------

const versions = {};
const versionOf = (from, name) => {
  try {
    const req = createRequire(join(root, from, 'package.json'));
    let dir = dirname(req.resolve(name));
    // Walk up to the package's own package.json.
    while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name) {
      const up = dirname(dir);
      if (up === dir) return undefined;
      dir = up;
    }
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
};
for (const [sdk, info] of Object.entries(SDKS)) versions[sdk] = versionOf(info.resolveFrom, info.provider === 'openai' ? 'openai' : '@anthropic-ai/sdk');
for (const config of Object.values(CONFIGS)) if (config.package) versions[config.package] = versionOf('.', config.package);
for (const name of ['@opentelemetry/api', '@opentelemetry/sdk-trace-node', '@opentelemetry/sdk-trace-base']) versions[name] = versionOf('.', name);
versions['otel-llm-audit'] = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

writeReport({
  date: new Date().toISOString(),
  command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  machine,
  // durationSeconds: the rounds and the profile; ledger and ingest give their own.
  settings: { ...settings, sdks, durationSeconds: overheadSeconds, totalSeconds: Math.round((Date.now() - started) / 1000) },
  versions,
  groups,
  rounds,
  profiles,
  ledger,
  ingest,
});
