'use strict';
// A Realtime session still streaming a response when the process is told to stop (SIGTERM): run by
// test/instrumentation/openai-realtime-websocket.test.ts under --require register. Prints
// STREAMING once the first delta arrived, then waits to be stopped.
const { readFileSync } = require('node:fs');
const { OpenAI } = require('openai');
const { OpenAIRealtimeWS } = require('openai/realtime/ws');

const client = new OpenAI({ apiKey: 'sk-shutdown-secret-key', baseURL: process.env.REALTIME_BASE_URL });
const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: readFileSync(process.env.REALTIME_CA, 'utf8') } }, client);
rt.on('error', (error) => console.error(`REALTIME_ERROR: ${error.message}`));
rt.socket.on('open', () => rt.send({ type: 'response.create' }));
rt.once('response.output_text.delta', () => console.log('STREAMING'));
setInterval(() => undefined, 1000);
