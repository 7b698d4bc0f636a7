// openai 7 (Node >= 22) under `--require otel-llm-audit/register` or, as app.mjs, `--import`: a
// chat completion, a streamed one and a Responses stream helper, each audited as one call.
async function main(OpenAI) {
  const client = new OpenAI({ apiKey: 'sk-app-secret-key', baseURL: `${process.env.FAKE_PROVIDER_URL}/v1`, maxRetries: 0 });
  const messages = [{ role: 'user', content: process.env.APP_PROMPT ?? 'hi' }];
  const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
  let streamed = '';
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
  const response = await client.responses.stream({ model: 'gpt-4.1-mini', input: process.env.APP_PROMPT ?? 'hi' }).finalResponse();
  process.stdout.write(JSON.stringify([chat.choices[0].message.content, streamed, response.output_text]) + '\n');
}
module.exports = main;
if (require.main === module) main(require('openai').OpenAI);
