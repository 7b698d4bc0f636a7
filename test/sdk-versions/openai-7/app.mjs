// app.cjs's calls with openai 7 imported as ESM (under `--import otel-llm-audit/register`).
import OpenAI from 'openai';
import { createRequire } from 'node:module';

await createRequire(import.meta.url)('./app.cjs')(OpenAI);
