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

// ai's image, speech, transcription and reranking functions (ai 5: the experimental_ ones; ai 6:
// generateImage and rerank too), the real `ai` package driving a model object written to the
// provider specification (ImageModelV2/V3, SpeechModel, TranscriptionModel, RerankingModelV3) as
// an @ai-sdk provider package implements it: one record per model call, redaction, encrypted
// content, failures, and no second record for a patched SDK the model calls underneath.

const dir = mkdtempSync(join(tmpdir(), 'vercel-ai-media-'));
const keyPath = join(dir, 'content.key');
createContentMasterKey(keyPath, 'k1');
const cipher = contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath })!;
const audit = setupAudit({ sanitize: { mode: 'redact' }, content: cipher });
const fakeProvider = useFakeProvider(audit);

const CANARY = 'VERCEL-MEDIA-CANARY-3d9a';
const EMAIL = 'jane.doe@example.com';
const IMAGE = Buffer.from('\x89PNG generated image bytes');
const AUDIO = Buffer.from('ID3 generated speech bytes');
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
  const version = major === 5 ? 'v2' : 'v3';
  const seen: Record<string, unknown[]> = { image: [], speech: [], transcription: [], rerank: [] };
  const response = (modelId: string) => ({ timestamp: new Date(0), modelId, headers: {} });
  const imageModel = (fail = false) => ({
    specificationVersion: version,
    provider: 'acme-media.image',
    modelId: 'acme-image-1',
    maxImagesPerCall: 2,
    async doGenerate(options: any) {
      seen.image!.push(options);
      if (fail) throw Object.assign(new Error(`upstream refused the prompt "${options.prompt}"`), { statusCode: 400 });
      return { images: Array.from({ length: options.n }, () => IMAGE.toString('base64')), warnings: [], response: response('acme-image-1-2026'), ...(version === 'v3' ? { usage: { inputTokens: 12, outputTokens: 3000, totalTokens: 3012 } } : {}) };
    },
  });
  const speechModel = {
    specificationVersion: version,
    provider: 'acme-media.speech',
    modelId: 'acme-tts-1',
    async doGenerate(options: any) {
      seen.speech!.push(options);
      // An adapter built on a patched SDK: its call is the same model call, recorded once (by ai's).
      const { OpenAI } = audit.load('openai');
      await new OpenAI({ apiKey: 'sk-test', baseURL: fakeProvider().openaiBaseURL, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: options.text }] });
      return { audio: new Uint8Array(AUDIO), warnings: [], response: response('acme-tts-1') };
    },
  };
  const transcriptionModel = {
    specificationVersion: version,
    provider: 'acme-media.transcription',
    modelId: 'acme-stt-1',
    async doGenerate(options: any) {
      seen.transcription!.push(options);
      return { text: `${CANARY} transcript`, segments: [], language: 'en', durationInSeconds: 2.5, warnings: [], response: response('acme-stt-1') };
    },
  };

  it('image: one record (generate_content) per model call, prompt redacted and hashed, images digested, usage where reported', async () => {
    const generate = major === 5 ? ai.experimental_generateImage : ai.generateImage;
    const result = await withAuditContext({ tenantId: 'acme' }, () => generate({ model: imageModel(), prompt: `${CANARY} a cat, send to ${EMAIL}`, n: 3, maxRetries: 0 }));
    expect(result.images).toHaveLength(3);
    // maxImagesPerCall 2: ai makes two model calls, each audited.
    expect(seen.image!.map((o: any) => [o.prompt, o.n])).toEqual([
      [`${CANARY} a cat, send to [EMAIL]`, 2],
      [`${CANARY} a cat, send to [EMAIL]`, 1],
    ]);
    const spans = await audit.spansWhen(2);
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'gen_ai.operation.name': 'generate_content',
        'gen_ai.provider.name': 'acme-media',
        'gen_ai.request.model': 'acme-image-1',
        'gen_ai.response.model': 'acme-image-1-2026',
        'gen_ai.output.type': 'image',
        'llm_audit.action': major === 5 ? 'experimental_generateImage' : 'generateImage',
        'llm_audit.status': 'success',
        'llm_audit.sanitization.count': 1,
        'llm_audit.input.hash': hmac([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} a cat, send to [EMAIL]` }] }]),
      });
      const n = Number(span.attributes['gen_ai.request.choice.count'] ?? 1); // the conventions record it only when not 1
      expect(span.attributes['llm_audit.output.hash']).toBe(hmac([{ role: 'assistant', parts: Array.from({ length: n }, () => ({ type: 'blob_digest', modality: 'image', sha256: sha(IMAGE), bytes: IMAGE.length })) }]));
      expect(span.attributes['llm_audit.usage.status']).toBe(major === 5 ? 'missing' : 'reported');
      if (major > 5) expect(span.attributes['gen_ai.usage.output_tokens']).toBe(3000);
      expect(open(span).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} a cat, send to [EMAIL]` }] }]);
    }
    expectNoCanary(spans);
  });

  it('image: a failed model call is a record with the error, its message scrubbed of the prompt', async () => {
    const generate = major === 5 ? ai.experimental_generateImage : ai.generateImage;
    await expect(generate({ model: imageModel(true), prompt: `${CANARY} refused`, maxRetries: 0 })).rejects.toThrow(CANARY);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'gen_ai.operation.name': 'generate_content' });
    expectNoCanary([span]);
  });

  it('speech: one record (generate_content), text and instructions hashed, the voice digested; the patched SDK underneath adds none', async () => {
    const result = await withAuditContext({ tenantId: 'acme' }, () =>
      ai.experimental_generateSpeech({ model: speechModel, text: `${CANARY} hello, this is ${EMAIL}`, instructions: `${CANARY} speak slowly`, voice: 'alloy', maxRetries: 0 }),
    );
    expect(Buffer.from(result.audio.uint8Array).equals(AUDIO)).toBe(true);
    const [span] = await audit.spansWhen(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(audit.auditSpans()).toHaveLength(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'generate_content',
      'gen_ai.output.type': 'speech',
      'llm_audit.action': 'experimental_generateSpeech',
      'llm_audit.system_prompt.hash': hmac([{ type: 'text', content: `${CANARY} speak slowly` }]),
      'llm_audit.input.hash': hmac([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} hello, this is [EMAIL]` }] }]),
      'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'blob_digest', modality: 'audio', sha256: sha(AUDIO), bytes: AUDIO.length }] }]),
    });
    expect(open(span).system_instructions).toEqual([{ type: 'text', content: `${CANARY} speak slowly` }]);
    expectNoCanary([span]);
  });

  it('transcription: one record, the audio digested as input, the transcript hashed as output', async () => {
    const result = await withAuditContext({ tenantId: 'acme' }, () => ai.experimental_transcribe({ model: transcriptionModel, audio: new Uint8Array(AUDIO), maxRetries: 0 }));
    expect(result.text).toBe(`${CANARY} transcript`);
    const [span] = await audit.spansWhen(1);
    const digest = { type: 'blob_digest', modality: 'audio', mime_type: expect.any(String), sha256: sha(AUDIO), bytes: AUDIO.length };
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'transcription',
      'llm_audit.action': 'experimental_transcribe',
      'llm_audit.status': 'success',
      'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} transcript` }] }]),
    });
    expect(open(span).input_messages).toEqual([{ role: 'user', parts: [digest] }]);
    expect(open(span).output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} transcript` }] }]);
    expectNoCanary([span]);
  });

  if (major >= 6) {
    it('rerank: one record (rerank), query and documents redacted and hashed, the ranking not hashed as output', async () => {
      const rerankModel = {
        specificationVersion: 'v3',
        provider: 'acme-media.reranking',
        modelId: 'acme-rerank-1',
        async doRerank(options: any) {
          seen.rerank!.push(options);
          return { ranking: options.documents.values.map((_: unknown, index: number) => ({ index, relevanceScore: 1 - index / 10 })), response: { id: 'rr-1', modelId: 'acme-rerank-1', timestamp: new Date(0) } };
        },
      };
      const documents = [`${CANARY} mail ${EMAIL}`, `${CANARY} second`];
      const result = await withAuditContext({ tenantId: 'acme' }, () => ai.rerank({ model: rerankModel, query: `${CANARY} which?`, documents, maxRetries: 0 }));
      expect(result.ranking).toHaveLength(2);
      expect((seen.rerank!.at(-1) as any).documents.values[0]).toBe(`${CANARY} mail [EMAIL]`);
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
