// An application of the Vercel AI SDK, as one writes it, for the child-process tests
// (test/register/vercel-ai.test.ts): the entry points load `ai` and the @ai-sdk providers their
// way (require, import; ai 6 from the root, ai 7 from test/sdk-versions/ai-7) and hand them here.
// The test queues the fake provider's answers in the order of the calls below.
'use strict';

async function runVercelAiApp({ ai, createOpenAI, createAnthropic }) {
  const url = process.env.FAKE_PROVIDER_URL;
  const prompt = process.env.APP_PROMPT ?? 'hi';
  const openai = createOpenAI({ apiKey: 'sk-app-secret-key', baseURL: `${url}/v1` });
  const anthropic = createAnthropic({ apiKey: 'sk-ant-app-secret-key', baseURL: `${url}/v1` });
  const out = [];
  // 1. generateText, Responses API
  out.push((await ai.generateText({ model: openai('gpt-4o-mini'), system: 'You are terse.', prompt, maxRetries: 0 })).text);
  // 2. streamText, Anthropic
  const stream = ai.streamText({ model: anthropic('claude-haiku-4-5'), prompt, maxRetries: 0 });
  let text = '';
  for await (const delta of stream.textStream) text += delta;
  out.push(text);
  // 3, 4. a tool call, then the answer
  const weather = ai.tool({
    description: 'Current weather',
    inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
    execute: async ({ city }) => `21 °C in ${city}`,
  });
  const steps = await ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt, tools: { weather }, stopWhen: ai.stepCountIs(3), maxRetries: 0 });
  out.push(steps.steps.length);
  // 5. embed, 6. embedMany
  out.push((await ai.embed({ model: openai.embedding('text-embedding-3-small'), value: prompt, maxRetries: 0 })).embedding.length);
  out.push((await ai.embedMany({ model: openai.embedding('text-embedding-3-small'), values: [prompt, 'b'], maxRetries: 0 })).embeddings.length);
  // 7. generateObject
  const schema = ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });
  out.push((await ai.generateObject({ model: anthropic('claude-haiku-4-5'), schema, prompt, maxRetries: 0 })).object);
  // 8. an agent (ai calls generateText from inside the module)
  out.push((await new ai.ToolLoopAgent({ model: openai.chat('gpt-4o-mini'), instructions: 'You are terse.' }).generate({ prompt })).text);
  process.stdout.write(JSON.stringify(out) + '\n');
}

module.exports = { runVercelAiApp };
