// The calls both demo apps make, given the SDK classes each app loaded its own way (`require` in
// chat-app.cjs, `import` in chat-app.mjs): a plain and a streamed call through each SDK, against the
// fake provider at FAKE_PROVIDER_URL, inside one audit context. Returns the texts the app received.
exports.runCalls = async function runCalls({ OpenAI, Anthropic, withAuditContext }) {
  const url = process.env.FAKE_PROVIDER_URL;
  const prompt = process.env.APP_PROMPT ?? 'hello';
  const openai = new OpenAI({ apiKey: 'sk-app-secret-key', baseURL: `${url}/v1`, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'sk-ant-app-secret-key', baseURL: url, maxRetries: 0 });
  const out = [];
  await withAuditContext({ userId: 'user-42', sessionId: 'session-7', tenantId: 'acme' }, async () => {
    const chat = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] });
    out.push(chat.choices[0].message.content);
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: prompt }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    out.push(text);
    const message = await anthropic.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 64,
      system: `${prompt} system`,
      messages: [{ role: 'user', content: prompt }],
    });
    out.push(message.content[0].text);
    const final = await anthropic.messages
      .stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: prompt }] })
      .finalMessage();
    out.push(final.content[0].text);
  });
  return out;
};
