import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { setOnFailurePolicy } from '../../src/audit/failure-policy';
import { createContentHasher } from '../../src/audit/hashing';
import { blockRequest, LlmRequestBlockedError, type AuditRequest } from '../../src/guardrails';
import { useFakeRealtime, type FakeRealtime } from '../support/fake-realtime';
import { eventually, setupAudit } from '../support/harness';

// Guardrails on OpenAI Realtime sessions (openai 6.49 OpenAIRealtimeWS against the local Realtime
// server): a beforeRequest hook sees each response.create with the input it will read and can stop
// it; sanitization redacts the text items the client sends; audio, which cannot be redacted, is
// refused under LLM_AUDIT_ON_FAILURE=block.

let beforeRequest: ((request: AuditRequest) => void | Promise<void>) | undefined;
const seen: AuditRequest[] = [];
const audit = setupAudit({
  sanitize: { mode: 'redact' },
  hooks: {
    beforeRequest: (request) => {
      seen.push(request);
      return beforeRequest?.(request);
    },
  },
});
const { OpenAI } = audit.load('openai');
const { OpenAIRealtimeWS } = audit.load('openai/realtime/ws');
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const realtime = useFakeRealtime(audit);
let fake: FakeRealtime;
beforeAll(() => {
  fake = realtime();
});
beforeEach(() => {
  seen.length = 0;
  beforeRequest = undefined;
});
afterEach(() => setOnFailurePolicy('continue'));

async function open() {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.baseURL });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { ca: fake.ca } }, client);
  const events: any[] = [];
  const errors: any[] = [];
  rt.on('event', (event: any) => events.push(event));
  rt.on('error', (error: any) => errors.push(error));
  await new Promise((resolve) => rt.socket.on('open', resolve));
  const closed = new Promise((resolve) => rt.socket.on('close', resolve));
  return { rt, events, errors, close: () => (rt.close(), closed) };
}

const connection = () => fake.received.length - 1;
const received = () => (fake.received[connection()] ?? []) as any[];
const userText = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
const responses = () => audit.spans().filter((s) => s.attributes['llm_audit.action'] === 'realtime.response');

it('a hook that blocks (after an await) stops the response.create; what the app sent after it goes out in order; the app gets an error event', async () => {
  const session = await open();
  beforeRequest = async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (JSON.stringify(request.params).includes('forbidden')) blockRequest('policy violation', { name: 'topic-filter' });
  };
  session.rt.send({ type: 'conversation.item.create', item: userText('a forbidden question') });
  session.rt.send({ type: 'response.create' });
  session.rt.send({ type: 'conversation.item.create', item: userText('a later remark') });
  await eventually(() => session.errors.length === 1);
  await eventually(() => received().length === 2);
  // The response.create never reached the server; the item sent after it did, after the decision.
  expect(received().map((e) => [e.type, e.item?.content?.[0]?.text])).toEqual([
    ['conversation.item.create', 'a forbidden question'],
    ['conversation.item.create', 'a later remark'],
  ]);
  const error = session.errors[0];
  expect(error.message).toMatch(/otel-llm-audit refused to send this event: LLM request blocked by guardrail topic-filter: policy violation/);
  expect(error.cause).toBeInstanceOf(LlmRequestBlockedError);
  const [blocked] = await eventually(() => (responses().length === 1 ? responses() : undefined));
  expect(blocked!.attributes).toMatchObject({ 'llm_audit.status': 'blocked', 'llm_audit.block.reason': 'policy violation' });
  expect(blocked!.events.map((e) => [e.name, e.attributes?.['llm_audit.guardrail.name'], e.attributes?.['llm_audit.guardrail.action']])).toContainEqual([
    'llm_audit.guardrail',
    'topic-filter',
    'blocked',
  ]);

  // The blocked input is still in the server's conversation: the next response reads it, and its hook sees it again.
  beforeRequest = undefined;
  session.rt.send({ type: 'response.create' });
  await eventually(() => session.events.some((e) => e.type === 'response.done'));
  expect(seen[1]!.params).toMatchObject({ input: [userText('a forbidden question'), userText('a later remark')] });
  await session.close();
  await eventually(() => responses().length === 2);
  expect(responses()[1]!.attributes).toMatchObject({
    'llm_audit.status': 'success',
    'llm_audit.input.hash': hasher.hash([userText('a forbidden question'), userText('a later remark')]),
  });
});

