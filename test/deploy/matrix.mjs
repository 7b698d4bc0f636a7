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
