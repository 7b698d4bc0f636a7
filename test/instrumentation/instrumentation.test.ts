import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { context, diag, DiagLogLevel, propagation, trace, type DiagLogger, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { withAuditContext } from '../../src/context';
import { LlmAuditInstrumentation } from '../../src/instrumentation';
import { PACKAGE_VERSION } from '../../src/version';
import { OPERATION_DURATION_BUCKETS, TOKEN_USAGE_BUCKETS } from '../../src/semconv';
import { expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';

const audit = setupAudit();
const OpenAI = audit.load('openai').OpenAI;
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
let client: any;
beforeAll(() => {
  fake = fakeProvider();
  client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
});

const spansOf = (n: number) => audit.spansWhen(n);
const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

/** Collects diag messages for the duration of `fn`. */
async function captureDiag(fn: () => Promise<void> | void): Promise<{ level: string; message: string }[]> {
  const lines: { level: string; message: string }[] = [];
  const logger = Object.fromEntries(
    (['error', 'warn', 'info', 'debug', 'verbose'] as const).map((level) => [
      level,
      (message: string, ...args: unknown[]) => lines.push({ level, message: [message, ...args.map(String)].join(' ') }),
    ]),
  ) as unknown as DiagLogger;
  diag.setLogger(logger, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
  try {
    await fn();
  } finally {
    diag.disable();
  }
  return lines;
}

describe('audit context', () => {
  it('withAuditContext names user, session, tenant and metadata, across awaits and nested scopes', async () => {
    await withAuditContext({ userId: 'u1', sessionId: 's1', tenantId: 't1', metadata: { feature: 'search', tier: 2 } }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      await ask();
      await withAuditContext({ sessionId: 's2', metadata: { step: 'rerank' } }, () => ask());
    });
    await ask();
    const [outer, inner, outside] = await spansOf(3);
    expect(outer.attributes).toMatchObject({
      'user.id': 'u1',
      'session.id': 's1',
      'llm_audit.tenant.id': 't1',
      'llm_audit.metadata.feature': 'search',
      'llm_audit.metadata.tier': 2,
    });
    expect(inner.attributes).toMatchObject({
      'user.id': 'u1',
      'session.id': 's2',
      'llm_audit.tenant.id': 't1',
      'llm_audit.metadata.feature': 'search',
      'llm_audit.metadata.step': 'rerank',
    });
    expect(outside.attributes['user.id']).toBeUndefined();
    expect(outside.attributes['session.id']).toBeUndefined();
  });

  it('withAuditContext takes a snapshot: changing the object afterwards does not re-attribute the scope', async () => {
    const who = { userId: 'alice', metadata: { feature: 'search' } as Record<string, string> };
    await withAuditContext(who, async () => {
      await ask();
      // An application reusing one object per worker and filling it for the next request.
      who.userId = 'mallory';
      who.metadata.feature = 'admin';
      await ask();
    });
    // The same (now changed) object in a new scope is read afresh.
    await withAuditContext(who, () => ask());
    const [first, second, third] = await spansOf(3);
    for (const span of [first, second]) {
      expect(span.attributes['user.id']).toBe('alice');
      expect(span.attributes['llm_audit.metadata.feature']).toBe('search');
    }
    expect(third.attributes['user.id']).toBe('mallory');
    expect(third.attributes['llm_audit.metadata.feature']).toBe('admin');
  });

  it('one scope per request for the same user: each scope records its own fields, one changed at a time', async () => {
    // A server opening a new scope per request; consecutive scopes often name the same user.
    const base = { userId: 'u1', sessionId: 's1', tenantId: 't1', userAgent: 'ua/1', metadata: { feature: 'search', tier: 2 } as Record<string, string | number> };
    const scopes = [
      base,
      { ...base },
      { ...base, metadata: { tier: 2, feature: 'search' } },
      { ...base, userId: 'u2' },
      { ...base, sessionId: 's2' },
      { ...base, tenantId: 't2' },
      { ...base, userAgent: 'ua/2' },
      { ...base, metadata: { feature: 'search', tier: 3 } },
      { ...base, metadata: { tier: 2, feature: 'search' } },
      { ...base, metadata: { feature: 'search' } },
      { ...base, metadata: undefined },
      base,
    ];
    for (const scope of scopes) await withAuditContext(scope, () => ask());
    const spans = await spansOf(scopes.length);
    spans.forEach((span, i) => {
      const scope = scopes[i]!;
      const recorded = Object.fromEntries(Object.entries(span.attributes).filter(([key]) => /^(user\.|session\.|llm_audit\.(tenant|metadata)\.)/.test(key)));
      const expected = {
        'user.id': scope.userId,
        'session.id': scope.sessionId,
        'llm_audit.tenant.id': scope.tenantId,
        'user_agent.original': undefined,
        ...Object.fromEntries(Object.entries(scope.metadata ?? {}).map(([key, value]) => [`llm_audit.metadata.${key}`, value])),
      };
      delete expected['user_agent.original'];
      // Same members, in the same order (the record lists attributes as they were set).
      expect(Object.entries(recorded)).toEqual(Object.entries(expected));
      expect(span.attributes['user_agent.original']).toBe(scope.userAgent);
    });
  });

  it('falls back to W3C baggage user.id / session.id; an explicit context wins', async () => {
    const baggage = propagation.createBaggage({ 'user.id': { value: 'from-baggage' }, 'session.id': { value: 'bag-session' } });
    await context.with(propagation.setBaggage(context.active(), baggage), async () => {
      await ask();
      await withAuditContext({ userId: 'explicit' }, () => ask());
    });
    const [fromBaggage, explicit] = await spansOf(2);
    expect(fromBaggage.attributes['user.id']).toBe('from-baggage');
    expect(fromBaggage.attributes['session.id']).toBe('bag-session');
    expect(explicit.attributes['user.id']).toBe('explicit');
    expect(explicit.attributes['session.id']).toBe('bag-session');
  });

  it('the span is the active one while the SDK sends the request (HTTP spans nest under it)', async () => {
    // No HTTP instrumentation here: a custom fetch records which span is active when it is called.
    const seen: string[] = [];
    const withFetch = new OpenAI({
      apiKey: 'sk-test',
      baseURL: fake.openaiBaseURL,
      maxRetries: 0,
      fetch: (url: string, init: unknown) => {
        seen.push(trace.getActiveSpan()?.spanContext().spanId ?? 'none');
        return fetch(url, init as RequestInit);
      },
    });
    await withFetch.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const [span] = await spansOf(1);
    expect(seen).toEqual([span.spanContext().spanId]);
  });
});

describe('metrics', () => {
  it('records gen_ai.client.operation.duration and gen_ai.client.token.usage with the conventions buckets', async () => {
    await ask();
    await spansOf(1);
    const resourceMetrics = await audit.metrics();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const duration = all.find((m) => m.descriptor.name === 'gen_ai.client.operation.duration');
    const tokens = all.find((m) => m.descriptor.name === 'gen_ai.client.token.usage');
    expect(duration?.descriptor.unit).toBe('s');
    expect(tokens?.descriptor.unit).toBe('{token}');
    const durationPoint = duration!.dataPoints[0] as any;
    expect(durationPoint.value.buckets.boundaries).toEqual(OPERATION_DURATION_BUCKETS);
    expect(durationPoint.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini' });
    const byType = Object.fromEntries(tokens!.dataPoints.map((p: any) => [p.attributes['gen_ai.token.type'], p.value]));
    // Cumulative over this file's calls, each of which reported the default usage.
    expect(byType.input.count).toBeGreaterThan(0);
    expect(byType.input.sum).toBe(byType.input.count * expectedUsage().input);
    expect(byType.output.sum).toBe(byType.output.count * expectedUsage().output);
    expect((tokens!.dataPoints[0] as any).value.buckets.boundaries).toEqual(TOKEN_USAGE_BUCKETS);
    // Metric attributes stay low-cardinality: no per-request id.
    expect(durationPoint.attributes['llm_audit.request_id']).toBeUndefined();
  });
});

describe('never break the host app', () => {
  it('a failing tracer is reported through diag and the SDK call works untouched', async () => {
    const broken: TracerProvider = {
      getTracer: () =>
        ({
          startSpan: () => {
            throw new Error('tracer exploded');
          },
        }) as unknown as Tracer,
    };
    audit.instrumentation.setTracerProvider(broken);
    let result: any;
    const lines = await captureDiag(async () => {
      result = await ask();
    });
    audit.instrumentation.setTracerProvider(audit.tracerProvider);
    expect(result.choices[0].message.content).toBe(expectedText());
    expect(lines.some((l) => l.level === 'error' && l.message.includes('tracer exploded'))).toBe(true);
  });

  it('odd response shapes do not throw into the app; what cannot be read is simply absent', async () => {
    fake.enqueue({ omitUsage: true, model: '' });
    const result = await ask();
    expect(result.choices[0].message.content).toBe(expectedText());
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.usage.status']).toBe('missing');
    expect(span.ended).toBe(true);
  });

  it('disable() stops auditing and restores the SDK method', async () => {
    const proto = OpenAI.Chat.Completions.prototype;
    const patched = proto.create;
    audit.instrumentation.disable();
    expect(proto.create).not.toBe(patched);
    await ask();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(0);
    audit.instrumentation.enable();
    audit.load('openai');
    await ask();
    await spansOf(1);
  });
});

describe('versions', () => {
  it('an SDK without the shape the patch needs (openai 3) gets one warning on stderr and is left alone', async () => {
    const instrumentation = new LlmAuditInstrumentation({ enabled: false, hashKey: 'x'.repeat(32) });
    const [openaiDefinition] = instrumentation.getModuleDefinitions();
    const exports = { OpenAI: { Chat: { Completions: { prototype: { create() {} } } } } };
    const original = exports.OpenAI.Chat.Completions.prototype.create;
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: unknown) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
    let lines: { level: string; message: string }[];
    try {
      lines = await captureDiag(() => {
        openaiDefinition.patch!(exports, '3.3.0');
        openaiDefinition.patch!(exports, '3.3.0');
      });
    } finally {
      process.stderr.write = write;
    }
    expect(written).toHaveLength(1);
    expect(written[0]).toContain('openai 3.3.0 lacks what the audit wraps (OpenAI.Embeddings.prototype.create, OpenAI.prototype.post), so its calls are NOT audited');
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(exports.OpenAI.Chat.Completions.prototype.create).toBe(original);
  });

  it('PACKAGE_VERSION is the package.json version', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    expect(PACKAGE_VERSION).toBe(pkg.version);
  });
});
