// A parent that makes no LLM call and only runs the app in a child process (inheriting the
// environment, NODE_OPTIONS included), as process managers and shell wrappers do.
const { spawn } = require('node:child_process');

const child = spawn(process.execPath, [`${__dirname}/app.cjs`], { stdio: 'inherit' });
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
