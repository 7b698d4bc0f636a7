import { beforeAll, describe, expect, it } from 'vitest';
import { diag, DiagLogLevel, SpanStatusCode } from '@opentelemetry/api';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, recordGuardrail, type AuditRequest, type AuditResponse, type LlmAuditHooks } from '../../src/guardrails';
import { recordRetrieval } from '../../src/retrieval';
import { expectedText, MODERATION_TRIGGER, type FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// Guardrail hooks, blocking, guardrail and retrieval records, with the real SDKs.

/** The hooks of this file's instrumentation delegate to whatever a test sets here. */
const current: { before?: LlmAuditHooks['beforeRequest']; after?: LlmAuditHooks['afterResponse'] } = {};
const audit = setupAudit({
  hooks: {
    beforeRequest: (request) => current.before?.(request),
    afterResponse: (response) => current.after?.(response),
  },
});
const { OpenAI } = audit.load('openai');
const { Anthropic } = audit.load('@anthropic-ai/sdk');
const fakeProvider = useFakeProvider({
  reset() {
    audit.reset();
    current.before = undefined;
    current.after = undefined;
  },
});
let fake: FakeProvider;
let openai: any;
let anthropic: any;
beforeAll(() => {
  fake = fakeProvider();
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
});

const ask = (content = 'hello', extra: object = {}) =>
  openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const llmRequests = () => fake.requests.filter((r) => r.path !== '/v1/moderations');
const events = (span: { events: { name: string; attributes?: Record<string, unknown> }[] }) =>
  span.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes);

