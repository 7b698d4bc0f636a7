// Preloaded (`node --require`) into an llm-audit child: on exit, prints to stderr one line
// `pg-statements: {"connections":N,"statements":[...],"modules":[...]}` with the connections the
// process opened, the text of each statement it sent and the files of the modules it loaded, so a
// test can hold a command to its round trips and its module graph.
const pg = require('pg');
const seen = { connections: 0, statements: [] };
const connect = pg.Client.prototype.connect;
pg.Client.prototype.connect = function (...args) {
  seen.connections++;
  return connect.apply(this, args);
};
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, ...args) {
  const text = typeof config === 'string' ? config : config && config.text;
  if (typeof text === 'string') seen.statements.push(text.replace(/\s+/g, ' ').trim());
  return query.call(this, config, ...args);
};
process.on('exit', () => process.stderr.write(`pg-statements: ${JSON.stringify({ ...seen, modules: Object.keys(require.cache) })}\n`));
