import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_TEXT,
  THINKING_TEXT,
  anthropicWireUsage,
  defaultUsage,
  embeddingDimensions,
  expectedChunks,
  expectedModel,
  expectedText,
  expectedUsage,
  fakeEmbedding,
  splitText,
  startFakeProvider,
  type FakeProvider,
  type Scenario,
} from './support/fake-provider';
import { useFakeProvider } from './support/harness';

const require = createRequire(import.meta.url);
const OpenAIMod = require('openai') as typeof import('openai');
const AnthropicMod = require('@anthropic-ai/sdk') as typeof import('@anthropic-ai/sdk');

const fakeProvider = useFakeProvider();
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

function openai(options: { maxRetries?: number } = {}) {
  return new OpenAIMod.OpenAI({ baseURL: fake.openaiBaseURL, apiKey: 'test', maxRetries: 0, ...options });
}

function anthropic(options: { maxRetries?: number } = {}) {
  return new AnthropicMod.Anthropic({ baseURL: fake.anthropicBaseURL, apiKey: 'test', maxRetries: 0, ...options });
}

/** The fields the SDKs' errors carry (OpenAI APIError / Anthropic APIError / plain Error). */
interface CaughtError extends Error {
  status?: number;
  type?: string | null;
  code?: string | null;
  requestID?: string | null;
  /** The parsed error body (JSON). */
  error?: any;
}

/** Runs `fn` and returns what it threw; fails the test when it does not throw. */
async function thrown(fn: () => Promise<unknown>): Promise<CaughtError> {
  try {
    await fn();
  } catch (err) {
    return err as CaughtError;
  }
  throw new Error('expected the call to throw');
}

