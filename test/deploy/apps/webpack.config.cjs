// The deployment matrix's webpack bundles (test/deploy/bundlers.test.ts): openai inlined, as webpack
// does by default for a node target; otel-llm-audit kept external, as docs/deployment.md asks.
const { join } = require('node:path');

const entry = (name, externals, source = name) => ({
  name,
  mode: 'production',
  target: 'node',
  entry: join(__dirname, 'src', `${source}.cjs`),
  output: { path: join(__dirname, 'out', 'webpack'), filename: `${name}.cjs`, library: { type: 'commonjs2' } },
  externals,
  optimization: { minimize: false },
});

module.exports = [
  entry('app', {}),
  entry('audit-client-app', { 'otel-llm-audit': 'commonjs otel-llm-audit' }),
  // openai external too: loaded by require, so patched; auditClient() must then add nothing.
  entry('audit-client-app-external', { 'otel-llm-audit': 'commonjs otel-llm-audit', openai: 'commonjs openai' }, 'audit-client-app'),
];
