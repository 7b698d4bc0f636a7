// The calls of app.cjs / app.mjs: every audited @mistralai/mistralai operation once.
async function runMistralCalls(Mistral) {
  const prompt = process.env.APP_PROMPT ?? 'hello';
  const client = new Mistral({ apiKey: 'mistral-app-secret-key', serverURL: `${process.env.FAKE_PROVIDER_URL}/mistral` });
  const messages = [
    { role: 'system', content: `system ${prompt}` },
    { role: 'user', content: prompt },
  ];
  const seen = [];
  const whole = await client.chat.complete({ model: 'mistral-small-latest', messages });
  seen.push(whole.choices[0].message.content);
  let streamed = '';
  for await (const event of await client.chat.stream({ model: 'mistral-small-latest', messages })) streamed += event.data.choices[0]?.delta?.content ?? '';
  seen.push(streamed);
  const embedded = await client.embeddings.create({ model: 'mistral-embed', inputs: [prompt] });
  seen.push(embedded.data[0].embedding.length);
  return seen;
}
module.exports = { runMistralCalls };
