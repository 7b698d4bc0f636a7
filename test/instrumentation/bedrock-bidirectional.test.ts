import { createHash } from 'node:crypto';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { auditTrailRestored, reportAuditFailure, setOnFailurePolicy } from '../../src/audit/failure-policy';
import { createContentHasher } from '../../src/audit/hashing';
import { withAuditContext } from '../../src/context';
import { blockRequest, LlmRequestBlockedError, type AuditRequest } from '../../src/guardrails';
import * as recordings from '../support/bedrock-recordings';
import { startFakeBedrock, type BedrockScenario, type FakeBedrock } from '../support/fake-bedrock';
import { eventually, setupAuditWithContent } from '../support/harness';

// Bedrock InvokeModelWithBidirectionalStream (Amazon Nova Sonic) with the real
// @aws-sdk/client-bedrock-runtime and its default HTTP/2 handler against the fake Bedrock, which
// reads the signed input event stream as it arrives and answers with Nova Sonic's output events
// (AWS event-stream framing by @smithy/eventstream-codec). One record per session; redact mode,
// encrypted content and a beforeRequest hook are on.

let beforeRequest: ((request: AuditRequest) => void | Promise<void>) | undefined;
const seen: AuditRequest[] = [];
const { audit, reviewer } = setupAuditWithContent({
  sanitize: { mode: 'redact' },
  hooks: {
    beforeRequest: (request) => {
      seen.push(request);
      return beforeRequest?.(request);
    },
  },
});
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const { BedrockRuntimeClient, InvokeModelWithBidirectionalStreamCommand } = audit.load('@aws-sdk/client-bedrock-runtime');

const SONIC = 'amazon.nova-sonic-v1:0';
const EMAIL = 'jane.doe@example.com';
const SYSTEM = 'You are a friendly weather assistant.';
const AUDIO = [Buffer.from('first audio chunk'), Buffer.from('second audio chunk')];
const warnings: string[] = [];

let fake: FakeBedrock;
let client: any;
beforeAll(async () => {
  fake = await startFakeBedrock();
  client = new BedrockRuntimeClient(fake.clientConfig);
  diag.setLogger({ error: () => undefined, warn: (line: string) => void warnings.push(line), info: () => undefined, debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
});
beforeEach(() => {
  audit.reset();
  fake.reset();
  beforeRequest = undefined;
  seen.length = 0;
});
afterEach(() => setOnFailurePolicy('continue'));

const ids = { promptName: 'p1' };
const event = (name: string, body: Record<string, unknown> = {}) => ({ chunk: { bytes: new TextEncoder().encode(JSON.stringify({ event: { [name]: { ...ids, ...body } } })) } });

/** A Nova Sonic session as the AWS samples send it: system text, user audio, a user text, a tool result. */
function* conversation(userText = `What is the weather? Mail me at ${EMAIL}`): Generator<unknown> {
  yield event('sessionStart', { inferenceConfiguration: { maxTokens: 1024, topP: 0.9, temperature: 0.7 } });
  yield event('promptStart', { audioOutputConfiguration: { mediaType: 'audio/lpcm', voiceId: 'matthew' } });
  yield event('contentStart', { contentName: 'sys', type: 'TEXT', role: 'SYSTEM', interactive: false });
  yield event('textInput', { contentName: 'sys', content: SYSTEM });
  yield event('contentEnd', { contentName: 'sys' });
  yield event('contentStart', { contentName: 'mic', type: 'AUDIO', role: 'USER', interactive: true });
  for (const chunk of AUDIO) yield event('audioInput', { contentName: 'mic', content: chunk.toString('base64') });
  yield event('contentEnd', { contentName: 'mic' });
  yield event('contentStart', { contentName: 'txt', type: 'TEXT', role: 'USER', interactive: true });
  yield event('textInput', { contentName: 'txt', content: userText });
  yield event('contentEnd', { contentName: 'txt' });
  yield event('contentStart', { contentName: 'tool', type: 'TOOL', role: 'TOOL', toolResultInputConfiguration: { toolUseId: 'tu-1', type: 'TEXT' } });
  yield event('toolResult', { contentName: 'tool', content: JSON.stringify({ forecast: 'sunny', contact: EMAIL }) });
  yield event('contentEnd', { contentName: 'tool' });
  yield event('promptEnd');
}

/** The input as an async iterable that waits for `release` before the session's end. */
function input(events: Iterable<unknown>, release?: Promise<unknown>): AsyncIterable<unknown> {
  return {
    async *[Symbol.asyncIterator]() {
      for (const e of events) yield e;
      await release;
      yield event('sessionEnd');
    },
  };
}

async function session(body: AsyncIterable<unknown>, scenario?: BedrockScenario, options?: object): Promise<any> {
  if (scenario !== undefined) fake.enqueue(scenario);
  return client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: SONIC, body }), options);
}

