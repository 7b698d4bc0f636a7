import { beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { canonicalJson } from '../../src/audit/canonical-json';
import { createCostCalculator } from '../../src/audit/cost';
import { createContentHasher } from '../../src/audit/hashing';
import { expectedModel, expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { NEWER_NODE, sdkVersionDir } from '../support/drivers';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';

// What is particular to OpenAI: usage field names, streams that report usage only on request,
// the Responses and Embeddings APIs, and the helpers built on `create`.

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
const messages = [{ role: 'user', content: 'hi' }];

describe('chat.completions', () => {
  it('records cached and reasoning tokens as the conventions name them, and prices them cache-aware', async () => {
    const usage = { input: 1000, output: 300, cacheRead: 600, cacheCreation: 0, reasoning: 120 };
    fake.enqueue({ usage });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [span] = await spansOf(1);
    const a = span.attributes;
    expect(a['gen_ai.usage.input_tokens']).toBe(1000);
    expect(a['gen_ai.usage.cache_read.input_tokens']).toBe(600);
    expect(a['gen_ai.usage.reasoning.output_tokens']).toBe(120);
    expect(a['gen_ai.usage.output_tokens']).toBe(300);
    const expected = createCostCalculator().price('openai', expectedModel('chat', 'gpt-4o-mini'), {
      inputTokens: 1000,
      outputTokens: 300,
      cacheReadTokens: 600,
      reasoningTokens: 120,
    });
    expect(expected.status).toBe('priced');
    expect(a['gen_ai.usage.cost.amount']).toBe((expected as { amountUsd: number }).amountUsd);
    expect(a['gen_ai.usage.cost.source']).toBe('local');
  });

  it('sets only the request parameters the app set', async () => {
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      temperature: 0.5,
      top_p: 0.9,
      frequency_penalty: 0.1,
      presence_penalty: 0.2,
      seed: 7,
      n: 2,
      stop: 'END',
      max_completion_tokens: 99,
      response_format: { type: 'json_object' },
    });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [full, bare] = await spansOf(2);
    expect(full.attributes).toMatchObject({
      'gen_ai.request.temperature': 0.5,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.frequency_penalty': 0.1,
      'gen_ai.request.presence_penalty': 0.2,
      'gen_ai.request.seed': 7,
      'gen_ai.request.choice.count': 2,
      'gen_ai.request.stop_sequences': ['END'],
      'gen_ai.request.max_tokens': 99,
      'gen_ai.output.type': 'json',
    });
    for (const key of Object.keys(bare.attributes)) expect(key.startsWith('gen_ai.request.') ? key : 'ok').toMatch(/^(ok|gen_ai\.request\.model)$/);
  });

  it('a stream without stream_options.include_usage says usage is missing instead of zeros', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of stream);
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.usage.status']).toBe('missing');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
    expect(span.attributes['gen_ai.usage.output_tokens']).toBeUndefined();
    expect(span.attributes['llm_audit.cost.status']).toBe('no_usage');
    expect(span.attributes['gen_ai.usage.cost.amount']).toBeUndefined();
  });

  it('a model nobody can price gets no amount and cost status unpriced', async () => {
    await client.chat.completions.create({ model: 'acme-internal-llm-9', messages });
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.cost.status']).toBe('unpriced');
    expect(span.attributes['gen_ai.usage.cost.amount']).toBeUndefined();
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
  });

  it('records the names of the tools the model called, in plain and streamed answers alike', async () => {
    const toolCalls = [
      { name: 'get_weather', arguments: '{"city":"Paris"}', id: 'call_1' },
      { name: 'get_time', arguments: '{"tz":"CET"}', id: 'call_2' },
    ];
    fake.enqueue({ toolCalls }, { toolCalls });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const _ of stream);
    const [plain, streamed] = await spansOf(2);
    expect(plain.attributes['llm_audit.tool.names']).toEqual(['get_weather', 'get_time']);
    expect(streamed.attributes['llm_audit.tool.names']).toEqual(['get_weather', 'get_time']);
    expect(plain.attributes['gen_ai.response.finish_reasons']).toEqual(['tool_calls']);
    expect(streamed.attributes['llm_audit.output.hash']).toBe(plain.attributes['llm_audit.output.hash']);
  });

  it('agent loop: the input hash of every turn is the HMAC of what was sent, as the history grows and is edited', async () => {
    // Independent of the hasher: node's HMAC over the canonical text of the non-system messages.
    const hmac = (value: unknown) => `hmac-sha256:test:${createHmac('sha256', 'test-hash-key-0123456789').update(canonicalJson(value), 'utf8').digest('hex')}`;
    const history: any[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Weather in Paris?' },
    ];
    const sent: unknown[] = [];
    fake.enqueue({ toolCalls: [{ name: 'get_weather', arguments: '{"city":"Paris"}', id: 'call_1' }] });
    for (let turn = 0; turn < 5; turn++) {
      const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history });
      sent.push(structuredClone(history.filter((m) => m.role !== 'system')));
      const message = completion.choices[0].message;
      history.push(message); // the SDK's own object goes back into the history, as apps do
      if (message.tool_calls) history.push({ role: 'tool', tool_call_id: message.tool_calls[0].id, content: '{"celsius":21}' });
      else history.push({ role: 'user', content: `And tomorrow (${turn})?` });
      if (turn === 2) history[1].content = 'Weather in Lyon?'; // the app edits an earlier turn
      if (turn === 3) message.content = `${message.content} (edited)`; // and the answer it kept
    }
    const spans = await spansOf(5);
    expect(new Set(spans.map((span) => span.attributes['llm_audit.input.hash'])).size).toBe(5);
    spans.forEach((span, i) => expect(span.attributes['llm_audit.input.hash'], `turn ${i}`).toBe(hmac(sent[i])));
  });

  it('the output hash covers exactly the conventions-shaped output message', async () => {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [span] = await spansOf(1);
    const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
    const output = [{ role: 'assistant', parts: [{ type: 'text', content: expectedText() }], finish_reason: 'stop' }];
    expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash(output));
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash(messages));
    expect(span.attributes['llm_audit.system_prompt.hash']).toBeUndefined();
  });
});

