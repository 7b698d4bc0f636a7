import { describe, it, expect } from 'vitest';
import { createHmac, createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { canonicalJson } from '../../src/audit/canonical-json';
import { createContentHasher, type ContentHasher } from '../../src/audit/hashing';
import { matchesSnapshot, MISS_STREAK, PROBE_EVERY, takeSnapshot, UNCHECKABLE } from '../../src/audit/conversation-memo';

// Key sizes around SHA-256's 64-byte block: RFC 2104 section 3 hashes keys longer than the block.
const KEYS = ['sixteen-byte-key', 'k'.repeat(63), 'k'.repeat(64), 'k'.repeat(65), 'z'.repeat(200)];

/** Independent of the code under test: node's HMAC over the canonical text. */
function expected(key: string | undefined, value: unknown): string {
  const text = canonicalJson(value);
  if (key === undefined) return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
  return `hmac-sha256:kid:${createHmac('sha256', key).update(text, 'utf8').digest('hex')}`;
}

function hashers(): Array<[string | undefined, ContentHasher]> {
  return [[undefined, createContentHasher({})], ...KEYS.map((key): [string, ContentHasher] => [key, createContentHasher({ key, keyId: 'kid' })])];
}

type Message = Record<string, any>;

describe('hashMessages', () => {
  it('equals the HMAC / SHA-256 of the canonical text while a conversation grows, for keys around the block size', () => {
    for (const [key, hasher] of hashers()) {
      const conversation: Message[] = [{ role: 'user', content: 'Hello' }];
      for (let turn = 0; turn < 6; turn++) {
        expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
        // Called again with nothing new: served wholly from the remembered state.
        expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
        conversation.push({ role: 'assistant', content: `answer ${turn}` }, { role: 'user', content: [{ type: 'text', text: `question ${turn}` }] });
      }
      // A new array holding the same objects (as the OpenAI patch builds without system turns).
      expect(hasher.hashMessages([...conversation])).toBe(expected(key, conversation));
    }
  });

  it('notices every change to messages it has seen', () => {
    const changes: Array<[string, (c: Message[]) => void]> = [
      ['content replaced', (c) => (c[1].content = 'changed')],
      ['equal text in a new string', (c) => (c[1].content = ['answer', '0'].join(' '))],
      ['nested part edited', (c) => (c[2].content[0].text = 'edited')],
      ['nested part added', (c) => c[2].content.push({ type: 'text', text: 'more' })],
      ['member added', (c) => (c[0].name = 'alice')],
      ['member deleted', (c) => delete c[0].role],
      ['member set to undefined', (c) => (c[1].content = undefined)],
      ['members reordered', (c) => (c[0] = { content: c[0].content, role: c[0].role })],
      ['message replaced by an equal copy', (c) => (c[1] = structuredClone(c[1]))],
      ['message removed from the front', (c) => c.shift()],
      ['message inserted in the middle', (c) => c.splice(1, 0, { role: 'user', content: 'inserted' })],
      ['list truncated', (c) => (c.length = 2)],
      ['number changed', (c) => (c[2].content[0].weight = 2)],
      ['toJSON added', (c) => (c[1].toJSON = () => ({ role: 'assistant', content: 'from toJSON' }))],
      ['string part replaced by an array', (c) => (c[0].content = ['Hello'])],
    ];
    for (const [name, change] of changes) {
      for (const [key, hasher] of hashers()) {
        const conversation: Message[] = [
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: 'answer 0' },
          { role: 'user', content: [{ type: 'text', text: 'question', weight: 1 }] },
        ];
        const before = hasher.hashMessages(conversation);
        expect(before, name).toBe(expected(key, conversation));
        // The same list again: its finished hash is remembered too, and must not outlive the change.
        expect(hasher.hashMessages(conversation), name).toBe(before);
        change(conversation);
        expect(hasher.hashMessages(conversation), name).toBe(expected(key, conversation));
        conversation.push({ role: 'assistant', content: 'later' });
        expect(hasher.hashMessages(conversation), name).toBe(expected(key, conversation));
      }
    }
  });

  it('stays equal to the plain hash through a long random sequence of edits', () => {
    // A seeded generator: the same sequence on every run, so a failure can be replayed.
    let seed = 0x2545f491;
    const next = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (const [key, hasher] of hashers().slice(0, 3)) {
      let conversation: Message[] = [];
      for (let step = 0; step < 400; step++) {
        const op = next(8);
        if (op <= 2 || conversation.length === 0) conversation.push({ role: step % 2 ? 'assistant' : 'user', content: `turn ${step}` });
        else if (op === 3) conversation[next(conversation.length)]!.content = `edited ${step}`;
        else if (op === 4) conversation = conversation.slice(next(conversation.length)); // sliding window
        else if (op === 5) conversation[next(conversation.length)] = { role: 'user', content: [{ type: 'text', text: `part ${step}` }] };
        else if (op === 6) {
          const m = conversation[next(conversation.length)]!;
          if (Array.isArray(m.content)) m.content.push({ type: 'text', text: `extra ${step}` });
        } else conversation = [...conversation]; // same objects, new list
        expect(hasher.hashMessages(conversation), `step ${step}`).toBe(expected(key, conversation));
      }
    }
  });

  // Reads of `content` inside hashMessages tell what it did: remembering a new list reads each
  // message twice (snapshot, canonical text), hashing it without remembering once, and resuming a
  // remembered list once (the snapshot check) without canonicalising it again.
  function countingMessage(counter: { reads: number }, content: string): Message {
    return new Proxy({ role: 'user', content }, {
      get(target, property, receiver) {
        if (property === 'content') counter.reads++;
        return Reflect.get(target, property, receiver);
      },
    });
  }
  function readsOf(hasher: ContentHasher, counter: { reads: number }, list: Message[]): number {
    counter.reads = 0;
    const hash = hasher.hashMessages(list);
    const reads = counter.reads;
    expect(hash).toBe(expected(KEYS[0], list));
    return reads;
  }

  it('resumes: messages already hashed are checked, not canonicalised again', () => {
    const hasher = createContentHasher({ key: KEYS[0]!, keyId: 'kid' });
    const counter = { reads: 0 };
    const conversation: Message[] = [countingMessage(counter, 'counted'), { role: 'assistant', content: 'a' }];
    expect(readsOf(hasher, counter, conversation)).toBe(2);
    conversation.push({ role: 'user', content: 'next' });
    expect(readsOf(hasher, counter, conversation)).toBe(1);
    expect(readsOf(hasher, counter, conversation)).toBe(1);
  });

  it('stops remembering every list after many that never come back, and starts again when one does', () => {
    const hasher = createContentHasher({ key: KEYS[0]!, keyId: 'kid' });
    const counter = { reads: 0 };
    // A server receiving the conversation anew each request: nothing ever resumes.
    for (let i = 0; i < MISS_STREAK; i++) expect(readsOf(hasher, counter, [countingMessage(counter, `request ${i}`)])).toBe(2);
    // Now one new list in PROBE_EVERY is remembered.
    const probes: Message[][] = [];
    for (let i = 0; i < 2 * PROBE_EVERY; i++) {
      const list = [countingMessage(counter, `later ${i}`)];
      if (readsOf(hasher, counter, list) === 2) probes.push(list);
    }
    expect(probes).toHaveLength(2);
    // One of them is sent again and resumes: every new list is remembered again.
    expect(readsOf(hasher, counter, probes[0]!)).toBe(1);
    for (let i = 0; i < 5; i++) expect(readsOf(hasher, counter, [countingMessage(counter, `again ${i}`)])).toBe(2);
  });

  it('hashes what a snapshot cannot check in full every time, and still remembers the checkable part', () => {
    class Turn {
      constructor(readonly role: string, public content: string) {}
    }
    for (const [key, hasher] of hashers().slice(0, 2)) {
      const withToJson = { role: 'user', content: 'x', toJSON: () => ({ role: 'user', content: 'via toJSON' }) };
      const conversation: unknown[] = [{ role: 'user', content: 'a' }, new Turn('assistant', 'b'), withToJson, 'plain string', null, undefined, 7];
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      (conversation[1] as Turn).content = 'changed';
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      const sparse = [{ role: 'user', content: 'a' }];
      sparse[2] = { role: 'user', content: 'c' };
      expect(hasher.hashMessages(sparse)).toBe(expected(key, sparse));
    }
  });

  it('hashes conversations far larger than one piece fed to the hash, with two-byte text, as their canonical text', () => {
    // Pieces end at message boundaries, never inside a string: a surrogate pair cannot be split.
    const turn = (i: number): Message => ({ role: i % 2 ? 'assistant' : 'user', content: `${i} ` + 'Grüße 😀 日本語 '.repeat(400 + (i % 7)) });
    class Note {
      constructor(readonly role: string, readonly content: string) {}
    }
    for (const [key, hasher] of hashers().slice(0, 3)) {
      const conversation: unknown[] = Array.from({ length: 60 }, (_, i) => turn(i)); // ~0.5 MB of UTF-8
      expect(canonicalJson(conversation).length).toBeGreaterThan(8 * 32 * 1024);
      expect(hasher.hash(conversation)).toBe(expected(key, conversation));
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      conversation.push(turn(60), turn(61));
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      // An uncheckable message in the middle: remembered up to it, the rest hashed every time.
      conversation.splice(30, 0, new Note('user', 'a class instance'));
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      conversation.push(turn(62));
      expect(hasher.hashMessages(conversation)).toBe(expected(key, conversation));
      expect(hasher.hash('😀'.repeat(100_000))).toBe(expected(key, '😀'.repeat(100_000)));
    }
  });

  it('gives anything but a non-empty plain array to hash, and fails as hash fails', () => {
    const hasher = createContentHasher({ key: KEYS[0]!, keyId: 'kid' });
    for (const value of ['a prompt', { role: 'user' }, [], null, 3]) expect(hasher.hashMessages(value)).toBe(hasher.hash(value));
    const withToJson = Object.assign([{ role: 'user', content: 'a' }], { toJSON: () => 'replaced' });
    expect(hasher.hashMessages(withToJson)).toBe(expected(KEYS[0], withToJson));
    const cyclic: Message = { role: 'user' };
    cyclic.self = cyclic;
    expect(() => hasher.hashMessages([cyclic])).toThrow(/cyclic/);
    expect(() => hasher.hashMessages([{ role: 'user', content: Number.NaN }])).toThrow(/non-finite/);
    // A failure leaves nothing half-remembered.
    const ok = [{ role: 'user', content: 'fine' }];
    expect(hasher.hashMessages(ok)).toBe(expected(KEYS[0], ok));
  });
});

