// CommonJS app that initialises @sentry/node 11 (which starts OpenTelemetry and, on Node 20, a
// loader-hooks thread through module.register) before its calls.
const Sentry = require('@sentry/node');

Sentry.init({ dsn: process.env.SENTRY_DSN, tracesSampleRate: 1.0 });
const OpenAI = require('openai');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

threeCalls(OpenAI).then(printAnswers, fail);
