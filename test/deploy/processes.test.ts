import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFakeProvider, deploy, ensureDeployApps, expectAppWorked, expectEachCallOnce, REGISTER, registerFlag, srcDir, type Trail } from './support';

// Deployment matrix, family "processes and threads": worker_threads, NODE_OPTIONS reaching npm and
// a spawning parent, node:cluster, an unwritable ledger, process.exit() right after the calls. Issue 25.

beforeAll(() => ensureDeployApps(), 300_000);
afterAll(() => closeFakeProvider());

const modes = ['require', 'import'] as const;
const trails: Trail[] = ['ledger', 'otlp'];

describe.concurrent.each(trails)('trail: %s', (trail) => {
  describe.each(modes)('--%s otel-llm-audit/register', (mode) => {
    it('calls inside a worker_threads Worker (default execArgv)', async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'worker.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('calls inside a Worker created with execArgv: []', async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'worker.cjs'], trail, env: { WORKER_EXECARGV: 'empty' } });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('NODE_OPTIONS exported; a parent that only spawns runs the app', async () => {
      const d = await deploy({ args: ['spawn-parent.cjs'], trail, env: { NODE_OPTIONS: registerFlag(mode).join(' ') } });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('node:cluster, 4 workers (3 of them call)', async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'cluster.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });
  });

  it('NODE_OPTIONS="--require otel-llm-audit/register" npm start (the usual Dockerfile)', async () => {
    const d = await deploy({ command: 'npm', args: ['start'], cwd: join(srcDir, 'npm-app'), trail, env: { NODE_OPTIONS: `--require ${REGISTER}` } });
    expectAppWorked(d);
    expectEachCallOnce(d);
  });
});

describe.concurrent.each(modes)('--%s otel-llm-audit/register', (mode) => {
  it('ledger directory not writable: the app runs, the problem is said loudly on stderr', async () => {
    // Root can write anywhere it has mode bits for, so "not writable" is a path under a regular file.
    const file = join(mkdtempSync(join(tmpdir(), 'deploy-ro-')), 'not-a-directory');
    writeFileSync(file, 'x');
    const d = await deploy({ args: [...registerFlag(mode), 'app.cjs'], trail: 'ledger', ledgerDir: join(file, 'ledger') });
    expectAppWorked(d);
    expect(d.stderr).toMatch(/otel-llm-audit.*ledger/i);
  });

  it('process.exit(0) right after the calls, OTLP collector up: delivered, or said to be spooled', async () => {
    const d = await deploy({ args: [...registerFlag(mode), 'exit-app.cjs'], trail: 'otlp' });
    expectAppWorked(d);
    // The 3 calls and the process's audit.start record.
    const spooled = /otel-llm-audit.*\b4\b.*spool/i.test(d.stderr);
    if (!spooled) expectEachCallOnce(d);
  });
});
