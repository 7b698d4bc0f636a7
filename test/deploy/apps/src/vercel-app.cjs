// An app set up with @vercel/otel's registerOTel (as Next.js apps on Vercel do).
const { registerOTel } = require('@vercel/otel');

registerOTel({ serviceName: 'vercel-otel-app' });
const OpenAI = require('openai');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

threeCalls(OpenAI).then(printAnswers, fail);