async function readAll(answer: any): Promise<any[]> {
  const events: any[] = [];
  for await (const e of answer.body) events.push(JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event);
  return events;
}

async function oneRecord(): Promise<ReadableSpan> {
  const spans = await eventually(() => (audit.spans().length >= 1 ? audit.spans() : undefined));
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(audit.spans()).toHaveLength(1);
  return spans[0]!;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const audioPart = { type: 'blob_digest', modality: 'audio', sha256: sha256(Buffer.concat(AUDIO)), bytes: Buffer.concat(AUDIO).byteLength };
const redactedText = 'What is the weather? Mail me at [EMAIL]';
const redactedTool = JSON.stringify({ forecast: 'sunny', contact: '[EMAIL]' });
const expectedInput = [
  { role: 'user', parts: [audioPart] },
  { role: 'user', parts: [{ type: 'text', content: redactedText }] },
  { role: 'tool', parts: [{ type: 'tool_call_response', id: 'tu-1', response: redactedTool }] },
];
const outputAudio = { type: 'blob_digest', modality: 'audio', sha256: sha256(Buffer.from([...Array(16).keys()])), bytes: 16 };
const expectedOutput = [
  { role: 'user', parts: [{ type: 'text', content: 'what is the weather in Paris' }] },
  { role: 'tool', parts: [{ type: 'tool_call', id: 'tu-1', name: 'getWeather', arguments: '{"city":"Paris"}' }] },
  { role: 'assistant', parts: [{ type: 'text', content: 'It is sunny in Paris.' }] },
  { role: 'assistant', parts: [outputAudio] },
  { role: 'assistant', parts: [{ type: 'text', content: 'It is sunny in Paris.' }] },
];

it('audits a Nova Sonic session as one record: input and output hashed (audio as SHA-256), usage with its speech part, cost, redacted text sent', async () => {
  let end!: () => void;
  const released = new Promise<void>((resolve) => (end = resolve));
  const answer = await withAuditContext({ userId: 'u-voice' }, () => session(input(conversation(), released)));
  const events: any[] = [];
  for await (const e of answer.body) {
    const decoded = JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event;
    events.push(decoded);
    if (decoded.completionEnd !== undefined) end();
  }
  // The application got the service's events unchanged.
  expect(events).toEqual(recordings.novaSonicCompletion.map((e) => e.chunk.event));
  // The text went out redacted, the rest as the application sent it.
  const sent = fake.requests[0]!.inputEvents!.map((e) => e.event);
  expect(sent.find((e) => e.textInput?.contentName === 'txt').textInput.content).toBe(redactedText);
  expect(sent.find((e) => e.toolResult !== undefined).toolResult.content).toBe(redactedTool);
  expect(sent.filter((e) => e.audioInput !== undefined).map((e) => e.audioInput.content)).toEqual(AUDIO.map((a) => a.toString('base64')));
  expect(JSON.stringify(sent)).not.toContain(EMAIL);
  expect(sent.at(-1)).toHaveProperty('sessionEnd');

  const record = await oneRecord();
  const a = record.attributes;
  expect(a).toMatchObject({
    'llm_audit.action': 'InvokeModelWithBidirectionalStream',
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'aws.bedrock',
    'gen_ai.request.model': SONIC,
    'gen_ai.request.max_tokens': 1024,
    'gen_ai.request.temperature': 0.7,
    'gen_ai.request.top_p': 0.9,
    'gen_ai.request.stream': true,
    'gen_ai.response.id': 'sess-1',
    'gen_ai.response.finish_reasons': ['END_TURN'],
    'gen_ai.usage.input_tokens': 150,
    'gen_ai.usage.output_tokens': 212,
    'llm_audit.usage.input_audio_tokens': 120,
    'llm_audit.usage.output_audio_tokens': 200,
    'llm_audit.usage.status': 'reported',
    'llm_audit.cost.status': 'priced',
    'llm_audit.stream.outcome': 'completed',
    'llm_audit.status': 'success',
    'llm_audit.tool.names': ['getWeather'],
    'llm_audit.bedrock.bidirectional.completions': 1,
    'user.id': 'u-voice',
    'llm_audit.sanitization.count': 2,
  });
  // Nova Sonic's price: text $0.06 / $0.24, speech $3.40 / $13.60 per million tokens.
  expect(a['gen_ai.usage.cost.amount']).toBeCloseTo((30 * 0.06 + 120 * 3.4 + 12 * 0.24 + 200 * 13.6) / 1e6, 12);
  expect(a['llm_audit.system_prompt.hash']).toBe(hasher.hash([{ type: 'text', content: SYSTEM }]));
  expect(a['llm_audit.input.hash']).toBe(hasher.hash(expectedInput));
  expect(a['llm_audit.output.hash']).toBe(hasher.hash(expectedOutput));
  expect(record.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes?.['llm_audit.sanitization.type'])).toEqual(['EMAIL', 'EMAIL']);
  // Nothing of the conversation in plaintext on the record.
  const plain = JSON.stringify({ attributes: a, events: record.events });
  for (const text of [EMAIL, SYSTEM, 'weather', 'Paris', AUDIO[0]!.toString('base64')]) expect(plain).not.toContain(text);
  // The sealed content: what was sent (redacted), audio as its digest.
  const content = reviewer.open(String(a['llm_audit.content.encrypted']), { requestId: String(a['llm_audit.request_id']) });
  expect(content.input_messages).toEqual(expectedInput);
  expect(content.system_instructions).toEqual([{ type: 'text', content: SYSTEM }]);
  // The hook saw the session open (no content yet), then each text as it went out (redacted).
  expect(seen.map((r) => (r.params as any).event !== undefined)).toEqual([false, true, true, true]);
  expect(JSON.stringify(seen.map((r) => r.params))).not.toContain(EMAIL);
});

