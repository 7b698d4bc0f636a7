// Short-lived app that ends with process.exit(0) as soon as its calls are done.
const OpenAI = require('openai');
const { threeCalls, printAnswers, fail } = require('./calls.cjs');

threeCalls(OpenAI).then((out) => {
  printAnswers(out);
  process.exit(0);
}, fail);
