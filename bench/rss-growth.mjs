// Does RSS grow with the number of calls? One child per configuration and call count (the same
// child as bench/run.mjs: openai 6, plain calls, 10 KB conversation, new message objects every
// call, counting exporter, replay transport), RSS read at its end. A per-call leak shows as RSS
// rising with the count; a fixed cost as a plateau. Writes bench/results/rss-growth.md.
//   node bench/rss-growth.mjs [--counts 3000,9000,27000]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runBenchChild, startFakeProcess } from './lib/children.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { counts: { type: 'string', default: '3000,9000,27000' } } });
const counts = values.counts.split(',').map(Number);
const scratch = join(root, '.cache/rss-growth');
mkdirSync(join(scratch, 'results'), { recursive: true });
const { fake, process: fakeProcess } = await startFakeProcess(scratch);
const rows = [];
try {
  for (const config of ['otel-llm-audit', 'otel-contrib', 'baseline']) {
    for (const calls of counts) {
      const job = { id: `${config}-${calls}`, sdk: 'openai6', config, shape: 'plain', bytes: 10240, messages: 'fresh', calls, warmup: 100, abandonCalls: 0, hashProbe: false, exporter: 'count', transport: 'replay', fake, dist: join(root, 'dist/cjs') };
      const result = await runBenchChild(job, join(scratch, 'results'));
      if (result.error) throw new Error(`${job.id}: ${result.error.stage}: ${result.error.message}`);
      rows.push({ config, calls, rssMB: result.rssMB });
      console.log(`rss-growth: ${config} ${calls} calls: ${result.rssMB.toFixed(1)} MB`);
    }
  }
} finally {
  fakeProcess.kill();
}
const table = ['| configuration | ' + counts.map((n) => `${n} calls`).join(' | ') + ' |', '|---|' + counts.map(() => '---:').join('|') + '|'];
for (const config of [...new Set(rows.map((r) => r.config))]) {
  table.push(`| ${config} | ` + counts.map((n) => `${rows.find((r) => r.config === config && r.calls === n).rssMB.toFixed(1)} MB`).join(' | ') + ' |');
}
writeFileSync(
  join(root, 'bench/results/rss-growth.md'),
  `# RSS at the end of a child against the number of calls\n\nRun ${new Date().toISOString()} with \`node bench/rss-growth.mjs --counts ${values.counts}\`: openai 6, plain calls, 10 KB conversation, new message objects every call, counting exporter, replay transport; one child per cell. A per-call leak would show as RSS rising with the count.\n\n${table.join('\n')}\n`,
);
