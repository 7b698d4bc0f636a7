import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, expectedText, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { node24, sdkFixture } from '../support/node24';
import { startOtlpReceiver } from '../support/otlp-receiver';

// The Vercel AI SDK under `otel-llm-audit/register` with no code change: ai 6 required (CommonJS)
// and imported (ESM), ai 7 (ESM only, Node >= 22) imported under Node 24. Every model call of the
// app (test/support/vercel-ai-app.cjs) leaves one record over OTLP; no byte of the prompt leaves.

const CANARY = 'CANARY-vercel-ai-7d3f-prompt';
const EMAIL = 'jane.canary@example.org';
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

const cases = [
  { label: 'ai 6, CommonJS app with --require', args: () => ['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'support', 'vercel-ai-app-6.cjs')], node: () => process.execPath },
  { label: 'ai 6, ESM app with --import', args: () => ['--import', 'otel-llm-audit/register', join(repoRoot, 'test', 'support', 'vercel-ai-app-6.mjs')], node: () => process.execPath },
  {
    label: 'ai 7, ESM app with --import, on Node 24',
    args: () => ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(sdkFixture('ai-7'), 'app.mjs')],
    node: node24,
  },
];

describe.each(cases)('$label', ({ args, node }) => {
  it('one record per model call (agents too), with tokens and hashes; redacted in what is sent; the prompt is in no exported byte', async () => {
    const otlp = await startOtlpReceiver();
    try {
      fake.reset();
      // The app's calls, in order: generateText, streamText, two tool steps, embed, embedMany, generateObject, an agent.
      fake.enqueue({}, {}, { toolCalls: [{ name: 'weather', arguments: '{"city":"Paris"}', id: 'call_1' }] }, { text: 'Sunny.' }, {}, {}, { text: '{"city":"Paris"}' }, {});
      const result = await runNodeApp(
        args(),
        {
          FAKE_PROVIDER_URL: fake.url,
          APP_PROMPT: `${CANARY} mail ${EMAIL}`,
          LLM_AUDIT_SANITIZE: 'redact',
          OTEL_SERVICE_NAME: 'vercel-ai-test-app',
          OTEL_LOGS_EXPORTER: 'none',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          LLM_AUDIT_HASH_KEY: 'vercel-ai-test-hash-key-0123',
          LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'vercel-ai-spool-')),
        },
        undefined,
        60_000,
        node(),
      );
      // ai 7 warns that generateObject is deprecated (and how to silence its warnings): nothing else may be printed.
      const ownWarnings = /^\(node:\d+\) (Warning: AI SDK Warning System|\[AISDK_DEP_GENERATE_OBJECT\])|^\(Use `node --trace-warnings/;
      expect(result.stderr.split('\n').filter((line) => line !== '' && !ownWarnings.test(line))).toEqual([]);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout.trim())).toEqual([expectedText(), expectedText(), 2, 1536, 2, { city: 'Paris' }, expectedText()]);
      expect(fake.requests).toHaveLength(8);
      // LLM_AUDIT_SANITIZE=redact: the providers got the placeholder, in every request.
      for (const request of fake.requests) expect(request.rawBody.includes(EMAIL)).toBe(false);
      expect(fake.requests.filter((r) => r.rawBody.includes('mail [EMAIL]'))).toHaveLength(8);
      const spans = otlp.jsonSpans();
      expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['generateText', 'streamText', 'generateText', 'generateText', 'embed', 'embedMany', 'generateObject', 'ToolLoopAgent']);
      expect(spans.map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai', 'anthropic', 'openai', 'openai', 'openai', 'openai', 'anthropic', 'openai']);
      for (const span of spans) {
        expect(span.attributes['llm_audit.sanitization.count']).toBeGreaterThanOrEqual(1);
        expect(span.attributes['llm_audit.status']).toBe('success');
        expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
        expect(span.attributes['gen_ai.usage.input_tokens']).toEqual(expect.any(Number));
        expect(span.attributes['llm_audit.cost.status']).toBe('priced');
      }
      expect(spans[2]!.attributes['llm_audit.tool.names']).toEqual(['weather']);
      for (const secret of [CANARY, EMAIL]) expect(otlp.allBytes().includes(secret)).toBe(false);
    } finally {
      await otlp.close();
    }
  });
});
