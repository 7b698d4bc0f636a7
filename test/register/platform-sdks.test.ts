import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, expectedText, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp } from '../support/child-app';
import { startOtlpReceiver } from '../support/otlp-receiver';

// An app that uses only @anthropic-ai/bedrock-sdk (which loads @anthropic-ai/sdk's internals, never
// its main entry) is audited under register, as CommonJS and as ESM.

let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

const fixtures = join(repoRoot, 'test', 'fixtures');
const cases = [
  { label: 'CommonJS with --require', args: ['--require', join(repoRoot, 'dist', 'cjs', 'register.js'), join(fixtures, 'bedrock-only-app.cjs')] },
  { label: 'ESM with --import', args: ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(fixtures, 'bedrock-only-app.mjs')] },
];

describe('Bedrock-only app under register', () => {
  it.each(cases)('$label: both calls audited as aws.bedrock', async ({ args }) => {
    const otlp = await startOtlpReceiver();
    try {
      const result = await runNodeApp(args, {
        FAKE_PROVIDER_URL: fake.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
        LLM_AUDIT_HASH_KEY: 'platform-test-hash-key-0123',
      });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout.trim())).toEqual([expectedText(), expectedText()]);
      const spans = otlp.jsonSpans().filter((span) => span.scope === 'otel-llm-audit');
      expect(spans.map((span) => [span.attributes['gen_ai.provider.name'], span.attributes['gen_ai.request.stream'] ?? false])).toEqual([
        ['aws.bedrock', false],
        ['aws.bedrock', true],
      ]);
      for (const span of spans) expect(span.attributes['llm_audit.cost.status']).toBe('priced');
    } finally {
      await otlp.close();
    }
  });
});

describe('LLM_AUDIT_PROVIDER_HOSTS under register', () => {
  it('a bad entry stops the app at startup with exit status 78 and one line naming it', async () => {
    const result = await runNodeApp(cases[0]!.args, {
      FAKE_PROVIDER_URL: fake.url,
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'none',
      LLM_AUDIT_HASH_KEY: 'platform-test-hash-key-0123',
      LLM_AUDIT_PROVIDER_HOSTS: 'vllm.internal',
    });
    expect(result.code).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('LLM_AUDIT_PROVIDER_HOSTS: "vllm.internal" is not host=provider');
  });
});
