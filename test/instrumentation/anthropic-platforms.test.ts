import { beforeAll, describe, expect, it } from 'vitest';
import { createCostCalculator } from '../../src/audit/cost';
import { expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { eventually, setupAudit, useFakeProvider } from '../support/harness';
import { redirectFetch } from '../support/platform-routes';

// Claude on Amazon Bedrock and Google Vertex AI through Anthropic's platform SDKs, subclasses of the
// Anthropic client. This file loads only those two packages, never '@anthropic-ai/sdk' itself, as an
// app that uses only Bedrock does: their calls must be audited all the same.

const audit = setupAudit();
const { AnthropicBedrock } = audit.load('@anthropic-ai/bedrock-sdk');
const { AnthropicVertex } = audit.load('@anthropic-ai/vertex-sdk');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const messages = [{ role: 'user', content: 'hi' }];
/** This package's span of the call (the SDK would make one of its own if the call were not audited). */
const auditSpan = () => eventually(() => audit.auditSpans()[0]);
const BEDROCK_HOST = 'https://bedrock-runtime.us-east-1.amazonaws.com';
// Explicit fake AWS credentials: the SDK signs locally (SigV4) and never asks AWS for any.
const awsCredentials = { awsRegion: 'us-east-1', awsAccessKey: 'AKIAIOSFODNN7EXAMPLE', awsSecretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
// Vertex's public `authClient` option: what it is asked for is request headers (no Google call).
const googleAuthClient = { projectId: 'test-project', getRequestHeaders: async () => new Headers({ authorization: 'Bearer ya29.test-token' }) };

function priceOf(provider: string, model: string): number {
  const u = expectedUsage();
  const result = createCostCalculator().price(provider, model, { inputTokens: u.input, outputTokens: u.output, cacheReadTokens: u.cacheRead, cacheCreationTokens: u.cacheCreation });
  expect(result.status).toBe('priced');
  return (result as { amountUsd: number }).amountUsd;
}

describe('Amazon Bedrock (@anthropic-ai/bedrock-sdk)', () => {
  const model = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

  it('a message: aws.bedrock, the Bedrock host, priced at Bedrock prices', async () => {
    const client = new AnthropicBedrock({ ...awsCredentials, maxRetries: 0, fetch: redirectFetch(BEDROCK_HOST, fake.url) });
    const message = await client.messages.create({ model, max_tokens: 100, messages });
    expect(message.content[0].text).toBe(expectedText());
    expect(fake.requests[0].path).toBe(`/model/${model}/invoke`);
    expect(fake.requests[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
    const span = await auditSpan();
    const a = span.attributes;
    expect(a['gen_ai.provider.name']).toBe('aws.bedrock');
    expect(a['server.address']).toBe('bedrock-runtime.us-east-1.amazonaws.com');
    expect(a['gen_ai.request.model']).toBe(model);
    expect(a['gen_ai.response.model']).toBe(model);
    expect(a['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
    expect(a['gen_ai.usage.cost.amount']).toBe(priceOf('aws.bedrock', model));
    expect(a['llm_audit.status']).toBe('success');
  });

  it('a stream in AWS event-stream framing: the text, usage and price, stream completed', async () => {
    const client = new AnthropicBedrock({ ...awsCredentials, baseURL: fake.url, maxRetries: 0 });
    const stream = await client.messages.create({ model, max_tokens: 100, messages, stream: true });
    let text = '';
    for await (const event of stream) if (event.type === 'content_block_delta') text += event.delta.text ?? '';
    expect(text).toBe(expectedText());
    expect(fake.requests[0].path).toBe(`/model/${model}/invoke-with-response-stream`);
    const span = await auditSpan();
    const a = span.attributes;
    expect(a['gen_ai.provider.name']).toBe('aws.bedrock');
    expect(a['server.address']).toBe('127.0.0.1');
    expect(a['llm_audit.stream.outcome']).toBe('completed');
    expect(a['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    expect(a['gen_ai.usage.cost.amount']).toBe(priceOf('aws.bedrock', model));
  });

  it('an error event inside the event stream: the call fails as errored, with the error type the provider sent', async () => {
    fake.enqueue({ failAfterChunks: 2, errorType: 'overloaded_error', errorMessage: 'Overloaded' });
    const client = new AnthropicBedrock({ ...awsCredentials, baseURL: fake.url, maxRetries: 0 });
    const stream = await client.messages.create({ model, max_tokens: 100, messages, stream: true });
    let caught: unknown;
    try {
      for await (const _event of stream);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    const span = await auditSpan();
    expect(span.attributes['gen_ai.provider.name']).toBe('aws.bedrock');
    expect(span.attributes['llm_audit.status']).toBe('error');
    expect(span.attributes['llm_audit.stream.outcome']).toBe('errored');
    expect(span.attributes['llm_audit.error.message']).toContain('Overloaded');
    expect(span.attributes['llm_audit.output.hash']).toBeDefined();
  });

  it('messages.stream() helper: one span, named by the helper', async () => {
    const client = new AnthropicBedrock({ ...awsCredentials, baseURL: fake.url, maxRetries: 0 });
    const final = await client.messages.stream({ model, max_tokens: 100, messages }).finalMessage();
    expect(final.content[0].text).toBe(expectedText());
    const span = await auditSpan();
    expect(audit.spans()).toHaveLength(1); // ours only: the SDK's own span is suppressed
    expect(span.attributes['llm_audit.action']).toBe('messages.stream');
    expect(span.attributes['gen_ai.provider.name']).toBe('aws.bedrock');
  });
});

describe('Google Vertex AI (@anthropic-ai/vertex-sdk)', () => {
  const model = 'claude-sonnet-4@20250514';
  const VERTEX_HOST = 'https://us-east5-aiplatform.googleapis.com';

  it('a message: gcp.vertex_ai, the Vertex host, priced at Vertex prices', async () => {
    const client = new AnthropicVertex({ region: 'us-east5', projectId: 'test-project', authClient: googleAuthClient, maxRetries: 0, fetch: redirectFetch(VERTEX_HOST, fake.url) });
    const message = await client.messages.create({ model, max_tokens: 100, messages });
    expect(message.content[0].text).toBe(expectedText());
    expect(fake.requests[0].path).toBe(`/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/${model}:rawPredict`);
    expect(fake.requests[0].headers.authorization).toBe('Bearer ya29.test-token');
    const span = await auditSpan();
    const a = span.attributes;
    expect(a['gen_ai.provider.name']).toBe('gcp.vertex_ai');
    expect(a['server.address']).toBe('us-east5-aiplatform.googleapis.com');
    expect(a['gen_ai.request.model']).toBe(model);
    expect(a['gen_ai.usage.cost.amount']).toBe(priceOf('gcp.vertex_ai', model));
  });

  it('a stream (:streamRawPredict): the text, usage and price', async () => {
    const client = new AnthropicVertex({ region: 'us-east5', projectId: 'test-project', authClient: googleAuthClient, baseURL: `${fake.url}/v1`, maxRetries: 0 });
    const stream = await client.messages.create({ model, max_tokens: 100, messages, stream: true });
    let text = '';
    for await (const event of stream) if (event.type === 'content_block_delta') text += event.delta.text ?? '';
    expect(text).toBe(expectedText());
    expect(fake.requests[0].path).toBe(`/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/${model}:streamRawPredict`);
    const span = await auditSpan();
    expect(span.attributes['gen_ai.provider.name']).toBe('gcp.vertex_ai');
    expect(span.attributes['llm_audit.stream.outcome']).toBe('completed');
    expect(span.attributes['gen_ai.usage.cost.amount']).toBe(priceOf('gcp.vertex_ai', model));
  });
});
