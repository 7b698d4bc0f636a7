#!/usr/bin/env node
// Puts two runs of bench/scale.mjs on PostgreSQL side by side (before and after a change), each
// read beside its plain-SQL floor, and the CLI's start-up measured apart:
//
//   node bench/scale-compare.mjs BEFORE.json AFTER.json OUT_STEM
//
// writes OUT_STEM.json and OUT_STEM.md. The ratio is the after run's time over the floor of the
// same run; "without start-up" subtracts that run's `llm-audit --help` time (process start and
// module loading), which no SQL can shorten.
import { readFileSync, writeFileSync } from 'node:fs';

const [beforePath, afterPath, stem] = process.argv.slice(2);
if (!beforePath || !afterPath || !stem) {
  console.error('usage: node bench/scale-compare.mjs BEFORE.json AFTER.json OUT_STEM');
  process.exit(2);
}
const before = JSON.parse(readFileSync(beforePath, 'utf8'));
const after = JSON.parse(readFileSync(afterPath, 'utf8'));
const STARTUP = 'CLI start-up (llm-audit --help)';
const startup = (run) => run.reads.find((r) => r.name === STARTUP)?.postgres?.seconds;
const round = (x, d = 2) => (x === undefined || x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

const rows = after.reads.map((a) => {
  const b = before.reads.find((r) => r.name === a.name);
  const floor = a.floor?.seconds;
  const t = a.postgres?.seconds;
  const s = startup(after);
  return {
    name: a.name,
    before: b?.postgres ?? null,
    after: a.postgres ?? null,
    floor: a.floor ?? null,
    ratio: floor && t !== undefined ? round(t / floor, 1) : null,
    ratioWithoutStartup: floor && t !== undefined && s !== undefined && a.name !== STARTUP ? round(Math.max(0, t - s) / floor, 1) : null,
  };
});
const load = (run) =>
  `before ${run.machine.loadAverageBefore.join(' / ')}, during ${run.machine.loadAverageDuring ? `${run.machine.loadAverageDuring.min}..${run.machine.loadAverageDuring.max}` : 'n/a'}, after ${run.machine.loadAverageAfter.join(' / ')}`;
const out = { records: after.records, before: { date: before.date, command: before.command, dist: before.dist, machine: before.machine, load: before.load }, after: { date: after.date, command: after.command, dist: after.dist, machine: after.machine, migrate: after.migrate ?? null }, rows };
writeFileSync(`${stem}.json`, JSON.stringify(out, null, 2) + '\n');

const cell = (m) => (m === null || m === undefined ? '' : m.error ? `failed: ${m.error}` : `${m.seconds} s${m.rows !== undefined ? `, ${m.rows} rows` : ''}`);
const md = [
  `# PostgreSQL reports at ${after.records.toLocaleString('en')} records: before and after (issue 22)`,
  '',
  `Before: \`${before.command}\` (${before.date}; load average ${load(before)}).`,
  `After: \`${after.command}\` (${after.date}; load average ${load(after)})${after.migrate ? `; the kept database migrated by the after build in ${after.migrate.seconds} s` : ''}.`,
  `Node ${after.machine.node}, ${after.machine.cores} cores, shared with other sessions: absolute times are several times a quiet machine's; compare within a row.`,
  '',
  '| read (PostgreSQL, `llm-audit` in a child process) | before | after | plain SQL floor (after run) | after / floor | after without start-up / floor |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${cell(r.before)} | ${cell(r.after)} | ${r.floor ? `${r.floor.seconds} s` : ''} | ${r.ratio ?? ''} | ${r.ratioWithoutStartup ?? ''} |`),
  '',
  'Floors: bench/sql/*.sql run with the `pg` client (best of two). "Without start-up" subtracts the after run\'s `llm-audit --help` time.',
  '',
].join('\n');
writeFileSync(`${stem}.md`, md);
process.stdout.write(md);
