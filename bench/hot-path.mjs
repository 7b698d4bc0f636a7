#!/usr/bin/env node
// `node bench/hot-path.mjs --base DIR [--rounds N] [--calls N] [--sdk LIST] [--messages LIST] [--out FILE]`
//
// A/B of the audited call path: two builds of this package (`--base`, an earlier dist/cjs copied
// aside, and the current dist/cjs) measured in the same interleaved rounds, beside the baseline
// (no OpenTelemetry), the hand-written span and the reference the budget compares with (the contrib
// instrumentation for openai, the Anthropic SDK's own spans). Same children as bench/run.mjs
// (bench/child.mjs: CPU time per call from process.cpuUsage over the measured calls), replay
// transport by default (no socket noise), plain calls, 10 KB conversation, OTLP/protobuf encoding.
//
// Made for a loaded machine: the two builds alternate within each round (order reversed every
// round), so load drifts hit both alike; every overhead is taken against the baseline of the same
// round, and the A/B ratio is computed per round before the median. Writes FILE.md and FILE.json
// (default bench/results/hot-path-children) and prints the markdown.
import { cpSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_SIZE } from './lib/configs.mjs';
import { runBenchChild, startFakeProcess } from './lib/children.mjs';
import { median, min, max } from './lib/stats.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const scratch = join(root, '.cache/bench-hot-path');

const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    calls: { type: 'string', default: '2000' },
    sdk: { type: 'string', default: 'openai6,anthropic' },
    shape: { type: 'string', default: 'plain' },
    messages: { type: 'string', default: 'reused,fresh' },
    exporter: { type: 'string', default: 'otlp-proto' },
    transport: { type: 'string', default: 'replay' },
    refs: { type: 'boolean', default: true },
    'no-refs': { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench/results/hot-path-children') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help || !opts.base) {
  process.stdout.write(`usage: node bench/hot-path.mjs --base DIR [options]

  --base DIR        the build to compare with (a copy of an earlier dist/cjs, e.g. made with
                    \`git stash; npm run build; cp -r dist/cjs .cache/perf/base-cjs; git stash pop\`)
  --rounds N        interleaved rounds (default 5)
  --calls N         measured calls per child (default 2000; a third more to warm up)
  --sdk LIST        openai6,anthropic (default both)
  --shape KIND      plain (default) or stream
  --messages LIST   reused,fresh (default both; see bench/README.md)
  --exporter KIND   otlp-proto (default), otlp-json or count
  --transport KIND  replay (default) or loopback
  --no-refs         leave out the hand-written span and the peer reference
  --out FILE        FILE.md and FILE.json (default bench/results/hot-path-children)
`);
  process.exit(opts.help ? 0 : 2);
}
const rounds = Number(opts.rounds);
const calls = Number(opts.calls);
const log = (line) => process.stderr.write(`${line}\n`);

// Both builds are copied under the repository (their requires must find its node_modules), so that
// a rebuild while this runs does not change what is measured.
rmSync(scratch, { recursive: true, force: true });
const resultsDir = join(scratch, 'results');
mkdirSync(resultsDir, { recursive: true });
const builds = { base: join(scratch, 'base-cjs'), new: join(scratch, 'new-cjs') };
cpSync(resolve(opts.base), builds.base, { recursive: true });
cpSync(join(root, 'dist/cjs'), builds.new, { recursive: true });
for (const dir of Object.values(builds)) if (!existsSync(join(dir, 'index.js'))) throw new Error(`no index.js in ${dir}`);

const { fake, process: fakeProcess } = await startFakeProcess(scratch, log);

/** Per SDK: the configurations of one round (name -> child.mjs config and build). */
const REFERENCE = { openai6: 'otel-contrib', anthropic: 'anthropic-builtin' };
function configsOf(sdk) {
  const list = [
    ['baseline', { config: 'baseline' }],
    ['ours (base)', { config: 'otel-llm-audit', dist: builds.base }],
    ['ours (new)', { config: 'otel-llm-audit', dist: builds.new }],
  ];
  if (!opts['no-refs']) list.push(['hand-span', { config: 'hand-span' }], [REFERENCE[sdk], { config: REFERENCE[sdk] }]);
  return list;
}

const groups = [];
for (const messages of opts.messages.split(',')) for (const sdk of opts.sdk.split(',')) groups.push({ sdk, messages, configs: configsOf(sdk), rounds: [] });

