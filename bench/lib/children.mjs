// What the scripts that measure calls share (run.mjs, hot-path.mjs): the test suite's fake provider
// in a process of its own (bench/fake-provider-process.mjs), compiled when its sources changed and
// copied to the scratch directory (a rebuild during a run does not change it), and one measurement
// (bench/child.mjs) in a fresh process.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(benchDir, '..');
const require = createRequire(import.meta.url);

/** Starts the fake provider; `{ fake: { openaiBaseURL, anthropicBaseURL, ... }, process }`. */
export async function startFakeProcess(scratch, log = (line) => process.stderr.write(`${line}\n`)) {
  // The fake provider and the modules it imports (platform-routes.ts), compiled together.
  const fakeSources = ['fake-provider.ts', 'platform-routes.ts'].map((f) => join(root, 'test/support', f));
  const demoDir = join(root, '.cache/demo');
  const fakeCompiled = join(demoDir, 'fake-provider.js');
  if (!existsSync(fakeCompiled) || fakeSources.some((f) => statSync(fakeCompiled).mtimeMs < statSync(f).mtimeMs)) {
    log('bench: compiling the fake provider (tsc -p tsconfig.demo.json)');
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.demo.json')], { stdio: 'inherit' });
  }
  cpSync(demoDir, join(scratch, 'demo'), { recursive: true });
  const fakeCopy = join(scratch, 'demo', 'fake-provider.js');

  const fakeProcess = spawn(process.execPath, [join(benchDir, 'fake-provider-process.mjs'), fakeCopy], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  process.on('exit', () => {
    if (fakeProcess.exitCode === null) fakeProcess.kill();
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      fakeProcess.kill();
      process.exit(130);
    });
  }
  const fake = await new Promise((resolve, reject) => {
    let buffered = '';
    fakeProcess.stdout.on('data', (data) => {
      buffered += data;
      const newline = buffered.indexOf('\n');
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)));
    });
    fakeProcess.once('exit', (code) => reject(new Error(`fake provider exited (${code}) before listening`)));
  });
  return { fake, process: fakeProcess };
}

const HASH_KEY = 'bench-only-hash-key-0123456789abcdef';

/** The child's environment: nothing from the caller's may change what is measured; a hash key, as in production. */
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(OTEL_|LLM_AUDIT_|ANTHROPIC_|OPENAI_|TRACELOOP_|OPENINFERENCE_|NODE_OPTIONS$)/.test(k)) continue;
    env[k] = v;
  }
  env.LLM_AUDIT_HASH_KEY = HASH_KEY;
  return env;
}

/**
 * Runs one measurement (bench/child.mjs) in a fresh process; resolves to its result, or to
 * `{ job, error }` when it wrote none. `resultsDir` keeps each child's raw result.
 */
export function runBenchChild(job, resultsDir, execArgv = []) {
  const out = join(resultsDir, `${job.id}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', ...execArgv, join(benchDir, 'child.mjs'), JSON.stringify({ ...job, out })], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keepTail = (data) => {
      output = (output + data).slice(-4000);
    };
    child.stdout.on('data', keepTail);
    child.stderr.on('data', keepTail);
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let result;
      try {
        result = JSON.parse(readFileSync(out, 'utf8'));
      } catch {
        result = { job, error: { stage: 'process', message: `exited ${signal ?? code} without a result: ${output.trim().split('\n').slice(-3).join(' | ')}` } };
      }
      resolve(result);
    });
  });
}
