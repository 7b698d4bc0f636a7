// CommonJS TypeScript (.cts) app run by tsx.
import OpenAI = require('openai');
import calls = require('./calls.cjs');

calls.threeCalls(OpenAI).then(calls.printAnswers, calls.fail);