const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Say hello' }] };
const RESP = { model: 'gpt-4o-mini', input: 'Say hello' };
const MSG = { model: 'claude-haiku-4-5', max_tokens: 256, messages: [{ role: 'user' as const, content: 'Say hello' }] };
const WEATHER = { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' };
const TIME = { name: 'get_time', arguments: '{"tz":"Europe/Paris"}', id: 'call_fixed_id_1' };

// -------------------------------------------------------------------------------------------------

describe('helpers', () => {
  it('splits text into at most N non-empty pieces that join back', () => {
    expect(splitText('abcdefghij', 3)).toEqual(['abc', 'defg', 'hij']);
    expect(splitText('ab', 5)).toEqual(['a', 'b']);
    expect(splitText('', 5)).toEqual([]);
    expect(expectedChunks().join('')).toBe(DEFAULT_TEXT);
    expect(expectedChunks()).toHaveLength(5);
  });

  it('resolves text, usage and model expectations', () => {
    expect(expectedText()).toBe(DEFAULT_TEXT);
    expect(expectedText({ toolCalls: [WEATHER] })).toBe('');
    expect(expectedText({ toolCalls: [WEATHER], text: 'Checking.' })).toBe('Checking.');
    expect(expectedUsage()).toEqual({ ...defaultUsage, total: defaultUsage.input + defaultUsage.output });
    expect(Object.values(defaultUsage).every((v) => v > 0)).toBe(true);
    expect(anthropicWireUsage({ usage: { input: 100, cacheRead: 30, cacheCreation: 20 } }).input_tokens).toBe(50);
    expect(expectedModel('chat', 'gpt-4o-mini')).toBe('gpt-4o-mini-2024-07-18');
    expect(expectedModel('responses', 'gpt-4o-2024-05-13')).toBe('gpt-4o-2024-05-13');
    expect(expectedModel('messages', 'claude-haiku-4-5')).toBe('claude-haiku-4-5');
    expect(expectedModel('chat', 'gpt-4o', { model: 'custom' })).toBe('custom');
  });

  it('rejects inconsistent scenarios at enqueue time', () => {
    expect(() => fake.enqueue({ usage: { input: 5 } })).toThrow(/TOTAL input/);
    expect(() => fake.enqueue({ usage: { output: 1 } })).toThrow(/reasoning/);
    expect(() => fake.enqueue({ chunks: 0 })).toThrow(/chunks/);
    expect(() => fake.enqueue({ failAfterChunks: 1, dropAfterChunks: 1 })).toThrow(/at most one/);
    expect(() => fake.enqueue({ status: 42 })).toThrow(/status/);
  });
});

// -------------------------------------------------------------------------------------------------

describe('OpenAI chat completions', () => {
  it('answers a non-streaming request with a full ChatCompletion', async () => {
    const res = await openai().chat.completions.create(CHAT);
    const u = expectedUsage();
    expect(res.object).toBe('chat.completion');
    expect(res.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(res.model).toBe('gpt-4o-mini-2024-07-18');
    expect(res.system_fingerprint).toMatch(/^fp_/);
    expect(res.service_tier).toBe('default');
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.message).toMatchObject({ role: 'assistant', content: DEFAULT_TEXT, refusal: null });
    expect(res.choices[0]!.finish_reason).toBe('stop');
    expect(res.usage).toEqual({
      prompt_tokens: u.input,
      completion_tokens: u.output,
      total_tokens: u.total,
      prompt_tokens_details: { cached_tokens: u.cacheRead, audio_tokens: 0, cache_write_tokens: u.cacheCreation },
      completion_tokens_details: {
        reasoning_tokens: u.reasoning,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    });
    expect(res._request_id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/chat/completions', body: CHAT });
    expect(fake.requests[0]!.headers['authorization']).toBe('Bearer test');
    expect(JSON.parse(fake.requests[0]!.rawBody)).toEqual(CHAT);
  });

  it('honours the scenario text, usage, model, id and n', async () => {
    const scenario: Scenario = {
      text: 'Custom answer',
      usage: { input: 10, output: 4, cacheRead: 0, cacheCreation: 0, reasoning: 0 },
      model: 'gpt-x-snapshot',
      responseId: 'chatcmpl-fixed',
    };
    fake.enqueue(scenario);
    const res = await openai().chat.completions.create({ ...CHAT, n: 3 });
    expect(res.id).toBe('chatcmpl-fixed');
    expect(res.model).toBe('gpt-x-snapshot');
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(res.choices.every((c) => c.message.content === 'Custom answer')).toBe(true);
    expect(res.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 });
    expect(res.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
  });

  it('returns tool calls with finish_reason tool_calls', async () => {
    fake.enqueue({ toolCalls: [WEATHER, TIME] });
    const res = await openai().chat.completions.create(CHAT);
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!.map((c) => (c.type === 'function' ? [c.type, c.function.name, c.function.arguments] : []));
    expect(calls).toEqual([
      ['function', 'get_weather', WEATHER.arguments],
      ['function', 'get_time', TIME.arguments],
    ]);
    expect(choice.message.tool_calls![0]!.id).toMatch(/^call_/);
    expect(choice.message.tool_calls![1]!.id).toBe('call_fixed_id_1');
  });

  it('omits usage and truncates with finish_reason length when asked', async () => {
    fake.enqueue({ omitUsage: true }, {});
    const a = await openai().chat.completions.create(CHAT);
    expect(a.usage).toBeUndefined();
    expect('usage' in a).toBe(false);
    const b = await openai().chat.completions.create({ ...CHAT, max_completion_tokens: defaultUsage.output });
    expect(b.choices[0]!.finish_reason).toBe('length');
  });

  it('streams chunks without usage when stream_options.include_usage is not set', async () => {
    fake.enqueue({ text: 'The quick brown fox jumps', chunks: 4 });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0]!.delta).toMatchObject({ role: 'assistant', content: '' });
    const deltas = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).filter((s) => s !== '');
    expect(deltas).toEqual(expectedChunks({ text: 'The quick brown fox jumps', chunks: 4 }));
    expect(deltas.join('')).toBe('The quick brown fox jumps');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.some((c) => c.usage != null)).toBe(false);
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    expect(fake.requests[0]!.body.stream).toBe(true);
  });

  it('streams a final usage chunk with empty choices when include_usage is true', async () => {
    const scenario: Scenario = { usage: { input: 120, output: 30, cacheRead: 100, cacheCreation: 0, reasoning: 12 } };
    fake.enqueue(scenario);
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: 120,
      completion_tokens: 30,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 100 },
      completion_tokens_details: { reasoning_tokens: 12 },
    });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(DEFAULT_TEXT);
  });

  it('sends no usage chunk when omitUsage is set even with include_usage', async () => {
    fake.enqueue({ omitUsage: true });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.some((c) => c.usage != null)).toBe(false);
    expect(chunks.some((c) => c.choices.length === 0)).toBe(false);
  });

  it('streams tool calls as indexed deltas', async () => {
    fake.enqueue({ toolCalls: [WEATHER, TIME], text: 'Let me check.' });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true });
    const calls: { id?: string; name: string; args: string }[] = [];
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
      for (const tc of choice.delta.tool_calls ?? []) {
        const slot = (calls[tc.index] ??= { name: '', args: '' });
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.name = tc.function.name;
        slot.args += tc.function?.arguments ?? '';
      }
    }
    expect(text).toBe('Let me check.');
    expect(finish).toBe('tool_calls');
    expect(calls.map((c) => [c.name, c.args])).toEqual([
      ['get_weather', WEATHER.arguments],
      ['get_time', TIME.arguments],
    ]);
    expect(calls[1]!.id).toBe('call_fixed_id_1');
  });

  it('streams n > 1 choices', async () => {
    const stream = await openai().chat.completions.create({ ...CHAT, n: 2, stream: true });
    const texts = ['', ''];
    for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.delta.content ?? '';
    expect(texts).toEqual([DEFAULT_TEXT, DEFAULT_TEXT]);
  });

  it('throws the in-stream error from the for await after N deltas', async () => {
    fake.enqueue({ failAfterChunks: 2, errorMessage: 'boom mid-stream' });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true });
    const seen: string[] = [];
    const err = await thrown(async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    });
    expect(err).toBeInstanceOf(OpenAIMod.APIError);
    expect(err.message).toBe('boom mid-stream');
    expect(err.status).toBeUndefined();
    expect(err.type).toBe('server_error');
    expect(seen.filter((s) => s !== '')).toEqual(expectedChunks().slice(0, 2));
  });

  it('throws when the connection drops mid-stream', async () => {
    fake.enqueue({ dropAfterChunks: 3 });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true });
    const seen: string[] = [];
    const err = await thrown(async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    });
    // undici's error for a body cut short; the SDK passes it through unwrapped (not an APIError).
    expect(err.name).toBe('TypeError');
    expect(err.message).toBe('terminated');
    expect(err).not.toBeInstanceOf(OpenAIMod.APIError);
    expect(seen.filter((s) => s !== '')).toEqual(expectedChunks().slice(0, 3));
  });

  it('chat.completions.stream() rejects with an OpenAIError when the connection drops', async () => {
    fake.enqueue({ dropAfterChunks: 0 });
    const err = await thrown(() => openai().chat.completions.stream(CHAT).finalChatCompletion());
    expect(err).toBeInstanceOf(OpenAIMod.OpenAIError);
    expect(err.message).toBe('terminated');
  });

  it('chat.completions.stream() reaches the final completion with usage', async () => {
    fake.enqueue({ toolCalls: [WEATHER], text: 'Sure.' });
    const runner = openai().chat.completions.stream({ ...CHAT, stream_options: { include_usage: true } });
    const deltas: string[] = [];
    runner.on('content', (delta) => deltas.push(delta));
    const final = await runner.finalChatCompletion();
    expect(deltas.join('')).toBe('Sure.');
    expect(final.choices[0]!.message.content).toBe('Sure.');
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    const call = final.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && call.function.arguments).toBe(WEATHER.arguments);
    expect(final.usage).toMatchObject({ prompt_tokens: defaultUsage.input, completion_tokens: defaultUsage.output });
    expect(fake.requests[0]!.headers['x-stainless-helper-method']).toBe('stream');
    expect(fake.requests[0]!.body.stream).toBe(true);
  });

  it.each([
    [400, 'BadRequestError', 'invalid_request_error'],
    [401, 'AuthenticationError', 'invalid_request_error'],
    [404, 'NotFoundError', 'invalid_request_error'],
    [429, 'RateLimitError', 'requests'],
    [500, 'InternalServerError', 'server_error'],
    [503, 'InternalServerError', 'server_error'],
  ] as const)('status %i surfaces as %s', async (status, cls, type) => {
    fake.enqueue({ status, errorMessage: `failed with ${status}` });
    const err = await thrown(() => openai().chat.completions.create(CHAT));
    expect(err).toBeInstanceOf(OpenAIMod[cls]);
    expect(err.status).toBe(status);
    expect(err.type).toBe(type);
    expect(err.error).toMatchObject({ message: `failed with ${status}`, type, param: null });
    expect(err.requestID).toMatch(/^req_/);
    expect(fake.requests).toHaveLength(1);
  });

  it('errors on streaming requests before any SSE and honours errorType', async () => {
    fake.enqueue({ status: 429, errorType: 'insufficient_quota', errorMessage: 'quota' });
    const err = await thrown(() => openai().chat.completions.create({ ...CHAT, stream: true }));
    expect(err).toBeInstanceOf(OpenAIMod.RateLimitError);
    expect(err.type).toBe('insufficient_quota');
    expect(err.code).toBe('rate_limit_exceeded');
  });

  it('lets the SDK retry retryable errors at once (each retry takes the next scenario)', async () => {
    fake.enqueue({ status: 503 }, { status: 429 });
    const started = Date.now();
    const res = await openai({ maxRetries: 2 }).chat.completions.create(CHAT);
    expect(Date.now() - started).toBeLessThan(400);
    expect(res.choices[0]!.message.content).toBe(DEFAULT_TEXT);
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[1]!.headers['x-stainless-retry-count']).toBe('1');
  });
});

