import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { node24, sdkFixture } from '../support/node24';
import { startOtlpReceiver } from '../support/otlp-receiver';

// ai 7 (Node >= 22) under `otel-llm-audit/register`: generateImage, generateSpeech, transcribe and
// rerank (test/sdk-versions/ai-7/media-app.mjs) each leave one record over OTLP, redacted in what
// the model gets; no byte of the prompt leaves. ai 5 and 6: test/instrumentation/vercel-ai-media.test.ts.

const CANARY = 'CANARY-vercel-media-41be';
const EMAIL = 'jane.canary@example.org';

describe('ai 7 media functions, ESM app with --import, on Node 24', () => {
  it('one record per model call: generate_content (image, speech), transcription, rerank', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runNodeApp(
        ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(sdkFixture('ai-7'), 'media-app.mjs')],
        {
          APP_PROMPT: `${CANARY} mail ${EMAIL}`,
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
      expect(JSON.parse(result.stdout.trim())).toEqual([1, 'generated speech'.length, 'a transcript', 2, [redacted, redacted, redacted]]);
      const spans = otlp.jsonSpans();
      expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.status']])).toEqual([
        ['generateImage', 'generate_content', 'success'],
        ['generateSpeech', 'generate_content', 'success'],
        ['transcribe', 'transcription', 'success'],
        ['rerank', 'rerank', 'success'],
      ]);
      for (const span of spans) expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
      expect(spans[0]!.attributes['gen_ai.usage.output_tokens']).toBe(100);
      expect(spans[1]!.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);
      for (const secret of [CANARY, EMAIL]) expect(otlp.allBytes().includes(secret)).toBe(false);
    } finally {
      await otlp.close();
    }
  });
});
