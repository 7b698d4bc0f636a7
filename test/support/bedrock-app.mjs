// An ESM app calling AWS Bedrock through the real SDK (for test/register): one Converse and one
// ConverseStream call against the fake Bedrock at BEDROCK_URL; prints the two answers as JSON.
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';

const client = new BedrockRuntimeClient({
  region: 'us-east-1',
  endpoint: process.env.BEDROCK_URL,
  credentials: { accessKeyId: 'AKIDFAKEFAKEFAKEFAKE', secretAccessKey: 'fake-secret-access-key' },
  maxAttempts: 1,
});
const input = { modelId: 'anthropic.claude-3-5-sonnet-20240620-v1:0', messages: [{ role: 'user', content: [{ text: process.env.APP_PROMPT ?? 'hi' }] }] };
const whole = await client.send(new ConverseCommand(input));
let streamed = '';
for await (const event of (await client.send(new ConverseStreamCommand(input))).stream) streamed += event.contentBlockDelta?.delta?.text ?? '';
client.destroy();
process.stdout.write(`${JSON.stringify([whole.output.message.content[0].text, streamed])}\n`);