it('a synchronous hook that lets it pass: the response.create goes out at once', async () => {
  const session = await open();
  beforeRequest = () => undefined;
  session.rt.send({ type: 'response.create' });
  await eventually(() => received().some((e) => e.type === 'response.create'));
  expect(seen).toHaveLength(1);
  expect(seen[0]).toMatchObject({ action: 'realtime.response', model: 'gpt-realtime', provider: 'openai' });
  await session.close();
});

it('text items, instructions and response input are redacted before they are sent; the record counts the findings', async () => {
  const session = await open();
  session.rt.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Escalate to boss@example.com when unsure.' } });
  session.rt.send({ type: 'conversation.item.create', item: userText('My card is 4111 1111 1111 1111, mail jane@example.com') });
  session.rt.send({ type: 'response.create' });
  await eventually(() => session.events.some((e) => e.type === 'response.done'));
  await session.close();
  const sent = JSON.stringify(received());
  expect(sent).not.toContain('jane@example.com');
  expect(sent).not.toContain('4111 1111 1111 1111');
  expect(sent).not.toContain('boss@example.com');
  expect(received()[1].item.content[0].text).toBe('My card is [CARD], mail [EMAIL]');
  const [record] = await eventually(() => (responses().length === 1 ? responses() : undefined));
  expect(record!.attributes).toMatchObject({ 'llm_audit.sanitization.mode': 'redact', 'llm_audit.sanitization.count': 3 });
  // The hashes cover what was sent, redacted.
  expect(record!.attributes['llm_audit.input.hash']).toBe(hasher.hash([userText('My card is [CARD], mail [EMAIL]')]));
  expect(record!.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hash('Escalate to [EMAIL] when unsure.'));
});

it('audio cannot be redacted: sent as it is, but refused under LLM_AUDIT_ON_FAILURE=block', async () => {
  const session = await open();
  session.rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from('first').toString('base64') });
  await eventually(() => received().length === 1);
  setOnFailurePolicy('block');
  session.rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from('second').toString('base64') });
  session.rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_audio', audio: Buffer.from('third').toString('base64') }] } });
  session.rt.send({ type: 'conversation.item.create', item: userText('plain text still goes') });
  await eventually(() => received().length === 2);
  await eventually(() => session.errors.length === 2);
  expect(received().map((e) => e.type)).toEqual(['input_audio_buffer.append', 'conversation.item.create']);
  expect(session.errors[0].cause).toBeInstanceOf(LlmRequestBlockedError);
  expect(session.errors[0].message).toMatch(/audio cannot be redacted/);
  setOnFailurePolicy('continue');
  await session.close();
  const [record] = await eventually(() => {
    const spans = audit.spans().filter((s) => s.attributes['llm_audit.action'] === 'realtime.session');
    return spans.length === 1 ? spans : undefined;
  });
  expect(record!.attributes['llm_audit.realtime.session.refused_sends']).toBe(2);
  expect(record!.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes?.['llm_audit.guardrail.category'])).toEqual(['not_redactable']);
});

it('a response the server started by itself cannot be held: the hook sees it as it starts, and a block cancels it; its record is blocked, with what arrived', async () => {
  const session = await open();
  beforeRequest = (request) => {
    if ((request.params as { trigger?: string }).trigger === 'server') blockRequest('no unprompted answers', { name: 'vad-filter' });
  };
  session.rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from('speech').toString('base64') });
  await eventually(() => received().length === 1);
  fake.plan = ['until-cancel'];
  fake.serverResponse();
  await eventually(() => session.events.some((e) => e.type === 'response.done'));
  expect(received().map((e) => e.type)).toEqual(['input_audio_buffer.append', 'response.cancel']);
  expect(session.errors[0].cause).toBeInstanceOf(LlmRequestBlockedError);
  await session.close();
  const [record] = await eventually(() => (responses().length === 1 ? responses() : undefined));
  expect(record!.attributes).toMatchObject({
    'llm_audit.status': 'blocked',
    'llm_audit.realtime.response.trigger': 'server',
    'llm_audit.realtime.response.status': 'cancelled',
    'gen_ai.usage.input_tokens': 120,
    'llm_audit.block.reason': 'no unprompted answers',
  });
});
