// node:cluster with 4 workers (PM2's cluster mode): workers 1-3 make one call each, worker 4 none;
// the primary collects the answers and prints them.
const cluster = require('node:cluster');

if (cluster.isPrimary) {
  const answers = [];
  let exited = 0;
  let failed = false;
  for (let i = 1; i <= 4; i++) {
    const worker = cluster.fork({ DEPLOY_CALL: String(i) });
    worker.on('message', (m) => (answers[m.n - 1] = m.answer));
    worker.on('exit', (code) => {
      if (code !== 0) failed = true;
      if (++exited === 4) {
        if (failed) {
          process.stderr.write('a cluster worker failed\n');
          process.exitCode = 1;
        }
        process.stdout.write(`ANSWERS ${JSON.stringify(answers)}\n`);
      }
    });
  }
} else {
  const OpenAI = require('openai');
  const { client, oneCall, fail } = require('./calls.cjs');
  const n = Number(process.env.DEPLOY_CALL);
  if (n > 3) process.disconnect();
  else oneCall(client(OpenAI), n).then((answer) => process.send({ n, answer }, () => process.disconnect()), fail);
}
