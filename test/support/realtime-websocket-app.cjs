'use strict';
// An app on the global WebSocket (Node >= 22): openai's OpenAIRealtimeWebSocket, one response, then
// close. Run by test/instrumentation/openai-realtime-websocket.test.ts under
// `--require ./dist/cjs/register.js`, trusting the local Realtime server through NODE_EXTRA_CA_CERTS.
if (typeof WebSocket !== 'function') {
  console.error(`NO_GLOBAL_WEBSOCKET: Node ${process.version} has no global WebSocket; OpenAIRealtimeWebSocket needs Node >= 22`);
  process.exit(3);
}
const { OpenAI } = require('openai');
const { OpenAIRealtimeWebSocket } = require('openai/realtime/websocket');
const { withAuditContext } = require('../../dist/cjs/index.js');

const client = new OpenAI({ apiKey: 'sk-websocket-secret-key', baseURL: process.env.REALTIME_BASE_URL });
const rt = withAuditContext({ userId: 'websocket-user', tenantId: 'tenant-ws' }, () => new OpenAIRealtimeWebSocket({ model: 'gpt-realtime' }, client));
const events = [];
rt.on('event', (event) => events.push(event));
rt.on('error', (error) => {
  console.error(`REALTIME_ERROR: ${error.message}`);
  process.exitCode = 1;
});
rt.socket.addEventListener('open', () => {
  rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello over the global WebSocket' }] } });
  rt.send({ type: 'response.create' });
});
rt.on('response.done', () => rt.close());
rt.socket.addEventListener('close', () => console.log(JSON.stringify({ events })));
