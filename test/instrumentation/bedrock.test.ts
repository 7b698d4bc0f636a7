import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { contentCipherFromEnv, createContentMasterKey, ENVELOPE_PREFIX } from '../../src/audit/content';
import { createContentHasher } from '../../src/audit/hashing';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, type LlmAuditHooks } from '../../src/guardrails';
import { recordFromSpan } from '../../src/ledger/record';
import * as recordings from '../support/bedrock-recordings';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock';
import { eventually, setupAudit } from '../support/harness';

// @aws-sdk/client-bedrock-runtime against the fake Bedrock (HTTP/2, AWS event-stream framing,
// published recordings): every operation that sends data is audited through client.send, with
// redaction (redact mode) and encrypted content on, and guardrail hooks set per test.

const dir = mkdtempSync(join(tmpdir(), 'bedrock-content-'));
const keyPath = join(dir, 'content.key');
createContentMasterKey(keyPath, 'k1');
const env = { LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath };
Object.assign(process.env, env);
const audit = setupAudit({ sanitize: { mode: 'redact' } });
for (const name of Object.keys(env)) delete process.env[name];
const reviewer = contentCipherFromEnv(env)!;
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const sdk = audit.load('@aws-sdk/client-bedrock-runtime');
const { BedrockRuntimeClient, BedrockRuntime, ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand, GetAsyncInvokeCommand } = sdk;

const CLAUDE = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const CANARY = 'CANARY-bedrock-5e1d-do-not-export';
const EMAIL = 'jane.doe@example.com';

let fake: FakeBedrock;
let client: any;
beforeAll(async () => {
  fake = await startFakeBedrock();
  client = new BedrockRuntimeClient(fake.clientConfig);
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
});
beforeEach(() => {
  audit.reset();
  fake.reset();
  setHooks(undefined);
});

function setHooks(hooks: LlmAuditHooks | undefined): void {
  audit.instrumentation.setConfig({ ...audit.instrumentation.getConfig(), hooks });
}

const converseInput = (text = 'Hello, how are you?', extra: Record<string, unknown> = {}) => ({
  modelId: CLAUDE,
  system: [{ text: 'You are a terse assistant.' }],
  messages: [{ role: 'user', content: [{ text }] }],
  inferenceConfig: { maxTokens: 100, temperature: 0.2, topP: 0.9, stopSequences: ['END'] },
  ...extra,
});

const claudeBody = (text = 'Hello, how are you?') => ({
  anthropic_version: 'bedrock-2023-05-31',
  max_tokens: 100,
  system: 'You are a terse assistant.',
  messages: [{ role: 'user', content: text }],
});

async function oneSpan(): Promise<ReadableSpan> {
  const spans = await audit.spansWhen(1);
  expect(spans).toHaveLength(1);
  return spans[0]!;
}

function envelopeOf(span: ReadableSpan): any {
  const envelope = String(span.attributes['llm_audit.content.encrypted']);
  expect(envelope.startsWith(ENVELOPE_PREFIX)).toBe(true);
  return reviewer.open(envelope, { requestId: String(span.attributes['llm_audit.request_id']) });
}

const recordedText = recordings.converseClaude.output.message.content[0]!.text;

