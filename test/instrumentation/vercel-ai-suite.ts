import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { createContentMasterKey, contentCipherFromEnv } from '../../src/audit/content';
import { createCostCalculator } from '../../src/audit/cost';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, type LlmAuditHooks } from '../../src/guardrails';
import { expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// The Vercel AI SDK, real packages against the fake provider: one audit record per model call,
// whatever `ai` function made it, with hashes, usage, cost, guardrails, redaction and encrypted
// content. ai 6 (@ai-sdk/openai and /anthropic 3) from the root; vercel-ai-5.test.ts runs this
// file's suite on ai 5 (LanguageModelV2 providers); ai 7 (Node >= 22) runs in
// test/register/vercel-ai.test.ts under Node 24.

/** The suite, on the `ai` and @ai-sdk packages installed under `fromDir`, of `ai` major `major`. */
export function vercelAiSuite(fromDir: string, major: number): void {

  const dir = mkdtempSync(join(tmpdir(), 'vercel-ai-content-'));
  const keyPath = join(dir, 'content.key');
  createContentMasterKey(keyPath, 'k1');
  const cipher = contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath })!;
  const hooks: { before?: LlmAuditHooks['beforeRequest']; after?: LlmAuditHooks['afterResponse'] } = {};
  const audit = setupAudit({
    hooks: { beforeRequest: (request) => hooks.before?.(request), afterResponse: (response) => hooks.after?.(response) },
    sanitize: { mode: 'redact' },
    content: cipher,
  });
  const ai = audit.load('ai', fromDir);
  const { createOpenAI } = audit.load('@ai-sdk/openai', fromDir);
  const { createAnthropic } = audit.load('@ai-sdk/anthropic', fromDir);
  const { OpenAI } = audit.load('openai');
  const fakeProvider = useFakeProvider({
    reset() {
      audit.reset();
      hooks.before = undefined;
      hooks.after = undefined;
    },
  });
  let fake: FakeProvider;
  let openai: any;
  let anthropic: any;
  beforeAll(() => {
    fake = fakeProvider();
    openai = createOpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL });
    anthropic = createAnthropic({ apiKey: 'sk-ant-test', baseURL: `${fake.anthropicBaseURL}/v1` });
  });

  const CANARY = 'VERCEL-CANARY-5c1e';
  const hmac = (value: unknown) => `hmac-sha256:test:${createHmac('sha256', 'test-hash-key-0123456789').update(canonicalJson(value), 'utf8').digest('hex')}`;
  const records = (n: number) => audit.spansWhen(n);
  const models = () => [
    { label: '@ai-sdk/openai (Responses API)', model: openai('gpt-4o-mini'), provider: 'openai', path: '/v1/responses' },
    { label: '@ai-sdk/openai chat', model: openai.chat('gpt-4o-mini'), provider: 'openai', path: '/v1/chat/completions' },
    { label: '@ai-sdk/anthropic', model: anthropic('claude-haiku-4-5'), provider: 'anthropic', path: '/v1/messages' },
  ];

  describe('generateText and streamText', () => {
    it.each([0, 1, 2])('one record per call with tokens, cost and hashes; the streamed answer hashes like the whole one (%s)', async (index) => {
      const { model, provider, path } = models()[index]!;
      const prompt = { system: 'You are terse.', prompt: 'Say hello.', maxRetries: 0, temperature: 0.2, maxOutputTokens: 256 };
      const whole = await ai.generateText({ model, ...prompt });
      const streamed = ai.streamText({ model, ...prompt });
      let text = '';
      for await (const delta of streamed.textStream) text += delta;
      expect(whole.text).toBe(expectedText());
      expect(text).toBe(expectedText());
      expect(fake.requests.map((r) => r.path)).toEqual([path, path]);
      const [plain, stream] = await records(2);
      const usage = expectedUsage();
      const cost = createCostCalculator().price(provider, String(plain!.attributes['gen_ai.response.model']), {
        inputTokens: usage.input,
        outputTokens: usage.output,
        cacheReadTokens: usage.cacheRead,
        cacheCreationTokens: usage.cacheCreation,
        reasoningTokens: provider === 'openai' ? usage.reasoning : undefined,
      });
      for (const span of [plain!, stream!]) {
        expect(span.attributes).toMatchObject({
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': provider,
          'gen_ai.request.model': model.modelId,
          'gen_ai.request.temperature': 0.2,
          'gen_ai.request.max_tokens': 256,
          'server.address': '127.0.0.1',
          'llm_audit.status': 'success',
          'llm_audit.usage.status': 'reported',
          'gen_ai.usage.input_tokens': usage.input,
          'gen_ai.usage.output_tokens': usage.output,
          'gen_ai.usage.cache_read.input_tokens': usage.cacheRead,
          'gen_ai.response.finish_reasons': ['stop'],
          'llm_audit.cost.status': 'priced',
          'gen_ai.usage.cost.amount': (cost as { amountUsd: number }).amountUsd,
          'llm_audit.system_prompt.hash': hmac([{ role: 'system', content: 'You are terse.' }]),
          'llm_audit.input.hash': hmac([{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }]),
        });
        expect(span.attributes['gen_ai.response.id']).toEqual(expect.any(String));
      }
      expect(plain!.attributes['llm_audit.action']).toBe('generateText');
      expect(stream!.attributes['llm_audit.action']).toBe('streamText');
      expect(stream!.attributes['gen_ai.request.stream']).toBe(true);
      expect(stream!.attributes['llm_audit.stream.outcome']).toBe('completed');
      expect(stream!.attributes['llm_audit.output.hash']).toBe(plain!.attributes['llm_audit.output.hash']);
      expect(plain!.attributes['llm_audit.output.hash']).toBe(hmac([{ role: 'assistant', parts: [{ type: 'text', content: expectedText() }], finish_reason: 'stop' }]));
    });

    it('tool calls across steps: one record per step; the second step\'s input carries the tool result', async () => {
      fake.enqueue({ toolCalls: [{ name: 'weather', arguments: '{"city":"Paris"}', id: 'call_1' }] }, { text: 'It is 21 °C in Paris.' });
      const result = await ai.generateText({
        model: openai.chat('gpt-4o-mini'),
        prompt: 'Weather in Paris?',
        maxRetries: 0,
        stopWhen: ai.stepCountIs(3),
        tools: {
          weather: ai.tool({
            description: 'Current weather',
            inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
            execute: async ({ city }: { city: string }) => `21 °C in ${city}`,
          }),
        },
      });
      expect(result.text).toBe('It is 21 °C in Paris.');
      expect(result.steps).toHaveLength(2);
      const [first, second] = await records(2);
      expect(first!.attributes['llm_audit.tool.names']).toEqual(['weather']);
      expect(first!.attributes['llm_audit.tool.call_ids']).toEqual(['call_1']);
      expect(first!.attributes['gen_ai.response.finish_reasons']).toEqual(['tool-calls']);
      expect(second!.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
      expect(second!.attributes['llm_audit.input.hash']).not.toBe(first!.attributes['llm_audit.input.hash']);
      // The second request sent the tool result; its hash covers it.
      expect(JSON.stringify(fake.requests[1]!.body)).toContain('21 °C in Paris');
      expect(audit.spans()).toHaveLength(2);
    });

    it('an agent (ToolLoopAgent; ai 5: Experimental_Agent): generate and stream, one record per step', async () => {
      fake.enqueue({ toolCalls: [{ name: 'weather', arguments: '{"city":"Rome"}', id: 'call_2' }] }, {}, {});
      const Agent = major >= 6 ? ai.ToolLoopAgent : ai.Experimental_Agent;
      const action = major >= 6 ? 'ToolLoopAgent' : 'Agent';
      const agent = new Agent({
        model: openai.chat('gpt-4o-mini'),
        [major >= 6 ? 'instructions' : 'system']: 'You are terse.',
        stopWhen: ai.stepCountIs(3),
        tools: { weather: ai.tool({ inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }), execute: async () => 'sunny' }) },
      });
      const result = await agent.generate({ prompt: 'Weather in Rome?' });
      expect(result.steps).toHaveLength(2);
      await (await agent.stream({ prompt: 'hi' })).consumeStream();
      const spans = await records(3);
      expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.request.stream'] ?? false])).toEqual([
        [action, false],
        [action, false],
        [action, true],
      ]);
      expect(spans[0]!.attributes['llm_audit.system_prompt.hash']).toBe(hmac([{ role: 'system', content: 'You are terse.' }]));
    });

    it('streamText with tools: the streamed tool call is recorded like the whole one', async () => {
      fake.enqueue({ toolCalls: [{ name: 'weather', arguments: '{"city":"Oslo"}', id: 'call_9' }] });
      const result = ai.streamText({
        model: openai.chat('gpt-4o-mini'),
        prompt: 'Weather in Oslo?',
        maxRetries: 0,
        tools: { weather: ai.tool({ inputSchema: ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }) }) },
      });
      await result.consumeStream();
      const [span] = await records(1);
      expect(span!.attributes['llm_audit.tool.names']).toEqual(['weather']);
      expect(span!.attributes['llm_audit.output.hash']).toBe(
        hmac([{ role: 'assistant', parts: [{ type: 'tool_call', id: 'call_9', name: 'weather', arguments: '{"city":"Oslo"}' }], finish_reason: 'tool-calls' }]),
      );
    });
  });

  describe('streams that do not complete', () => {
    const read = async (result: any, stopAfter = Infinity, onDelta = () => {}) => {
      let n = 0;
      for await (const part of result.fullStream) {
        if (part.type !== 'text-delta') continue;
        onDelta();
        if (++n >= stopAfter) break;
      }
    };

    it.each([
      ['the connection drops mid-stream', { dropAfterChunks: 2, chunkDelayMs: 5 }],
      ['the provider sends an error event mid-stream', { failAfterChunks: 2 }],
    ])('%s: recorded once, as an error', async (_label, scenario) => {
      fake.enqueue(scenario);
      await read(ai.streamText({ model: anthropic('claude-haiku-4-5'), prompt: 'hi', maxRetries: 0, onError: () => {} })).catch(() => undefined);
      const [span] = await records(1);
      expect(span!.attributes['llm_audit.status']).toBe('error');
      expect(span!.attributes['llm_audit.stream.outcome']).toBe('errored');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(audit.spans()).toHaveLength(1);
    });

    it('the app stops reading after two chunks: ai reads the model stream to its end, and the record says so', async () => {
      fake.enqueue({ chunks: 8, chunkDelayMs: 10 });
      await read(ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'hi', maxRetries: 0 }), 2);
      const [span] = await records(1);
      expect(span!.attributes['llm_audit.stream.outcome']).toBe('completed');
      expect(span!.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    });

    it('the app aborts mid-stream: recorded once, as aborted, with the text that arrived', async () => {
      fake.enqueue({ chunks: 8, chunkDelayMs: 20 });
      const controller = new AbortController();
      const result = ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'hi', maxRetries: 0, abortSignal: controller.signal, onError: () => {} });
      await read(result, Infinity, () => controller.abort()).catch(() => undefined);
      const [span] = await records(1);
      expect(span!.attributes['llm_audit.stream.outcome']).toBe('aborted');
      expect(span!.attributes['llm_audit.output.hash']).toEqual(expect.any(String));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(audit.spans()).toHaveLength(1);
    });
  });

  describe('generateObject, streamObject, embed, embedMany', () => {
    const schema = () => ai.jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });

    it('generateObject and streamObject: one record each, output type json', async () => {
      fake.enqueue({ text: '{"city":"Paris"}' }, { text: '{"city":"Paris"}' });
      const whole = await ai.generateObject({ model: openai.chat('gpt-4o-mini'), schema: schema(), prompt: 'A city', maxRetries: 0 });
      expect(whole.object).toEqual({ city: 'Paris' });
      const streamed = ai.streamObject({ model: openai.chat('gpt-4o-mini'), schema: schema(), prompt: 'A city', maxRetries: 0 });
      for await (const _ of streamed.partialObjectStream);
      expect(await streamed.object).toEqual({ city: 'Paris' });
      const [plain, stream] = await records(2);
      expect(plain!.attributes['llm_audit.action']).toBe('generateObject');
      expect(stream!.attributes['llm_audit.action']).toBe('streamObject');
      for (const span of [plain!, stream!]) {
        expect(span.attributes['gen_ai.output.type']).toBe('json');
        expect(span.attributes['llm_audit.status']).toBe('success');
      }
      expect(stream!.attributes['llm_audit.output.hash']).toBe(plain!.attributes['llm_audit.output.hash']);
    });

    it('embed and embedMany: one record per embedding request, no output hash', async () => {
      const model = openai.embedding('text-embedding-3-small');
      await ai.embed({ model, value: 'one', maxRetries: 0 });
      // Two values per request: embedMany makes two requests for three values.
      const small = new Proxy(model, { get: (target, key) => (key === 'maxEmbeddingsPerCall' ? 2 : Reflect.get(target, key, target)) });
      const many = await ai.embedMany({ model: small, values: ['a', 'b', 'c'], maxRetries: 0 });
      expect(many.embeddings).toHaveLength(3);
      const spans = await records(3);
      expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['embed', 'embedMany', 'embedMany']);
      expect(spans.map((s) => s.attributes['llm_audit.input.hash'])).toEqual([hmac(['one']), hmac(['a', 'b']), hmac(['c'])]);
      for (const span of spans) {
        expect(span.attributes).toMatchObject({ 'gen_ai.operation.name': 'embeddings', 'gen_ai.provider.name': 'openai', 'gen_ai.embeddings.dimension.count': 1536, 'llm_audit.cost.status': 'priced' });
        expect(span.attributes['llm_audit.output.hash']).toBeUndefined();
      }
    });
  });

  describe('what the provider omits, errors, telemetry', () => {
    it('a model named by its id string is resolved as ai resolves it (the global default provider) and audited', async () => {
      const global = globalThis as { AI_SDK_DEFAULT_PROVIDER?: unknown };
      global.AI_SDK_DEFAULT_PROVIDER = openai;
      try {
        await ai.generateText({ model: 'gpt-4o-mini', prompt: 'hi', maxRetries: 0 });
      } finally {
        delete global.AI_SDK_DEFAULT_PROVIDER;
      }
      const [span] = await records(1);
      expect(span!.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'llm_audit.status': 'success' });
    });

    it('no usage from the provider: usage.status missing, no invented zero', async () => {
      fake.enqueue({ omitUsage: true });
      await ai.generateText({ model: anthropic('claude-haiku-4-5'), prompt: 'hi', maxRetries: 0 }).catch(() => undefined);
      const [span] = await records(1);
      expect(span!.attributes['llm_audit.usage.status']).toBe('missing');
      expect(span!.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
    });

    it('a failed call is recorded once per attempt, its error message scrubbed of the prompt', async () => {
      fake.enqueue({ status: 500, echoRequest: 'full' }, { status: 500, echoRequest: 'full' });
      await expect(ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: `secret ${CANARY}`, maxRetries: 1 })).rejects.toThrow();
      const spans = await records(2);
      expect(spans).toHaveLength(2);
      for (const span of spans) {
        expect(span.attributes['llm_audit.status']).toBe('error');
        expect(span.attributes['error.type']).toEqual(expect.any(String));
        expect(JSON.stringify([span.attributes, span.events, span.status])).not.toContain(CANARY);
      }
    });

    it('telemetry switched off per call, or on: every model call is recorded once', async () => {
      await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0, experimental_telemetry: { isEnabled: false } });
      await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0, experimental_telemetry: { isEnabled: true } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(audit.auditSpans()).toHaveLength(2);
    });

    it('a model built on the patched openai SDK is recorded once, as the AI SDK call', async () => {
      const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
      const model = {
        specificationVersion: major >= 6 ? 'v3' : 'v2',
        provider: 'openai.custom',
        modelId: 'gpt-4o-mini',
        supportedUrls: {},
        async doGenerate(options: any) {
          const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: options.prompt[0].content[0].text }] });
          return {
            content: [{ type: 'text', text: completion.choices[0].message.content }],
            finishReason: major >= 6 ? { unified: 'stop', raw: 'stop' } : 'stop',
            usage:
              major >= 6
                ? { inputTokens: { total: completion.usage.prompt_tokens }, outputTokens: { total: completion.usage.completion_tokens } }
                : { inputTokens: completion.usage.prompt_tokens, outputTokens: completion.usage.completion_tokens, totalTokens: completion.usage.total_tokens },
            warnings: [],
          };
        },
        doStream() {
          throw new Error('not used');
        },
      };
      await ai.generateText({ model, prompt: 'hi', maxRetries: 0 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const spans = audit.auditSpans();
      expect(spans).toHaveLength(1);
      expect(spans[0]!.attributes['llm_audit.action']).toBe('generateText');
    });
  });

  describe('guardrails, redaction, encrypted content', () => {
    it("a hook's own LLM call (an output check through the openai SDK) is a call of its own, audited", async () => {
      const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
      let checked: Promise<unknown> | undefined;
      hooks.after = (response) => {
        if (response.action === 'generateText' || response.action === 'streamText') checked = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'check' }] });
      };
      await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0 });
      await checked;
      await ai.streamText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0 }).consumeStream();
      await checked;
      const spans = await records(4);
      expect(spans.map((s) => s.attributes['llm_audit.action']).sort()).toEqual(['chat.completions.create', 'chat.completions.create', 'generateText', 'streamText']);
    });

    it('beforeRequest can block: nothing is sent, the call rejects with LlmRequestBlockedError, the record says blocked', async () => {
      const seen: unknown[] = [];
      hooks.before = (request) => {
        seen.push([request.provider, request.model, request.action]);
        blockRequest('not allowed', { name: 'test-policy' });
      };
      const error = await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LlmRequestBlockedError);
      let streamError: unknown;
      const stream = ai.streamText({ model: anthropic('claude-haiku-4-5'), prompt: 'hi', maxRetries: 0, onError: () => {} });
      for await (const part of stream.fullStream) if (part.type === 'error') streamError = part.error;
      expect(streamError).toBeInstanceOf(LlmRequestBlockedError);
      expect(fake.requests).toHaveLength(0);
      expect(seen).toEqual([
        ['openai', 'gpt-4o-mini', 'generateText'],
        ['anthropic', 'claude-haiku-4-5', 'streamText'],
      ]);
      const spans = await records(2);
      for (const span of spans) expect(span.attributes['llm_audit.status']).toBe('blocked');
    });

    it('an async beforeRequest hook holds the request until it resolves', async () => {
      let seenBefore = -1;
      hooks.before = async () => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        seenBefore = fake.requests.length;
      };
      await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'hi', maxRetries: 0 });
      expect(seenBefore).toBe(0);
      expect(fake.requests).toHaveLength(1);
    });

    it('redact: the provider gets placeholders in the system prompt, messages and tool results; nothing of them is exported', async () => {
      const email = 'jane.canary@example.org';
      fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: '{"q":"x"}', id: 'call_1' }] }, {});
      await ai.generateText({
        model: anthropic('claude-haiku-4-5'),
        system: `Escalate to ${email}`,
        prompt: `Mail ${email}`,
        maxRetries: 0,
        stopWhen: ai.stepCountIs(2),
        tools: { lookup: ai.tool({ inputSchema: ai.jsonSchema({ type: 'object', properties: { q: { type: 'string' } } }), execute: async () => `owner ${email}` }) },
      });
      const sent = fake.requests.map((r) => r.rawBody).join('\n');
      expect(sent).not.toContain(email);
      expect(sent).toContain('Escalate to [EMAIL]');
      expect(sent).toContain('owner [EMAIL]');
      const spans = await records(2);
      expect(spans[0]!.attributes['llm_audit.sanitization.count']).toBe(2);
      expect(spans[1]!.attributes['llm_audit.sanitization.count']).toBe(3);
      const locations = spans[1]!.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes!['llm_audit.sanitization.location']);
      expect(locations).toEqual(['prompt[0].content', 'prompt[1].content[0].text', 'prompt[3].content[0].output.value']);
      expect(JSON.stringify(spans.map((s) => [s.attributes, s.events]))).not.toContain(email);
    });

    it('encrypted content: only an envelope leaves; the reviewer opens system, input, tool call and output', async () => {
      fake.enqueue({ text: `${CANARY} answer` }, { text: `${CANARY} answer` });
      for (const model of [openai('gpt-4o-mini'), anthropic('claude-haiku-4-5')]) {
        await withAuditContext({ tenantId: 'acme' }, () =>
          ai.generateText({
            model,
            system: `${CANARY} system`,
            messages: [
              { role: 'user', content: [{ type: 'text', text: `${CANARY} question` }, { type: 'file', data: Buffer.from('%PDF-1.4 canary'), mediaType: 'application/pdf' }] },
            ],
            maxRetries: 0,
          }),
        );
      }
      const spans = await records(2);
      for (const span of spans) {
        expect(JSON.stringify([span.attributes, span.events])).not.toContain(CANARY);
        const content = cipher.open(String(span.attributes['llm_audit.content.encrypted']), { requestId: String(span.attributes['llm_audit.request_id']), tenantId: 'acme' });
        expect(content.system_instructions).toEqual([{ type: 'text', content: `${CANARY} system` }]);
        expect(content.input_messages).toEqual([
          {
            role: 'user',
            parts: [{ type: 'text', content: `${CANARY} question` }, { type: 'blob_digest', modality: 'document', mime_type: 'application/pdf', sha256: expect.any(String), bytes: 15 }],
          },
        ]);
        expect(content.output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} answer` }], finish_reason: 'stop' }]);
      }
    });
  });
}
