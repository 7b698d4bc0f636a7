import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { calcPrice } from '@pydantic/genai-prices';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { startUnauditedWatcher } from '../../src/audit/unaudited';
import { createContentHasher } from '../../src/audit/hashing';
import { withAuditContext } from '../../src/context';
import { REPLY, USAGE, useFakeRealtime, type FakeRealtime } from '../support/fake-realtime';
import { eventually, repoRoot, setupAudit } from '../support/harness';

// OpenAI Realtime sessions through openai 6.49's OpenAIRealtimeWS (the `ws` package), against a
// local Realtime server on loopback (test/support/fake-realtime.ts): one record per model
// response, one for the session, the application's listeners untouched.

const audit = setupAudit();
const { OpenAI, AzureOpenAI } = audit.load('openai');
const { OpenAIRealtimeWS } = audit.load('openai/realtime/ws');
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const realtime = useFakeRealtime(audit);
let fake: FakeRealtime;
let stopWatcher: (() => void) | undefined;
beforeAll(() => {
  fake = realtime();
});
afterEach(() => {
  stopWatcher?.();
  stopWatcher = undefined;
});

interface Opened {
  rt: any;
  /** What the application's `event` listener got. */
  events: any[];
  errors: any[];
  /** Waits until the application has seen `count` events of `type`. */
  seen(type: string, count?: number): Promise<void>;
  close(): Promise<void>;
}

async function open(options: { baseURL?: string; wait?: boolean } = {}): Promise<Opened> {
  const client = new OpenAI({ apiKey: 'sk-realtime-secret-key', baseURL: options.baseURL ?? fake.baseURL });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: fake.ca } }, client);
  const events: any[] = [];
  const errors: any[] = [];
  rt.on('event', (event: any) => events.push(event));
  rt.on('error', (error: any) => errors.push(error));
  const closed = new Promise<void>((resolve) => rt.socket.on('close', () => resolve()));
  if (options.wait !== false) await new Promise((resolve) => rt.socket.on('open', resolve));
  return {
    rt,
    events,
    errors,
    seen: (type, count = 1) => eventually(() => events.filter((e) => e.type === type).length >= count).then(() => undefined),
    async close() {
      rt.close();
      await closed;
    },
  };
}

const byAction = (action: string): ReadableSpan[] => audit.spans().filter((s) => s.attributes['llm_audit.action'] === action);
const connection = () => fake.received.length - 1;
const userText = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const audioDigest = (chunks: Buffer[]) => ({ type: 'blob_digest', modality: 'audio', sha256: createHash('sha256').update(Buffer.concat(chunks)).digest('hex'), bytes: Buffer.concat(chunks).length });

/** What an auditor may see must not hold the conversation or the key. */
function expectNoPlaintext(...texts: string[]): void {
  const exported = JSON.stringify(audit.spans().map((s) => [s.name, s.attributes, s.events, s.status]));
  for (const text of ['sk-realtime-secret-key', ...texts]) expect(exported).not.toContain(text);
}

