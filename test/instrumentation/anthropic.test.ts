import { beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { canonicalJson } from '../../src/audit/canonical-json';
import { createCostCalculator } from '../../src/audit/cost';
import { expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { sdkVersionDir } from '../support/drivers';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';

// What is particular to Anthropic: input tokens reported without the cached part, thinking
// tokens, tool_use input streamed as JSON fragments, and the SDK's own spans (1.x).

const audit = setupAudit();
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const spansOf = (n: number) => audit.spansWhen(n);
const base = { model: 'claude-haiku-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'hi' }] };

// The root's 1.12 and the newest the registry serves (test/sdk-versions/anthropic-1-latest).
describe.each([
  { label: '1.12', dir: repoRoot },
  { label: '1.17', dir: sdkVersionDir('anthropic-1-latest') },
])('@anthropic-ai/sdk $label', ({ dir }) => {
  let client: any;
  beforeAll(() => {
    client = new (audit.load('@anthropic-ai/sdk', dir).Anthropic)({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
  });

  describe('messages', () => {
    it('agent loop: the input hash of every turn is the HMAC of what was sent, as the history grows and is edited', async () => {
      const hmac = (value: unknown) => `hmac-sha256:test:${createHmac('sha256', 'test-hash-key-0123456789').update(canonicalJson(value), 'utf8').digest('hex')}`;
      const messages: any[] = [{ role: 'user', content: 'Weather in Paris?' }];
      const sent: unknown[] = [];
      fake.enqueue({ toolCalls: [{ name: 'get_weather', arguments: '{"city":"Paris"}', id: 'toolu_1' }] });
      for (let turn = 0; turn < 5; turn++) {
        const answer = await client.messages.create({ ...base, system: 'You are terse.', messages });
        sent.push(structuredClone(messages));
        messages.push({ role: 'assistant', content: answer.content }); // the SDK's content blocks, as apps do
        const toolUse = answer.content.find((block: any) => block.type === 'tool_use');
        if (toolUse) messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: '21 °C' }] });
        else messages.push({ role: 'user', content: `And tomorrow (${turn})?` });
        if (turn === 2) messages[0].content = 'Weather in Lyon?';
        if (turn === 3) answer.content[0].text = `${answer.content[0].text} (edited)`; // a nested block
      }
      const spans = await spansOf(5);
      expect(new Set(spans.map((span) => span.attributes['llm_audit.input.hash'])).size).toBe(5);
      spans.forEach((span, i) => expect(span.attributes['llm_audit.input.hash'], `turn ${i}`).toBe(hmac(sent[i])));
    });

    it('input tokens include cache reads and writes, as the conventions say; cost is cache-aware', async () => {
      const usage = { input: 2000, output: 400, cacheRead: 1200, cacheCreation: 300, reasoning: 0 };
      fake.enqueue({ usage }, { usage });
      await client.messages.create(base);
      const stream = await client.messages.create({ ...base, stream: true });
      for await (const _ of stream);
      const spans = await spansOf(2);
      const cost = createCostCalculator().price('anthropic', 'claude-haiku-4-5', {
        inputTokens: 2000,
        outputTokens: 400,
        cacheReadTokens: 1200,
        cacheCreationTokens: 300,
      });
      for (const span of spans) {
        expect(span.attributes['gen_ai.usage.input_tokens']).toBe(2000);
        expect(span.attributes['gen_ai.usage.cache_read.input_tokens']).toBe(1200);
        expect(span.attributes['gen_ai.usage.cache_write.input_tokens']).toBe(300);
        expect(span.attributes['gen_ai.usage.cache_creation.input_tokens']).toBe(300);
        expect(span.attributes['gen_ai.usage.output_tokens']).toBe(400);
        expect(span.attributes['gen_ai.usage.cost.amount']).toBe((cost as { amountUsd: number }).amountUsd);
      }
    });

    it('thinking: reasoning tokens are recorded and the thinking text is part of the hashed output', async () => {
      fake.enqueue({ usage: { output: 90, reasoning: 40 } }, { usage: { output: 90, reasoning: 40 } });
      const thinking = { type: 'enabled', budget_tokens: 1024 };
      await client.messages.create({ ...base, thinking });
      const stream = await client.messages.create({ ...base, thinking, stream: true });
      for await (const _ of stream);
      const [plain, streamed] = await spansOf(2);
      expect(plain.attributes['gen_ai.usage.reasoning.output_tokens']).toBe(40);
      expect(streamed.attributes['gen_ai.usage.reasoning.output_tokens']).toBe(40);
      expect(streamed.attributes['llm_audit.output.hash']).toBe(plain.attributes['llm_audit.output.hash']);
    });

    it('tool_use: names recorded; streamed JSON fragments hash like the whole input object', async () => {
      const toolCalls = [{ name: 'search_docs', arguments: '{"query": "retention policy", "limit": 3}', id: 'toolu_1' }];
      fake.enqueue({ toolCalls }, { toolCalls });
      await client.messages.create(base);
      const stream = await client.messages.create({ ...base, stream: true });
      for await (const _ of stream);
      const [plain, streamed] = await spansOf(2);
      expect(plain.attributes['llm_audit.tool.names']).toEqual(['search_docs']);
      expect(streamed.attributes['llm_audit.tool.names']).toEqual(['search_docs']);
      expect(plain.attributes['gen_ai.response.finish_reasons']).toEqual(['tool_use']);
      expect(streamed.attributes['llm_audit.output.hash']).toBe(plain.attributes['llm_audit.output.hash']);
    });

    it('request parameters: top_k and stop_sequences', async () => {
      await client.messages.create({ ...base, top_k: 5, top_p: 0.8, stop_sequences: ['###'] });
      const [span] = await spansOf(1);
      expect(span.attributes['gen_ai.request.top_k']).toBe(5);
      expect(span.attributes['gen_ai.request.top_p']).toBe(0.8);
      expect(span.attributes['gen_ai.request.stop_sequences']).toEqual(['###']);
      expect(span.attributes['gen_ai.request.max_tokens']).toBe(256);
    });

    it("messages.stream(): the helper's events, text and final message unchanged; the span is named by the helper", async () => {
      const texts: string[] = [];
      const stream = client.messages.stream(base).on('text', (t: string) => texts.push(t));
      const message = await stream.finalMessage();
      expect(texts.join('')).toBe(expectedText());
      expect(message.usage.output_tokens).toBe(expectedUsage().output);
      const spans = await spansOf(1);
      expect(spans).toHaveLength(1);
      expect(spans[0].attributes['llm_audit.action']).toBe('messages.stream');
      expect(spans[0].attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    });
  });

  describe('beta.messages (the door to newer Anthropic features)', () => {
    it('create, stream and a streamed create: one audit span each, with the hashes, usage and cost', async () => {
      const result = await client.beta.messages.create({ ...base, system: 'be terse' });
      expect(result.content[0].text).toBe(expectedText());
      const texts: string[] = [];
      await client.beta.messages.stream(base).on('text', (t: string) => texts.push(t)).finalMessage();
      expect(texts.join('')).toBe(expectedText());
      let streamed = '';
      for await (const event of await client.beta.messages.create({ ...base, stream: true })) {
        if (event.type === 'content_block_delta' && event.delta?.type === 'text_delta') streamed += event.delta.text;
      }
      expect(streamed).toBe(expectedText());
      const spans = await spansOf(3);
      expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['beta.messages.create', 'beta.messages.stream', 'beta.messages.create']);
      for (const span of spans) {
        expect(span.attributes['gen_ai.provider.name']).toBe('anthropic');
        expect(span.attributes['llm_audit.status']).toBe('success');
        expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
        expect(span.attributes['llm_audit.output.hash']).toMatch(/^hmac-sha256:/);
        expect(span.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
        expect(span.attributes['llm_audit.cost.status']).toBe('priced');
      }
      expect(spans[0].attributes['llm_audit.system_prompt.hash']).toMatch(/^hmac-sha256:/);
    });
  });

  describe("the SDK's own spans (@anthropic-ai/sdk >= 0.137)", () => {
    it('a global tracer provider is registered, yet each call yields exactly one GenAI span: ours', async () => {
      await client.messages.create(base);
      const stream = await client.messages.create({ ...base, stream: true });
      for await (const _ of stream);
      await client.messages.stream(base).finalMessage();
      await spansOf(3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const spans = audit.spans();
      expect(spans.map((s) => s.instrumentationScope.name)).toEqual(['otel-llm-audit', 'otel-llm-audit', 'otel-llm-audit']);
    });

    it('suppression is only for the audited call: the client keeps its tracer for everything else', async () => {
      const before = client._tracer;
      await client.messages.create(base);
      expect(client._tracer).toBe(before);
      expect(before).toBeDefined();
    });
  });
});