// -------------------------------------------------------------------------------------------------

describe('OpenAI responses', () => {
  it('answers a non-streaming request with a completed Response', async () => {
    const res = await openai().responses.create({ ...RESP, instructions: 'Be brief', temperature: 0.2 });
    const u = expectedUsage();
    expect(res.object).toBe('response');
    expect(res.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(res.status).toBe('completed');
    expect(res.model).toBe('gpt-4o-mini-2024-07-18');
    expect(res.output_text).toBe(DEFAULT_TEXT);
    expect(res.instructions).toBe('Be brief');
    expect(res.temperature).toBe(0.2);
    expect(res.error).toBeNull();
    expect(res.output).toHaveLength(1);
    const item = res.output[0]!;
    expect(item.type).toBe('message');
    if (item.type !== 'message') throw new Error('unreachable');
    expect(item.id).toMatch(/^msg_/);
    expect(item.role).toBe('assistant');
    expect(item.content).toEqual([{ type: 'output_text', annotations: [], logprobs: [], text: DEFAULT_TEXT }]);
    expect(res.usage).toEqual({
      input_tokens: u.input,
      input_tokens_details: { cached_tokens: u.cacheRead, cache_write_tokens: u.cacheCreation },
      output_tokens: u.output,
      output_tokens_details: { reasoning_tokens: u.reasoning },
      total_tokens: u.total,
    });
    expect(fake.requests[0]).toMatchObject({ path: '/v1/responses', body: { ...RESP, instructions: 'Be brief' } });
  });

  it('returns function_call items for tool calls and no message when there is no text', async () => {
    fake.enqueue({ toolCalls: [WEATHER, TIME], responseId: 'resp_fixed' });
    const res = await openai().responses.create(RESP);
    expect(res.id).toBe('resp_fixed');
    expect(res.output_text).toBe('');
    expect(res.output.map((o) => o.type)).toEqual(['function_call', 'function_call']);
    const calls = res.output.flatMap((o) => (o.type === 'function_call' ? [[o.name, o.arguments, o.status]] : []));
    expect(calls).toEqual([
      ['get_weather', WEATHER.arguments, 'completed'],
      ['get_time', TIME.arguments, 'completed'],
    ]);
    const second = res.output[1]!;
    expect(second.type === 'function_call' && second.call_id).toBe('call_fixed_id_1');
  });

  it('omits usage and reports incomplete on max_output_tokens', async () => {
    fake.enqueue({ omitUsage: true }, {});
    const a = await openai().responses.create(RESP);
    expect('usage' in a).toBe(false);
    const b = await openai().responses.create({ ...RESP, max_output_tokens: 16 });
    expect(b.status).toBe('incomplete');
    expect(b.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });

  it('streams the real event sequence with sequence numbers and usage on response.completed', async () => {
    fake.enqueue({ chunks: 3, usage: { input: 9, output: 6, cacheRead: 1, cacheCreation: 0, reasoning: 2 } });
    const stream = await openai().responses.create({ ...RESP, stream: true });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events.map((e) => (e.type === 'response.output_text.delta' ? e.delta : '')).join('');
    expect(text).toBe(DEFAULT_TEXT);
    const created = events[0]!;
    expect(created.type === 'response.created' && created.response.status).toBe('in_progress');
    const done = events.at(-1)!;
    if (done.type !== 'response.completed') throw new Error('expected response.completed');
    expect(done.response.status).toBe('completed');
    expect(done.response.usage).toMatchObject({ input_tokens: 9, output_tokens: 6, total_tokens: 15 });
    expect(done.response.usage!.input_tokens_details.cached_tokens).toBe(1);
    expect(done.response.usage!.output_tokens_details.reasoning_tokens).toBe(2);
    expect(fake.requests[0]!.body.stream).toBe(true);
  });

  it('throws the in-stream error event from the for await', async () => {
    fake.enqueue({ failAfterChunks: 1, errorMessage: 'responses broke', errorType: 'server_error' });
    const stream = await openai().responses.create({ ...RESP, stream: true });
    const types: string[] = [];
    const err = await thrown(async () => {
      for await (const event of stream) types.push(event.type);
    });
    expect(err).toBeInstanceOf(OpenAIMod.APIError);
    expect(err.message).toBe('responses broke');
    expect(err.code).toBe('server_error');
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(1);
    expect(types).not.toContain('response.completed');
  });

  it('throws when the connection drops mid-stream', async () => {
    fake.enqueue({ dropAfterChunks: 2 });
    const stream = await openai().responses.create({ ...RESP, stream: true });
    let deltas = 0;
    const err = await thrown(async () => {
      for await (const event of stream) if (event.type === 'response.output_text.delta') deltas++;
    });
    expect(err.name).toBe('TypeError');
    expect(err.message).toBe('terminated');
    expect(deltas).toBe(2);
  });

  it('responses.stream() reaches the final response with usage and tool calls', async () => {
    fake.enqueue({ text: 'Calling a tool.', toolCalls: [WEATHER] });
    const stream = openai().responses.stream(RESP);
    const deltas: string[] = [];
    const argDeltas: string[] = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(deltas.join('')).toBe('Calling a tool.');
    expect(argDeltas.join('')).toBe(WEATHER.arguments);
    expect(final.output_text).toBe('Calling a tool.');
    expect(final.output.map((o) => o.type)).toEqual(['message', 'function_call']);
    const call = final.output[1]!;
    expect(call.type === 'function_call' && call.arguments).toBe(WEATHER.arguments);
    expect(final.usage).toMatchObject({ input_tokens: defaultUsage.input, output_tokens: defaultUsage.output });
    expect(fake.requests[0]!.headers['x-stainless-helper-method']).toBe('stream');
  });

  it('responses.stream() rejects on an in-stream error', async () => {
    fake.enqueue({ failAfterChunks: 3, errorType: 'rate_limit_exceeded', errorMessage: 'slow down' });
    const stream = openai().responses.stream(RESP);
    let text = '';
    stream.on('response.output_text.delta', (e) => (text += e.delta));
    const err = await thrown(() => stream.finalResponse());
    expect(err).toBeInstanceOf(OpenAIMod.APIError);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.message).toBe('slow down');
    expect(text).toBe(expectedChunks().slice(0, 3).join(''));
  });

  it('streams response.incomplete when the output limit is hit', async () => {
    const stream = await openai().responses.create({ ...RESP, stream: true, max_output_tokens: 16 });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe('response.incomplete');
  });

  it('surfaces HTTP errors as APIError subclasses', async () => {
    fake.enqueue({ status: 401, errorMessage: 'bad key' });
    const err = await thrown(() => openai().responses.create(RESP));
    expect(err).toBeInstanceOf(OpenAIMod.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('invalid_api_key');
    expect(err.message).toContain('bad key');
  });
});

// -------------------------------------------------------------------------------------------------

describe('OpenAI embeddings', () => {
  it('answers the SDK default (base64) request with decodable float32 vectors', async () => {
    const res = await openai().embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });
    expect(fake.requests[0]!.body).toEqual({ model: 'text-embedding-3-small', input: 'hello world', encoding_format: 'base64' });
    expect(res.object).toBe('list');
    expect(res.model).toBe('text-embedding-3-small');
    expect(res.data).toHaveLength(1);
    expect(res.data[0]!.object).toBe('embedding');
    expect(res.data[0]!.index).toBe(0);
    expect(res.data[0]!.embedding).toHaveLength(embeddingDimensions('text-embedding-3-small'));
    expect(res.data[0]!.embedding).toEqual(fakeEmbedding('hello world', 1536));
    expect(res.usage).toEqual({ prompt_tokens: defaultUsage.input, total_tokens: defaultUsage.input });
  });

  it('honours float encoding, array input and dimensions', async () => {
    fake.enqueue({ usage: { input: 7, cacheRead: 0, cacheCreation: 0 } });
    const res = await openai().embeddings.create({
      model: 'text-embedding-3-large',
      input: ['first', 'second'],
      encoding_format: 'float',
      dimensions: 8,
    });
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data[0]!.embedding).toEqual(fakeEmbedding('first', 8));
    expect(res.data[1]!.embedding).toEqual(fakeEmbedding('second', 8));
    expect(res.data[0]!.embedding).not.toEqual(res.data[1]!.embedding);
    expect(res.usage).toEqual({ prompt_tokens: 7, total_tokens: 7 });
    const raw = JSON.parse(
      await (
        await fetch(`${fake.openaiBaseURL}/embeddings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'text-embedding-3-large', input: 'x', encoding_format: 'base64', dimensions: 4 }),
        })
      ).text(),
    );
    const buf = Buffer.from(raw.data[0].embedding, 'base64');
    expect(Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4))).toEqual(fakeEmbedding('x', 4));
  });

  it('surfaces errors', async () => {
    fake.enqueue({ status: 400, errorMessage: 'bad input' });
    const err = await thrown(() => openai().embeddings.create({ model: 'text-embedding-3-small', input: 'x' }));
    expect(err).toBeInstanceOf(OpenAIMod.BadRequestError);
    expect(err.status).toBe(400);
  });
});

// -------------------------------------------------------------------------------------------------

describe('Anthropic messages', () => {
  it('answers a non-streaming request with a full Message (input excludes cached tokens)', async () => {
    const res = await anthropic().messages.create(MSG);
    const wire = anthropicWireUsage();
    expect(res.type).toBe('message');
    expect(res.role).toBe('assistant');
    expect(res.id).toMatch(/^msg_01[A-Za-z0-9]{22}$/);
    expect(res.model).toBe('claude-haiku-4-5');
    expect(res.stop_reason).toBe('end_turn');
    expect(res.stop_sequence).toBeNull();
    expect(res.content).toEqual([{ type: 'text', text: DEFAULT_TEXT }]);
    expect(res.usage).toMatchObject({
      input_tokens: defaultUsage.input - defaultUsage.cacheRead - defaultUsage.cacheCreation,
      output_tokens: defaultUsage.output,
      cache_read_input_tokens: defaultUsage.cacheRead,
      cache_creation_input_tokens: defaultUsage.cacheCreation,
      service_tier: 'standard',
    });
    expect(res.usage.input_tokens).toBe(wire.input_tokens);
    expect(res._request_id).toMatch(/^req_011C/);
    expect(fake.requests[0]).toMatchObject({ path: '/v1/messages', body: MSG });
    // @anthropic-ai/sdk 1.x sends the API key as a bearer token, not as x-api-key.
    expect(fake.requests[0]!.headers['authorization']).toBe('Bearer test');
    expect(fake.requests[0]!.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('returns tool_use blocks with parsed input', async () => {
    fake.enqueue({ toolCalls: [WEATHER, { ...TIME, id: 'toolu_fixed' }], text: 'Checking.' });
    const res = await anthropic().messages.create(MSG);
    expect(res.stop_reason).toBe('tool_use');
    expect(res.content.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use']);
    const tools = res.content.flatMap((b) => (b.type === 'tool_use' ? [b] : []));
    expect(tools[0]!.name).toBe('get_weather');
    expect(tools[0]!.input).toEqual({ city: 'Paris', unit: 'celsius' });
    expect(tools[0]!.id).toMatch(/^toolu_01/);
    expect(tools[1]!.id).toBe('toolu_fixed');
  });

  it('adds a signed thinking block first when thinking is enabled, and stops on max_tokens', async () => {
    const res = await anthropic().messages.create({ ...MSG, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(res.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    const block = res.content[0]!;
    expect(block.type === 'thinking' && block.thinking).toBe(THINKING_TEXT);
    expect(block.type === 'thinking' && block.signature.length).toBeGreaterThan(20);
    expect(res.usage.output_tokens_details).toEqual({ thinking_tokens: defaultUsage.reasoning });
    const short = await anthropic().messages.create({ ...MSG, max_tokens: 10 });
    expect(short.stop_reason).toBe('max_tokens');
  });

  it('omits usage when asked (non-stream)', async () => {
    fake.enqueue({ omitUsage: true });
    const res = await anthropic().messages.create(MSG);
    expect('usage' in res).toBe(false);
  });

  it('streams the real event sequence with usage in message_start and message_delta', async () => {
    fake.enqueue({ chunks: 3, usage: { input: 50, output: 12, cacheRead: 20, cacheCreation: 5, reasoning: 0 } });
    const stream = await anthropic().messages.create({ ...MSG, stream: true });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const start = events[0]!;
    if (start.type !== 'message_start') throw new Error('expected message_start');
    expect(start.message.usage).toMatchObject({ input_tokens: 25, cache_read_input_tokens: 20, cache_creation_input_tokens: 5, output_tokens: 1 });
    expect(start.message.content).toEqual([]);
    expect(start.message.stop_reason).toBeNull();
    const text = events.map((e) => (e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? e.delta.text : '')).join('');
    expect(text).toBe(DEFAULT_TEXT);
    const delta = events[6]!;
    if (delta.type !== 'message_delta') throw new Error('expected message_delta');
    expect(delta.delta.stop_reason).toBe('end_turn');
    expect(delta.usage.output_tokens).toBe(12);
  });

  it('sends ping events on the wire (the SDK skips them)', async () => {
    const res = await fetch(`${fake.anthropicBaseURL}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ ...MSG, stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const body = await res.text();
    const names = [...body.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.at(-1)).toBe('message_stop');
  });

  it('streams thinking, text and tool_use blocks with their deltas', async () => {
    fake.enqueue({ text: 'Let me look.', toolCalls: [WEATHER] });
    const stream = await anthropic().messages.create({ ...MSG, max_tokens: 4096, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 } });
    let thinking = '';
    let signature = '';
    let text = '';
    let json = '';
    const starts: string[] = [];
    let stopReason: string | null = null;
    for await (const e of stream) {
      if (e.type === 'content_block_start') starts.push(e.content_block.type);
      if (e.type === 'content_block_delta') {
        if (e.delta.type === 'thinking_delta') thinking += e.delta.thinking;
        if (e.delta.type === 'signature_delta') signature = e.delta.signature;
        if (e.delta.type === 'text_delta') text += e.delta.text;
        if (e.delta.type === 'input_json_delta') json += e.delta.partial_json;
      }
      if (e.type === 'message_delta') stopReason = e.delta.stop_reason;
    }
    expect(starts).toEqual(['thinking', 'text', 'tool_use']);
    expect(thinking).toBe(THINKING_TEXT);
    expect(signature.length).toBeGreaterThan(20);
    expect(text).toBe('Let me look.');
    expect(JSON.parse(json)).toEqual({ city: 'Paris', unit: 'celsius' });
    expect(stopReason).toBe('tool_use');
  });

  it('messages.stream() reaches the final message with usage', async () => {
    fake.enqueue({ toolCalls: [WEATHER], text: 'One moment.' });
    const stream = anthropic().messages.stream({ ...MSG, max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 1024 } });
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(deltas.join('')).toBe('One moment.');
    expect(final.content.map((b) => b.type)).toEqual(['thinking', 'text', 'tool_use']);
    const tool = final.content[2]!;
    expect(tool.type === 'tool_use' && tool.input).toEqual({ city: 'Paris', unit: 'celsius' });
    expect(final.stop_reason).toBe('tool_use');
    expect(final.usage).toMatchObject({
      input_tokens: anthropicWireUsage().input_tokens,
      output_tokens: defaultUsage.output,
      cache_read_input_tokens: defaultUsage.cacheRead,
      cache_creation_input_tokens: defaultUsage.cacheCreation,
    });
    expect(final.usage.output_tokens_details).toEqual({ thinking_tokens: defaultUsage.reasoning });
    expect(fake.requests[0]!.body.stream).toBe(true);
    expect(fake.requests[0]!.headers['x-stainless-helper-method']).toBe('stream');
  });

  it('messages.stream().finalText() returns the text', async () => {
    fake.enqueue({ text: 'Plain text answer', chunks: 7 });
    expect(await anthropic().messages.stream(MSG).finalText()).toBe('Plain text answer');
  });

  it('throws the in-stream error event from the for await', async () => {
    fake.enqueue({ failAfterChunks: 2, errorMessage: 'Overloaded' });
    const stream = await anthropic().messages.create({ ...MSG, stream: true });
    let text = '';
    const err = await thrown(async () => {
      for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    });
    expect(err).toBeInstanceOf(AnthropicMod.APIError);
    expect(err.type).toBe('overloaded_error');
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('Overloaded');
    expect(text).toBe(expectedChunks().slice(0, 2).join(''));
  });

  it('messages.stream() rejects on an in-stream error', async () => {
    fake.enqueue({ failAfterChunks: 0, errorType: 'api_error' });
    const err = await thrown(() => anthropic().messages.stream(MSG).finalMessage());
    expect(err).toBeInstanceOf(AnthropicMod.APIError);
    expect(err.type).toBe('api_error');
  });

  it('throws when the connection drops mid-stream', async () => {
    fake.enqueue({ dropAfterChunks: 1 });
    const stream = await anthropic().messages.create({ ...MSG, stream: true });
    let text = '';
    const err = await thrown(async () => {
      for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    });
    expect(err.name).toBe('TypeError');
    expect(err.message).toBe('terminated');
    expect(text).toBe(expectedChunks()[0]);
  });

  it('messages.stream() rejects with an AnthropicError when the connection drops', async () => {
    fake.enqueue({ dropAfterChunks: 2 });
    const err = await thrown(() => anthropic().messages.stream(MSG).finalMessage());
    expect(err).toBeInstanceOf(AnthropicMod.AnthropicError);
    expect(err).not.toBeInstanceOf(AnthropicMod.APIError);
    expect(err.message).toBe('terminated');
  });

  it('streams no usage at all when omitUsage is set (raw events)', async () => {
    fake.enqueue({ omitUsage: true });
    const stream = await anthropic().messages.create({ ...MSG, stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    expect(events.length).toBeGreaterThan(4);
    expect(events.some((e) => (e.type === 'message_start' ? 'usage' in e.message : 'usage' in e))).toBe(false);
  });

  it.each([
    [400, 'BadRequestError', 'invalid_request_error'],
    [401, 'AuthenticationError', 'authentication_error'],
    [429, 'RateLimitError', 'rate_limit_error'],
    [500, 'InternalServerError', 'api_error'],
    [529, 'OverloadedError', 'overloaded_error'],
  ] as const)('status %i surfaces as %s', async (status, cls, type) => {
    fake.enqueue({ status, errorMessage: `anthropic ${status}` });
    const err = await thrown(() => anthropic().messages.create(MSG));
    expect(err).toBeInstanceOf(AnthropicMod[cls]);
    expect(err.status).toBe(status);
    expect(err.type).toBe(type);
    expect(err.error).toMatchObject({ type: 'error', error: { type, message: `anthropic ${status}` } });
    expect(err.requestID).toMatch(/^req_/);
    expect(err.error.request_id).toBe(err.requestID);
  });

  it('errors on streaming requests before any SSE', async () => {
    fake.enqueue({ status: 529 });
    const err = await thrown(() => anthropic().messages.stream(MSG).finalMessage());
    expect(err).toBeInstanceOf(AnthropicMod.OverloadedError);
  });
});

// -------------------------------------------------------------------------------------------------

describe('server behaviour', () => {
  it('answers unknown paths with a provider-style 404', async () => {
    const err = await thrown(() => openai().models.list());
    expect(err).toBeInstanceOf(OpenAIMod.NotFoundError);
    expect(err.message).toContain('Invalid URL (GET /v1/models)');
    const res = await fetch(`${fake.url}/v1/nope`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body: '{}' });
    expect(res.status).toBe(404);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/models', '/v1/nope']);
  });

  it('answers a body that is not JSON with a 400', async () => {
    const res = await fetch(`${fake.openaiBaseURL}/chat/completions`, { method: 'POST', body: 'not json' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', param: null } });
    expect(fake.requests[0]).toMatchObject({ rawBody: 'not json', body: undefined });
  });

  it('consumes scenarios FIFO and falls back to defaults; reset() clears queue and requests', async () => {
    fake.enqueue({ text: 'one' }, { text: 'two' });
    const client = openai();
    const texts = [];
    for (let i = 0; i < 3; i++) texts.push((await client.chat.completions.create(CHAT)).choices[0]!.message.content);
    expect(texts).toEqual(['one', 'two', DEFAULT_TEXT]);
    fake.enqueue({ text: 'never used' });
    fake.reset();
    expect(fake.requests).toHaveLength(0);
    expect((await client.chat.completions.create(CHAT)).choices[0]!.message.content).toBe(DEFAULT_TEXT);
  });

  it('delays the head by headersDelayMs and events by chunkDelayMs', async () => {
    fake.enqueue({ headersDelayMs: 150 }, { chunkDelayMs: 40, chunks: 4 });
    const client = openai();
    let started = Date.now();
    await client.chat.completions.create(CHAT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    started = Date.now();
    const stream = await client.chat.completions.create({ ...CHAT, stream: true });
    const times: number[] = [];
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) times.push(Date.now());
    expect(times).toHaveLength(4);
    expect(times.at(-1)! - started).toBeGreaterThanOrEqual(4 * 40 - 10);
  });

  it('survives a client abort mid-stream without leaking timers', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    fake.enqueue({ chunkDelayMs: 20_000, chunks: 10 });
    const stream = await openai().chat.completions.create({ ...CHAT, stream: true });
    let during = 0;
    for await (const _chunk of stream) {
      during = timers(); // the server is now waiting 20 s before the next event
      break; // break aborts the request
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(timers()).toBeLessThan(during);
    const res = await openai().chat.completions.create(CHAT);
    expect(res.choices[0]!.message.content).toBe(DEFAULT_TEXT);
  });

  it('close() does not hang on open streams and cuts them', async () => {
    const own = await startFakeProvider();
    own.enqueue({ chunkDelayMs: 10_000, chunks: 3 });
    const client = new OpenAIMod.OpenAI({ baseURL: own.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
    const stream = await client.chat.completions.create({ ...CHAT, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    const pending = thrown(() => iterator.next());
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
    await own.close(); // idempotent
    const err = await thrown(() => client.chat.completions.create(CHAT));
    expect(err).toBeInstanceOf(OpenAIMod.APIConnectionError);
  });
});
