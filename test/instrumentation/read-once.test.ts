import { beforeAll, describe, expect, it } from 'vitest';
import { createContentHasher } from '../../src/audit/hashing';
import type { FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// Issue 14 item 9: the request is read once, and the hashes cover exactly what was sent. A message
// whose `content` is a getter returning a new value on every read tells how often it was read,
// and which read was sent, hashed, scanned and captured.

const audit = setupAudit({ sanitize: { mode: 'detect' } });
const { OpenAI } = audit.load('openai');
const { Anthropic } = audit.load('@anthropic-ai/sdk');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });

/** A message whose content changes at every read (a mutable buffer, a lazy template...). */
function shifting(role: string) {
  const state = { reads: 0 };
  const message = {
    role,
    get content(): string {
      state.reads++;
      return `read number ${state.reads} of the ${role} text`;
    },
  };
  return { message, state };
}

describe('the request is read once and the hash is over what was sent', () => {
  it('openai chat: content getters read once; input and system hashes are the HMAC of the messages the provider received', async () => {
    const system = shifting('system');
    const user = shifting('user');
    await new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [system.message, user.message],
    });
    expect([system.state.reads, user.state.reads]).toEqual([1, 1]);
    const sent = fake.requests[0]!.body;
    expect(sent.messages[1].content).toBe('read number 1 of the user text');
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash([sent.messages[1]]));
    expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hash([sent.messages[0]]));
  });

  it('anthropic messages: the content getter is read once; the input hash is the HMAC of the messages the provider received', async () => {
    const user = shifting('user');
    await new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 }).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      messages: [user.message],
    });
    expect(user.state.reads).toBe(1);
    const sent = fake.requests[0]!.body;
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash(sent.messages));
  });

  it('the app object is left as it was (the getter is still a getter) and the SDK result is the usual one', async () => {
    const user = shifting('user');
    const params = { model: 'gpt-4o-mini', messages: [user.message] };
    const completion = await new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 }).chat.completions.create(params);
    expect(completion.object).toBe('chat.completion');
    expect(typeof Object.getOwnPropertyDescriptor(params.messages[0], 'content')!.get).toBe('function');
    expect(params.messages[0]).toBe(user.message);
    await audit.spansWhen(1);
  });
});

describe('snapshotRequest', () => {
  it('new objects at every call: copies stop being remembered, and are again within PROBE_EVERY calls of the objects being reused', async () => {
    const { snapshotRequest } = await import('../../src/core/snapshot');
    const { MISS_STREAK, PROBE_EVERY } = await import('../../src/audit/conversation-memo');
    for (let i = 0; i <= MISS_STREAK; i++) {
      const params = { model: 'm', messages: [{ role: 'user', content: `request ${i}` }] };
      expect(snapshotRequest(params)).toEqual(params);
    }
    // Now the application keeps its objects: some call within PROBE_EVERY remembers their copies,
    // and from the next one on each call gets the same copy.
    const kept = { role: 'user', content: 'kept' };
    const copies = Array.from({ length: PROBE_EVERY + 4 }, () => snapshotRequest({ model: 'm', messages: [kept] }).messages[0]);
    for (const copy of copies) expect(copy).toEqual(kept);
    const firstReused = copies.findIndex((copy, i) => i > 0 && copy === copies[i - 1]);
    expect(firstReused).toBeGreaterThan(0);
    expect(firstReused).toBeLessThanOrEqual(PROBE_EVERY + 1);
    for (let i = firstReused; i < copies.length; i++) expect(copies[i]).toBe(copies[firstReused]);
    // And a change is still seen at once.
    kept.content = 'changed';
    expect(snapshotRequest({ messages: [kept] }).messages[0]).toEqual({ role: 'user', content: 'changed' });
  });

  it('copies plain objects and arrays once, keeps unchanged copies (same identity), shares everything else', async () => {
    const { snapshotRequest } = await import('../../src/core/snapshot');
    const date = new Date(0);
    const fn = () => 1;
    const first = { role: 'user', content: 'hello there' };
    const params = { model: 'm', messages: [first], when: date, run: fn, boxed: new String('boxed text') };
    const a = snapshotRequest(params);
    expect(a).not.toBe(params);
    expect(a.messages[0]).not.toBe(first);
    expect(a.messages[0]).toEqual(first);
    expect(a.when).toBe(date);
    expect(a.run).toBe(fn);
    expect(a.boxed).toBe('boxed text');
    // The next call with the same message object, unchanged: the same copy (the input hash resumes).
    const b = snapshotRequest({ model: 'm', messages: [first, { role: 'assistant', content: 'hi' }] });
    expect(b.messages[0]).toBe(a.messages[0]);
    // Changed since: a new copy with the new value; the old copy is left as it was.
    first.content = 'changed';
    const c = snapshotRequest({ model: 'm', messages: [first] });
    expect(c.messages[0]).not.toBe(a.messages[0]);
    expect(c.messages[0].content).toBe('changed');
    expect(a.messages[0].content).toBe('hello there');
    // A member removed or added: a new copy too.
    delete (first as { content?: string }).content;
    expect(snapshotRequest({ messages: [first] }).messages[0]).toEqual({ role: 'user' });
  });

  it('a literal __proto__ member stays a member; a cycle or a throwing getter throws (the call then goes uncopied)', async () => {
    const { snapshotRequest } = await import('../../src/core/snapshot');
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}');
    const copy = snapshotRequest(parsed);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => snapshotRequest(cyclic)).toThrow(/cycle/);
    const hostile = {
      get content(): string {
        throw new Error('nope');
      },
    };
    expect(() => snapshotRequest({ messages: [hostile] })).toThrow('nope');
  });
});