describe('Converse', () => {
  it('records the GenAI and audit attributes, returns the SDK output unchanged', async () => {
    const output = await withAuditContext({ userId: 'u-1', tenantId: 't-1' }, () => client.send(new ConverseCommand(converseInput())));
    expect(output.output).toEqual(recordings.converseClaude.output);
    expect(output.usage).toEqual(recordings.converseClaude.usage);
    const span = await oneSpan();
    expect(span.name).toBe(`chat ${CLAUDE}`);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'aws.bedrock',
      'gen_ai.request.model': CLAUDE,
      'gen_ai.request.max_tokens': 100,
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.stop_sequences': ['END'],
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(fake.url).port),
      'llm_audit.action': 'Converse',
      'llm_audit.status': 'success',
      'llm_audit.usage.status': 'reported',
      'gen_ai.usage.input_tokens': 13,
      'gen_ai.usage.output_tokens': 35,
      'gen_ai.response.finish_reasons': ['end_turn'],
      'llm_audit.cost.status': 'priced',
      'user.id': 'u-1',
      'llm_audit.tenant.id': 't-1',
    });
    expect(span.attributes['gen_ai.usage.cost.amount']).toBeCloseTo((13 * 3 + 35 * 15) / 1e6, 12);
    expect(span.attributes['aws.request_id']).toMatch(/^[0-9a-f-]{36}$/);
    // The hashes cover the content as the envelope holds it: a reviewer recomputes them.
    const content = envelopeOf(span);
    expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hash(content.system_instructions));
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash(content.input_messages));
    expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash(content.output_messages));
    expect(content).toMatchObject({
      system_instructions: [{ type: 'text', content: 'You are a terse assistant.' }],
      input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'Hello, how are you?' }] }],
      output_messages: [{ role: 'assistant', finish_reason: 'end_turn', parts: [{ type: 'text', content: recordedText }] }],
    });
  });

  it('the aggregated BedrockRuntime client and the callback form are audited too', async () => {
    const aggregated = new BedrockRuntime(fake.clientConfig);
    await aggregated.converse(converseInput());
    const output = await new Promise((resolve, reject) => client.send(new ConverseCommand(converseInput()), (error: unknown, out: unknown) => (error ? reject(error) : resolve(out))));
    expect((output as any).output).toEqual(recordings.converseClaude.output);
    const spans = await audit.spansWhen(2);
    expect(spans.map((s) => s.attributes['llm_audit.status'])).toEqual(['success', 'success']);
    aggregated.destroy();
  });

  it('tool use: tool names and call ids; tool results and images in the input are walked', async () => {
    fake.enqueue({ json: recordings.converseToolUse });
    const image = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    await client.send(
      new ConverseCommand(
        converseInput('list files', {
          messages: [
            { role: 'user', content: [{ text: 'list files' }, { image: { format: 'png', source: { bytes: image } } }] },
            { role: 'assistant', content: [{ toolUse: { toolUseId: 't0', name: 'bash', input: { command: 'pwd' } } }] },
            { role: 'user', content: [{ toolResult: { toolUseId: 't0', content: [{ text: '/home' }, { json: { cwd: '/home' } }] } }] },
          ],
        }),
      ),
    );
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({ 'llm_audit.tool.names': ['bash'], 'llm_audit.tool.call_ids': ['tool-use-id'], 'gen_ai.response.finish_reasons': ['tool_use'] });
    const content = envelopeOf(span);
    expect(content.input_messages[0].parts[1]).toMatchObject({ type: 'blob_digest', modality: 'image', mime_type: 'image/png', bytes: image.length });
    expect(content.input_messages[1].parts[0]).toMatchObject({ type: 'tool_call', id: 't0', name: 'bash', arguments: { command: 'pwd' } });
    expect(content.input_messages[2].parts[0]).toMatchObject({ type: 'tool_call_response', id: 't0' });
    expect(content.output_messages[0].parts[0]).toMatchObject({ type: 'tool_call', id: 'tool-use-id', name: 'bash', arguments: '{"command":"ls -l"}' });
  });

  it('a response without usage: usage.status missing, no cost', async () => {
    const { usage: _usage, ...withoutUsage } = recordings.converseClaude;
    fake.enqueue({ json: withoutUsage });
    await client.send(new ConverseCommand(converseInput()));
    const span = await oneSpan();
    expect(span.attributes['llm_audit.usage.status']).toBe('missing');
    expect(span.attributes['llm_audit.cost.status']).toBe('no_usage');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
  });

  it('an error answer (x-amzn-ErrorType) is recorded with its type and status, its text scrubbed of the prompt', async () => {
    fake.enqueue({ status: 400, errorMessage: (body) => `Malformed input request: ${JSON.parse(body).messages[0].content[0].text}` });
    const error = await client.send(new ConverseCommand(converseInput(`${CANARY} question`))).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(String(error.message)).toContain(CANARY);
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'ValidationException', 'aws.request_id': error.$metadata.requestId });
    expect(JSON.stringify([span.attributes, span.status])).not.toContain(CANARY);
  });

  it('the recorded validation error of the service', async () => {
    fake.enqueue({ status: recordings.validationError.status, errorType: recordings.validationError.errorType.split(':')[0], errorMessage: recordings.validationError.body.message });
    await expect(client.send(new ConverseCommand(converseInput()))).rejects.toMatchObject({ name: 'ValidationException', message: recordings.validationError.body.message });
    expect((await oneSpan()).attributes['error.type']).toBe('ValidationException');
  });
});

