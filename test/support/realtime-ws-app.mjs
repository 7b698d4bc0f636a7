// An ESM app on openai/realtime/ws (the `ws` package): one text response, then close. Run by
// test/instrumentation/openai-realtime-websocket.test.ts under `--import` register, so that the
// SDK's ESM build (realtime/ws.mjs) is the one patched.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const client = new OpenAI({ apiKey: 'sk-esm-secret-key', baseURL: process.env.REALTIME_BASE_URL });
const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: readFileSync(process.env.REALTIME_CA, 'utf8') } }, client);
rt.on('error', (error) => {
  console.error(`REALTIME_ERROR: ${error.message}`);
  process.exitCode = 1;
});
rt.socket.on('open', () => {
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello from an ES module' }] } });
  rt.send({ type: 'response.create' });
});
rt.on('response.done', () => rt.close());
