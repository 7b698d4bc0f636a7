// Runs the deployment matrix (test/deploy/*.test.ts) and prints it as a table: one row per case,
// pass or fail, and for a failure the symptom its assertion named. `node test/deploy/matrix.mjs [files]`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = join(mkdtempSync(join(tmpdir(), 'deploy-matrix-')), 'result.json');
const files = process.argv.slice(2);
const started = Date.now();
spawnSync('npx', ['vitest', 'run', ...(files.length > 0 ? files : ['test/deploy/']), '--reporter=json', `--outputFile=${out}`], { stdio: ['ignore', 'ignore', 'inherit'] });
const result = JSON.parse(readFileSync(out, 'utf8'));
const strip = (s) => s.replace(/\u001b\[[0-9;]*m/g, '');
console.log('| case | result | symptom | s |\n|---|---|---|---|');
for (const file of result.testResults) {
  const family = file.name.replace(/.*test\/deploy\//, '').replace('.test.ts', '');
  for (const t of file.assertionResults) {
    const message = strip(t.failureMessages?.[0] ?? '');
    const symptom = /SYMPTOM: ([^\n]*)/.exec(message)?.[1] ?? message.split('\n')[0].slice(0, 200);
    console.log(`| ${family}: ${t.ancestorTitles.join(' / ')} / ${t.title} | ${t.status === 'passed' ? 'pass' : 'FAIL'} | ${t.status === 'passed' ? '' : symptom.replace(/\|/g, '\\|')} | ${((t.duration ?? 0) / 1000).toFixed(1)} |`);
  }
}
console.log(`\n${result.numPassedTests} passed, ${result.numFailedTests} failed in ${((Date.now() - started) / 1000).toFixed(0)} s`);

// The same, one row per case and one column per trail and register flag (the README's table).
const columns = ['ledger --require', 'ledger --import', 'otlp --require', 'otlp --import'];
const rows = new Map();
for (const file of result.testResults) {
  const family = file.name.replace(/.*test\/deploy\//, '').replace('.test.ts', '');
  for (const t of file.assertionResults) {
    const path = t.ancestorTitles.join(' ');
    const trail = /trail: (ledger|otlp)/.exec(path)?.[1] ?? /\((ledger|otlp)\)/.exec(t.title)?.[1] ?? (/OTLP/.test(t.title) ? 'otlp' : /ledger/.test(t.title) ? 'ledger' : undefined);
    const flag = /--(require|import)/.exec(path)?.[1];
    const title = t.title.replace(/ \((ledger|otlp)\)$/, '');
    const key = `${family} | ${/next build \((\w+)\)/.exec(path) ? `${/next build \((\w+)\)/.exec(path)[1]} build, ` : ''}${title}`;
    const row = rows.get(key) ?? {};
    const outcome = t.status === 'passed' ? 'yes' : 'FAIL';
    if (flag === undefined) {
      // Started its own way (Next's instrumentation.ts, npx tsx, no audit at all): one cell.
      row.other = [row.other, `${outcome}${trail ? ` (${trail})` : ''}`].filter(Boolean).join(', ');
    } else {
      for (const c of columns.filter((c) => (trail === undefined || c.startsWith(trail)) && c.endsWith(flag))) row[c] = outcome;
    }
    rows.set(key, row);
  }
}
console.log(`\n| family | case | ${columns.join(' | ')} | started otherwise |\n|---|---|${columns.map(() => '---').join('|')}|---|`);
for (const [key, row] of rows) console.log(`| ${key} | ${[...columns, 'other'].map((c) => row[c] ?? '–').join(' | ')} |`);
