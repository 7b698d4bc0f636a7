import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNodeApp } from '../support/child-app';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { isAuditStart, startOtlpReceiver, type JsonSpan } from '../support/otlp-receiver';

// Production tracing samples and limits spans; an audit trail must be neither sampled nor cut.
// Each case: 20 calls under register, with the setting in the environment. The audit pipeline
// (ledger, or OTLP) must get 20 complete records; the tracing backend (the app's own NodeSDK, or
// the records marked llm_audit.trace.forward) must see only what the sampler keeps.

const app = join(repoRoot, 'test', 'fixtures', 'sampling-app.cjs');
const HASH = /^hmac-sha256:[0-9a-f]{8}:[0-9a-f]{64}$/;
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

interface Run {
  ids: string[];
  records: Array<Record<string, any>>;
  forwarded: number;
  traced: JsonSpan[];
}

async function run(exporter: 'ledger' | 'otlp', env: Record<string, string>, ownSdk = false): Promise<Run> {
  const audit = await startOtlpReceiver();
  const backend = await startOtlpReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'sampling-ledger-'));
  try {
    const result = await runNodeApp(['--require', 'otel-llm-audit/register', app], {
      FAKE_PROVIDER_URL: fake.url,
      LLM_AUDIT_HASH_KEY: 'tracing-settings-key-0123456',
      LLM_AUDIT_EXPORTER: exporter,
      LLM_AUDIT_LEDGER_DIR: dir,
      LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'sampling-spool-')),
      OTEL_EXPORTER_OTLP_ENDPOINT: audit.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      ...(ownSdk ? { APP_OWN_SDK_URL: `${backend.url}/v1/traces` } : {}),
      ...env,
    });
    expect(result.stderr).not.toContain('app failed');
    expect(result.code).toBe(0);
    const ids = JSON.parse(result.stdout.trim().split('\n').pop()!) as string[];
    let records: Array<Record<string, any>>;
    let forwarded = 0;
    if (exporter === 'ledger') {
      records = readdirSync(join(dir, 'segments'))
        .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line).record)
        .filter((record) => !isAuditStart(record));
    } else {
      const spans = audit.jsonSpans().filter((s) => s.attributes['llm_audit.trace_copy'] !== true);
      forwarded = spans.filter((s) => s.attributes['llm_audit.trace.forward'] === true).length;
      records = spans.map((s) => ({
        request_id: s.attributes['llm_audit.request_id'],
        input_hash: s.attributes['llm_audit.input.hash'],
        cost_usd: s.attributes['gen_ai.usage.cost.amount'],
        user_id: s.attributes['user.id'],
        span_id: s.spanId,
      }));
    }
    return { ids, records, forwarded, traced: backend.jsonSpans() };
  } finally {
    await audit.close();
    await backend.close();
  }
}

function expectComplete(r: Run): void {
  expect(r.ids).toHaveLength(20);
  expect(r.records.map((x) => x.request_id).sort()).toEqual([...r.ids].sort());
  for (const record of r.records) {
    expect(record.input_hash).toMatch(HASH);
    expect(record.cost_usd).toBeGreaterThan(0);
    expect(record.user_id).toBe('user-s');
  }
}

const settings: Array<{ label: string; env: Record<string, string>; sampled: 'none' | 'some' | 'all' }> = [
  { label: 'OTEL_TRACES_SAMPLER=traceidratio 0.1', env: { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }, sampled: 'some' },
  { label: 'OTEL_TRACES_SAMPLER=always_off', env: { OTEL_TRACES_SAMPLER: 'always_off' }, sampled: 'none' },
  { label: 'an unsampled upstream traceparent (parent-based sampler)', env: { APP_UNSAMPLED_PARENT: '1' }, sampled: 'none' },
  { label: 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=20', env: { OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '20' }, sampled: 'all' },
  { label: 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=16', env: { OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '16' }, sampled: 'all' },
];

describe.each(settings)('$label', ({ env, sampled }) => {
  it.each(['ledger', 'otlp'] as const)('%s: 20 of 20 complete records', async (exporter) => {
    const r = await run(exporter, env);
    expectComplete(r);
    if (exporter === 'otlp') {
      // Without an SDK of the app's, the records are the calls' only trace spans: the tracing
      // backend is told to show only those the sampler kept.
      if (sampled === 'none') expect(r.forwarded).toBe(0);
      if (sampled === 'all') expect(r.forwarded).toBe(20);
      if (sampled === 'some') expect(r.forwarded).toBeLessThan(20);
    }
  });

  it("beside the app's own NodeSDK: 20 complete records in the ledger; the app's exporter gets only the sampled trace spans, with the same ids", async () => {
    const r = await run('otlp', env, true);
    expectComplete(r);
    // The app's SDK exports the trace spans itself: no record asks to be shown again.
    expect(r.forwarded).toBe(0);
    const llmSpans = r.traced.filter((s) => s.attributes['gen_ai.operation.name'] !== undefined);
    if (sampled === 'none') expect(llmSpans).toHaveLength(0);
    if (sampled === 'all') expect(llmSpans).toHaveLength(20);
    if (sampled === 'some') expect(llmSpans.length).toBeLessThan(20);
    const recordSpanIds = new Set(r.records.map((x) => x.span_id));
    for (const span of llmSpans) {
      expect(recordSpanIds.has(span.spanId)).toBe(true);
      expect(span.attributes['llm_audit.trace_copy']).toBe(true);
      expect(span.resource['service.name']).toBe('app-own-sdk');
    }
  });
});

describe('OTEL_SDK_DISABLED=true turns tracing off, not the audit', () => {
  it.each(['ledger', 'otlp'] as const)('%s: 20 of 20 complete records', async (exporter) => {
    const r = await run(exporter, { OTEL_SDK_DISABLED: 'true' });
    expectComplete(r);
  });
});
