import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createContentHasher } from '../../src/audit/hashing';
import { ENVELOPE_PREFIX } from '../../src/audit/content';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, type AuditRequest, type LlmAuditHooks } from '../../src/guardrails';
import { recordFromSpan } from '../../src/ledger/record';
import { DEFAULT_TEXT, expectedChunks, type FakeProvider } from '../support/fake-provider';
import { repoRoot, setupAuditWithContent, useFakeProvider } from '../support/harness';

// @mistralai/mistralai 2.7 (test/sdk-versions/mistral: its OpenTelemetry peer ranges conflict with
// the root's) against the fake provider's Mistral routes: chat complete, stream and embeddings, one
// record each with the conventions' attributes, cost, hashes, blocking, redaction, encrypted
// content, and no prompt or output text in what is exported.

const current: { before?: LlmAuditHooks['beforeRequest'] } = {};
const { audit, reviewer } = setupAuditWithContent({
  hooks: { beforeRequest: (request) => current.before?.(request) },
  sanitize: { mode: 'redact', types: ['EMAIL'] },
});
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const { Mistral } = audit.load('@mistralai/mistralai', join(repoRoot, 'test', 'sdk-versions', 'mistral'));
const fakeProvider = useFakeProvider({
  reset() {
    audit.reset();
    current.before = undefined;
  },
});
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const MODEL = 'mistral-small-latest';
const SYSTEM = 'You are a terse assistant.';
const PROMPT = 'Say hello to the auditors.';
const client = () => new Mistral({ apiKey: 'test-key', serverURL: fake.mistralBaseURL });
const messages = [
  { role: 'system', content: SYSTEM },
  { role: 'user', content: PROMPT },
];
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
const modelRequests = () => fake.requests.filter((r) => r.path.startsWith('/mistral/'));

describe('chat.complete', () => {
  it('one record with the conventions attributes, tokens, cost and hashes; the app gets the SDK response', async () => {
    fake.enqueue({ usage: { input: 30, output: 12, cacheRead: 0, cacheCreation: 0, reasoning: 0 } });
    const response = await client().chat.complete({ model: MODEL, messages, temperature: 0.2, maxTokens: 64, randomSeed: 7 });
    expect(response.choices[0].message.content).toBe(DEFAULT_TEXT);
    const [span] = await audit.spansWhen(1);
    await settle();
    expect(audit.spans()).toHaveLength(1);
    expect(span.name).toBe(`chat ${MODEL}`);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'mistral_ai',
      'gen_ai.request.model': MODEL,
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.max_tokens': 64,
      'gen_ai.request.seed': 7,
      'gen_ai.response.model': MODEL,
      'gen_ai.response.id': response.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 30,
      'gen_ai.usage.output_tokens': 12,
      'llm_audit.usage.status': 'reported',
      'llm_audit.cost.status': 'priced',
      'llm_audit.status': 'success',
      'llm_audit.action': 'chat.complete',
      'server.address': '127.0.0.1',
    });
    expect(span.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
    expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hashRepeated([messages[0]]));
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hashMessages([messages[1]]));
    expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: DEFAULT_TEXT }], finish_reason: 'stop' }]));
  });

  it('tool calls: names and ids; an API error: recorded and rethrown', async () => {
    fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: '{"q":"x"}', id: 'abc123def' }] });
    await client().chat.complete({ model: MODEL, messages });
    const [span] = await audit.spansWhen(1);
    expect(span.attributes).toMatchObject({ 'llm_audit.tool.names': ['lookup'], 'llm_audit.tool.call_ids': ['abc123def'] });
    audit.reset();
    fake.enqueue({ status: 400, errorMessage: 'bad thing' });
    const error = await client()
      .chat.complete({ model: MODEL, messages })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const [failed] = await audit.spansWhen(1);
    expect(failed.attributes).toMatchObject({ 'llm_audit.status': 'error', 'http.response.status_code': 400 });
  });
});

describe('chat.stream', () => {
  it('every event reaches the app; one record, completed, with usage and the same output hash as the whole answer', async () => {
    fake.enqueue({ usage: { input: 30, output: 12, cacheRead: 0, cacheCreation: 0, reasoning: 0 } });
    const stream = await client().chat.stream({ model: MODEL, messages });
    const texts: string[] = [];
    for await (const event of stream) {
      const content = event.data.choices[0]?.delta?.content;
      if (typeof content === 'string' && content !== '') texts.push(content);
    }
    expect(texts).toEqual(expectedChunks());
    const [span] = await audit.spansWhen(1);
    await settle();
    expect(audit.spans()).toHaveLength(1);
    expect(span.attributes).toMatchObject({
      'gen_ai.request.stream': true,
      'llm_audit.action': 'chat.stream',
      'llm_audit.stream.outcome': 'completed',
      'gen_ai.usage.input_tokens': 30,
      'gen_ai.usage.output_tokens': 12,
      'gen_ai.response.finish_reasons': ['stop'],
      'llm_audit.cost.status': 'priced',
    });
    expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: DEFAULT_TEXT }], finish_reason: 'stop' }]));
  });

  it('break: abandoned; a stream that ends without usage: usage.status=missing, nothing invented', async () => {
    const stream = await client().chat.stream({ model: MODEL, messages });
    for await (const _event of stream) break;
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.stream.outcome']).toBe('abandoned');
    audit.reset();
    fake.enqueue({ omitUsage: true });
    for await (const _event of await client().chat.stream({ model: MODEL, messages }));
    const [bare] = await audit.spansWhen(1);
    expect(bare.attributes).toMatchObject({ 'llm_audit.stream.outcome': 'completed', 'llm_audit.usage.status': 'missing', 'llm_audit.cost.status': 'no_usage' });
    expect(bare.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
  });
});