describe('ConverseStream (AWS event stream)', () => {
  it('the events reach the application unchanged; the span ends with the same output hash as Converse', async () => {
    const output = await client.send(new ConverseStreamCommand(converseInput()));
    let text = '';
    let events = 0;
    for await (const event of output.stream) {
      events++;
      text += event.contentBlockDelta?.delta?.text ?? '';
    }
    expect(events).toBe(recordings.converseStreamClaude.length);
    expect(text).toBe(recordedText);
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({
      'llm_audit.action': 'ConverseStream',
      'gen_ai.request.stream': true,
      'llm_audit.stream.outcome': 'completed',
      'gen_ai.usage.input_tokens': 13,
      'gen_ai.usage.output_tokens': 35,
      'gen_ai.response.finish_reasons': ['end_turn'],
      'llm_audit.cost.status': 'priced',
    });
    expect(typeof span.attributes['gen_ai.response.time_to_first_chunk']).toBe('number');
    expect(span.attributes['aws.request_id']).toBe(output.$metadata.requestId);
    audit.reset();
    await client.send(new ConverseCommand(converseInput()));
    expect((await oneSpan()).attributes['llm_audit.output.hash']).toBe(span.attributes['llm_audit.output.hash']);
  });

  it('tool use deltas are joined into the tool call', async () => {
    fake.enqueue({ events: recordings.converseStreamToolUse });
    const output = await client.send(new ConverseStreamCommand(converseInput()));
    for await (const _event of output.stream);
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({ 'llm_audit.tool.names': ['test-tool'], 'gen_ai.usage.input_tokens': 125, 'gen_ai.response.finish_reasons': ['tool_use'] });
    expect(envelopeOf(span).output_messages[0].parts[0]).toMatchObject({ type: 'tool_call', arguments: '{"value":"Sparkle Day"}' });
  });

  it('break out of the loop: abandoned, with what arrived', async () => {
    const output = await client.send(new ConverseStreamCommand(converseInput()));
    let n = 0;
    for await (const _event of output.stream) if (++n === 3) break;
    const span = await oneSpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('abandoned');
    expect(envelopeOf(span).output_messages[0].parts[0].content).toBe('Hello! As');
  });

  it('a modelStreamErrorException mid-stream fails the call; the application gets the SDK error', async () => {
    fake.enqueue({ failAfterEvents: 4 });
    const output = await client.send(new ConverseStreamCommand(converseInput()));
    const error = await (async () => {
      for await (const _event of output.stream);
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ModelStreamErrorException' });
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'ModelStreamErrorException', 'llm_audit.stream.outcome': 'errored' });
  });

  it('aborted through the abortSignal of send() while nobody reads: aborted', async () => {
    const controller = new AbortController();
    fake.enqueue({ eventDelayMs: 20 });
    const output = await client.send(new ConverseStreamCommand(converseInput()), { abortSignal: controller.signal });
    const iterator = output.stream[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const span = await oneSpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('aborted');
    await iterator.next().catch(() => undefined);
  });

  it('a stream never read is recorded at shutdown as not consumed', async () => {
    await client.send(new ConverseStreamCommand(converseInput()));
    expect(audit.spans()).toHaveLength(0);
    audit.instrumentation.endOpenCalls();
    expect((await oneSpan()).attributes['llm_audit.stream.outcome']).toBe('not_consumed');
  });
});

describe('InvokeModel', () => {
  it('Anthropic body (string): Claude usage, response id and model, cost', async () => {
    const output = await client.send(new InvokeModelCommand({ modelId: CLAUDE, contentType: 'application/json', body: JSON.stringify(claudeBody()) }));
    expect(JSON.parse(output.body.transformToString())).toEqual(recordings.invokeClaude);
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({
      'llm_audit.action': 'InvokeModel',
      'gen_ai.request.model': CLAUDE,
      'gen_ai.request.max_tokens': 100,
      'gen_ai.response.id': recordings.invokeClaude.id,
      'gen_ai.response.model': 'claude-3-5-sonnet-20240620',
      'gen_ai.usage.input_tokens': 13,
      'gen_ai.usage.output_tokens': 35,
      'llm_audit.cost.status': 'priced',
    });
    const content = envelopeOf(span);
    expect(content.system_instructions).toEqual([{ type: 'text', content: 'You are a terse assistant.' }]);
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash(content.input_messages));
  });

  it('Amazon Nova body (bytes, us. inference profile): Converse-shaped, tool call, priced', async () => {
    fake.enqueue({ json: recordings.invokeNova });
    const body = new TextEncoder().encode(JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'weather?' }] }], inferenceConfig: { maxTokens: 100 } }));
    await client.send(new InvokeModelCommand({ modelId: 'us.amazon.nova-lite-v1:0', body }));
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({
      'gen_ai.request.max_tokens': 100,
      'gen_ai.usage.input_tokens': 454,
      'gen_ai.usage.output_tokens': 75,
      'llm_audit.tool.names': ['get_weather'],
      'llm_audit.cost.status': 'priced',
    });
    expect(envelopeOf(span).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'weather?' }] }]);
  });

  it('Meta Llama body: prompt in, generation out', async () => {
    await client.send(new InvokeModelCommand({ modelId: 'meta.llama3-8b-instruct-v1:0', body: JSON.stringify({ prompt: 'Hello, how are you?', max_gen_len: 100, temperature: 0.7 }) }));
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({
      'gen_ai.request.max_tokens': 100,
      'gen_ai.usage.input_tokens': 6,
      'gen_ai.usage.output_tokens': 18,
      'gen_ai.response.finish_reasons': ['length'],
      'llm_audit.cost.status': 'priced',
    });
    expect(envelopeOf(span).output_messages[0].parts).toEqual([{ type: 'text', content: recordings.invokeLlama.generation }]);
  });

  it('a body that cannot be read before it is sent (a stream) is refused in redact mode, not sent unredacted', async () => {
    const { Readable } = await import('node:stream');
    const error = await client.send(new InvokeModelCommand({ modelId: CLAUDE, body: Readable.from([JSON.stringify(claudeBody())]) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    expect(fake.requests).toHaveLength(0);
    const span = await oneSpan();
    expect(span.attributes['llm_audit.status']).toBe('blocked');
    // No hash could cover a body nobody read: none is recorded, rather than one over a placeholder.
    expect(span.attributes['llm_audit.input.hash']).toBeUndefined();
  });
});

describe('InvokeModelWithResponseStream', () => {
  it('Anthropic chunks: text, usage from message_start / message_delta', async () => {
    const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: CLAUDE, body: JSON.stringify(claudeBody('Tell me a short story')) }));
    let chunks = 0;
    for await (const event of output.body) if (event.chunk) chunks++;
    expect(chunks).toBe(recordings.invokeStreamClaude.length);
    const span = await oneSpan();
    const start = recordings.invokeStreamClaude[0]!.chunk as any;
    expect(span.attributes).toMatchObject({
      'llm_audit.action': 'InvokeModelWithResponseStream',
      'llm_audit.stream.outcome': 'completed',
      'gen_ai.response.id': start.message.id,
      'gen_ai.usage.input_tokens': start.message.usage.input_tokens,
      'llm_audit.cost.status': 'priced',
    });
  });

  it('Anthropic tool call chunks', async () => {
    fake.enqueue({ events: recordings.invokeStreamClaudeTools });
    const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: CLAUDE, body: JSON.stringify(claudeBody()) }));
    for await (const _event of output.body);
    const span = await oneSpan();
    expect(span.attributes).toMatchObject({ 'llm_audit.tool.names': ['get_weather'], 'gen_ai.response.finish_reasons': ['tool_use'], 'gen_ai.usage.output_tokens': 88 });
  });

  it('Meta Llama and Amazon Nova chunks: text and usage (Bedrock invocation metrics for Nova)', async () => {
    for (const modelId of ['meta.llama3-8b-instruct-v1:0', 'us.amazon.nova-micro-v1:0']) {
      audit.reset();
      const body = modelId.startsWith('meta') ? { prompt: 'story', max_gen_len: 120 } : { messages: [{ role: 'user', content: [{ text: 'story' }] }], inferenceConfig: { max_new_tokens: 150 } };
      const output = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body: JSON.stringify(body) }));
      for await (const _event of output.body);
      const span = await oneSpan();
      const last = (modelId.startsWith('meta') ? recordings.invokeStreamLlama : recordings.invokeStreamNova).at(-1)!.chunk as any;
      const metrics = last['amazon-bedrock-invocationMetrics'];
      expect(span.attributes['gen_ai.usage.output_tokens'], modelId).toBe(metrics.outputTokenCount);
      expect(span.attributes['llm_audit.cost.status'], modelId).toBe('priced');
      expect(String(envelopeOf(span).output_messages[0].parts[0].content).length, modelId).toBeGreaterThan(50);
    }
  });
});

