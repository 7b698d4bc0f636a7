// ai 7 (ESM only, Node >= 22) from this folder's node_modules, under --import otel-llm-audit/register.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import app from '../../support/vercel-ai-app.cjs';

await app.runVercelAiApp({ ai, createOpenAI, createAnthropic });
