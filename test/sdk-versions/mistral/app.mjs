// @mistralai/mistralai loaded with import under `--import otel-llm-audit/register` (the loader hook).
import { Mistral } from '@mistralai/mistralai';
import { runMistralCalls } from './calls.cjs';

process.stdout.write(JSON.stringify(await runMistralCalls(Mistral)) + '\n');