it('the application stops reading: the record ends as abandoned, once', async () => {
  const answer = await session(input(conversation('hello'), new Promise(() => undefined)));
  for await (const e of answer.body) {
    void e;
    break;
  }
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.stream.outcome': 'abandoned', 'llm_audit.status': 'success' });
  expect(record.attributes['llm_audit.input.hash']).toBeDefined();
});

it('an exception event of the stream ends the record as errored, with what arrived', async () => {
  const answer = await session(input(conversation('hello')), { failAfterEvents: 3 });
  const error = await readAll(answer).catch((e: unknown) => e);
  expect(error).toMatchObject({ name: 'ModelStreamErrorException' });
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.stream.outcome': 'errored', 'llm_audit.status': 'error', 'error.type': 'ModelStreamErrorException', 'gen_ai.response.id': 'sess-1' });
  expect(record.attributes['llm_audit.usage.status']).toBe('missing');
});

it('an error answer (no stream) fails the record', async () => {
  const error = await session(input(conversation('hello')), { status: 400, errorMessage: 'Invalid model' }).catch((e: unknown) => e);
  expect(error).toMatchObject({ name: 'ValidationException' });
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'ValidationException' });
});

it('an abort by the application while it reads ends the record once', async () => {
  const controller = new AbortController();
  const answer = await session(input(conversation('hello'), new Promise(() => undefined)), undefined, { abortSignal: controller.signal });
  const outcome = (async () => {
    for await (const e of answer.body) if (JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event.completionEnd !== undefined) controller.abort();
  })().catch((e: unknown) => e);
  await outcome;
  const record = await oneRecord();
  expect(['aborted', 'errored']).toContain(record.attributes['llm_audit.stream.outcome']);
});

it('a hook that blocks a text before the answer started: send rejects through the SDK with the refusal as cause; nothing of it is sent', async () => {
  beforeRequest = (request) => {
    if (JSON.stringify(request.params).includes('forbidden')) blockRequest('topic not allowed', { name: 'topic-filter' });
  };
  const error = (await session(input(conversation('a forbidden question'))).catch((e: unknown) => e)) as Error;
  expect(error).toBeInstanceOf(Error);
  expect(error.cause).toBeInstanceOf(LlmRequestBlockedError);
  expect(error.message).toContain('topic not allowed');
  const sent = (fake.requests[0]?.inputEvents ?? []).map((e) => e.event);
  expect(JSON.stringify(sent)).not.toContain('forbidden');
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.status': 'blocked', 'llm_audit.block.reason': 'topic not allowed' });
  // What was sent before the refusal, and the refused text, are on the record (as a blocked call's request is).
  expect(record.attributes['llm_audit.input.hash']).toBe(hasher.hash([{ role: 'user', parts: [audioPart] }, { role: 'user', parts: [{ type: 'text', content: 'a forbidden question' }] }]));
});

