// ai 7's streaming transcription and translation (OpenAI's Realtime WebSocket, opened by
// @ai-sdk/openai 4 with the global WebSocket of Node >= 22) and a bare global WebSocket, under
// --import otel-llm-audit/register, against APP_OPENAI_BASE_URL (http://host:port/v1). Prints, as
// JSON, how each ended: 'ok' or the name of the error that ended it (and its cause's). Run by
// test/audit/unaudited/websocket.test.ts.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const baseURL = process.env.APP_OPENAI_BASE_URL;
const openai = createOpenAI({ apiKey: 'sk-test', baseURL });
const audio = () =>
  new ReadableStream({
    start(controller) {
      controller.enqueue(new Uint8Array(3200));
      controller.close();
    },
  });
const failure = (error) => [error?.name, error?.cause?.name].filter(Boolean).join(':') || String(error);

async function consume(result) {
  try {
    for await (const _part of result.fullStream ?? result.textStream) void _part;
    return 'ok';
  } catch (error) {
    return failure(error);
  }
}

async function bareWebSocket() {
  const url = `${baseURL.replace(/^http/, 'ws')}/realtime?model=gpt-realtime`;
  return new Promise((resolve) => {
    const socket = new WebSocket(url, ['realtime']);
    socket.onopen = () => {
      socket.close();
      resolve('ok');
    };
    socket.onerror = (event) => resolve(failure(event.error ?? event));
  });
}

const outcomes = [];
outcomes.push(await consume(ai.experimental_streamTranscribe({ model: openai.transcription('gpt-realtime-whisper'), audio: audio(), inputAudioFormat: { type: 'pcm', sampleRate: 24000 } })).catch(failure));
outcomes.push(await bareWebSocket());
process.stdout.write(JSON.stringify(outcomes) + '\n');
