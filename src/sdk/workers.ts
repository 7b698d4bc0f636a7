/**
 * Worker threads inherit the process's `execArgv` (so `--require otel-llm-audit/register`, and the
 * audit with it) unless the application passes `execArgv` itself: `new Worker(file, { execArgv: [] })`
 * starts a thread whose LLM calls nobody would audit, without a word. So the Worker constructor is
 * wrapped to add this package's preload to an explicit `execArgv` that lacks it. Nothing else
 * about the worker changes.
 */
import { syncBuiltinESMExports } from 'node:module';
import workerThreads from 'node:worker_threads';

const WRAPPED = Symbol.for('otel-llm-audit.worker-preload');

/** Makes every Worker created from now on (in this thread) load `preload` (a CommonJS path) first. */
export function preloadInWorkers(preload: string): void {
  const Original = workerThreads.Worker as typeof workerThreads.Worker & { [WRAPPED]?: true };
  if (Original[WRAPPED]) return;
  class Worker extends Original {
    constructor(filename: string | URL, options?: workerThreads.WorkerOptions) {
      super(filename, withPreload(options, preload));
    }
  }
  Object.defineProperty(Worker, WRAPPED, { value: true });
  Object.defineProperty(Worker, 'name', { value: 'Worker' });
  (workerThreads as { Worker: typeof workerThreads.Worker }).Worker = Worker;
  // `import { Worker } from 'node:worker_threads'` sees the wrapped class too.
  syncBuiltinESMExports();
}

function withPreload(options: workerThreads.WorkerOptions | undefined, preload: string): workerThreads.WorkerOptions | undefined {
  const execArgv = options?.execArgv;
  if (execArgv === undefined) return options; // inherits the process's execArgv, preload included
  if (execArgv.some((arg, i) => arg === preload || (isPreloadFlag(execArgv[i - 1]) && /otel-llm-audit[\\/]register/.test(arg)))) return options;
  return { ...options, execArgv: [...execArgv, '--require', preload] };
}

function isPreloadFlag(arg: string | undefined): boolean {
  return arg === '--require' || arg === '-r' || arg === '--import';
}