it('a hook that blocks a text once the answer is under way (after an await): the answer is aborted and its next read rejects with the refusal', async () => {
  beforeRequest = async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (JSON.stringify(request.params).includes('forbidden')) blockRequest('topic not allowed', { name: 'topic-filter' });
  };
  let next!: () => void;
  const later = new Promise<void>((resolve) => (next = resolve));
  const body = {
    async *[Symbol.asyncIterator]() {
      yield* conversation('hello');
      await later;
      yield event('contentStart', { contentName: 'again', type: 'TEXT', role: 'USER' });
      yield event('textInput', { contentName: 'again', content: 'now a forbidden one' });
      yield event('sessionEnd');
    },
  };
  const answer = await session(body);
  const error = await (async () => {
    for await (const e of answer.body) if (JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event.completionEnd !== undefined) next();
  })().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(LlmRequestBlockedError);
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.status': 'blocked' });
  expect(JSON.stringify(fake.requests[0]!.inputEvents)).not.toContain('forbidden');
});

it('audio cannot be redacted: sent with a diag warning, refused under LLM_AUDIT_ON_FAILURE=block', async () => {
  await readAll(await session(input(conversation('hello'))));
  // Once per process (the sessions of the tests above sent audio too).
  expect(warnings.filter((w) => w.includes('Bedrock bidirectional stream audio cannot be redacted'))).toHaveLength(1);
  expect(fake.requests[0]!.inputEvents!.filter((e) => e.event.audioInput !== undefined)).toHaveLength(2);
  audit.reset();
  fake.reset();
  setOnFailurePolicy('block');
  const error = (await session(input(conversation('hello'))).catch((e: unknown) => e)) as Error;
  expect(error.cause).toBeInstanceOf(LlmRequestBlockedError);
  expect(error.message).toMatch(/audio cannot be redacted/);
  expect((fake.requests[0]?.inputEvents ?? []).some((e) => e.event.audioInput !== undefined)).toBe(false);
  const record = await oneRecord();
  expect(record.attributes['llm_audit.status']).toBe('blocked');
  expect(record.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes?.['llm_audit.guardrail.category'])).toEqual(['not_redactable']);
});

it('a model the price data does not know, and a session without usage: explicit, not zero', async () => {
  fake.enqueue({ events: recordings.novaSonicCompletion.filter((e) => e.chunk.event.usageEvent === undefined) });
  const answer = await client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: 'acme.speech-model-v1', body: input(conversation('hello')) }));
  await readAll(answer);
  const record = await oneRecord();
  expect(record.attributes['llm_audit.usage.status']).toBe('missing');
  expect(record.attributes['gen_ai.usage.cost.amount']).toBeUndefined();
  expect(record.attributes['llm_audit.cost.status']).not.toBe('priced');
});

it('the audit trail fails mid-session under LLM_AUDIT_ON_FAILURE=block: nothing more is sent, the answer ends with the refusal', async () => {
  setOnFailurePolicy('block');
  let next!: () => void;
  const later = new Promise<void>((resolve) => (next = resolve));
  const body = {
    async *[Symbol.asyncIterator]() {
      yield* [...conversation('hello')].filter((e: any) => !new TextDecoder().decode(e.chunk.bytes).includes('audioInput'));
      await later;
      yield event('textInput', { contentName: 'txt', content: 'after the failure' });
      yield event('sessionEnd');
    },
  };
  const answer = await session(body);
  try {
    const error = await (async () => {
      for await (const e of answer.body) {
        if (JSON.parse(new TextDecoder().decode(e.chunk.bytes)).event.completionEnd !== undefined) {
          reportAuditFailure('test-trail', 1, new Error('disk full'));
          next();
        }
      }
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'LlmAuditUnavailableError' });
  } finally {
    auditTrailRestored('test-trail', 'test over');
  }
  expect(JSON.stringify(fake.requests[0]!.inputEvents)).not.toContain('after the failure');
  const record = await oneRecord();
  expect(record.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'LlmAuditUnavailableError' });
});

it('input chunks that are not JSON events (another model\'s protocol) are hashed as their bytes, in the hash and the envelope alike', async () => {
  const raw = Buffer.from('\x00\x01binary frame of another protocol');
  const body = {
    async *[Symbol.asyncIterator]() {
      yield { chunk: { bytes: new Uint8Array(raw) } };
      yield event('promptEnd');
      yield event('sessionEnd');
    },
  };
  await readAll(await session(body));
  const record = await oneRecord();
  const opaque = [{ role: 'user', parts: [{ type: 'blob_digest', modality: 'audio', sha256: sha256(raw), bytes: raw.byteLength }] }];
  expect(record.attributes['llm_audit.input.hash']).toBe(hasher.hash(opaque));
  const content = reviewer.open(String(record.attributes['llm_audit.content.encrypted']), { requestId: String(record.attributes['llm_audit.request_id']) });
  expect(content.input_messages).toEqual(opaque);
});