describe('Bedrock Guardrails', () => {
  it('Converse trace.guardrail: one guardrail event per finding, with aws.bedrock.guardrail.id', async () => {
    fake.enqueue({ json: recordings.converseGuardrailIntervened });
    await client.send(new ConverseCommand(converseInput('tell me', { guardrailConfig: { guardrailIdentifier: '1abcd2ef34gh', guardrailVersion: '1', trace: 'enabled' } })));
    const span = await oneSpan();
    expect(span.attributes['aws.bedrock.guardrail.id']).toBe('1abcd2ef34gh');
    expect(span.attributes['gen_ai.response.finish_reasons']).toEqual(['guardrail_intervened']);
    const events = span.events.filter((e) => e.name === 'llm_audit.guardrail');
    expect(events.map((e) => e.attributes)).toEqual([
      {
        'llm_audit.guardrail.name': 'aws.bedrock.guardrail',
        'llm_audit.guardrail.action': 'blocked',
        'llm_audit.guardrail.category': 'topicPolicy.Restricted topic',
        'aws.bedrock.guardrail.id': '1abcd2ef34gh',
        'llm_audit.guardrail.stage': 'input',
      },
    ]);
  });

  it('InvokeModel amazon-bedrock-guardrailAction INTERVENED: recorded, matched text left out', async () => {
    // The recorded Claude answer with the fields Bedrock adds when the request names a guardrail.
    fake.enqueue({
      json: {
        ...recordings.invokeClaude,
        'amazon-bedrock-guardrailAction': 'INTERVENED',
        'amazon-bedrock-trace': { guardrail: { input: { gr1: { sensitiveInformationPolicy: { piiEntities: [{ match: EMAIL, type: 'EMAIL', action: 'ANONYMIZED' }] } } } } },
      },
    });
    await client.send(new InvokeModelCommand({ modelId: CLAUDE, guardrailIdentifier: 'gr1', guardrailVersion: 'DRAFT', trace: 'ENABLED', body: JSON.stringify(claudeBody()) }));
    const span = await oneSpan();
    expect(span.attributes['aws.bedrock.guardrail.id']).toBe('gr1');
    const events = span.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes);
    expect(events).toEqual([
      expect.objectContaining({ 'llm_audit.guardrail.action': 'modified', 'llm_audit.guardrail.category': 'sensitiveInformationPolicy.EMAIL', 'aws.bedrock.guardrail.id': 'gr1' }),
    ]);
    expect(JSON.stringify(span.events)).not.toContain(EMAIL);
  });
});