it('one record per response: model, hashes of what the client sent and what came back, usage, cost, status, the user of the session; the app gets the same events', async () => {
  const session = await withAuditContext({ userId: 'user-7', sessionId: 'sess-7', tenantId: 'tenant-7' }, () => open());
  session.rt.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } });
  session.rt.send({ type: 'conversation.item.create', item: userText('What is the weather in Paris?') });
  session.rt.send({ type: 'response.create', response: { output_modalities: ['text'] } });
  await session.seen('response.done');
  session.rt.send({ type: 'conversation.item.create', item: userText('And tomorrow?') });
  session.rt.send({ type: 'response.create' });
  await session.seen('response.done', 2);
  await session.close();

  const [sessionRecord] = await eventually(() => (byAction('realtime.session').length === 1 ? byAction('realtime.session') : undefined));
  const responses = byAction('realtime.response');
  expect(responses).toHaveLength(2);
  const [first, second] = responses.map((s) => s.attributes);
  expect(first).toMatchObject({
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-realtime',
    'gen_ai.response.model': 'gpt-realtime',
    'gen_ai.output.type': 'text',
    'llm_audit.status': 'success',
    'llm_audit.realtime.response.status': 'completed',
    'llm_audit.realtime.response.trigger': 'client',
    'llm_audit.realtime.session.request_id': sessionRecord!.attributes['llm_audit.request_id'],
    'gen_ai.response.finish_reasons': ['completed'],
    'gen_ai.usage.input_tokens': USAGE.text.input_tokens,
    'gen_ai.usage.output_tokens': USAGE.text.output_tokens,
    'gen_ai.usage.cache_read.input_tokens': USAGE.text.input_token_details.cached_tokens,
    'llm_audit.cost.status': 'priced',
    'user.id': 'user-7',
    'session.id': 'sess-7',
    'llm_audit.tenant.id': 'tenant-7',
    'llm_audit.system_prompt.hash': hasher.hash('Be brief.'),
    'llm_audit.input.hash': hasher.hash([userText('What is the weather in Paris?')]),
    'llm_audit.output.hash': hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: REPLY.text.join('') }], finish_reason: 'completed' }]),
  });
  // gpt-realtime: text input $4, cached $0.40, output $16 per million tokens.
  expect(first!['gen_ai.usage.cost.amount']).toBeCloseTo((100 * 4 + 20 * 0.4 + 30 * 16) / 1e6, 12);
  // The second response read only what was added after the first one.
  expect(second!['llm_audit.input.hash']).toBe(hasher.hash([userText('And tomorrow?')]));
  expect(sessionRecord!.attributes).toMatchObject({
    'gen_ai.operation.name': 'realtime_session',
    'llm_audit.status': 'success',
    'gen_ai.request.model': 'gpt-realtime',
    'llm_audit.realtime.session.responses': 2,
    'llm_audit.realtime.session.close_code': 1000,
    'user.id': 'user-7',
  });
  // The responses' records sit under the session's in the trace.
  for (const response of responses) expect(response.parentSpanContext?.spanId).toBe(sessionRecord!.spanContext().spanId);
  // Exactly the events the server sent, in order, as the SDK parsed them.
  expect(session.events).toEqual(fake.sent[connection()]);
  expect(session.errors).toEqual([]);
  // And the server got exactly what the application sent.
  expect(fake.received[connection()]!.map((e: any) => e.type)).toEqual(['session.update', 'conversation.item.create', 'response.create', 'conversation.item.create', 'response.create']);
  expectNoPlaintext('Paris', 'tomorrow', 'Be brief', 'Hello there');
});

it('audio in and out: the bytes are hashed, never kept; audio tokens are priced at the audio rates', async () => {
  const session = await open();
  const spoken = [Buffer.from('pcm16 audio, part one'), Buffer.from('pcm16 audio, part two')];
  for (const chunk of spoken) session.rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  session.rt.send({ type: 'input_audio_buffer.commit' });
  fake.plan = ['audio'];
  session.rt.send({ type: 'response.create' });
  await session.seen('response.done');
  await session.close();

  const [record] = await eventually(() => (byAction('realtime.response').length === 1 ? byAction('realtime.response') : undefined));
  const at = record!.attributes;
  expect(at['llm_audit.input.hash']).toBe(hasher.hash([{ type: 'message', role: 'user', content: [audioDigest(spoken)] }]));
  expect(at['llm_audit.output.hash']).toBe(
    hasher.hash([{ role: 'assistant', parts: [audioDigest(REPLY.audio), { type: 'text', content: REPLY.transcript.join('') }], finish_reason: 'completed' }]),
  );
  const usage = USAGE.audio;
  expect(at).toMatchObject({
    'gen_ai.usage.input_tokens': usage.input_tokens,
    'gen_ai.usage.output_tokens': usage.output_tokens,
    'gen_ai.usage.cache_read.input_tokens': usage.input_token_details.cached_tokens,
    'llm_audit.usage.input_audio_tokens': usage.input_token_details.audio_tokens,
    'llm_audit.usage.cache_read_audio_tokens': usage.input_token_details.cached_tokens_details.audio_tokens,
    'llm_audit.usage.output_audio_tokens': usage.output_token_details.audio_tokens,
  });
  // The price data's own answer for this usage (audio input 8x, audio output 4x the text rates).
  const expected = calcPrice(
    {
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
      cache_read_tokens: usage.input_token_details.cached_tokens,
      input_audio_tokens: usage.input_token_details.audio_tokens,
      cache_audio_read_tokens: usage.input_token_details.cached_tokens_details.audio_tokens,
      output_audio_tokens: usage.output_token_details.audio_tokens,
    },
    'gpt-realtime',
    { providerId: 'openai' },
  )!.total_price;
  expect(at['gen_ai.usage.cost.amount']).toBeCloseTo(expected, 12);
  // Priced as text, the same usage would cost far less: the audio rates were applied.
  expect(at['gen_ai.usage.cost.amount']).toBeGreaterThan((250 * 4 + 50 * 0.4 + 400 * 16) / 1e6 * 2);
  expectNoPlaintext(spoken[0]!.toString('base64'), REPLY.audio[0]!.toString('base64'), 'pcm16 audio', 'Hi you');
});

