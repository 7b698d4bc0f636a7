// ai 7's image, speech, transcription and reranking functions (ESM only, Node >= 22) under
// --import otel-llm-audit/register, with model objects written to the provider specification (V3,
// which ai 7 adapts to V4) as an @ai-sdk provider implements one. Run by
// test/register/vercel-ai-media.test.ts; the prompt comes from APP_PROMPT.
import * as ai from 'ai';

const prompt = process.env.APP_PROMPT ?? 'hi';
const response = (modelId) => ({ timestamp: new Date(0), modelId, headers: {} });
const bytes = (text) => new TextEncoder().encode(text);
const seen = [];

const image = {
  specificationVersion: 'v3',
  provider: 'acme-media.image',
  modelId: 'acme-image-1',
  maxImagesPerCall: 1,
  async doGenerate(options) {
    seen.push(options.prompt);
    return { images: [Buffer.from('generated image').toString('base64')], warnings: [], response: response('acme-image-1'), usage: { inputTokens: 10, outputTokens: 100, totalTokens: 110 } };
  },
};
const speech = {
  specificationVersion: 'v3',
  provider: 'acme-media.speech',
  modelId: 'acme-tts-1',
  async doGenerate(options) {
    seen.push(options.text);
    return { audio: bytes('generated speech'), warnings: [], response: response('acme-tts-1') };
  },
};
const transcription = {
  specificationVersion: 'v3',
  provider: 'acme-media.transcription',
  modelId: 'acme-stt-1',
  async doGenerate() {
    return { text: 'a transcript', segments: [], language: 'en', durationInSeconds: 1, warnings: [], response: response('acme-stt-1') };
  },
};
const reranking = {
  specificationVersion: 'v3',
  provider: 'acme-media.reranking',
  modelId: 'acme-rerank-1',
  async doRerank(options) {
    seen.push(options.query);
    return { ranking: options.documents.values.map((_, index) => ({ index, relevanceScore: 1 - index / 10 })) };
  },
};

const out = [];
out.push((await ai.generateImage({ model: image, prompt, maxRetries: 0 })).images.length);
out.push((await ai.generateSpeech({ model: speech, text: prompt, maxRetries: 0 })).audio.uint8Array.length);
out.push((await ai.transcribe({ model: transcription, audio: bytes('spoken words'), maxRetries: 0 })).text);
out.push((await ai.rerank({ model: reranking, query: prompt, documents: ['a', 'b'], maxRetries: 0 })).ranking.length);
out.push(seen);
process.stdout.write(JSON.stringify(out) + '\n');
