import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { node24, sdkFixture } from '../support/node24';
import { startOtlpReceiver } from '../support/otlp-receiver';
import { DEFAULT_TEXT, SPEECH_AUDIO, TRANSCRIPT_TEXT, startFakeProvider } from '../support/fake-provider';

// ai 7 (Node >= 22) under `otel-llm-audit/register`: generateImage, generateSpeech, transcribe
// experimental_extract and experimental_streamLanguageModelCall (the real @ai-sdk/openai 4 against
// the fake provider), rerank and experimental_startVideo
// (test/sdk-versions/ai-7/media-app.mjs) each leave one record over OTLP, redacted in what the
// model gets; experimental_getVideoStatus only polls (no record); no byte of the prompt leaves.
// ai 5 and 6: test/instrumentation/vercel-ai-media.test.ts.

const CANARY = 'CANARY-vercel-media-41be';
const EMAIL = 'jane.canary@example.org';

describe('ai 7 media functions, ESM app with --import, on Node 24', () => {
  it('one record per model call: generate_content (image, speech, video start), transcription, rerank, chat (extraction, one streamed call)', async () => {
    const otlp = await startOtlpReceiver();
    const fake = await startFakeProvider();
    // The images, speech and transcription requests take the defaults; the extraction's answer is its JSON.
    fake.enqueue({}, {}, {}, { text: JSON.stringify({ f0: 'Jane' }) });
    try {
      const result = await runNodeApp(
        ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(sdkFixture('ai-7'), 'media-app.mjs')],
        {
          APP_PROMPT: `${CANARY} mail ${EMAIL}`,
          APP_OPENAI_BASE_URL: fake.openaiBaseURL,
          LLM_AUDIT_SANITIZE: 'redact',
          OTEL_SERVICE_NAME: 'vercel-ai-media-app',
          OTEL_LOGS_EXPORTER: 'none',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          LLM_AUDIT_HASH_KEY: 'vercel-ai-test-hash-key-0123',
          LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'vercel-ai-media-spool-')),
        },
        undefined,
        60_000,
        node24(),
      );
      expect(result.stderr.split('\n').filter((line) => line !== '' && !/^\(node:\d+\) Warning: AI SDK Warning System|^\(Use `node --trace-warnings/.test(line))).toEqual([]);
      expect(result.code).toBe(0);
      const redacted = `${CANARY} mail [EMAIL]`;
      const out = JSON.parse(result.stdout.trim());
      expect(out).toEqual([1, SPEECH_AUDIO.length, TRANSCRIPT_TEXT, 2, 'pending', expect.anything(), DEFAULT_TEXT, { openai: expect.stringMatching(/^file-/) }, [redacted, redacted]]);
      expect(JSON.stringify(out[5])).toContain('Jane');
      const sent = (r: (typeof fake.requests)[number]) => (r.path === '/v1/responses' ? r.body.model : (r.body?.prompt ?? r.body?.input ?? r.body?.model));
      expect(fake.requests.map((r) => [r.path, sent(r)])).toEqual([
        ['/v1/images/generations', redacted],
        ['/v1/audio/speech', redacted],
        ['/v1/audio/transcriptions', 'whisper-1'],
        ['/v1/responses', 'gpt-4.1-mini'],
        ['/v1/responses', 'gpt-4.1-mini'],
        ['/v1/files', undefined],
      ]);
      expect(fake.requests[4]!.body.stream).toBe(true);
      expect(JSON.stringify(fake.requests[4]!.body.input)).toContain(redacted);
      expect(JSON.stringify(fake.requests[3]!.body.input)).toContain(redacted);
      const spans = otlp.jsonSpans();
      expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.status']])).toEqual([
        ['generateImage', 'generate_content', 'success'],
        ['generateSpeech', 'generate_content', 'success'],
        ['transcribe', 'transcription', 'success'],
        ['rerank', 'rerank', 'success'],
        ['experimental_startVideo', 'generate_content', 'success'],
        ['experimental_extract', 'chat', 'success'],
        ['experimental_streamLanguageModelCall', 'chat', 'success'],
        ['uploadFile', 'upload_file', 'success'],
      ]);
      // The file: described and hashed, its id from the provider; its bytes never in the record.
      const notes = Buffer.from(`notes: ${CANARY} mail ${EMAIL}`);
      expect(spans[7]!.attributes).toMatchObject({
        'gen_ai.provider.name': 'openai',
        'llm_audit.file.id': out[7].openai,
      });
      expect(spans[7]!.attributes['llm_audit.file.hash']).toMatch(/^hmac-sha256:/);
      expect(JSON.stringify(spans[7])).not.toContain(notes.toString('base64'));
      expect(spans[6]!.attributes['llm_audit.stream.outcome']).toBe('completed');
      expect(spans[6]!.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(spans[5]!.attributes['gen_ai.request.model']).toBe('gpt-4.1-mini');
      expect(spans[5]!.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);
      for (const span of spans) expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
      expect(Buffer.from(fake.requests[5]!.body.file.bytes).equals(Buffer.from(`notes: ${CANARY} mail ${EMAIL}`))).toBe(true);
      expect(spans[0]!.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(spans.slice(0, 3).map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai', 'openai', 'openai']);
      expect(spans[1]!.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);
      for (const secret of [CANARY, EMAIL]) expect(otlp.allBytes().includes(secret)).toBe(false);
    } finally {
      await otlp.close();
      await fake.close();
    }
  });
});
