// ai 6 from the root's node_modules, loaded with require (under --require otel-llm-audit/register).
require('./vercel-ai-app.cjs')
  .runVercelAiApp({ ai: require('ai'), createOpenAI: require('@ai-sdk/openai').createOpenAI, createAnthropic: require('@ai-sdk/anthropic').createAnthropic })
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
