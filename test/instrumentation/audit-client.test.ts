import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { auditClient } from '../../src';
import { publishAuditServices } from '../../src/core/audit-client';
import { expectedText, type FakeProvider } from '../support/fake-provider';
import { startFakeBedrock } from '../support/fake-bedrock';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';

// auditClient(client): a client whose SDK module was never patched (as in a bundle that inlined
// openai) is audited exactly as the patch would; a client of a patched class is left alone (one span
// per call, never two); with no instrumentation running it says so once on stderr.

// Only Anthropic is patched: the openai classes stay as a bundle would have them.
const audit = setupAudit({ providers: ['anthropic'] });
const OpenAI = audit.load('openai').OpenAI;
const { GoogleGenAI } = audit.load('@google/genai');
const { Mistral } = audit.load('@mistralai/mistralai', join(repoRoot, 'test', 'sdk-versions', 'mistral'));
const Anthropic = audit.load('@anthropic-ai/sdk').Anthropic;
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
// What LlmAuditInstrumentation publishes when constructed (src/instrumentation.ts).
const publishHarness = () => publishAuditServices(() => (audit.instrumentation.isEnabled() ? (audit.instrumentation as any).services : undefined));
beforeAll(() => {
  fake = fakeProvider();
  publishHarness();
});
afterEach(() => publishHarness());

const openai = () => new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
const ask = (client: any, model = 'gpt-4o-mini') => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

describe('auditClient on a GoogleGenAI or Mistral client whose module is not patched', () => {
  it('each model call becomes one audit span; before, none', async () => {
    const google = () => new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: fake.googleBaseURL } });
    const mistral = () => new Mistral({ apiKey: 'test-key', serverURL: fake.mistralBaseURL });
    const ask = (g: any, m: any) =>
      Promise.all([
        g.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }),
        m.chat.complete({ model: 'mistral-small-latest', messages: [{ role: 'user', content: 'hi' }] }),
        m.embeddings.create({ model: 'mistral-embed', inputs: ['hi'] }),
      ]);
    await ask(google(), mistral());
    expect(audit.auditSpans()).toHaveLength(0);
    const [answer] = await ask(auditClient(google()), auditClient(mistral()));
    expect(answer.text).toBe(expectedText());
    const spans = await audit.spansWhen(3);
    expect(spans.map((s) => s.attributes['gen_ai.provider.name']).sort()).toEqual(['gcp.gemini', 'mistral_ai', 'mistral_ai']);
    expect(spans.map((s) => s.attributes['llm_audit.action']).sort()).toEqual(['chat.complete', 'embeddings.create', 'models.generateContent']);
  });
});

describe('auditClient on a client whose module is not patched', () => {
  it('the unwrapped client makes no span (the premise: this is the bundled case)', async () => {
    await ask(openai());
    expect(audit.auditSpans()).toHaveLength(0);
  });

  it('each call becomes one audit span with the attributes the patch gives', async () => {
    const client = auditClient(openai());
    const answer = await ask(client);
    expect(answer.choices[0].message.content).toBe(expectedText());
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(expectedText());
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
    const spans = await audit.spansWhen(3);
    expect(spans.map((s) => s.attributes['llm_audit.action'])).toEqual(['chat.completions.create', 'chat.completions.create', 'embeddings.create']);
    for (const span of spans) {
      expect(span.instrumentationScope.name).toBe('otel-llm-audit');
      expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:test:/);
      expect(span.attributes['server.port']).toBe(Number(new URL(fake.openaiBaseURL).port));
    }
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
  });

  it('helpers name their action, as with the patch (chat.completions.stream)', async () => {
    const client = auditClient(openai());
    await client.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).finalChatCompletion();
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.action']).toBe('chat.completions.stream');
    expect(audit.auditSpans()).toHaveLength(1);
  });

  it('a second auditClient() on the same client is a no-op: one span per call', async () => {
    const client = auditClient(auditClient(openai()));
    await ask(client);
    await audit.spansWhen(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(audit.auditSpans()).toHaveLength(1);
  });

  it('other clients of the same class stay as they were', async () => {
    auditClient(openai());
    await ask(openai());
    await new Promise((r) => setTimeout(r, 50));
    expect(audit.auditSpans()).toHaveLength(0);
  });
});

it('on a client of a patched class it is a no-op: one span per call, not two', async () => {
  const client = auditClient(new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 }));
  await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  await audit.spansWhen(1);
  await new Promise((r) => setTimeout(r, 50));
  expect(audit.auditSpans().map((s) => s.attributes['llm_audit.action'])).toEqual(['messages.create']);
});

it('with no instrumentation running: said once on stderr, the client still works', async () => {
  publishAuditServices(() => undefined);
  const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const client = auditClient(openai());
    const answer = await ask(client);
    await ask(auditClient(openai()));
    expect(answer.choices[0].message.content).toBe(expectedText());
    const said = write.mock.calls.map((c) => String(c[0])).filter((t) => t.includes('auditClient()'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/not started.*NOT audited/);
  } finally {
    write.mockRestore();
  }
  expect(audit.auditSpans()).toHaveLength(0);
});

it('an object that is not a client is returned as is', () => {
  const thing = { hello: 1 };
  expect(auditClient(thing)).toBe(thing);
});

it('a Bedrock Runtime client (module not patched): its send() is audited per command, other clients of the class are not', async () => {
  const { BedrockRuntimeClient, ConverseCommand } = audit.load('@aws-sdk/client-bedrock-runtime');
  const bedrock = await startFakeBedrock();
  const input = { modelId: 'anthropic.claude-3-5-sonnet-20240620-v1:0', messages: [{ role: 'user', content: [{ text: 'hi' }] }] };
  const plain = new BedrockRuntimeClient(bedrock.clientConfig);
  const audited = auditClient(new BedrockRuntimeClient(bedrock.clientConfig));
  try {
    await plain.send(new ConverseCommand(input));
    expect(audit.auditSpans()).toHaveLength(0);
    const output = await audited.send(new ConverseCommand(input));
    expect(output.usage.inputTokens).toBe(13);
    const spans = await audit.spansWhen(1);
    expect(spans).toHaveLength(1);
    expect(spans[0]!.attributes).toMatchObject({ 'gen_ai.provider.name': 'aws.bedrock', 'llm_audit.action': 'Converse', 'gen_ai.usage.input_tokens': 13 });
  } finally {
    plain.destroy();
    audited.destroy();
    await bedrock.close();
  }
});
