// ai 6 from the root's node_modules, imported as ESM (under --import otel-llm-audit/register).
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import app from './vercel-ai-app.cjs';

await app.runVercelAiApp({ ai, createOpenAI, createAnthropic });
