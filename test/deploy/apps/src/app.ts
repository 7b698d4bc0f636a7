// TypeScript app run by tsx.
import OpenAI from 'openai';
import { threeCalls, printAnswers, fail } from './calls.cjs';

threeCalls(OpenAI).then(printAnswers, fail);
