// ai 7's image, speech, transcription, reranking, extraction, video and upload functions (ESM only, Node >= 22) under
// --import otel-llm-audit/register. Images, speech, transcription, extraction and uploads through the real
// @ai-sdk/openai 4 pointed at the test's fake provider (APP_OPENAI_BASE_URL); reranking and video
// through models written to the provider specification (no installed provider has either), as an
// @ai-sdk provider implements one. Run by test/register/vercel-ai-media.test.ts; the prompt comes
// from APP_PROMPT.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const prompt = process.env.APP_PROMPT ?? 'hi';
const openai = createOpenAI({ apiKey: 'sk-test', baseURL: process.env.APP_OPENAI_BASE_URL });
const seen = [];

const reranking = {
  specificationVersion: 'v3',
  provider: 'acme-media.reranking',
  modelId: 'acme-rerank-1',
  async doRerank(options) {
    seen.push(options.query);
    return { ranking: options.documents.values.map((_, index) => ({ index, relevanceScore: 1 - index / 10 })) };
  },
};
// ai 7's asynchronous video flow: doStart sends the prompt, doStatus polls by the operation.
const video = {
  specificationVersion: 'v4',
  provider: 'acme-media.video',
  modelId: 'acme-video-1',
  maxVideosPerCall: 1,
  async doStart(options) {
    seen.push(options.prompt);
    return { operation: { id: 'op-1' }, warnings: [], response: { timestamp: new Date(0), modelId: 'acme-video-1', headers: {} } };
  },
  async doStatus(options) {
    return { status: 'pending', operation: options.operation, warnings: [], response: { timestamp: new Date(0), modelId: 'acme-video-1', headers: {} } };
  },
};

const out = [];
out.push((await ai.generateImage({ model: openai.image('gpt-image-1'), prompt, maxRetries: 0 })).images.length);
out.push((await ai.generateSpeech({ model: openai.speech('gpt-4o-mini-tts'), text: prompt, maxRetries: 0 })).audio.uint8Array.length);
out.push((await ai.transcribe({ model: openai.transcription('whisper-1'), audio: new TextEncoder().encode('RIFF spoken words'), maxRetries: 0 })).text);
out.push((await ai.rerank({ model: reranking, query: prompt, documents: ['a', 'b'], maxRetries: 0 })).ranking.length);
const started = await ai.experimental_startVideo({ model: video, prompt, maxRetries: 0 });
out.push((await ai.experimental_getVideoStatus(video, { operation: started.operation, maxRetries: 0 })).status);
// Extraction through @ai-sdk/openai 4's extraction model: a language model (Responses API) underneath.
const extracted = await ai.experimental_extract({ model: openai.extractionModel('gpt-4.1-mini'), state: prompt, fields: { name: { type: 'text', instructions: 'the person named' } }, maxRetries: 0 });
out.push(extracted.answers?.name ?? extracted);
// One streamed language model call, the building block streamText's steps use.
const call = await ai.experimental_streamLanguageModelCall({ model: openai('gpt-4.1-mini'), prompt });
let text = '';
for await (const part of call.stream) if (part.type === 'text-delta') text += part.text ?? part.delta ?? '';
out.push(text);
// A file handed to the provider's files API (its bytes leave the process).
const uploaded = await ai.uploadFile({ api: openai, data: new TextEncoder().encode(`notes: ${prompt}`), mediaType: 'text/plain', filename: 'notes.txt' });
out.push(uploaded.providerReference);
out.push(seen);
process.stdout.write(JSON.stringify(out) + '\n');