it('a response the server started by itself (voice activity detection) has its record, with the audio it heard', async () => {
  const session = await open();
  const spoken = [Buffer.from('hello, is anyone there?')];
  session.rt.send({ type: 'input_audio_buffer.append', audio: spoken[0]!.toString('base64') });
  await eventually(() => fake.received[connection()]?.length === 1);
  fake.serverResponse();
  await session.seen('response.done');
  await session.close();
  const [record] = await eventually(() => (byAction('realtime.response').length === 1 ? byAction('realtime.response') : undefined));
  expect(record!.attributes).toMatchObject({
    'llm_audit.realtime.response.trigger': 'server',
    'llm_audit.status': 'success',
    'llm_audit.input.hash': hasher.hash([{ type: 'message', role: 'user', content: [audioDigest(spoken)] }]),
  });
});

it('each way a response ends: failed, cancelled, incomplete, a tool call; a response.create the server refused', async () => {
  const session = await open();
  fake.plan = ['failed', 'cancelled', 'incomplete', 'tool', 'refused'];
  for (let i = 1; i <= 4; i++) {
    session.rt.send({ type: 'response.create' });
    await session.seen('response.done', i);
  }
  session.rt.send({ type: 'response.create', event_id: 'client_evt_9' });
  await eventually(() => session.errors.length === 1);
  await session.close();
  await eventually(() => byAction('realtime.session').length === 1);
  const [failed, cancelled, incomplete, tool, refused] = byAction('realtime.response').map((s) => s.attributes);
  expect(failed).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'internal_error', 'llm_audit.realtime.response.status': 'failed', 'gen_ai.usage.input_tokens': 120 });
  expect(cancelled).toMatchObject({
    'llm_audit.status': 'success',
    'llm_audit.stream.outcome': 'abandoned',
    'llm_audit.realtime.response.status': 'cancelled',
    'llm_audit.realtime.response.status_reason': 'turn_detected',
    'gen_ai.response.finish_reasons': ['turn_detected'],
  });
  expect(incomplete).toMatchObject({ 'llm_audit.realtime.response.status': 'incomplete', 'gen_ai.response.finish_reasons': ['max_output_tokens'] });
  expect(tool).toMatchObject({ 'llm_audit.tool.names': [REPLY.tool.name], 'llm_audit.tool.call_ids': [REPLY.tool.call_id] });
  expect(tool!['llm_audit.output.hash']).toBe(
    hasher.hash([{ role: 'assistant', parts: [{ type: 'tool_call', id: REPLY.tool.call_id, name: REPLY.tool.name, arguments: REPLY.tool.arguments }], finish_reason: 'completed' }]),
  );
  // The error event named the response.create it answers: that response's record failed.
  expect(refused).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'conversation_already_has_active_response' });
  expect(byAction('realtime.session')[0]!.attributes).toMatchObject({ 'llm_audit.realtime.session.responses': 5, 'llm_audit.realtime.session.errors': 0 });
});