describe('hooks, redaction, canary', () => {
  it('blockRequest in beforeRequest: nothing is sent, the application gets LlmRequestBlockedError', async () => {
    setHooks({ beforeRequest: () => blockRequest('no', { name: 'policy' }) });
    const error = await client.send(new ConverseCommand(converseInput())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmRequestBlockedError);
    const streamError = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: CLAUDE, body: JSON.stringify(claudeBody()) })).catch((e: unknown) => e);
    expect(streamError).toBeInstanceOf(LlmRequestBlockedError);
    expect(fake.requests).toHaveLength(0);
    const spans = await audit.spansWhen(2);
    expect(spans.map((s) => s.attributes['llm_audit.status'])).toEqual(['blocked', 'blocked']);
  });

  it('an asynchronous hook holds the request until it has decided', async () => {
    let seen = -1;
    setHooks({
      beforeRequest: async (request) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        seen = fake.requests.length;
        expect(request.model).toBe(CLAUDE);
        expect(request.provider).toBe('aws.bedrock');
      },
    });
    await client.send(new ConverseCommand(converseInput()));
    expect(seen).toBe(0);
    expect(fake.requests).toHaveLength(1);
  });

  it('redact mode: Bedrock receives the redacted text (Converse input, InvokeModel body as string and bytes); the command is not changed', async () => {
    const command = new ConverseCommand(converseInput(`mail ${EMAIL} please`));
    await client.send(command);
    await client.send(new InvokeModelCommand({ modelId: CLAUDE, body: JSON.stringify(claudeBody(`mail ${EMAIL}`)) }));
    await client.send(new InvokeModelCommand({ modelId: 'meta.llama3-8b-instruct-v1:0', body: new TextEncoder().encode(JSON.stringify({ prompt: `mail ${EMAIL}` })) }));
    await eventually(() => audit.spans().length === 3);
    expect(fake.requests).toHaveLength(3);
    for (const request of fake.requests) {
      expect(request.rawBody).not.toContain(EMAIL);
      expect(request.rawBody).toContain('[EMAIL]');
    }
    expect(command.input.messages[0].content[0].text).toBe(`mail ${EMAIL} please`);
    const spans = audit.spans();
    expect(spans.map((s) => s.attributes['llm_audit.sanitization.count'])).toEqual([1, 1, 1]);
    expect(spans[0]!.events.find((e) => e.name === 'llm_audit.sanitization')?.attributes).toMatchObject({ 'llm_audit.sanitization.location': 'messages[0].content[0].text' });
    expect(spans[2]!.events.find((e) => e.name === 'llm_audit.sanitization')?.attributes).toMatchObject({ 'llm_audit.sanitization.location': 'body.prompt' });
  });

  it('commands that send no model input pass through unaudited', async () => {
    fake.enqueue({ status: 404 });
    await client.send(new GetAsyncInvokeCommand({ invocationArn: 'arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc' })).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(0);
  });

  it('no prompt, system prompt, output or credential in anything exported', async () => {
    await client.send(new ConverseCommand({ ...converseInput(`${CANARY} user`), system: [{ text: `${CANARY} system` }] }));
    const stream = await client.send(new ConverseStreamCommand(converseInput(`${CANARY} stream`)));
    for await (const _event of stream.body ?? stream.stream);
    await client.send(new InvokeModelCommand({ modelId: CLAUDE, body: JSON.stringify(claudeBody(`${CANARY} invoke`)) }));
    fake.enqueue({ status: 500, errorMessage: (body) => `failed on ${body}` });
    await client.send(new ConverseCommand(converseInput(`${CANARY} error`))).catch(() => undefined);
    const spans = await audit.spansWhen(4);
    const exported = JSON.stringify([spans.map((s) => [s.name, s.attributes, s.events, s.status, s.links]), spans.map((s) => recordFromSpan(s))]);
    expect(exported).not.toContain(CANARY);
    expect(exported).not.toContain(recordedText);
    expect(exported).not.toContain(fake.clientConfig.credentials.secretAccessKey);
    expect(exported).not.toContain(fake.clientConfig.credentials.accessKeyId);
  });
});
