import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { createContentHasher } from '../../src/audit/hashing';
import { ENVELOPE_PREFIX } from '../../src/audit/content';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, type AuditRequest, type LlmAuditHooks } from '../../src/guardrails';
import { recordFromSpan } from '../../src/ledger/record';
import { DEFAULT_TEXT, expectedChunks, THINKING_TEXT, type FakeProvider } from '../support/fake-provider';
import { repoRoot, setupAuditWithContent, useFakeProvider } from '../support/harness';

/**
 * @google/genai against the fake provider speaking the Gemini API and Vertex AI wire formats: one
 * audit record per request, with the conventions' attributes, tokens (thinking, cache), cost,
 * hashes, blocking, redaction, encrypted content, and no prompt or output text anywhere in what is
 * exported. Run by google-genai.test.ts (2.32, the root's) and google-genai-3.test.ts (3.x, Node >= 22).
 */

/** The suite, with @google/genai resolved from the repo root or from test/sdk-versions/<sdkDir>. */
export function googleGenaiSuite(sdkDir?: string): void {
  const current: { before?: LlmAuditHooks['beforeRequest'] } = {};
  const { audit, reviewer } = setupAuditWithContent({
    hooks: { beforeRequest: (request) => current.before?.(request) },
    sanitize: { mode: 'redact', types: ['EMAIL'] },
  });
  const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
  const { GoogleGenAI } = audit.load('@google/genai', sdkDir === undefined ? repoRoot : join(repoRoot, 'test', 'sdk-versions', sdkDir));
  expect(GoogleGenAI.name).toBe('GoogleGenAI');
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

  const gemini = () => new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: fake.googleBaseURL } });
  const vertex = () => new GoogleGenAI({ vertexai: true, apiKey: 'test-key', httpOptions: { baseUrl: fake.googleBaseURL } });
  const MODEL = 'gemini-2.5-flash';
  const SYSTEM = 'You are a terse assistant.';
  const PROMPT = 'Say hello to the auditors.';
  const ask = (client: any, extra: object = {}) =>
    client.models.generateContent({ model: MODEL, contents: PROMPT, config: { systemInstruction: SYSTEM, temperature: 0.2, maxOutputTokens: 64 }, ...extra });
  const streamed = (client: any, extra: object = {}) =>
    client.models.generateContentStream({ model: MODEL, contents: PROMPT, config: { systemInstruction: SYSTEM, temperature: 0.2, maxOutputTokens: 64 }, ...extra });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
  const modelRequests = () => fake.requests.filter((r) => r.path.includes(':'));

  describe('models.generateContent', () => {
    it('Gemini API: one record with the conventions attributes, tokens (thinking, cache), cost and hashes; the app gets the SDK response', async () => {
      fake.enqueue({ usage: { input: 40, output: 20, cacheRead: 10, reasoning: 5, cacheCreation: 0 } });
      const response = await ask(gemini());
      expect(response.text).toBe(DEFAULT_TEXT);
      expect(response.constructor.name).toBe('GenerateContentResponse');
      const [span] = await audit.spansWhen(1);
      await settle();
      expect(audit.spans()).toHaveLength(1);
      const a = span.attributes;
      expect(span.name).toBe(`chat ${MODEL}`);
      expect(a).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'gcp.gemini',
        'gen_ai.request.model': MODEL,
        'gen_ai.request.temperature': 0.2,
        'gen_ai.request.max_tokens': 64,
        'gen_ai.response.model': MODEL,
        'gen_ai.response.id': response.responseId,
        'gen_ai.response.finish_reasons': ['STOP'],
        'gen_ai.usage.input_tokens': 40,
        'gen_ai.usage.output_tokens': 20,
        'gen_ai.usage.cache_read.input_tokens': 10,
        'gen_ai.usage.reasoning.output_tokens': 5,
        'llm_audit.usage.status': 'reported',
        'llm_audit.cost.status': 'priced',
        'llm_audit.status': 'success',
        'llm_audit.action': 'models.generateContent',
        'server.address': '127.0.0.1',
      });
      expect(a['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
      expect(a['llm_audit.system_prompt.hash']).toBe(hasher.hashRepeated(SYSTEM));
      expect(a['llm_audit.input.hash']).toBe(hasher.hashMessages(PROMPT));
      expect(a['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: DEFAULT_TEXT }], finish_reason: 'STOP' }]));
    });

    it('thoughts: the thought text is a reasoning part of the output; a response without usage is usage.status=missing', async () => {
      fake.enqueue({ omitUsage: true });
      await ask(gemini(), { config: { thinkingConfig: { includeThoughts: true } } });
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.usage.status']).toBe('missing');
      expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
      expect(span.attributes['llm_audit.cost.status']).toBe('no_usage');
      expect(span.attributes['llm_audit.output.hash']).toBe(
        hasher.hash([{ role: 'assistant', parts: [{ type: 'reasoning', content: THINKING_TEXT }, { type: 'text', content: DEFAULT_TEXT }], finish_reason: 'STOP' }]),
      );
    });

    it('Vertex AI (express mode): gcp.vertex_ai, on the Vertex path', async () => {
      await ask(vertex());
      const [span] = await audit.spansWhen(1);
      expect(fake.requests[0].path).toBe(`/v1beta1/publishers/google/models/${MODEL}:generateContent`);
      expect(span.attributes['gen_ai.provider.name']).toBe('gcp.vertex_ai');
      expect(span.attributes['llm_audit.cost.status']).toBe('priced');
    });

    it('tool calls: names and the call as output; an API error is recorded with its status and rethrown unchanged', async () => {
      fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: '{"q":"weather"}' }] });
      const response = await ask(gemini());
      expect(response.functionCalls[0].name).toBe('lookup');
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.tool.names']).toEqual(['lookup']);
      audit.reset();
      fake.enqueue({ status: 400, errorMessage: 'bad thing' });
      const error = await ask(gemini()).catch((e: unknown) => e);
      expect((error as Error).constructor.name).toBe('ApiError');
      const [failed] = await audit.spansWhen(1);
      expect(failed.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': '400', 'http.response.status_code': 400 });
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    });
  });

  describe('models.generateContentStream', () => {
    it('every chunk reaches the app; one record, completed, with the same output hash as the whole answer', async () => {
      fake.enqueue({ usage: { input: 40, output: 20, cacheRead: 10, reasoning: 5, cacheCreation: 0 } });
      const stream = await streamed(gemini());
      const texts: string[] = [];
      for await (const chunk of stream) texts.push(chunk.text);
      expect(texts).toEqual(expectedChunks());
      const [span] = await audit.spansWhen(1);
      await settle();
      expect(audit.spans()).toHaveLength(1);
      expect(span.attributes).toMatchObject({
        'gen_ai.request.stream': true,
        'llm_audit.stream.outcome': 'completed',
        'llm_audit.action': 'models.generateContentStream',
        'gen_ai.usage.input_tokens': 40,
        'gen_ai.usage.output_tokens': 20,
        'gen_ai.usage.reasoning.output_tokens': 5,
        'gen_ai.response.finish_reasons': ['STOP'],
      });
      expect(span.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
      expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: DEFAULT_TEXT }], finish_reason: 'STOP' }]));
    });

    it('config.abortSignal aborted before the app reads the stream: the span ends as aborted at once', async () => {
      fake.enqueue({ chunks: 20, chunkDelayMs: 20 });
      const controller = new AbortController();
      const stream = await streamed(gemini(), { config: { abortSignal: controller.signal } });
      controller.abort();
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.stream.outcome']).toBe('aborted');
      expect(stream).toBeDefined();
    });

    it('break: abandoned; an error event mid-stream: errored, rethrown to the app', async () => {
      const stream = await streamed(gemini());
      for await (const _chunk of stream) break;
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.stream.outcome']).toBe('abandoned');
      audit.reset();
      fake.enqueue({ failAfterChunks: 2 });
      const failing = await streamed(gemini());
      const error = await (async () => {
        for await (const _chunk of failing);
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      const [failed] = await audit.spansWhen(1);
      expect(failed.attributes['llm_audit.stream.outcome']).toBe('errored');
      expect(failed.attributes['llm_audit.status']).toBe('error');
    });
  });

  describe('models.embedContent', () => {
    it('Gemini API: no usage reported (usage.status=missing), the dimension count; Vertex: the token count', async () => {
      const result = await gemini().models.embedContent({ model: 'gemini-embedding-001', contents: ['one', 'two'], config: { outputDimensionality: 8 } });
      expect(result.embeddings).toHaveLength(2);
      const [span] = await audit.spansWhen(1);
      expect(span.attributes).toMatchObject({
        'gen_ai.operation.name': 'embeddings',
        'gen_ai.provider.name': 'gcp.gemini',
        'gen_ai.embeddings.dimension.count': 8,
        'llm_audit.usage.status': 'missing',
        'llm_audit.action': 'models.embedContent',
      });
      expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hashMessages(['one', 'two']));
      expect(span.attributes['llm_audit.output.hash']).toBeUndefined();
      audit.reset();
      await vertex().models.embedContent({ model: 'text-embedding-005', contents: ['one'] });
      const [vspan] = await audit.spansWhen(1);
      expect(vspan.attributes).toMatchObject({ 'gen_ai.provider.name': 'gcp.vertex_ai', 'gen_ai.usage.input_tokens': 42, 'llm_audit.usage.status': 'reported' });
    });
  });

  describe('chats', () => {
    it('sendMessage: one record per message (not two), named chats.sendMessage, the history in the input', async () => {
      const chat = gemini().chats.create({ model: MODEL, config: { systemInstruction: SYSTEM } });
      const first = await chat.sendMessage({ message: 'first question' });
      expect(first.text).toBe(DEFAULT_TEXT);
      await chat.sendMessage({ message: 'second question' });
      const spans = await audit.spansWhen(2);
      await settle();
      expect(audit.spans()).toHaveLength(2);
      expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['chats.sendMessage', 'chats.sendMessage']);
      expect(modelRequests()).toHaveLength(2);
      expect(fake.requests[1].body.contents).toHaveLength(3);
      expect(spans[1].attributes['llm_audit.input.hash']).toBe(hasher.hashMessages(fake.requests[1].body.contents));
    });

    it('sendMessageStream: one record, completed when the app has read it all', async () => {
      const chat = gemini().chats.create({ model: MODEL });
      const stream = await chat.sendMessageStream({ message: 'stream me' });
      let text = '';
      for await (const chunk of stream) text += chunk.text;
      expect(text).toBe(DEFAULT_TEXT);
      const [span] = await audit.spansWhen(1);
      await settle();
      expect(audit.spans()).toHaveLength(1);
      expect(span.attributes).toMatchObject({ 'llm_audit.action': 'chats.sendMessageStream', 'llm_audit.stream.outcome': 'completed' });
    });
  });

  describe('guardrails, redaction, encrypted content', () => {
    const blockOn = (word: string) => (request: AuditRequest) => {
      if (JSON.stringify(request.params).includes(word)) blockRequest(`found ${word}`, { name: 'test-policy' });
    };

    it.each([
      ['generateContent, sync hook', (c: any) => ask(c, { contents: 'the secret plan' }), blockOn('secret plan')],
      ['generateContentStream, async hook', (c: any) => streamed(c, { contents: 'the secret plan' }), async (r: AuditRequest) => blockOn('secret plan')(r)],
      ['chats.sendMessage, async hook', (c: any) => c.chats.create({ model: MODEL }).sendMessage({ message: 'the secret plan' }), async (r: AuditRequest) => blockOn('secret plan')(r)],
    ])('%s: a block stops the request before it leaves', async (_label, call, hook) => {
      current.before = hook;
      const error = await call(gemini()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LlmRequestBlockedError);
      await settle();
      expect(modelRequests()).toHaveLength(0);
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.status']).toBe('blocked');
    });

    it('an async hook that allows: the request goes after the hook has decided', async () => {
      let seen = -1;
      current.before = async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen = modelRequests().length;
      };
      await ask(gemini());
      expect(seen).toBe(0);
      expect(modelRequests()).toHaveLength(1);
    });

    it('redaction: e-mail addresses in the system instruction, a user text part and a function result never reach the provider', async () => {
      await gemini().models.generateContent({
        model: MODEL,
        config: { systemInstruction: 'Escalate to boss@example.org.' },
        contents: [
          { role: 'user', parts: [{ text: 'Mail jane.doe@example.org please' }] },
          { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { who: 'jane' } } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'lookup', response: { email: 'jane.doe@example.org' } } }] },
        ],
      });
      const body = fake.requests[0].rawBody;
      expect(body).not.toContain('@example.org');
      expect(body).toContain('[EMAIL]');
      const [span] = await audit.spansWhen(1);
      const locations = span.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes?.['llm_audit.sanitization.location']);
      expect(locations).toEqual(['config.systemInstruction', 'contents[0].parts[0].text', 'contents[2].parts[0].functionResponse.response.email']);
    });

    it('encrypted content and a canary scan: the reviewer opens system, input and output; nothing of them is in the record in plaintext, errors included', async () => {
      const CANARY = 'GENAI-CANARY-5d1e';
      fake.enqueue({ text: `${CANARY} answer` }, { status: 400, echoRequest: 'full' });
      await withAuditContext({ tenantId: 'acme' }, () =>
        gemini().models.generateContent({
          model: MODEL,
          config: { systemInstruction: `${CANARY} system` },
          contents: [{ role: 'user', parts: [{ text: `${CANARY} question` }, { inlineData: { mimeType: 'image/png', data: Buffer.from('png bytes').toString('base64') } }] }],
        }),
      );
      const failure = await gemini()
        .models.generateContent({ model: MODEL, config: { systemInstruction: `${CANARY} system` }, contents: `${CANARY} question` })
        .catch((e: unknown) => e);
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
      expect(content.input_messages).toMatchObject([
        { role: 'user', parts: [{ type: 'text', content: `${CANARY} question` }, { type: 'blob_digest', modality: 'image', mime_type: 'image/png', bytes: 9 }] },
      ]);
      expect(content.output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} answer` }], finish_reason: 'STOP' }]);
    });
  });
}
