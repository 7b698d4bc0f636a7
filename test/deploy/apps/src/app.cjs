// Plain CommonJS app: require('openai'), three calls.
const OpenAI = require('openai');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

threeCalls(OpenAI).then(printAnswers, fail);