// The helpers and embeddings with each major that has them all (openai 7 on Node >= 22 only: see drivers.ts).
const majors = [{ label: 'openai 6', dir: repoRoot }, ...(NEWER_NODE ? [{ label: 'openai 7', dir: sdkVersionDir('openai-7') }] : [])];

describe.each(majors)('$label', ({ dir }) => {
  let client: any;
  beforeAll(() => {
    client = new (audit.load('openai', dir).OpenAI)({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
  });

  it('chat.completions.parse(): one span named by the helper; parsed output unchanged', async () => {
    fake.enqueue({ text: '{"answer":42}' });
    const result = await client.chat.completions.parse({ model: 'gpt-4o-mini', messages, response_format: { type: 'json_object' } });
    expect(result.choices[0].message.content).toBe('{"answer":42}');
    const spans = await spansOf(1);
    expect(spans).toHaveLength(1);
    expect(spans[0].attributes['llm_audit.action']).toBe('chat.completions.parse');
  });

  it('chat.completions.stream(): final completion and usage through the helper', async () => {
    const runner = client.chat.completions.stream({ model: 'gpt-4o-mini', messages, stream_options: { include_usage: true } });
    const completion = await runner.finalChatCompletion();
    expect(completion.choices[0].message.content).toBe(expectedText());
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.action']).toBe('chat.completions.stream');
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    expect(span.attributes['llm_audit.stream.outcome']).toBe('completed');
  });

  it('runTools(): one span per model call the runner makes, each named runTools', async () => {
    fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: '{"q":"x"}' }] }, {});
    const runner = client.chat.completions.runTools({
      model: 'gpt-4o-mini',
      messages,
      tools: [
        {
          type: 'function',
          function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } }, function: () => 'found', parse: JSON.parse },
        },
      ],
    });
    expect(await runner.finalContent()).toBe(expectedText());
    const spans = await spansOf(2);
    expect(spans).toHaveLength(2);
    expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['chat.completions.runTools', 'chat.completions.runTools']);
    expect(spans[0].attributes['llm_audit.tool.names']).toEqual(['lookup']);
  });

  it('responses.stream(): the final response and its usage', async () => {
    const stream = client.responses.stream({ model: 'gpt-4.1-mini', input: 'hi' });
    const response = await stream.finalResponse();
    expect(response.output_text).toBe(expectedText());
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.action']).toBe('responses.stream');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
    expect(span.attributes['gen_ai.response.finish_reasons']).toEqual(['completed']);
  });

  it('responses.parse(): one span named by the helper; parsed output unchanged', async () => {
    fake.enqueue({ text: '{"answer":42}' });
    const response = await client.responses.parse({
      model: 'gpt-4.1-mini',
      input: 'hi',
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { answer: { type: 'number' } } } } },
    });
    expect(response.output_parsed).toEqual({ answer: 42 });
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.action']).toBe('responses.parse');
    expect(span.attributes['gen_ai.output.type']).toBe('json');
  });

  it('embeddings.create: one embeddings span with input tokens and dimension count; vectors unchanged', async () => {
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0].embedding).toHaveLength(1536);
    const [span] = await spansOf(1);
    expect(span.name).toBe('embeddings text-embedding-3-small');
    expect(span.attributes['gen_ai.operation.name']).toBe('embeddings');
    expect(span.attributes['gen_ai.embeddings.dimension.count']).toBe(1536);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:test:/);
    expect(span.attributes['llm_audit.output.hash']).toBeUndefined();
  });
});
