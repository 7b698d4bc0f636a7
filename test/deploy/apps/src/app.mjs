// Plain ESM app: import OpenAI from 'openai', three calls.
import OpenAI from 'openai';
import calls from './calls.cjs';

calls.threeCalls(OpenAI).then(calls.printAnswers, calls.fail);