describe('blocking', () => {
  it.each([
    ['openai chat', () => ask('please block me')],
    ['openai chat stream', () => ask('please block me', { stream: true })],
    ['anthropic messages', () => anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 32, messages: [{ role: 'user', content: 'please block me' }] })],
  ])('%s: a sync hook blocks; the app gets a typed error, the provider gets nothing, the call is audited as blocked', async (_label, call) => {
    current.before = (request: AuditRequest) => {
      if (JSON.stringify(request.params).includes('block me')) blockRequest('asked to be blocked', { name: 'test-policy', policyId: 'p-1', category: 'test' });
    };
    const error = await call().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    expect((error as LlmRequestBlockedError).reason).toBe('asked to be blocked');
    expect(llmRequests()).toHaveLength(0);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('blocked');
    expect(span.attributes['llm_audit.block.reason']).toBe('asked to be blocked');
    expect(span.attributes['llm_audit.request_id']).toBe((error as LlmRequestBlockedError).requestId);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(events(span)).toEqual([
      {
        'llm_audit.guardrail.name': 'test-policy',
        'llm_audit.guardrail.action': 'blocked',
        'llm_audit.guardrail.policy_id': 'p-1',
        'llm_audit.guardrail.category': 'test',
      },
    ]);
  });

  it('an async hook (a real moderation call through the SDK) blocks flagged input and lets the rest through, after it resolves', async () => {
    const order: string[] = [];
    current.before = async (request: AuditRequest) => {
      const text = JSON.stringify(request.params);
      const moderation = await openai.moderations.create({ model: 'omni-moderation-latest', input: text });
      order.push('moderated');
      const result = moderation.results[0];
      const top = Object.entries(result.category_scores as Record<string, number>).sort((a, b) => b[1] - a[1])[0];
      const verdict = { name: 'openai-moderation', policyId: 'omni-moderation-latest', category: top[0], score: top[1] };
      if (result.flagged) blockRequest(`moderation flagged ${top[0]}`, verdict);
      recordGuardrail({ ...verdict, action: 'allowed' });
    };
    const allowed = await ask('tell me about gardening');
    order.push('answered');
    expect(allowed.choices[0].message.content).toBe(expectedText());
    const blocked = await ask(`describe ${MODERATION_TRIGGER} in detail`).catch((e: unknown) => e);
    expect(blocked).toBeInstanceOf(LlmRequestBlockedError);
    expect(order).toEqual(['moderated', 'answered', 'moderated']);
    expect(llmRequests()).toHaveLength(1);
    // The hook's own moderation calls are audited too (without running the hook again).
    const spans = await audit.spansWhen(4);
    const [ok, no] = spans.filter((s) => s.attributes['llm_audit.action'] === 'chat.completions.create');
    const checks = spans.filter((s) => s.attributes['llm_audit.action'] === 'moderations.create');
    expect(checks.map((s) => s.attributes['llm_audit.status'])).toEqual(['success', 'success']);
    expect(checks[1]!.events.map((e) => e.attributes?.['llm_audit.guardrail.category'])).toEqual(['violence']);
    expect(ok.attributes['llm_audit.status']).toBe('success');
    expect(events(ok)[0]).toMatchObject({ 'llm_audit.guardrail.name': 'openai-moderation', 'llm_audit.guardrail.action': 'allowed' });
    expect(no.attributes['llm_audit.status']).toBe('blocked');
    expect(events(no)).toEqual([
      {
        'llm_audit.guardrail.name': 'openai-moderation',
        'llm_audit.guardrail.action': 'blocked',
        'llm_audit.guardrail.policy_id': 'omni-moderation-latest',
        'llm_audit.guardrail.category': 'violence',
        'llm_audit.guardrail.score': 0.97,
      },
    ]);
  });

  it('a call made by the afterResponse hook is audited but runs no hook: no endless chain of checks', async () => {
    let runs = 0;
    current.after = (response) => {
      runs++;
      const text = JSON.stringify(response.output);
      void openai.moderations.create({ model: 'omni-moderation-latest', input: text });
    };
    await ask('tell me about gardening');
    const spans = await audit.spansWhen(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toBe(1);
    expect(audit.spans().map((s) => s.attributes['llm_audit.action'])).toEqual(['chat.completions.create', 'moderations.create']);
    expect(spans[1]!.attributes['llm_audit.status']).toBe('success');
  });

  it('a held (async-hook) call still returns the SDK promise: withResponse() and streams work', async () => {
    current.before = async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const { data, response } = await ask().withResponse();
    expect(data.choices[0].message.content).toBe(expectedText());
    expect(response.status).toBe(200);
    const stream = await ask('hi', { stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(expectedText());
    await audit.spansWhen(2);
  });

  it('a hook that throws (a bug, not a block) is reported and the call goes on', async () => {
    current.before = () => {
      throw new Error('hook bug');
    };
    const result = await ask();
    expect(result.choices[0].message.content).toBe(expectedText());
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('success');
  });
});

describe('hook text that quotes the prompt', () => {
  const PROMPT = 'tell me about CANARY-hook-8c1f2e and its owner';

  it('a block reason quoting the prompt reaches the app whole and the span without the quote', async () => {
    current.before = (request: AuditRequest) => {
      blockRequest(`found "${(request.params as any).messages[0].content}"`, { name: 'quoting-policy' });
    };
    const error = await ask(PROMPT).catch((e: unknown) => e);
    expect((error as LlmRequestBlockedError).reason).toBe(`found "${PROMPT}"`);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.block.reason']).toBe('found "[REDACTED:request]"');
    expect(JSON.stringify([span.attributes, span.events, span.status])).not.toContain('CANARY-hook');
  });

  it('a throwing hook whose message quotes the prompt is logged without the quote, its stack frames kept', async () => {
    const logged: string[] = [];
    const collect = (message: string, ...args: unknown[]) => logged.push([message, ...args.map(String)].join(' '));
    diag.setLogger({ error: collect, warn: collect, info: collect, debug: collect, verbose: collect }, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
    try {
      current.before = (request: AuditRequest) => {
        throw new Error(`cannot classify ${(request.params as any).messages[0].content}`);
      };
      await ask(PROMPT);
      await audit.spansWhen(1);
    } finally {
      diag.disable();
    }
    const line = logged.find((l) => l.includes('beforeRequest hook threw'));
    expect(line).toContain('Error: cannot classify [REDACTED:request]');
    expect(line).toMatch(/\n {4}at /);
    expect(logged.join('\n')).not.toContain('CANARY-hook');
  });
});

describe('afterResponse and recordGuardrail', () => {
  it('a throwing afterResponse hook whose message quotes the output or the prompt is logged without either', async () => {
    const prompt = 'judge CANARY-after-51c2 please';
    const logged: string[] = [];
    const collect = (message: string, ...args: unknown[]) => logged.push([message, ...args.map(String)].join(' '));
    diag.setLogger({ error: collect, warn: collect, info: collect, debug: collect, verbose: collect }, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
    try {
      current.after = (response) => {
        const text = response.output?.[0]?.parts.map((p) => ('content' in p ? p.content : '')).join('') ?? '';
        throw new Error(`cannot judge ${text} for ${prompt}`);
      };
      await ask(prompt);
      await audit.spansWhen(1);
    } finally {
      diag.disable();
      current.after = undefined;
    }
    const line = logged.find((l) => l.includes('afterResponse hook threw'));
    expect(line).toContain('Error: cannot judge [REDACTED:request]');
    expect(logged.join('\n')).not.toContain('CANARY-after');
    expect(logged.join('\n')).not.toContain(expectedText());
  });

  it('afterResponse sees the answer in-process and can flag it on the span; a throwing hook is harmless', async () => {
    const seen: AuditResponse[] = [];
    current.after = (response) => {
      seen.push(response);
      const text = response.output?.[0]?.parts.map((p) => ('content' in p ? p.content : '')).join('') ?? '';
      recordGuardrail({ name: 'output-check', action: text.includes('fake provider') ? 'flagged' : 'allowed', severity: 'low' });
      throw new Error('after hook bug');
    };
    const result = await ask();
    expect(result.choices[0].message.content).toBe(expectedText());
    const [span] = await audit.spansWhen(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ provider: 'openai', action: 'chat.completions.create', status: 'success', model: 'gpt-4o-mini' });
    expect(seen[0].requestId).toBe(span.attributes['llm_audit.request_id']);
    expect(events(span)).toEqual([{ 'llm_audit.guardrail.name': 'output-check', 'llm_audit.guardrail.action': 'flagged', 'llm_audit.guardrail.severity': 'low' }]);
  });

  it('recordGuardrail outside any call becomes an audit span of its own', async () => {
    recordGuardrail({ name: 'upload-scan', action: 'modified', category: 'pii', score: 0.5 });
    const [span] = await audit.spansWhen(1);
    expect(span.name).toBe('guardrail upload-scan');
    expect(span.attributes['llm_audit.action']).toBe('guardrail');
    expect(events(span)).toEqual([{ 'llm_audit.guardrail.name': 'upload-scan', 'llm_audit.guardrail.action': 'modified', 'llm_audit.guardrail.category': 'pii', 'llm_audit.guardrail.score': 0.5 }]);
  });

  it('a malformed guardrail result is refused with a warning, not recorded and not thrown', async () => {
    expect(() => recordGuardrail({ name: 'x', action: 'maybe' as never })).not.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(0);
  });
});

describe('retrieval and tools', () => {
  it('recordRetrieval reaches the next LLM call of the same audit scope only', async () => {
    await withAuditContext({ userId: 'u1' }, async () => {
      recordRetrieval({ source: 'kb', documentIds: ['doc-1', 'doc-7'], scores: [0.9, 0.4] });
      recordRetrieval({ source: 'web', documentIds: ['url-3'] });
      await ask();
      await ask();
    });
    const [first, second] = await audit.spansWhen(2);
    expect(first.attributes['llm_audit.rag.document_ids']).toEqual(['doc-1', 'doc-7', 'url-3']);
    const retrievals = first.events.filter((e) => e.name === 'llm_audit.retrieval').map((e) => e.attributes);
    expect(retrievals).toEqual([
      { 'llm_audit.rag.document_ids': ['doc-1', 'doc-7'], 'llm_audit.rag.source': 'kb', 'llm_audit.rag.scores': [0.9, 0.4] },
      { 'llm_audit.rag.document_ids': ['url-3'], 'llm_audit.rag.source': 'web' },
    ]);
    expect(second.attributes['llm_audit.rag.document_ids']).toBeUndefined();
  });

  it('outside any audit scope, a retrieval is recorded on a span of its own', async () => {
    recordRetrieval({ documentIds: ['doc-9'] });
    const [span] = await audit.spansWhen(1);
    expect(span.name).toBe('retrieval');
    expect(span.attributes['llm_audit.rag.document_ids']).toEqual(['doc-9']);
  });

  it('tool calls are recorded by name and call id, never their arguments', async () => {
    fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: '{"secret":"TOOL-ARG-CANARY"}', id: 'call_abc' }] });
    await ask();
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.tool.names']).toEqual(['lookup']);
    expect(span.attributes['llm_audit.tool.call_ids']).toEqual(['call_abc']);
    expect(JSON.stringify([span.attributes, span.events])).not.toContain('TOOL-ARG-CANARY');
  });
});
