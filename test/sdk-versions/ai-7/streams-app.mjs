// ai 7's streamed audio and decisions (ESM only, Node >= 22) under --import otel-llm-audit/register:
// experimental_streamTranscribe and experimental_streamTranslate through the real @ai-sdk/openai 4
// (OpenAI's Realtime WebSocket, opened with the global WebSocket) against the test's WebSocket
// server (APP_WS_BASE_URL, http://host:port; a path prefix picks how the server answers:
// `/v1` completes, `/hang/v1` sends one delta and then nothing, `/error/v1` answers with an
// error event), experimental_decide / experimental_evaluate through @ai-sdk/openai 4's decision
// model and uploadSkill through its skills API against the fake provider (APP_OPENAI_BASE_URL). APP_SCENARIOS lists what to run, in
// order; `never` (a transcription whose result is never read) must come last. Prints, as JSON,
// each scenario's outcome: what the application got, or the name of the error that ended it.
// Run by test/register/vercel-ai-streams.test.ts; the text comes from APP_PROMPT.
import * as ai from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const wsBase = process.env.APP_WS_BASE_URL;
const prompt = process.env.APP_PROMPT ?? 'hi';
const realtime = (prefix) => createOpenAI({ apiKey: 'sk-test', baseURL: `${wsBase}${prefix}/v1` });
const http = createOpenAI({ apiKey: 'sk-test', baseURL: process.env.APP_OPENAI_BASE_URL });
// Two chunks of 16-bit PCM, as a microphone would hand them on.
const CHUNKS = [new Uint8Array(3200).fill(7), new Uint8Array(1600).fill(9)];
const audio = () =>
  new ReadableStream({
    start(controller) {
      for (const chunk of CHUNKS) controller.enqueue(chunk);
      controller.close();
    },
  });
const failure = (error) => [error?.name, error?.cause?.name].filter(Boolean).join(':') || String(error);
const format = { type: 'pcm', sampleRate: 24000 };
const transcribe = (prefix, options = {}) => ai.experimental_streamTranscribe({ model: realtime(prefix).transcription('gpt-realtime-whisper'), audio: audio(), inputAudioFormat: format, ...options });

async function text(stream, stopAfter) {
  let out = '';
  let parts = 0;
  for await (const part of stream) {
    if (typeof part.delta === 'string') out += part.delta;
    if (++parts === stopAfter) break;
  }
  return out;
}

// No installed provider has a streaming speech model: one written to the specification
// (Experimental_StreamingSpeechModelV4), reading the text it is streamed as a provider does.
const VOICE = new TextEncoder().encode('synthesized voice pcm');
const voice = {
  specificationVersion: 'v4',
  provider: 'acme-voice.speech',
  modelId: 'acme-tts-stream',
  async doGenerate() {
    throw new Error('not used');
  },
  async doStream(options) {
    let text = '';
    for await (const part of options.text) text += part.text;
    voice.seen = [text, options.instructions];
    return {
      stream: new ReadableStream({
        start(controller) {
          controller.enqueue({ type: 'stream-start', warnings: [] });
          controller.enqueue({ type: 'audio', audio: Buffer.from(VOICE).toString('base64') });
          controller.enqueue({ type: 'finish', usage: { inputTokens: 5, outputTokens: 7 } });
          controller.close();
        },
      }),
      response: { timestamp: new Date(0), modelId: 'acme-tts-stream-1' },
    };
  },
};

const scenarios = {
  async speech() {
    const text = new ReadableStream({
      start(controller) {
        for (const piece of ['Read this: ', prompt]) controller.enqueue(piece);
        controller.close();
      },
    });
    const result = ai.experimental_streamSpeech({ model: voice, text, instructions: `Speak slowly to ${prompt}` });
    let bytes = 0;
    for await (const part of result.fullStream) if (part.type === 'audio') bytes += part.audio.length;
    return [bytes, voice.seen];
  },
  async done() {
    const result = transcribe('');
    return [await text(result.fullStream), await result.text];
  },
  async break() {
    return text(transcribe('/hang').fullStream, 1);
  },
  async abort() {
    const controller = new AbortController();
    const result = transcribe('/hang', { abortSignal: controller.signal });
    let parts = 0;
    try {
      for await (const _part of result.fullStream) if (++parts === 1) controller.abort();
    } catch (error) {
      return [parts, failure(error)];
    }
    return [parts];
  },
  async error() {
    return text(transcribe('/error').fullStream);
  },
  async translate() {
    const result = ai.experimental_streamTranslate({ model: realtime('').speechTranslationModel('gpt-realtime-translate'), audio: audio(), inputAudioFormat: { type: 'audio/pcm', rate: 24000 }, targetLanguage: 'de' });
    let audioBytes = 0;
    for await (const part of result.fullStream) if (part.type === 'audio') audioBytes += typeof part.audio === 'string' ? Buffer.from(part.audio, 'base64').length : part.audio.length;
    return [await result.sourceText, await result.translationText, audioBytes];
  },
  async decide() {
    const result = await ai.experimental_decide({
      model: http.decisionModel('gpt-5-mini'),
      state: [{ type: 'text', text: prompt }],
      questions: { urgent: { type: 'boolean', instructions: `Is this urgent? ${prompt}` }, team: { type: 'choice', criteria: { billing: 'money', support: 'help' } } },
      maxRetries: 0,
    });
    return result.answers;
  },
  async evaluate() {
    const result = await ai.experimental_evaluate({ model: http.evaluationModel('gpt-5-mini'), state: [{ type: 'text', text: prompt }], questions: { ok: { type: 'boolean', instructions: 'Is it fine?' } }, maxRetries: 0 });
    return result.answers.ok.type;
  },
  async skill() {
    const skill = await ai.uploadSkill({ api: http, files: [{ path: 'skill/SKILL.md', data: new TextEncoder().encode(`# Notes\n${prompt}`) }, { path: 'skill/run.py', data: 'cHJpbnQoMSk=' }] });
    return skill.providerReference;
  },
  async never() {
    transcribe('');
    return 'left';
  },
};

const out = [];
for (const name of (process.env.APP_SCENARIOS ?? '').split(',').filter(Boolean)) {
  try {
    out.push(await scenarios[name]());
  } catch (error) {
    out.push(failure(error));
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
