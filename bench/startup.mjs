#!/usr/bin/env node
// `node bench/startup.mjs [--rounds N] [--out DIR]`
//
// What loading costs, beside the contrib OpenAI instrumentation: modules loaded, wall time and RSS
// growth, each configuration in fresh processes, rounds interleaved (configuration order rotates
// every round, so a slow moment of the machine does not fall on one configuration). Medians.
//
// - `require` configurations time one require() from inside the process.
// - `register` configurations time the whole process start up to its first line of script,
//   minus the same for a bare `node` in that round: what `--require otel-llm-audit/register`
//   adds to an app's start (the exporter setup included).
//
// Writes DIR/startup.md and DIR/startup.json (default bench/results) and prints the markdown.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, out: { type: 'string', default: join(root, 'bench/results') }, help: { type: 'boolean' } } });
if (opts.help) {
  process.stdout.write('usage: node bench/startup.mjs [--rounds N (default 7)] [--out DIR (default bench/results)]\n');
  process.exit(0);
}
const rounds = Number(opts.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${opts.rounds}`);

// Printed by every child: its script's start time since process start, modules, RSS.
const REPORT = `const loaded = Object.keys(require.cache).length;
  console.log(JSON.stringify({ atScript, loaded, rss: process.memoryUsage().rss }));`;
const requireScript = (what) => `const atScript = performance.now(); const r0 = process.memoryUsage().rss, c0 = Object.keys(require.cache).length;
  const t = performance.now(); require(${JSON.stringify(what)}); const ms = performance.now() - t;
  console.log(JSON.stringify({ ms, modules: Object.keys(require.cache).length - c0, rssMB: (process.memoryUsage().rss - r0) / 1e6 }));`;
const startScript = `const atScript = performance.now(); ${REPORT}`;

const ledgerDir = mkdtempSync(join(os.tmpdir(), 'llm-audit-startup-'));
const base = { ...process.env, OTEL_LOG_LEVEL: '', LLM_AUDIT_HASH_KEY: 'bench-startup-key-0123456789abcdef', OTEL_SERVICE_NAME: 'startup-bench' };
for (const k of Object.keys(base)) if (k.startsWith('OTEL_EXPORTER') || k === 'LLM_AUDIT_EXPORTER' || k === 'OTEL_TRACES_EXPORTER') delete base[k];
const register = ['--require', join(root, 'dist/cjs/register.js')];

const CONFIGS = [
  { name: 'require @opentelemetry/instrumentation-openai', kind: 'require', what: '@opentelemetry/instrumentation-openai' },
  { name: "require('otel-llm-audit')", kind: 'require', what: join(root, 'dist/cjs/index.js') },
  { name: 'register, ledger exporter', kind: 'register', env: { LLM_AUDIT_EXPORTER: 'ledger', LLM_AUDIT_LEDGER_DIR: ledgerDir } },
  { name: 'register, OTLP http/protobuf', kind: 'register', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', LLM_AUDIT_SPOOL_DIR: join(ledgerDir, 'spool') } },
  { name: 'register, OTLP grpc', kind: 'register', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', LLM_AUDIT_SPOOL_DIR: join(ledgerDir, 'spool') } },
];

function run(args, env) {
  return JSON.parse(execFileSync(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] }).toString().trim().split('\n').pop());
}

const samples = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round++) {
  const bare = run(['-e', startScript], base);
  const order = CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length]);
  for (const config of order) {
    if (config.kind === 'require') {
      samples[config.name].push(run(['-e', requireScript(config.what)], base));
    } else {
      const r = run([...register, '-e', startScript], { ...base, ...config.env });
      samples[config.name].push({ ms: r.atScript - bare.atScript, modules: r.loaded - bare.loaded, rssMB: (r.rss - bare.rss) / 1e6 });
    }
  }
  process.stderr.write(`round ${round + 1}/${rounds} done\n`);
}
rmSync(ledgerDir, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = CONFIGS.map((c) => ({
  name: c.name,
  ms: median(samples[c.name].map((s) => s.ms)),
  msMin: Math.min(...samples[c.name].map((s) => s.ms)),
  msMax: Math.max(...samples[c.name].map((s) => s.ms)),
  modules: median(samples[c.name].map((s) => s.modules)),
  rssMB: median(samples[c.name].map((s) => s.rssMB)),
}));
const contrib = rows[0];
const fmt = (n, d = 0) => n.toFixed(d);
const lines = [
  '# Startup: what loading costs',
  '',
  `${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; ${rounds} interleaved rounds, fresh process per measurement, medians (wall ms: min–max).`,
  'Produced by `node bench/startup.mjs`. `register` rows: process start to first script line, minus a bare `node` in the same round.',
  '',
  '| configuration | modules | × contrib | wall ms (min–max) | × contrib | RSS growth MB |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${fmt(r.modules)} | ${fmt(r.modules / contrib.modules, 2)} | ${fmt(r.ms)} (${fmt(r.msMin)}–${fmt(r.msMax)}) | ${fmt(r.ms / contrib.ms, 2)} | ${fmt(r.rssMB, 1)} |`),
  '',
];
const markdown = lines.join('\n');
mkdirSync(opts.out, { recursive: true });
writeFileSync(join(opts.out, 'startup.md'), markdown);
writeFileSync(join(opts.out, 'startup.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds, rows, samples }, null, 2) + '\n');
process.stdout.write(markdown);
