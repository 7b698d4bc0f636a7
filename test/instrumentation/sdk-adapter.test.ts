import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { blockRequest, LlmRequestBlockedError, type AuditRequest, type LlmAuditHooks } from '../../src/guardrails';
import * as patch from '../../src/core/patch';
import * as adapters from '../../src/core/sdk-adapter';
import type { AuditServices } from '../../src/core/audited-call';
import type { OperationSpec, StreamAccumulator } from '../../src/core/types';
import { chatRequest } from '../../src/instrumentations/openai/request';
import type { FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// The SDK seam (src/core/sdk-adapter.ts) with SDK methods that are not Stainless-generated: a
// plain async method that sends its request with fetch, the way @google/genai and the AWS SDK do.
// A block must stop the request before it leaves; where an SDK's request cannot be held, the call
// is refused (fail closed), never sent unguarded.

const current: { before?: LlmAuditHooks['beforeRequest'] } = {};
const failingSanitizer = { on: false };
const audit = setupAudit({
  hooks: { beforeRequest: (request) => current.before?.(request) },
  sanitize: {
    mode: 'redact',
    hook: () => {
      if (failingSanitizer.on) throw new Error('custom detector crashed');
    },
  },
});
const fakeProvider = useFakeProvider({
  reset() {
    audit.reset();
    current.before = undefined;
    failingSanitizer.on = false;
  },
});
let fake: FakeProvider;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  fake = fakeProvider();
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** The running instrumentation's services, as auditClient() reads them. */
const services = (): AuditServices | undefined => {
  const source = (globalThis as Record<symbol, unknown>)[Symbol.for('otel-llm-audit.services')];
  return typeof source === 'function' ? (source as () => AuditServices | undefined)() : undefined;
};

class TextAccumulator implements StreamAccumulator {
  text = '';
  onChunk(chunk: any): void {
    this.text += chunk?.choices?.[0]?.delta?.content ?? '';
  }
  summary() {
    return { output: [{ role: 'assistant', parts: [{ type: 'text' as const, content: this.text }] }] };
  }
}

const spec: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'plain.create',
  requestKind: chatRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes() {},
  prompt: (params) => ({ input: params?.messages }),
  summarize: (data: any) => ({
    id: data?.id,
    model: data?.model,
    output: [{ role: 'assistant', parts: [{ type: 'text', content: data?.choices?.[0]?.message?.content ?? '' }] }],
  }),
  accumulator: () => new TextAccumulator(),
};

/** A non-Stainless SDK method: sends its request at once with fetch, resolves to the JSON (or to an async generator of SSE chunks). */
async function plainCreate(this: { baseURL: string }, params: any): Promise<unknown> {
  const response = await fetch(`${this.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify(params),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  if (params.stream !== true) return response.json();
  return (async function* () {
    const text = await response.text();
    for (const line of text.split('\n')) {
      if (line.startsWith('data: ') && line !== 'data: [DONE]') yield JSON.parse(line.slice(6));
    }
  })();
}

const resource = () => ({ baseURL: fake.openaiBaseURL });
const params = (content: string, extra: object = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const blockOn = (word: string) => (request: AuditRequest) => {
  if (JSON.stringify(request.params).includes(word)) blockRequest(`found ${word}`, { name: 'test-policy' });
};

describe('an SDK whose request cannot be held (no client.post): blocking fails closed', () => {
  // The options the seam was given before adapters existed: a client without `post`.
  const wrapped = () => patch.auditedMethod(services, spec, { server: () => ({}), client: () => ({}) })(plainCreate);

  it('a sync block stops the request; the app gets the block error, nothing is sent, no unhandled rejection', async () => {
    current.before = blockOn('secret plan');
    const error = await wrapped()
      .call(resource(), params('the secret plan'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    expect((error as LlmRequestBlockedError).reason).toBe('found secret plan');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests).toHaveLength(0);
    expect(unhandled).toEqual([]);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('blocked');
  });

  it('an async hook: the call is refused with a clear error rather than sent before the hook decided', async () => {
    current.before = async () => undefined;
    const error = await wrapped()
      .call(resource(), params('hello'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    expect((error as Error).message).toMatch(/cannot be held/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests).toHaveLength(0);
    expect(unhandled).toEqual([]);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('blocked');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a failing redaction refuses the call; nothing is sent', async () => {
    failingSanitizer.on = true;
    const error = await wrapped()
      .call(resource(), params('hello'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    expect((error as Error).message).toMatch(/redaction failed/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests).toHaveLength(0);
    expect(unhandled).toEqual([]);
  });

  it('without a gate the call goes through unchanged', async () => {
    const data: any = await wrapped().call(resource(), params('hello'));
    expect(data.object).toBe('chat.completion');
    expect(fake.requests).toHaveLength(1);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('success');
  });
});

describe('the generic promise adapter', () => {
  const wrapped = () => patch.auditedMethod(services, spec, { server: () => ({}), adapter: adapters.promiseAdapter })(plainCreate);

  it('holds the request for an async hook: the hook decides first, then the request goes; the app gets the SDK value', async () => {
    const order: string[] = [];
    current.before = async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push(`hook saw ${fake.requests.length} requests`);
    };
    const data: any = await wrapped().call(resource(), params('hello'));
    expect(order).toEqual(['hook saw 0 requests']);
    expect(data.choices[0].message.content).toBe('Hello from the fake provider.');
    expect(fake.requests).toHaveLength(1);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('success');
    expect(span.attributes['gen_ai.response.id']).toBe(data.id);
  });

  it.each([
    ['sync', blockOn('secret plan')],
    ['async', async (request: AuditRequest) => blockOn('secret plan')(request)],
  ])('a %s block stops the request: nothing is sent, no unhandled rejection', async (_label, hook) => {
    current.before = hook;
    const error = await wrapped()
      .call(resource(), params('the secret plan'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests).toHaveLength(0);
    expect(unhandled).toEqual([]);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('blocked');
  });

  it('observes an async iterable result in place: every chunk reaches the app, the span ends once with the text', async () => {
    const stream: any = await wrapped().call(resource(), params('hello', { stream: true }));
    let text = '';
    for await (const chunk of stream) text += chunk.choices?.[0]?.delta?.content ?? '';
    expect(text).toBe('Hello from the fake provider.');
    const spans = await audit.spansWhen(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(1);
    expect(spans[0].attributes['llm_audit.stream.outcome']).toBe('completed');
    expect(spans[0].attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
  });

  it('a stream left early with break is recorded as abandoned', async () => {
    const stream: any = await wrapped().call(resource(), params('hello', { stream: true }));
    for await (const _chunk of stream) break;
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.stream.outcome']).toBe('abandoned');
  });

  it('a failing request is recorded as an error and rethrown as is', async () => {
    fake.enqueue({ status: 400 });
    const error = await wrapped()
      .call(resource(), params('hello'))
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('HTTP 400');
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('error');
  });
});
