// The calls run inside a worker_threads Worker; the main thread only prints what the worker found.
// WORKER_EXECARGV=empty creates the worker with `execArgv: []` (no preload in the worker).
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

if (isMainThread) {
  const options = process.env.WORKER_EXECARGV === 'empty' ? { execArgv: [] } : {};
  const worker = new Worker(__filename, options);
  worker.once('message', (out) => process.stdout.write(`ANSWERS ${JSON.stringify(out)}\n`));
  worker.once('error', (error) => {
    process.stderr.write(`worker failed: ${error.stack}\n`);
    process.exitCode = 1;
  });
  worker.once('exit', (code) => {
    if (code !== 0) {
      process.stderr.write(`worker exited ${code}\n`);
      process.exitCode = 1;
    }
  });
} else {
  const OpenAI = require('openai');
  const { threeCalls, fail } = require('./calls.cjs');
  threeCalls(OpenAI).then((out) => parentPort.postMessage(out), fail);
}
