// `npm run demo`: runs examples/chat-app.cjs under `node --require otel-llm-audit/register`
// against the local fake provider (no network, no API key). With no OTLP endpoint configured, the
// audit records land in the embedded ledger; the demo then queries it, verifies it, and shows
// verification catching a one-character edit made to a copy.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cli = join(root, 'dist/cjs/cli/main.js');
const ledger = join(root, '.cache/demo-ledger');
const tampered = join(root, '.cache/demo-ledger-tampered');
const show = (path) => relative(root, path);

// The fake provider is the test suite's own, compiled for this script.
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.demo.json')], { stdio: 'inherit' });
const { startFakeProvider } = require(join(root, '.cache/demo/fake-provider.js'));

function run(args, env = process.env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
    child.on('exit', (code) => resolve(code));
  });
}

rmSync(ledger, { recursive: true, force: true });
rmSync(tampered, { recursive: true, force: true });
const fake = await startFakeProvider();
const env = {
  ...process.env,
  FAKE_PROVIDER_URL: fake.url,
  OTEL_SERVICE_NAME: 'otel-llm-audit-demo',
  LLM_AUDIT_LEDGER_DIR: ledger,
  LLM_AUDIT_HASH_KEY: process.env.LLM_AUDIT_HASH_KEY ?? 'demo-only-hash-key-change-me',
  LLM_AUDIT_HASH_KEY_ID: process.env.LLM_AUDIT_HASH_KEY_ID ?? 'demo',
};
delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;

console.log('\n$ LLM_AUDIT_LEDGER_DIR=.cache/demo-ledger node --require otel-llm-audit/register examples/chat-app.cjs');
const appCode = await run(['--require', 'otel-llm-audit/register', join(root, 'examples/chat-app.cjs')], env);
await fake.close();
if (appCode !== 0) {
  console.error(`demo app exited with ${appCode}`);
  process.exit(1);
}

// Columns that fit a 100-column terminal (`--format json` has every field, hashes included).
const columns = 'seq,user_id,provider,model,status,input_tokens,output_tokens,cost_usd';
// The user's calls: the ledger also holds the process's own audit.start record (its settings'
// fingerprint and the SDK versions patched) and a record of each read the CLI makes (audit.read).
console.log(`\n$ npx llm-audit query --ledger ${show(ledger)} --user user-42 --columns ${columns}`);
await run([cli, 'query', '--ledger', ledger, '--user', 'user-42', '--columns', columns]);
console.log(`\nNo prompt or answer text is stored: each record holds keyed hashes of them (HMAC-SHA256 under`);
console.log(`LLM_AUDIT_HASH_KEY, key id "${env.LLM_AUDIT_HASH_KEY_ID}"). With the key, a given prompt can be checked against its`);
console.log(`record; without it, the hash tells nothing, not even for a short prompt.`);
console.log(`$ npx llm-audit query --ledger ${show(ledger)} --user user-42 --columns seq,input_hash --limit 1`);
await run([cli, 'query', '--ledger', ledger, '--user', 'user-42', '--columns', 'seq,input_hash', '--limit', '1']);
console.log(`\n$ npx llm-audit report cost-by-user --ledger ${show(ledger)}`);
await run([cli, 'report', 'cost-by-user', '--ledger', ledger]);
console.log(`\n$ npx llm-audit verify --ledger ${show(ledger)}`);
await run([cli, 'verify', '--ledger', ledger]);

// Tamper with a copy: raise the output token count of one record by editing one character.
cpSync(ledger, tampered, { recursive: true });
const segments = join(tampered, 'segments');
const segment = join(segments, readdirSync(segments).sort()[0]);
const lines = readFileSync(segment, 'utf8').split('\n');
const line = 1;
const { seq, record } = JSON.parse(lines[line]);
const before = record.output_tokens;
lines[line] = lines[line].replace(/"output_tokens":(\d)/, (_, digit) => `"output_tokens":${(Number(digit) + 1) % 10}`);
const after = JSON.parse(lines[line]).record.output_tokens;
writeFileSync(segment, lines.join('\n'));
console.log(`\nNow, in a copy, one character of the record with seq ${seq} is changed: its output_tokens ${before} -> ${after}`);
console.log(`(${show(segment)}, line ${line + 1}). Nothing else was touched:`);
console.log(`$ npx llm-audit verify --ledger ${show(tampered)}`);
const code = await run([cli, 'verify', '--ledger', tampered]);
console.log(`(exit status ${code}: verification failed)`);
console.log(`\nTry editing any line of ${show(ledger)}/segments/*.jsonl yourself and run:`);
console.log(`npx llm-audit verify --ledger ${show(ledger)}`);
