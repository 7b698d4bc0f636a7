// An ESM app calling AWS Bedrock through the real SDK (for test/register): one Converse, one
// ConverseStream call and one InvokeModelWithBidirectionalStream session (Nova Sonic's events)
// against the fake Bedrock at BEDROCK_URL; prints the three answers as JSON (the session's: its
// last text output).
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelWithBidirectionalStreamCommand } from '@aws-sdk/client-bedrock-runtime';

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
const event = (body) => ({ chunk: { bytes: new TextEncoder().encode(JSON.stringify({ event: body })) } });
async function* session() {
  yield event({ sessionStart: {} });
  yield event({ contentStart: { contentName: 't', type: 'TEXT', role: 'USER' } });
  yield event({ textInput: { contentName: 't', content: process.env.APP_PROMPT ?? 'hi' } });
  yield event({ contentEnd: { contentName: 't' } });
  yield event({ promptEnd: {} });
  yield event({ sessionEnd: {} });
}
let spoken = '';
const answer = await client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: 'amazon.nova-sonic-v1:0', body: session() }));
for await (const e of answer.body) spoken = JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event.textOutput?.content ?? spoken;
client.destroy();
process.stdout.write(`${JSON.stringify([whole.output.message.content[0].text, streamed, spoken])}\n`);
