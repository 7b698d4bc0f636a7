// `npm run demo`: runs examples/chat-app.cjs under `node --require otel-llm-audit/register`
// against the local fake provider (no network, no API key), receives its spans on a local OTLP/HTTP
// endpoint and prints what was recorded for each call.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// The fake provider and the OTLP receiver are the test suite's own, compiled for this script.
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.demo.json')], { stdio: 'inherit' });
const { startFakeProvider } = require(join(root, '.cache/demo/fake-provider.js'));
const { startOtlpReceiver } = require(join(root, '.cache/demo/otlp-receiver.js'));

const fake = await startFakeProvider();
const otlp = await startOtlpReceiver();
const env = {
  ...process.env,
  FAKE_PROVIDER_URL: fake.url,
  OTEL_SERVICE_NAME: 'otel-llm-audit-demo',
  OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_METRICS_EXPORTER: 'none',
  OTEL_LOGS_EXPORTER: 'none',
  LLM_AUDIT_HASH_KEY: process.env.LLM_AUDIT_HASH_KEY ?? 'demo-only-hash-key-change-me',
  LLM_AUDIT_HASH_KEY_ID: process.env.LLM_AUDIT_HASH_KEY_ID ?? 'demo',
};
console.log('$ node --require otel-llm-audit/register examples/chat-app.cjs');
const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, ['--require', 'otel-llm-audit/register', join(root, 'examples/chat-app.cjs')], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  child.on('exit', resolve);
});
await fake.close();
await otlp.close();
if (code !== 0) {
  console.error(`demo app exited with ${code}`);
  process.exit(1);
}

const spans = otlp.jsonSpans();
console.log(`\nRecorded ${spans.length} audit spans (one per LLM call):\n`);
for (const span of spans) {
  const a = span.attributes;
  console.log(`  ${span.name}  [${a['llm_audit.action']}]  ${a['llm_audit.status']}`);
  const rows = [
    ['request id', a['llm_audit.request_id']],
    ['user / session / tenant', `${a['user.id']} / ${a['session.id']} / ${a['llm_audit.tenant.id']}`],
    ['provider / response model', `${a['gen_ai.provider.name']} / ${a['gen_ai.response.model']}`],
    ['tokens in / out / cached', `${a['gen_ai.usage.input_tokens']} / ${a['gen_ai.usage.output_tokens']} / ${a['gen_ai.usage.cache_read.input_tokens'] ?? '-'}`],
    ['cost', a['gen_ai.usage.cost.amount'] !== undefined ? `$${Number(a['gen_ai.usage.cost.amount']).toFixed(8)} USD` : a['llm_audit.cost.status']],
    ['time to first chunk', a['gen_ai.response.time_to_first_chunk'] !== undefined ? `${(a['gen_ai.response.time_to_first_chunk'] * 1000).toFixed(1)} ms` : '-'],
    ['input hash', a['llm_audit.input.hash']],
    ['output hash', a['llm_audit.output.hash']],
  ];
  for (const [label, value] of rows) console.log(`      ${label.padEnd(26)} ${value}`);
  console.log('');
}
console.log('No prompt text left the process: the spans carry keyed hashes, never the content.');
