import { mkdtempSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { node24, sdkFixture } from '../support/node24';
import { startOtlpReceiver } from '../support/otlp-receiver';
import { expectedUsage, startFakeProvider } from '../support/fake-provider';

// ai 7 (Node >= 22) under `otel-llm-audit/register`: experimental_streamTranscribe and
// experimental_streamTranslate through the real @ai-sdk/openai 4 (OpenAI's Realtime WebSocket,
// over the global WebSocket) against a local WebSocket server speaking the transcription and
// translation events @ai-sdk/openai reads, and experimental_decide / experimental_evaluate
// through its decision model against the fake provider (test/sdk-versions/ai-7/streams-app.mjs).
// One record per stream, ended once whichever way the stream ends; the audio digested (SHA-256
// of its bytes) under the input hash; the watcher reports none of these sockets as unaudited.

const { WebSocketServer } = createRequire(join(repoRoot, 'package.json'))('ws') as { WebSocketServer: any };
const HASH_KEY = 'vercel-ai-streams-hash-key-0123';
const CANARY = 'CANARY-vercel-streams-7c1e';
const EMAIL = 'jane.streams@example.org';
const TRANSCRIPT = ['hello ', 'from ', 'the stream'];
const TRANSLATION = ['hallo ', 'aus dem Strom'];
const VOICE = Buffer.from('translated voice pcm bytes');
// What the app streams in (streams-app.mjs): 3200 bytes of 7, then 1600 of 9.
const AUDIO = Buffer.concat([Buffer.alloc(3200, 7), Buffer.alloc(1600, 9)]);
const hmacHex = (value: unknown) => createHmac('sha256', HASH_KEY).update(canonicalJson(value), 'utf8').digest('hex');
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const audioInput = [{ role: 'user', parts: [{ type: 'blob_digest', modality: 'audio', sha256: sha(AUDIO), bytes: AUDIO.length }] }];

let server: any;
let wsBase: string;
const connections: string[] = [];
const received: Buffer[] = [];
beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket: any, request: { url: string }) => {
    connections.push(request.url);
    const mode = request.url.startsWith('/hang/') ? 'hang' : request.url.startsWith('/error/') ? 'error' : 'done';
    const send = (event: object) => socket.send(JSON.stringify(event));
    socket.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString());
      if (typeof event.audio === 'string') received.push(Buffer.from(event.audio, 'base64'));
      if (event.type === 'input_audio_buffer.commit') {
        if (mode === 'error') return send({ type: 'error', error: { message: `bad audio ${CANARY}` } });
        send({ type: 'conversation.item.input_audio_transcription.delta', item_id: 'item_1', delta: TRANSCRIPT[0] });
        if (mode === 'hang') return;
        for (const delta of TRANSCRIPT.slice(1)) send({ type: 'conversation.item.input_audio_transcription.delta', item_id: 'item_1', delta });
        send({ type: 'conversation.item.input_audio_transcription.completed', item_id: 'item_1', transcript: TRANSCRIPT.join('') });
      }
      if (event.type === 'session.close') {
        send({ type: 'session.input_transcript.delta', delta: TRANSCRIPT.join('') });
        for (const delta of TRANSLATION) send({ type: 'session.output_transcript.delta', delta });
        send({ type: 'session.output_audio.delta', delta: VOICE.toString('base64') });
        send({ type: 'session.closed' });
      }
    });
  });
  await new Promise((resolve) => server.on('listening', resolve));
  wsBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server?.close());
beforeEach(() => {
  connections.length = 0;
  received.length = 0;
});

async function run(scenarios: string[], env: Record<string, string> = {}) {
  const otlp = await startOtlpReceiver();
  const fake = await startFakeProvider();
  try {
    const app = await runNodeApp(
      ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(sdkFixture('ai-7'), 'streams-app.mjs')],
      {
        APP_SCENARIOS: scenarios.join(','),
        APP_PROMPT: `${CANARY} mail ${EMAIL}`,
        APP_WS_BASE_URL: wsBase,
        APP_OPENAI_BASE_URL: fake.openaiBaseURL,
        // The watcher is on for the WebSocket server's host: an audited stream must not be reported.
        LLM_AUDIT_LLM_HOSTS: new URL(wsBase).host,
        OTEL_SERVICE_NAME: 'vercel-ai-streams-app',
        OTEL_LOGS_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        LLM_AUDIT_HASH_KEY: HASH_KEY,
        LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'vercel-ai-streams-spool-')),
        ...env,
      },
      undefined,
      60_000,
      node24(),
    );
    return { app, out: app.stdout.trim() === '' ? undefined : JSON.parse(app.stdout.trim()), spans: otlp.jsonSpans(), requests: fake.requests, bytes: otlp.allBytes() };
  } finally {
    await otlp.close();
    await fake.close();
  }
}