describe('memory', () => {
  /** A full garbage collection, after the current job (WeakRef targets live until it ends). */
  async function collectGarbage(): Promise<void> {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      gc();
    }
  }

  it('keeps no message alive once the application lets go of its conversation', async () => {
    const hasher = createContentHasher({ key: KEYS[0]!, keyId: 'kid' });
    let conversation: Message[] | undefined = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i} `.repeat(200) }));
    hasher.hashMessages(conversation);
    conversation.push({ role: 'user', content: 'one more' });
    hasher.hashMessages(conversation); // resumed, and the longer list remembered
    const first = new WeakRef(conversation[0]!);
    const last = new WeakRef(conversation[conversation.length - 1]!);
    conversation = undefined;
    await collectGarbage();
    expect(first.deref()).toBeUndefined();
    expect(last.deref()).toBeUndefined();
  });

  it('lets messages that slid out of a window go, once no remembered list ends in the window', async () => {
    const hasher = createContentHasher({ key: KEYS[0]!, keyId: 'kid' });
    const WINDOW = 6;
    let history: Message[] = [];
    const early: Array<WeakRef<Message>> = [];
    for (let turn = 0; turn < 40; turn++) {
      const message = { role: turn % 2 ? 'assistant' : 'user', content: `turn ${turn}` };
      if (turn < 5) early.push(new WeakRef(message));
      history = [...history, message].slice(-WINDOW);
      expect(hasher.hashMessages(history)).toBe(expected(KEYS[0], history));
    }
    await collectGarbage();
    // Entries are keyed by messages still in the window; none of them covers the first turns.
    for (const ref of early) expect(ref.deref()).toBeUndefined();
  });
});

describe('snapshots', () => {
  it('record plain JSON values and refuse what they cannot check', () => {
    const value = { role: 'user', content: [{ type: 'text', text: 'hi' }], n: 1, ok: true, none: null };
    const snapshot = takeSnapshot(value);
    expect(snapshot).not.toBe(UNCHECKABLE);
    expect(matchesSnapshot(value, snapshot as never)).toBe(true);
    expect(matchesSnapshot({ ...value }, snapshot as never)).toBe(true); // equal content, new object
    expect(matchesSnapshot({ ...value, n: 2 }, snapshot as never)).toBe(false);
    expect(matchesSnapshot([value], snapshot as never)).toBe(false);
    expect(matchesSnapshot('text', snapshot as never)).toBe(false);
    for (const bad of [new Date(0), new Map(), { f: () => 1 }, { n: Number.POSITIVE_INFINITY }, { b: 1n }, new String('boxed')]) {
      expect(takeSnapshot(bad)).toBe(UNCHECKABLE);
    }
    let deep: Message = {};
    const root = deep;
    for (let i = 0; i < 40; i++) deep = deep.next = {};
    expect(takeSnapshot(root)).toBe(UNCHECKABLE);
    expect(takeSnapshot({ parts: Array.from({ length: 2000 }, () => ({})) })).toBe(UNCHECKABLE);
    const cyclic: Message = {};
    cyclic.self = cyclic;
    expect(takeSnapshot(cyclic)).toBe(UNCHECKABLE);
    expect(takeSnapshot(Object.assign(Object.create(null), { a: 1 }))).not.toBe(UNCHECKABLE);
  });
});
