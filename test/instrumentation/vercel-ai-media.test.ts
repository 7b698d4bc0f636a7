import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { contentCipherFromEnv, createContentMasterKey } from '../../src/audit/content';
import { withAuditContext } from '../../src/context';
import { recordFromSpan } from '../../src/ledger/record';
import { sdkFixture } from '../support/node24';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';
import { SPEECH_AUDIO, TRANSCRIPT_TEXT, expectedUsage, fakeImage } from '../support/fake-provider';

// ai's image, speech, transcription and reranking functions (ai 5: the experimental_ ones; ai 6:
// generateImage and rerank too), the real `ai` package driving the real @ai-sdk/openai provider
// (2 for ai 5, 3 for ai 6) against the fake provider's OpenAI images and audio endpoints: one
// record per model call, redaction, encrypted content, failures. Two models stay written to the
// provider specification here: a reranking model (no installed provider has one) and a speech
// model built on the patched openai SDK (no second record for the SDK call underneath).

const dir = mkdtempSync(join(tmpdir(), 'vercel-ai-media-'));
const keyPath = join(dir, 'content.key');
createContentMasterKey(keyPath, 'k1');
const cipher = contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath })!;
const audit = setupAudit({ sanitize: { mode: 'redact' }, content: cipher });
const fakeProvider = useFakeProvider(audit);

const CANARY = 'VERCEL-MEDIA-CANARY-3d9a';
const EMAIL = 'jane.doe@example.com';
const AUDIO = Buffer.from('RIFF recorded speech bytes');
const hmac = (value: unknown) => `hmac-sha256:test:${createHmac('sha256', 'test-hash-key-0123456789').update(canonicalJson(value), 'utf8').digest('hex')}`;
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function expectNoCanary(spans: readonly any[]): void {
  for (const span of spans) expect(JSON.stringify([span.attributes, span.events, span.status, recordFromSpan(span)])).not.toContain(CANARY);
}

const open = (span: any) => cipher.open(String(span.attributes['llm_audit.content.encrypted']), { requestId: String(span.attributes['llm_audit.request_id']), tenantId: 'acme' });