const hashOf = (span: any, key: string) => String(span.attributes[key] ?? '').split(':').at(-1);

describe('ai 7 streamed audio and decisions, ESM app with --import, on Node 24', () => {
  it('streamTranscribe and streamTranslate: one record per stream, audio digested as input, text and voice as output; decide / evaluate: one record each', async () => {
    const { app, out, spans, requests, bytes } = await run(['done', 'translate', 'decide', 'evaluate', 'skill', 'speech'], { LLM_AUDIT_SANITIZE: 'redact', OTEL_LOG_LEVEL: 'warn' });
    expect(app.code, app.stderr).toBe(0);
    const redacted = `${CANARY} mail [EMAIL]`;
    expect(out[0]).toEqual([TRANSCRIPT.join(''), TRANSCRIPT.join('')]);
    expect(out[1]).toEqual([TRANSCRIPT.join(''), TRANSLATION.join(''), VOICE.length]);
    expect(out[2]).toMatchObject({ urgent: { type: 'boolean', probability: 0.8 }, team: { type: 'choice', choice: 'billing' } });
    expect(out[3]).toBe('boolean');
    // The audio went out whole, twice (transcription, translation); redact mode warned once that audio cannot be redacted.
    expect(Buffer.concat(received).equals(Buffer.concat([AUDIO, AUDIO]))).toBe(true);
    expect(connections).toEqual(['/v1/realtime?intent=transcription', '/v1/realtime/translations?model=gpt-realtime-translate']);
    expect(app.stderr.match(/streamed inputs .* cannot be redacted/g) ?? []).toHaveLength(1);

    expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.status'], s.attributes['llm_audit.stream.outcome']])).toEqual([
      ['experimental_streamTranscribe', 'transcription', 'success', 'completed'],
      ['experimental_streamTranslate', 'translation', 'success', 'completed'],
      ['experimental_decide', 'decide', 'success', undefined],
      ['experimental_evaluate', 'decide', 'success', undefined],
      ['uploadSkill', 'upload_skill', 'success', undefined],
      ['experimental_streamSpeech', 'generate_content', 'success', 'completed'],
    ]);
    const [transcription, translation, decision, evaluation, skill, speech] = spans as any[];
    expect(transcription.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-realtime-whisper', 'gen_ai.request.stream': true, 'llm_audit.usage.status': 'missing' });
    expect(hashOf(transcription, 'llm_audit.input.hash')).toBe(hmacHex(audioInput));
    expect(hashOf(transcription, 'llm_audit.output.hash')).toBe(hmacHex([{ role: 'assistant', parts: [{ type: 'text', content: TRANSCRIPT.join('') }] }]));
    expect(translation.attributes['gen_ai.request.model']).toBe('gpt-realtime-translate');
    expect(hashOf(translation, 'llm_audit.input.hash')).toBe(hmacHex(audioInput));
    expect(hashOf(translation, 'llm_audit.output.hash')).toBe(
      hmacHex([
        {
          role: 'assistant',
          parts: [
            { type: 'text', content: TRANSCRIPT.join('') },
            { type: 'text', content: TRANSLATION.join('') },
            { type: 'blob_digest', modality: 'audio', sha256: sha(VOICE), bytes: VOICE.length },
          ],
        },
      ]),
    );

    // Decisions: the state and the questions redacted before they left, hashed as sent; usage and cost.
    const decisions = requests.filter((r) => r.path === '/v1/decisions');
    expect(decisions).toHaveLength(2);
    expect(JSON.stringify(decisions[0]!.body)).not.toContain(EMAIL);
    expect(decisions[0]!.body.input[0].content[0].text).toBe(redacted);
    expect(decisions[0]!.body.questions[0].instructions).toBe(`Is this urgent? ${redacted}`);
    expect(decision.attributes).toMatchObject({
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-5-mini',
      'llm_audit.usage.status': 'reported',
      'gen_ai.usage.input_tokens': expectedUsage().input,
      'gen_ai.usage.output_tokens': expectedUsage().output,
      'llm_audit.sanitization.count': 2,
    });
    expect(hashOf(decision, 'llm_audit.input.hash')).toBe(hmacHex([{ role: 'user', parts: [{ type: 'text', content: redacted }] }]));
    expect(decision.attributes['llm_audit.system_prompt.hash']).toMatch(/^hmac-sha256:/);
    expect(hashOf(decision, 'llm_audit.output.hash')).toBe(hmacHex([{ role: 'assistant', parts: [{ type: 'text', content: canonicalJson(out[2]) }] }]));
    expect(evaluation.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);

    // The skill: its files went out as they are (files are not scanned), each described and hashed, never recorded.
    const notes = Buffer.from(`# Notes\n${CANARY} mail ${EMAIL}`);
    const script = Buffer.from('print(1)');
    const [upload] = requests.filter((r) => r.path === '/v1/skills');
    expect(upload!.body.files.map((f: any) => [f.filename, Buffer.from(f.bytes).toString()])).toEqual([
      ['skill/SKILL.md', notes.toString()],
      ['skill/run.py', 'print(1)'],
    ]);
    expect(out[4]).toEqual({ openai: expect.stringMatching(/^skill_/) });
    expect(skill.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'gen_ai.response.id': out[4].openai, 'gen_ai.usage.cost.amount': 0 });
    expect((skill.attributes['llm_audit.file.hashes'] as string[]).map((h) => h.split(':').at(-1))).toEqual([hmacHex(`sha256:${sha(notes)}`), hmacHex(`sha256:${sha(script)}`)]);
    expect(hashOf(skill, 'llm_audit.input.hash')).toBe(
      hmacHex([
        {
          role: 'user',
          parts: [
            { type: 'upload', bytes: notes.length, sha256: sha(notes), name: 'skill/SKILL.md' },
            { type: 'upload', bytes: script.length, sha256: sha(script), name: 'skill/run.py' },
          ],
        },
      ]),
    );

    // Streamed speech: the instructions (a plain string) redacted; the streamed text cannot be held, so it went as it was, hashed at the end.
    const spoken = `Read this: ${CANARY} mail ${EMAIL}`;
    const VOICE_OUT = Buffer.from('synthesized voice pcm');
    expect(out[5]).toEqual([VOICE_OUT.length, [spoken, `Speak slowly to ${redacted}`]]);
    expect(speech.attributes).toMatchObject({
      'gen_ai.provider.name': 'acme-voice',
      'gen_ai.request.model': 'acme-tts-stream',
      'gen_ai.output.type': 'speech',
      'gen_ai.usage.input_tokens': 5,
      'gen_ai.usage.output_tokens': 7,
    });
    expect(hashOf(speech, 'llm_audit.input.hash')).toBe(hmacHex([{ role: 'user', parts: [{ type: 'text', content: spoken }] }]));
    expect(hashOf(speech, 'llm_audit.system_prompt.hash')).toBe(hmacHex([{ type: 'text', content: `Speak slowly to ${redacted}` }]));
    expect(hashOf(speech, 'llm_audit.output.hash')).toBe(hmacHex([{ role: 'assistant', parts: [{ type: 'blob_digest', modality: 'audio', sha256: sha(VOICE_OUT), bytes: VOICE_OUT.length }] }]));
    for (const secret of [CANARY, EMAIL]) expect(bytes.includes(secret)).toBe(false);
  }, 90_000);

  it('a stream ended by break, abort, a provider error or never read is still one record each, ended once', async () => {
    const { app, out, spans } = await run(['break', 'abort', 'error', 'never']);
    expect(app.code, app.stderr).toBe(0);
    expect(out[0]).toBe(TRANSCRIPT[0]);
    expect(out[1]).toEqual([1, 'AbortError']);
    expect(out[2]).not.toBe('');
    expect(out[3]).toBe('left');
    // No record is reported as unaudited traffic: each socket was an audited call's.
    expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['llm_audit.status'], s.attributes['llm_audit.stream.outcome']])).toEqual([
      ['experimental_streamTranscribe', 'success', 'abandoned'],
      ['experimental_streamTranscribe', 'success', 'aborted'],
      ['experimental_streamTranscribe', 'error', 'errored'],
      // Never read: ai itself pipes the model's stream (one part taken, then held back); the
      // process ends with it open, and the exit records it as interrupted.
      ['experimental_streamTranscribe', 'interrupted', 'abandoned'],
    ]);
    // The error's message is the provider's, its text kept (no prompt text in an audio stream).
    expect(spans[2]!.attributes['error.type']).toBeDefined();
    // What was sent is hashed, on every path: all the audio went out before the server answered.
    for (const span of spans) expect(hashOf(span, 'llm_audit.input.hash')).toBe(hmacHex(audioInput));
  }, 90_000);

  it('redact mode with LLM_AUDIT_ON_FAILURE=block refuses the stream before a socket opens: one blocked record', async () => {
    const { app, out, spans } = await run(['done'], { LLM_AUDIT_SANITIZE: 'redact', LLM_AUDIT_ON_FAILURE: 'block' });
    expect(app.code, app.stderr).toBe(0);
    expect(connections).toEqual([]);
    expect(out[0]).toMatch(/Error/);
    expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['llm_audit.status']])).toEqual([['experimental_streamTranscribe', 'blocked']]);
  }, 90_000);
});
