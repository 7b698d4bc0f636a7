// @mistralai/mistralai (ESM only) loaded with require() under `--require otel-llm-audit/register`:
// chat complete, stream and embeddings against the fake provider, prompts carrying APP_PROMPT.
const { Mistral } = require('@mistralai/mistralai');
const { runMistralCalls } = require('./calls.cjs');

runMistralCalls(Mistral).then((seen) => process.stdout.write(JSON.stringify(seen) + '\n'));
