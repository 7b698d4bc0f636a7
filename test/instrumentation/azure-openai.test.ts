import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createCostCalculator } from '../../src/audit/cost';
import { expectedModel, expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { repoRoot, setupAudit, useFakeProvider } from '../support/harness';
import { redirectFetch } from '../support/platform-routes';

// Azure OpenAI through the openai package's AzureOpenAI client: the recipient, the deployment as
// the request model, the api-version, prices by the model that answered, and Azure's content
// filter results as guardrail events, from responses recorded from the real service.

const audit = setupAudit();
const { AzureOpenAI, OpenAI } = audit.load('openai');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const spansOf = (n: number) => audit.spansWhen(n);
const messages = [{ role: 'user', content: 'Tell me a joke about opentelemetry' }];
const guardrails = (span: { events: { name: string; attributes?: Record<string, unknown> }[] }) =>
  span.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes);

/** The `index`th response of a VCR cassette recorded from the real Azure OpenAI service. */
function recorded(file: string, index: number): { contentType: string; body: string; status: number } {
  const cassette = parse(readFileSync(join(__dirname, '..', 'fixtures', 'azure', file), 'utf8'));
  const response = cassette.interactions[index].response;
  const contentType = response.headers['Content-Type'] ?? response.headers['content-type'];
  return { contentType: contentType[0], body: response.body.string, status: response.status.code };
}

describe('AzureOpenAI', () => {
  it('records azure.ai.openai, the deployment as the request model, the api-version, and prices by the model that answered', async () => {
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-10-21', deployment: 'prod-chat', maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [span] = await spansOf(1);
    const a = span.attributes;
    expect(fake.requests[0].path).toBe('/openai/deployments/prod-chat/chat/completions');
    expect(a['gen_ai.provider.name']).toBe('azure.ai.openai');
    expect(a['gen_ai.request.model']).toBe('prod-chat');
    expect(span.name).toBe('chat prod-chat');
    expect(a['llm_audit.azure_openai.api_version']).toBe('2024-10-21');
    expect(a['server.address']).toBe('127.0.0.1');
    const responseModel = expectedModel('chat', 'gpt-4o-mini');
    expect(a['gen_ai.response.model']).toBe(responseModel);
    const u = expectedUsage();
    const price = createCostCalculator().price('azure.ai.openai', responseModel, { inputTokens: u.input, outputTokens: u.output, cacheReadTokens: u.cacheRead, reasoningTokens: u.reasoning });
    expect(price.status).toBe('priced');
    expect(a['llm_audit.cost.status']).toBe('priced');
    expect(a['gen_ai.usage.cost.amount']).toBe((price as { amountUsd: number }).amountUsd);
  });

  it('without a deployment on the client, the model the request names is the deployment (as the SDK puts it in the path)', async () => {
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-10-21', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'my-gpt-4o', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(expectedText());
    const [span] = await spansOf(1);
    expect(fake.requests[0].path).toBe('/openai/deployments/my-gpt-4o/chat/completions');
    expect(span.attributes['gen_ai.request.model']).toBe('my-gpt-4o');
    expect(span.attributes['gen_ai.provider.name']).toBe('azure.ai.openai');
  });

  it('embeddings go to the deployment too; the Responses API (not under /deployments) records the model the request names', async () => {
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2025-04-01-preview', deployment: 'prod-embed', maxRetries: 0 });
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    await client.responses.create({ model: 'prod-gpt-4o', input: 'hello' });
    const spans = await spansOf(2);
    expect(fake.requests.map((r) => r.path)).toEqual(['/openai/deployments/prod-embed/embeddings', '/openai/responses']);
    expect(spans.map((s) => [s.attributes['gen_ai.operation.name'], s.attributes['gen_ai.request.model'], s.attributes['gen_ai.provider.name']])).toEqual([
      ['embeddings', 'prod-embed', 'azure.ai.openai'],
      ['chat', 'prod-gpt-4o', 'azure.ai.openai'],
    ]);
  });

  it.each(['openai-4', 'openai-5'])('the same with %s (test/sdk-versions)', async (dir) => {
    const sdk = audit.load('openai', join(repoRoot, 'test', 'sdk-versions', dir));
    const client = new sdk.AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-06-01', deployment: 'prod-chat', maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [span] = await spansOf(1);
    expect(fake.requests[0].path).toBe('/openai/deployments/prod-chat/chat/completions');
    expect(span.attributes['gen_ai.provider.name']).toBe('azure.ai.openai');
    expect(span.attributes['gen_ai.request.model']).toBe('prod-chat');
    expect(span.attributes['llm_audit.azure_openai.api_version']).toBe('2024-06-01');
    expect(span.attributes['llm_audit.cost.status']).toBe('priced');
  });

  it('an Azure host reached with the plain OpenAI client (the v1 API) is azure.ai.openai too', async () => {
    const origin = 'https://myres.openai.azure.com';
    const client = new OpenAI({ baseURL: `${origin}/openai/v1`, apiKey: 'azure-test', maxRetries: 0, fetch: redirectFetch(`${origin}/openai`, fake.url) });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    const [span] = await spansOf(1);
    expect(fake.requests[0].path).toBe('/v1/chat/completions');
    expect(span.attributes['server.address']).toBe('myres.openai.azure.com');
    expect(span.attributes['server.port']).toBe(443);
    expect(span.attributes['gen_ai.provider.name']).toBe('azure.ai.openai');
    expect(span.attributes['llm_audit.azure_openai.api_version']).toBeUndefined();
  });
});