describe.each([
  { major: 5, dir: sdkFixture('ai-5') },
  { major: 6, dir: repoRoot },
])('ai $major', ({ major, dir }) => {
  const ai = audit.load('ai', dir);
  const { createOpenAI } = audit.load('@ai-sdk/openai', dir);
  const openai = () => createOpenAI({ apiKey: 'sk-test', baseURL: fakeProvider().openaiBaseURL });
  const requests = (path: string) => fakeProvider().requests.filter((r) => r.path === path);

  it('image: one record (generate_content) per model call, prompt redacted and hashed, images digested, usage where reported', async () => {
    const generate = major === 5 ? ai.experimental_generateImage : ai.generateImage;
    const prompt = `${CANARY} a cat, send to ${EMAIL}`;
    const sent = `${CANARY} a cat, send to [EMAIL]`;
    const result = await withAuditContext({ tenantId: 'acme' }, () => generate({ model: openai().image('gpt-image-1'), prompt, n: 3, maxImagesPerCall: 2, maxRetries: 0 }));
    expect(result.images).toHaveLength(3);
    // Two images per call: ai makes two model calls, each audited.
    expect(requests('/v1/images/generations').map((r) => [r.body.prompt, r.body.n])).toEqual([
      [sent, 2],
      [sent, 1],
    ]);
    const spans = await audit.spansWhen(2);
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'gen_ai.operation.name': 'generate_content',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-image-1',
        'gen_ai.output.type': 'image',
        'llm_audit.action': major === 5 ? 'experimental_generateImage' : 'generateImage',
        'llm_audit.status': 'success',
        'llm_audit.sanitization.count': 1,
        'llm_audit.input.hash': hmac([{ role: 'user', parts: [{ type: 'text', content: sent }] }]),
      });
      const n = Number(span.attributes['gen_ai.request.choice.count'] ?? 1); // the conventions record it only when not 1
      const images = Array.from({ length: n }, (_, index) => fakeImage(sent, index));
      expect(span.attributes['llm_audit.output.hash']).toBe(hmac([{ role: 'assistant', parts: images.map((image) => ({ type: 'blob_digest', modality: 'image', sha256: sha(image), bytes: image.length })) }]));
      // @ai-sdk/openai 2 (ai 5) hands on no image usage; 3 does.
      expect(span.attributes['llm_audit.usage.status']).toBe(major === 5 ? 'missing' : 'reported');
      if (major > 5) expect(span.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
      expect(open(span).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: sent }] }]);
    }
    expectNoCanary(spans);
  });

  it('image: a failed model call is a record with the error, its message scrubbed of the prompt', async () => {
    const generate = major === 5 ? ai.experimental_generateImage : ai.generateImage;
    fakeProvider().enqueue({ status: 400, errorMessage: `Your request was rejected: ${CANARY} refused` });
    await expect(generate({ model: openai().image('gpt-image-1'), prompt: `${CANARY} refused`, maxRetries: 0 })).rejects.toThrow(CANARY);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'gen_ai.operation.name': 'generate_content' });
    expectNoCanary([span]);
  });

  it('speech: one record (generate_content), text and instructions redacted and hashed, the voice digested', async () => {
    const result = await withAuditContext({ tenantId: 'acme' }, () =>
      ai.experimental_generateSpeech({ model: openai().speech('gpt-4o-mini-tts'), text: `${CANARY} hello, this is ${EMAIL}`, instructions: `${CANARY} speak slowly`, voice: 'alloy', maxRetries: 0 }),
    );
    expect(Buffer.from(result.audio.uint8Array).equals(SPEECH_AUDIO)).toBe(true);
    expect(requests('/v1/audio/speech').map((r) => [r.body.input, r.body.instructions])).toEqual([[`${CANARY} hello, this is [EMAIL]`, `${CANARY} speak slowly`]]);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'generate_content',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini-tts',
      'gen_ai.output.type': 'speech',
      'llm_audit.action': 'experimental_generateSpeech',
      'llm_audit.status': 'success',
      'llm_audit.system_prompt.hash': hmac([{ type: 'text', content: `${CANARY} speak slowly` }]),
      'llm_audit.input.hash': hmac([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} hello, this is [EMAIL]` }] }]),
      'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'blob_digest', modality: 'audio', sha256: sha(SPEECH_AUDIO), bytes: SPEECH_AUDIO.length }] }]),
    });
    expect(open(span).system_instructions).toEqual([{ type: 'text', content: `${CANARY} speak slowly` }]);
    expectNoCanary([span]);
  });

  it('speech: a model built on the patched openai SDK is one record (ai\'s), not two', async () => {
    const speechModel = {
      specificationVersion: major === 5 ? 'v2' : 'v3',
      provider: 'acme-media.speech',
      modelId: 'acme-tts-1',
      async doGenerate(options: any) {
        const { OpenAI } = audit.load('openai');
        await new OpenAI({ apiKey: 'sk-test', baseURL: fakeProvider().openaiBaseURL, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: options.text }] });
        return { audio: new Uint8Array(SPEECH_AUDIO), warnings: [], response: { timestamp: new Date(0), modelId: 'acme-tts-1', headers: {} } };
      },
    };
    await ai.experimental_generateSpeech({ model: speechModel, text: `${CANARY} hello`, maxRetries: 0 });
    const [span] = await audit.spansWhen(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(audit.auditSpans()).toHaveLength(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.action': 'experimental_generateSpeech', 'gen_ai.provider.name': 'acme-media' });
  });

  it('transcription: one record, the audio digested as input, the transcript hashed as output', async () => {
    const result = await withAuditContext({ tenantId: 'acme' }, () => ai.experimental_transcribe({ model: openai().transcription('whisper-1'), audio: new Uint8Array(AUDIO), maxRetries: 0 }));
    expect(result.text).toBe(TRANSCRIPT_TEXT);
    const [upload] = requests('/v1/audio/transcriptions');
    expect(Buffer.from(upload!.body.file.bytes).equals(AUDIO)).toBe(true);
    const [span] = await audit.spansWhen(1);
    const digest = { type: 'blob_digest', modality: 'audio', mime_type: expect.any(String), sha256: sha(AUDIO), bytes: AUDIO.length };
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'transcription',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'whisper-1',
      'llm_audit.action': 'experimental_transcribe',
      'llm_audit.status': 'success',
      'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'text', content: TRANSCRIPT_TEXT }] }]),
    });
    expect(open(span).input_messages).toEqual([{ role: 'user', parts: [digest] }]);
    expect(open(span).output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: TRANSCRIPT_TEXT }] }]);
  });

  if (major >= 6) {
    it('video: one record (generate_content) per model call, prompt redacted and hashed, start image and videos digested', async () => {
      // No installed provider has a video model: one written to the specification (Experimental_VideoModelV3).
      const VIDEO = Buffer.from('\x00\x00\x00\x18ftypmp42 generated video');
      const START = Buffer.from('\x89PNG\r\n\x1a\n start frame');
      const seen: any[] = [];
      const videoModel = {
        specificationVersion: 'v3',
        provider: 'acme-media.video',
        modelId: 'acme-video-1',
        maxVideosPerCall: 1,
        async doGenerate(options: any) {
          seen.push(options);
          return { videos: [{ type: 'base64', data: VIDEO.toString('base64'), mediaType: 'video/mp4' }], warnings: [], response: { timestamp: new Date(0), modelId: 'acme-video-1-2026', headers: {} } };
        },
      };
      const result = await withAuditContext({ tenantId: 'acme' }, () =>
        ai.experimental_generateVideo({ model: videoModel, prompt: { text: `${CANARY} a drone shot, credits ${EMAIL}`, image: new Uint8Array(START) }, n: 2, maxRetries: 0 }),
      );
      expect(result.videos).toHaveLength(2);
      expect(seen.map((o) => o.prompt)).toEqual([`${CANARY} a drone shot, credits [EMAIL]`, `${CANARY} a drone shot, credits [EMAIL]`]);
      const spans = await audit.spansWhen(2);
      expect(spans).toHaveLength(2);
      const startDigest = { type: 'blob_digest', modality: 'image', mime_type: 'image/png', sha256: sha(START), bytes: START.length };
      for (const span of spans) {
        expect(span.attributes).toMatchObject({
          'gen_ai.operation.name': 'generate_content',
          'gen_ai.provider.name': 'acme-media',
          'gen_ai.request.model': 'acme-video-1',
          'gen_ai.response.model': 'acme-video-1-2026',
          'gen_ai.output.type': 'video',
          'llm_audit.action': 'experimental_generateVideo',
          'llm_audit.status': 'success',
          'llm_audit.sanitization.count': 1,
          'llm_audit.input.hash': hmac([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} a drone shot, credits [EMAIL]` }, startDigest] }]),
          'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'blob_digest', modality: 'video', mime_type: 'video/mp4', sha256: sha(VIDEO), bytes: VIDEO.length }] }]),
        });
        expect(open(span).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} a drone shot, credits [EMAIL]` }, startDigest] }]);
      }
      expectNoCanary(spans);
    });

    it('rerank: one record (rerank), query and documents redacted and hashed, the ranking not hashed as output', async () => {
      const seen: unknown[] = [];
      const rerankModel = {
        specificationVersion: 'v3',
        provider: 'acme-media.reranking',
        modelId: 'acme-rerank-1',
        async doRerank(options: any) {
          seen.push(options);
          return { ranking: options.documents.values.map((_: unknown, index: number) => ({ index, relevanceScore: 1 - index / 10 })), response: { id: 'rr-1', modelId: 'acme-rerank-1', timestamp: new Date(0) } };
        },
      };
      const documents = [`${CANARY} mail ${EMAIL}`, `${CANARY} second`];
      const result = await withAuditContext({ tenantId: 'acme' }, () => ai.rerank({ model: rerankModel, query: `${CANARY} which?`, documents, maxRetries: 0 }));
      expect(result.ranking).toHaveLength(2);
      expect((seen.at(-1) as any).documents.values[0]).toBe(`${CANARY} mail [EMAIL]`);
      const [span] = await audit.spansWhen(1);
      expect(span!.attributes).toMatchObject({ 'gen_ai.operation.name': 'rerank', 'llm_audit.action': 'rerank', 'gen_ai.response.id': 'rr-1', 'llm_audit.sanitization.count': 1 });
      expect(span!.attributes['llm_audit.output.hash']).toBeUndefined();
      expect(open(span).input_messages).toEqual([
        { role: 'user', parts: [{ type: 'text', content: `${CANARY} which?` }] },
        { role: 'user', parts: [{ type: 'text', content: `${CANARY} mail [EMAIL]` }, { type: 'text', content: `${CANARY} second` }] },
      ]);
      expectNoCanary([span]);
    });
  }
});
