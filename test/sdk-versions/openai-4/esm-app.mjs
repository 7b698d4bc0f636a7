// openai 4.x loaded as ESM under `--import otel-llm-audit/register`. openai 4 breaks when a loader
// hook wraps its internal modules ("you must import 'openai/shims/node' first"); the register hook
// only routes the package's entry point, which this app proves by working and being audited.
import OpenAI from 'openai';

const client = new OpenAI({ apiKey: 'sk-app-secret-key', baseURL: `${process.env.FAKE_PROVIDER_URL}/v1`, maxRetries: 0 });
const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
process.stdout.write(JSON.stringify([chat.choices[0].message.content]) + '\n');