const loadBefore = os.loadavg();
const started = Date.now();
for (let round = 0; round < rounds; round++) {
  for (const group of groups) {
    const order = round % 2 === 0 ? group.configs : [...group.configs].reverse();
    const results = {};
    for (const [name, { config, dist }] of order) {
      const job = {
        id: `${round}-${group.sdk}-${group.messages}-${name.replace(/\W+/g, '_')}`,
        sdk: group.sdk,
        config,
        shape: opts.shape,
        bytes: DEFAULT_SIZE,
        messages: group.messages,
        calls,
        warmup: Math.max(5, Math.round(calls / 3)),
        abandonCalls: 0,
        exporter: opts.exporter,
        transport: opts.transport,
        fake,
        dist: dist ?? builds.new,
      };
      const result = await runBenchChild(job, resultsDir);
      if (result.error) throw new Error(`${job.id}: ${result.error.stage}: ${result.error.message}`);
      results[name] = { cpu: result.cpuPerCallUs, mainThread: result.mainThreadCpuPerCallUs, spans: result.spansPerCall, attributes: result.attributesPerSpan };
    }
    group.rounds.push(results);
    log(`[round ${round + 1}/${rounds}] ${group.sdk} ${group.messages}: ${Object.entries(results).map(([n, r]) => `${n} ${r.cpu.toFixed(0)}`).join(', ')}`);
  }
}
fakeProcess.stdin.end();

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-');
const lines = [
  '# Hot path: this build against an earlier one',
  '',
  `${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(1)).join(' ')} → ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}; ${rounds} interleaved rounds of ${calls} ${opts.shape} calls per child, ${opts.transport} transport, ${opts.exporter} exporter, 10 KB conversation; ${Math.round((Date.now() - started) / 1000)} s.`,
  `Produced by \`node bench/hot-path.mjs ${process.argv.slice(2).join(' ').replace(resolve(opts.base), relative(root, resolve(opts.base)))}\`.`,
  '',
  'CPU µs per call over the baseline of the same round: median (min..max over rounds); ratios are medians of per-round ratios.',
  '',
];
const summary = [];
for (const group of groups) {
  const names = group.configs.map(([n]) => n).filter((n) => n !== 'baseline');
  const delta = (name) => group.rounds.map((r) => r[name].cpu - r.baseline.cpu);
  const ratio = (a, b) => group.rounds.map((r) => (r[a].cpu - r.baseline.cpu) / (r[b].cpu - r.baseline.cpu));
  lines.push(`## ${group.sdk}, ${group.messages} messages`, '', `baseline: ${fmt(median(group.rounds.map((r) => r.baseline.cpu)))} µs per call`, '');
  lines.push('| configuration | Δ CPU µs/call | min..max | spans/call | attributes/span |', '|---|---:|---|---:|---:|');
  const row = { sdk: group.sdk, messages: group.messages };
  for (const name of names) {
    const d = delta(name);
    const last = group.rounds.at(-1)[name];
    lines.push(`| ${name} | ${fmt(median(d))} | ${fmt(min(d))}..${fmt(max(d))} | ${last.spans.toFixed(2)} | ${last.attributes.toFixed(1)} |`);
    row[name] = { median: median(d), min: min(d), max: max(d), perRound: d };
  }
  const ab = ratio('ours (new)', 'ours (base)');
  lines.push('', `new / base: ${fmtRatio(median(ab))} (${fmtRatio(min(ab))}..${fmtRatio(max(ab))})`);
  row.newOverBase = median(ab);
  const ref = REFERENCE[group.sdk];
  if (names.includes(ref)) {
    const r = ratio('ours (new)', ref);
    const rb = ratio('ours (base)', ref);
    lines.push(`new / ${ref}: ${fmtRatio(median(r))} (${fmtRatio(min(r))}..${fmtRatio(max(r))}); base / ${ref}: ${fmtRatio(median(rb))}`);
    row.newOverReference = median(r);
    row.baseOverReference = median(rb);
  }
  lines.push('');
  summary.push(row);
}
const markdown = lines.join('\n');
const out = resolve(opts.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.md`, markdown);
writeFileSync(`${out}.json`, JSON.stringify({ date: new Date().toISOString(), options: opts, summary, groups: groups.map(({ sdk, messages, rounds: r }) => ({ sdk, messages, rounds: r })) }, null, 1) + '\n');
process.stdout.write(markdown);
