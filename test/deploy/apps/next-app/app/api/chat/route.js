// An App Router route handler that calls openai (against the fake provider), as LLM apps do.
import OpenAI from 'openai';

export const dynamic = 'force-dynamic';

export async function GET(request) {
  const n = new URL(request.url).searchParams.get('n');
  const client = new OpenAI({ apiKey: 'sk-deploy-secret-key', baseURL: `${process.env.FAKE_PROVIDER_URL}/v1`, maxRetries: 0 });
  const answer = await client.chat.completions.create({ model: `deploy-model-${n}`, messages: [{ role: 'user', content: `deploy call ${n}` }] });
  return Response.json({ answer: answer.choices[0].message.content });
}
