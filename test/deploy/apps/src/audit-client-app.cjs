// A bundled app that audits its client explicitly: auditClient() from otel-llm-audit (kept
// external by the bundler), openai inlined into the bundle.
const OpenAI = require('openai');
const { auditClient } = require('otel-llm-audit');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

threeCalls(OpenAI, auditClient).then(printAnswers, fail);