it('the socket closed mid-response: the response ends as an error, the session with its close code; each record once', async () => {
  const session = await open();
  fake.plan = ['close'];
  const closed = new Promise((resolve) => session.rt.socket.on('close', resolve));
  session.rt.send({ type: 'response.create' });
  await closed;
  await eventually(() => byAction('realtime.session').length === 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const [response] = byAction('realtime.response');
  expect(byAction('realtime.response')).toHaveLength(1);
  expect(response!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'llm_audit.stream.outcome': 'errored', 'error.type': 'RealtimeError' });
  expect(response!.attributes['llm_audit.error.message']).toMatch(/closed \(code 1011\) before the response was done/);
  // What had arrived is recorded: the first text delta.
  expect(response!.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: REPLY.text[0] }] }]));
  expect(byAction('realtime.session')[0]!.attributes).toMatchObject({ 'llm_audit.status': 'success', 'llm_audit.realtime.session.close_code': 1011 });
  expect(new Set(audit.spans().map((s) => s.spanContext().spanId)).size).toBe(audit.spans().length);
});

it('a session that never connects is recorded as failed', async () => {
  const session = await open({ baseURL: 'https://127.0.0.1:1/v1', wait: false });
  await eventually(() => session.errors.length > 0);
  const [record] = await eventually(() => (byAction('realtime.session').length === 1 ? byAction('realtime.session') : undefined));
  expect(record!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'llm_audit.realtime.session.responses': 0 });
  expect(record!.attributes['llm_audit.error.message']).toMatch(/could not be opened/);
});

it('an audited session is not reported as unaudited traffic; a bare WebSocket to the same endpoint still is', async () => {
  stopWatcher = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: `127.0.0.1:${fake.port}` }, warn: () => undefined });
  const session = await open();
  session.rt.send({ type: 'response.create' });
  await session.seen('response.done');
  await session.close();
  await eventually(() => byAction('realtime.session').length === 1);
  expect(audit.spans().filter((s) => s.attributes['llm_audit.status'] === 'unaudited')).toEqual([]);

  const { WebSocket } = createRequire(join(repoRoot, 'noop.js'))('ws');
  const bare = new WebSocket(`wss://127.0.0.1:${fake.port}/v1/realtime?model=gpt-realtime`, { ca: fake.ca });
  await new Promise((resolve) => bare.on('open', resolve));
  bare.close();
  const [unaudited] = await eventually(() => {
    const spans = audit.spans().filter((s) => s.attributes['llm_audit.status'] === 'unaudited');
    return spans.length > 0 ? spans : undefined;
  });
  expect(unaudited!.attributes['url.path']).toBe('/v1/realtime');
});

it('an Azure OpenAI session (OpenAIRealtimeWS.azure): recorded as azure.ai.openai, the deployment as the requested model, the api-version', async () => {
  const client = new AzureOpenAI({ apiKey: 'azure-realtime-secret-key', endpoint: `https://127.0.0.1:${fake.port}`, apiVersion: '2025-04-01-preview', deployment: 'my-realtime' });
  const rt = await OpenAIRealtimeWS.azure(client, { options: { ca: fake.ca } });
  const closed = new Promise((resolve) => rt.socket.on('close', resolve));
  await new Promise((resolve) => rt.socket.on('open', resolve));
  rt.send({ type: 'response.create' });
  await new Promise((resolve) => rt.on('response.done', resolve));
  rt.close();
  await closed;
  expect(fake.queries[connection()]).toBe('/openai/realtime?api-version=2025-04-01-preview&deployment=my-realtime');
  await eventually(() => byAction('realtime.session').length === 1);
  expect(byAction('realtime.response')).toHaveLength(1);
  for (const record of [...byAction('realtime.session'), ...byAction('realtime.response')]) {
    expect(record.attributes).toMatchObject({
      'gen_ai.provider.name': 'azure.ai.openai',
      'gen_ai.request.model': 'my-realtime',
      'llm_audit.azure_openai.api_version': '2025-04-01-preview',
      // The model the server says the deployment runs: what answered, and what prices it.
      'gen_ai.response.model': 'gpt-realtime',
    });
  }
  expect(byAction('realtime.response')[0]!.attributes['llm_audit.cost.status']).toBe('priced');
  expectNoPlaintext('azure-realtime-secret-key');
});
