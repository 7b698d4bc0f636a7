import { beforeAll, describe, expect, it } from 'vitest';
import { createCostCalculator } from '../../src/audit/cost';
import { LlmAuditInstrumentation } from '../../src/instrumentation';
import { providerHostMap } from '../../src/instrumentations/provider-hosts';
import { expectedUsage, type FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';
import { redirectFetch } from '../support/platform-routes';

// The openai package pointed at other providers' OpenAI-compatible endpoints: the recipient is the
// provider behind the host (built-in hosts, or the operator's map for a self-hosted one), and the
// call is priced with that provider's prices.

const audit = setupAudit({ providerHosts: { '127.0.0.1': 'vllm', 'llm.corp.example:8443': 'deepseek' } });
const OpenAI = audit.load('openai').OpenAI;
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const messages = [{ role: 'user', content: 'hi' }];

/** One chat call through `baseURL`, answered with `model`; its span. */
async function callThrough(baseURL: string, model: string) {
  audit.reset();
  fake.reset();
  const origin = new URL(baseURL).origin;
  const prefix = new URL(baseURL).pathname.replace(/\/v1$/, '');
  const client = new OpenAI({ baseURL, apiKey: 'test', maxRetries: 0, fetch: redirectFetch(origin + prefix, fake.url) });
  fake.enqueue({ model });
  await client.chat.completions.create({ model, messages });
  const [span] = await audit.spansWhen(1);
  return span;
}

describe('OpenAI-compatible providers', () => {
  it('the provider behind a known host, with server.address kept, priced with its prices', async () => {
    const span = await callThrough('https://api.groq.com/openai/v1', 'llama-3.3-70b-versatile');
    const a = span.attributes;
    expect(a['gen_ai.provider.name']).toBe('groq');
    expect(a['server.address']).toBe('api.groq.com');
    const u = expectedUsage();
    const price = createCostCalculator().price('groq', 'llama-3.3-70b-versatile', { inputTokens: u.input, outputTokens: u.output, cacheReadTokens: u.cacheRead, reasoningTokens: u.reasoning });
    expect(price.status).toBe('priced');
    expect(a['llm_audit.cost.status']).toBe('priced');
    expect(a['gen_ai.usage.cost.amount']).toBe((price as { amountUsd: number }).amountUsd);
  });

  it('names the conventions give (deepseek, x_ai, mistral_ai, perplexity) and genai-prices ids for the rest', async () => {
    const cases: [string, string, string][] = [
      ['https://api.deepseek.com/v1', 'deepseek-chat', 'deepseek'],
      ['https://api.x.ai/v1', 'grok-3', 'x_ai'],
      ['https://api.mistral.ai/v1', 'mistral-large-latest', 'mistral_ai'],
      ['https://api.perplexity.ai/v1', 'sonar', 'perplexity'],
      ['https://openrouter.ai/api/v1', 'openai/gpt-4o', 'openrouter'],
      ['https://api.together.xyz/v1', 'meta-llama/Llama-3.3-70B-Instruct-Turbo', 'together'],
      ['https://api.fireworks.ai/inference/v1', 'accounts/fireworks/models/llama-v3p1-8b-instruct', 'fireworks'],
      ['https://generativelanguage.googleapis.com/v1beta/openai/v1', 'gemini-2.0-flash', 'gcp.gemini'],
      ['https://api.openai.com/v1', 'gpt-4o-mini', 'openai'],
    ];
    for (const [baseURL, model, provider] of cases) {
      const span = await callThrough(baseURL, model);
      expect([baseURL, span.attributes['gen_ai.provider.name']]).toEqual([baseURL, provider]);
      expect([baseURL, span.attributes['llm_audit.cost.status']]).toEqual([baseURL, 'priced']);
    }
  });

  it('a self-hosted endpoint named by the operator map (vLLM on loopback): that provider, unpriced without an override', async () => {
    const client = new OpenAI({ baseURL: fake.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
    await client.chat.completions.create({ model: 'meta-llama/Llama-3.1-8B-Instruct', messages });
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['gen_ai.provider.name']).toBe('vllm');
    expect(span.attributes['server.address']).toBe('127.0.0.1');
    expect(span.attributes['llm_audit.cost.status']).toBe('unpriced');
  });

  it('the operator map wins over the built-in hosts and the client class', async () => {
    const span = await callThrough('https://llm.corp.example:8443/v1', 'deepseek-chat');
    expect(span.attributes['gen_ai.provider.name']).toBe('deepseek');
    expect(span.attributes['server.port']).toBe(8443);
    expect(span.attributes['llm_audit.cost.status']).toBe('priced');
    const AzureOpenAI = audit.load('openai').AzureOpenAI;
    audit.reset();
    const azure = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-10-21', maxRetries: 0 });
    await azure.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [gateway] = await audit.spansWhen(1);
    expect(gateway.attributes['gen_ai.provider.name']).toBe('vllm');
  });
});

describe('LLM_AUDIT_PROVIDER_HOSTS', () => {
  it('maps host and host:port entries; unknown hosts stay unmapped', () => {
    const map = providerHostMap(undefined, { LLM_AUDIT_PROVIDER_HOSTS: ' vllm.internal:8000=vllm , *.llm.corp=litellm' })!;
    expect(map('vllm.internal', 8000)).toBe('vllm');
    expect(map('vllm.internal', 8001)).toBeUndefined();
    expect(map('a.llm.corp', 443)).toBe('litellm');
    expect(map('api.groq.com', 443)).toBeUndefined();
    expect(providerHostMap(undefined, {})).toBeUndefined();
    expect(providerHostMap(undefined, { LLM_AUDIT_PROVIDER_HOSTS: ' ' })).toBeUndefined();
  });

  it('a bad entry is a configuration error naming it, from the variable and from the option', () => {
    const bad = (value: string) => () => providerHostMap(undefined, { LLM_AUDIT_PROVIDER_HOSTS: value });
    expect(bad('vllm.internal')).toThrow(/LLM_AUDIT_PROVIDER_HOSTS: "vllm.internal" is not host=provider/);
    expect(bad('https://vllm.internal=vllm')).toThrow(/LLM_AUDIT_PROVIDER_HOSTS: "https:\/\/vllm.internal" is not a host or host:port/);
    expect(bad('vllm.internal=')).toThrow(/the provider name for "vllm.internal" is ""/);
    expect(bad('vllm.internal=My vLLM')).toThrow(/the provider name for "vllm.internal" is "My vLLM"/);
    expect(bad('vllm.internal:99999=vllm')).toThrow(/port "99999" is not 1-65535/);
    expect(() => providerHostMap({ 'vllm.internal': '' })).toThrow(/^providerHosts: the provider name for "vllm.internal"/);
    const saved = process.env.LLM_AUDIT_PROVIDER_HOSTS;
    process.env.LLM_AUDIT_PROVIDER_HOSTS = 'vllm.internal';
    try {
      expect(() => new LlmAuditInstrumentation({ hashKey: 'test-hash-key-0123456789', enabled: false })).toThrow(/LLM_AUDIT_PROVIDER_HOSTS/);
    } finally {
      if (saved === undefined) delete process.env.LLM_AUDIT_PROVIDER_HOSTS;
      else process.env.LLM_AUDIT_PROVIDER_HOSTS = saved;
    }
  });
});