describe('embeddings.create', () => {
  it('one record with the token count, the dimension and cost; no output hash', async () => {
    const result = await client().embeddings.create({ model: 'mistral-embed', inputs: ['one', 'two'] });
    expect(result.data).toHaveLength(2);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'embeddings',
      'gen_ai.provider.name': 'mistral_ai',
      'gen_ai.usage.input_tokens': 42,
      'gen_ai.embeddings.dimension.count': 1024,
      'llm_audit.cost.status': 'priced',
      'llm_audit.action': 'embeddings.create',
    });
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hashMessages(['one', 'two']));
    expect(span.attributes['llm_audit.output.hash']).toBeUndefined();
  });
});

describe('guardrails, redaction, encrypted content', () => {
  const blockOn = (word: string) => (request: AuditRequest) => {
    if (JSON.stringify(request.params).includes(word)) blockRequest(`found ${word}`, { name: 'test-policy' });
  };

  it.each([
    ['chat.complete, sync hook', (c: any) => c.chat.complete({ model: MODEL, messages: [{ role: 'user', content: 'the secret plan' }] }), blockOn('secret plan')],
    ['chat.stream, async hook', (c: any) => c.chat.stream({ model: MODEL, messages: [{ role: 'user', content: 'the secret plan' }] }), async (r: AuditRequest) => blockOn('secret plan')(r)],
    ['embeddings.create, async hook', (c: any) => c.embeddings.create({ model: 'mistral-embed', inputs: ['the secret plan'] }), async (r: AuditRequest) => blockOn('secret plan')(r)],
  ])('%s: a block stops the request before it leaves', async (_label, call, hook) => {
    current.before = hook;
    const error = await call(client()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    await settle();
    expect(modelRequests()).toHaveLength(0);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('blocked');
  });

  it('redaction: e-mail addresses in the system prompt, a text chunk, tool arguments and a tool result never reach the provider', async () => {
    await client().chat.complete({
      model: MODEL,
      messages: [
        { role: 'system', content: 'Escalate to boss@example.org.' },
        { role: 'user', content: [{ type: 'text', text: 'Mail jane.doe@example.org please' }] },
        { role: 'assistant', content: '', toolCalls: [{ id: 'abc123def', type: 'function', function: { name: 'mail', arguments: '{"to":"jane.doe@example.org"}' } }] },
        { role: 'tool', toolCallId: 'abc123def', name: 'mail', content: 'sent to jane.doe@example.org' },
      ],
    });
    const body = fake.requests[0].rawBody;
    expect(body).not.toContain('@example.org');
    expect(body).toContain('[EMAIL]');
    const [span] = await audit.spansWhen(1);
    const locations = span.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes?.['llm_audit.sanitization.location']);
    expect(locations).toEqual(['messages[0].content', 'messages[1].content[0].text', 'messages[2].toolCalls[0].function.arguments', 'messages[3].content']);
  });

  it('encrypted content and a canary scan: the reviewer opens system, input and output; nothing of them is in the record in plaintext, errors included', async () => {
    const CANARY = 'MISTRAL-CANARY-9a2c';
    fake.enqueue({ text: `${CANARY} answer` }, { status: 400, echoRequest: 'full' });
    const ask = () =>
      client().chat.complete({
        model: MODEL,
        messages: [
          { role: 'system', content: `${CANARY} system` },
          { role: 'user', content: `${CANARY} question` },
        ],
      });
    await withAuditContext({ tenantId: 'acme' }, ask);
    const failure = await ask().catch((e: unknown) => e);
    expect(String((failure as Error).message)).toContain(CANARY);
    const [ok, failed] = await audit.spansWhen(2);
    for (const span of [ok, failed]) {
      const record = recordFromSpan(span)!;
      expect(JSON.stringify([span.attributes, span.events, span.status, record])).not.toContain(CANARY);
    }
    const envelope = String(ok.attributes['llm_audit.content.encrypted']);
    expect(envelope.startsWith(ENVELOPE_PREFIX)).toBe(true);
    const content = reviewer.open(envelope, { requestId: String(ok.attributes['llm_audit.request_id']), tenantId: 'acme' });
    expect(content.system_instructions).toEqual([{ type: 'text', content: `${CANARY} system` }]);
    expect(content.input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} question` }] }]);
    expect(content.output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} answer` }], finish_reason: 'stop' }]);
  });
});