describe('replayed from the real Azure OpenAI service', () => {
  it('a stream: id and model from the first chunk that has them, never the empty ones of the content-filter chunk', async () => {
    const replay = recorded('test_chat_streaming.yaml', 1);
    expect(replay.body.startsWith('data: {"choices":[],"created":0,"id":"","model":""')).toBe(true);
    fake.enqueue({ replay: { contentType: replay.contentType, body: replay.body } });
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-02-01', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'openllmetry-testing', messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toContain('OpenTelemetry');
    const [span] = await spansOf(1);
    const a = span.attributes;
    expect(a['gen_ai.response.id']).toBe('chatcmpl-DPTBaSsimU1JbOyrWiQNkSSfOPQE7');
    expect(a['gen_ai.response.model']).toBe('gpt-4.1-mini-2025-04-14');
    expect(a['gen_ai.request.model']).toBe('openllmetry-testing');
    expect(a['gen_ai.response.finish_reasons']).toEqual(['stop']);
    for (const value of Object.values(a)) expect(value).not.toBe('');
    // The recording asked for no usage: the call is "no usage", not priced as a wrong model.
    expect(a['llm_audit.usage.status']).toBe('missing');
    expect(a['llm_audit.cost.status']).toBe('no_usage');
    // One decision per location and category, however many chunks repeated it.
    expect(guardrails(span)).toEqual([
      ...['hate', 'jailbreak', 'self_harm', 'sexual', 'violence'].map((category) => ({
        'llm_audit.guardrail.name': 'azure.content_filter.prompt',
        'llm_audit.guardrail.action': 'allowed',
        'llm_audit.guardrail.category': category,
        ...(category === 'jailbreak' ? {} : { 'llm_audit.guardrail.severity': 'safe' }),
      })),
      ...['hate', 'protected_material_code', 'protected_material_text', 'self_harm', 'sexual', 'violence'].map((category) => ({
        'llm_audit.guardrail.name': 'azure.content_filter.completion',
        'llm_audit.guardrail.action': 'allowed',
        'llm_audit.guardrail.category': category,
        ...(category.startsWith('protected') ? {} : { 'llm_audit.guardrail.severity': 'safe' }),
      })),
    ]);
  });

  it('a completion the filter withheld: a blocked guardrail event with its category and severity, and the call priced at Azure prices', async () => {
    const { contentType, body } = recorded('test_chat_content_filtering.yaml', 0);
    fake.enqueue({ replay: { contentType, body } });
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-02-01', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'openllmetry-testing', messages });
    expect(completion.choices[0].finish_reason).toBe('content_filter');
    const [span] = await spansOf(1);
    const a = span.attributes;
    expect(a['gen_ai.response.finish_reasons']).toEqual(['content_filter']);
    const events = guardrails(span);
    expect(events).toContainEqual({
      'llm_audit.guardrail.name': 'azure.content_filter.completion',
      'llm_audit.guardrail.action': 'blocked',
      'llm_audit.guardrail.category': 'hate',
      'llm_audit.guardrail.severity': 'high',
    });
    expect(events.filter((e) => e?.['llm_audit.guardrail.action'] === 'allowed')).toHaveLength(7);
    const price = createCostCalculator().price('azure.ai.openai', 'gpt-35-turbo', { inputTokens: 15, outputTokens: 19 });
    expect(price.status).toBe('priced');
    expect(a['gen_ai.usage.cost.amount']).toBe((price as { amountUsd: number }).amountUsd);
  });

  it('a prompt the filter refused (400 content_filter): the refused categories as blocked guardrail events on the failed call', async () => {
    const { contentType, body, status } = recorded('test_prompt_content_filtering.yaml', 0);
    expect(body).toContain('"code": "content_filter"');
    // The cassette stores this body under status 200; Azure answers it with 400, as the body's own
    // `"status": 400` says, and the SDK only treats it as the error it is with that status.
    expect(status).toBe(200);
    fake.enqueue({ status: 400, replay: { contentType, body } });
    const client = new AzureOpenAI({ endpoint: fake.url, apiKey: 'azure-test', apiVersion: '2024-02-01', maxRetries: 0 });
    await expect(client.chat.completions.create({ model: 'openllmetry-testing', messages })).rejects.toMatchObject({ status: 400, code: 'content_filter' });
    const [span] = await spansOf(1);
    expect(span.attributes['llm_audit.status']).toBe('error');
    expect(span.attributes['http.response.status_code']).toBe(400);
    const decision = (category: string, action: string, severity: string) => ({
      'llm_audit.guardrail.name': 'azure.content_filter.prompt',
      'llm_audit.guardrail.action': action,
      'llm_audit.guardrail.category': category,
      'llm_audit.guardrail.severity': severity,
    });
    expect(guardrails(span)).toEqual([
      decision('hate', 'blocked', 'high'),
      decision('self-harm', 'blocked', 'high'),
      decision('sexual', 'allowed', 'safe'),
      decision('violence', 'blocked', 'medium'),
    ]);
  });
});
