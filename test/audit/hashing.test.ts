import { describe, it, expect, vi, afterEach } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { createContentHasher, hasherFromEnv } from '../../src/audit/hashing';
import { processDefaults } from '../../src/config/process-defaults';

const KEY = 'correct horse battery staple!'; // 29 bytes
const MESSAGES = [{ role: 'user', content: 'What is the capital of France?' }];
// canonicalJson(MESSAGES), written out by hand.
const MESSAGES_CANONICAL = '[{"content":"What is the capital of France?","role":"user"}]';

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmacHex = (key: string | Buffer, data: string): string => createHmac('sha256', key).update(data, 'utf8').digest('hex');

describe('unkeyed hashing', () => {
  it('is sha256:<hex> over the canonical JSON', () => {
    const hasher = createContentHasher({});
    expect(hasher.keyed).toBe(false);
    expect(hasher.keyId).toBeUndefined();
    expect(hasher.hash(MESSAGES)).toBe(`sha256:${sha256Hex(MESSAGES_CANONICAL)}`);
    expect(hasher.hash('yes')).toBe(`sha256:${sha256Hex('"yes"')}`);
  });

  it('hashes the same content the same whatever its key order', () => {
    const hasher = createContentHasher({});
    const a = hasher.hash({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    const b = hasher.hash({ messages: [{ content: 'x', role: 'user' }], model: 'm' });
    expect(a).toBe(b);
    expect(a).not.toBe(hasher.hash({ model: 'm', messages: [{ role: 'user', content: 'y' }] }));
  });

  it('hashes non-ASCII content as UTF-8', () => {
    expect(createContentHasher({}).hash('é😀')).toBe(`sha256:${sha256Hex(Buffer.from('"é😀"', 'utf8'))}`);
  });

  it('propagates canonicalization errors instead of hashing something else', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => createContentHasher({}).hash(cyclic)).toThrow(TypeError);
    expect(() => createContentHasher({}).hash({ n: Number.NaN })).toThrow(TypeError);
  });
});

describe('keyed hashing', () => {
  it('is hmac-sha256:<keyId>:<hex>, verified against an independent HMAC', () => {
    const hasher = createContentHasher({ key: KEY, keyId: 'k2025' });
    expect(hasher.keyed).toBe(true);
    expect(hasher.keyId).toBe('k2025');
    expect(hasher.hash(MESSAGES)).toBe(`hmac-sha256:k2025:${hmacHex(KEY, MESSAGES_CANONICAL)}`);
  });

  it('hashRepeated gives the same hash as hash, for repeated, changed, long and many different values', () => {
    for (const hasher of [createContentHasher({ key: KEY, keyId: 'k1' }), createContentHasher({})]) {
      const system = [{ role: 'system', content: 'You are terse.' }];
      const first = hasher.hashRepeated(system);
      expect(first).toBe(hasher.hash(system));
      // Same content in a new object: remembered by text, not by identity.
      expect(hasher.hashRepeated([{ content: 'You are terse.', role: 'system' }])).toBe(first);
      // The array was changed in place: the text differs, so the hash does.
      system[0]!.content = 'You are verbose.';
      expect(hasher.hashRepeated(system)).toBe(hasher.hash(system));
      expect(hasher.hashRepeated(system)).not.toBe(first);
      // Longer than what is remembered, and more distinct values than the memo holds.
      const long = 'x'.repeat(10_000);
      expect(hasher.hashRepeated(long)).toBe(hasher.hash(long));
      for (let i = 0; i < 200; i++) expect(hasher.hashRepeated(`prompt ${i}`)).toBe(hasher.hash(`prompt ${i}`));
      expect(hasher.hashRepeated([{ content: 'You are terse.', role: 'system' }])).toBe(first);
    }
  });

  it('hashRepeated of a list of the same message objects: every change to them, in place or not, changes the hash', () => {
    for (const hasher of [createContentHasher({ key: KEY, keyId: 'k1' }), createContentHasher({})]) {
      const system: any = { role: 'system', content: 'You are terse.' };
      const developer: any = { role: 'developer', content: [{ type: 'text', text: 'Cite sources.' }] };
      const check = (list: unknown[]) => expect(hasher.hashRepeated(list)).toBe(hasher.hash(list));
      // A new array around the same objects each time, as a chat call's system messages come.
      const steps: (() => void)[] = [
        () => undefined,
        () => (system.content = 'You are verbose.'),
        () => (developer.content[0].text = 'Cite nothing.'),
        () => developer.content.push({ type: 'text', text: 'More.' }),
        () => (system.name = 'ops'),
        () => delete system.name,
        () => (system.content = 'y'.repeat(5000)),
        () => (system.when = new Date(0)),
        () => (system.when = new Date(1)),
        () => delete system.when,
      ];
      for (const step of steps) {
        step();
        check([system, developer]);
        check([system, developer]);
        check([developer, system]);
        check([system]);
        check([system, developer, 'You are terse.']);
        // Remembered last, so that the next step's change meets it.
        check([system, developer]);
      }
    }
  });

  it('hashRepeated of a string: the same string, an equal one, another one and a value of another type in turn', () => {
    for (const hasher of [createContentHasher({ key: KEY, keyId: 'k1' }), createContentHasher({})]) {
      const prompt = 'You are a careful assistant. '.repeat(20);
      const sequence: unknown[] = [prompt, prompt, ['You are a careful assistant. '.repeat(20)].join(''), 'You are terse.', prompt, [prompt], prompt, 'x'.repeat(10_000), prompt, 'You are terse.'];
      for (const value of sequence) expect(hasher.hashRepeated(value)).toBe(hasher.hash(value));
      expect(hasher.hashRepeated(prompt)).toBe(`${hasher.keyed ? 'hmac-sha256:k1:' + hmacHex(KEY, JSON.stringify(prompt)) : 'sha256:' + sha256Hex(JSON.stringify(prompt))}`);
    }
  });

  it('defaults the key id to the first 8 hex digits of SHA-256 over the key bytes', () => {
    const hasher = createContentHasher({ key: KEY });
    const fingerprint = sha256Hex(Buffer.from(KEY, 'utf8')).slice(0, 8);
    expect(hasher.keyId).toBe(fingerprint);
    expect(hasher.keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(hasher.hash('x')).toBe(`hmac-sha256:${fingerprint}:${hmacHex(KEY, '"x"')}`);
    expect(hasher.hash('x')).not.toContain(KEY);
  });

  it('accepts a binary Buffer key and copies it', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff00', 'hex');
    const hasher = createContentHasher({ key, keyId: 'bin' });
    const expected = `hmac-sha256:bin:${hmacHex(Buffer.from(key), '{"a":1}')}`;
    key.fill(0); // the caller reusing its buffer must not change the key
    expect(hasher.hash({ a: 1 })).toBe(expected);
  });

  it('gives different hashes for different keys and matches unkeyed only by prefix', () => {
    const a = createContentHasher({ key: KEY, keyId: 'a' }).hash('x').split(':')[2];
    const b = createContentHasher({ key: `${KEY}?`, keyId: 'a' }).hash('x').split(':')[2];
    expect(a).not.toBe(b);
    expect(a).not.toBe(createContentHasher({}).hash('x').split(':')[1]);
  });

  it('is key-order independent too', () => {
    const hasher = createContentHasher({ key: KEY });
    expect(hasher.hash({ a: 1, b: { c: 2, d: 3 } })).toBe(hasher.hash({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('requires at least 16 key bytes', () => {
    expect(() => createContentHasher({ key: '123456789012345' })).toThrow(/15 bytes; at least 16/);
    expect(() => createContentHasher({ key: Buffer.alloc(8) })).toThrow(/8 bytes/);
    expect(createContentHasher({ key: '1234567890123456' }).keyed).toBe(true);
    // Bytes, not characters: 8 two-byte characters are 16 bytes.
    expect(createContentHasher({ key: 'éééééééé' }).keyed).toBe(true);
  });

  it.each(['a:b', 'a b', 'tab\there', 'new\nline', ''])('rejects the key id %j', (keyId) => {
    expect(() => createContentHasher({ key: KEY, keyId })).toThrow(Error);
  });

  it('names the problem with a key id that contains a colon', () => {
    expect(() => createContentHasher({ key: KEY, keyId: 'v1:2' })).toThrow(/"v1:2" contains ":" or whitespace/);
  });

  it('rejects a key id without a key', () => {
    expect(() => createContentHasher({ keyId: 'k1' })).toThrow(/without a hash key/);
  });
});

describe('hasherFromEnv', () => {
  it('uses the UTF-8 bytes of LLM_AUDIT_HASH_KEY and LLM_AUDIT_HASH_KEY_ID', () => {
    const hasher = hasherFromEnv({ LLM_AUDIT_HASH_KEY: KEY, LLM_AUDIT_HASH_KEY_ID: 'prod-2025' });
    expect(hasher.keyed).toBe(true);
    expect(hasher.keyId).toBe('prod-2025');
    expect(hasher.hash(MESSAGES)).toBe(`hmac-sha256:prod-2025:${hmacHex(KEY, MESSAGES_CANONICAL)}`);
  });

  it('decodes hex: and base64: keys to the same bytes', () => {
    const bytes = Buffer.from('000102030405060708090a0b0c0d0e0f10ff', 'hex');
    const expected = `hmac-sha256:${sha256Hex(bytes).slice(0, 8)}:${hmacHex(bytes, '"x"')}`;
    expect(hasherFromEnv({ LLM_AUDIT_HASH_KEY: `hex:${bytes.toString('hex')}` }).hash('x')).toBe(expected);
    expect(hasherFromEnv({ LLM_AUDIT_HASH_KEY: `hex:${bytes.toString('hex').toUpperCase()}` }).hash('x')).toBe(expected);
    expect(hasherFromEnv({ LLM_AUDIT_HASH_KEY: `base64:${bytes.toString('base64')}` }).hash('x')).toBe(expected);
    expect(hasherFromEnv({ LLM_AUDIT_HASH_KEY: `base64:${bytes.toString('base64').replace(/=+$/, '')}` }).hash('x')).toBe(
      expected,
    );
  });

  it('defaults the key id to the fingerprint of the decoded bytes, not of the env text', () => {
    const bytes = Buffer.alloc(32, 7);
    const hasher = hasherFromEnv({ LLM_AUDIT_HASH_KEY: `hex:${bytes.toString('hex')}` });
    expect(hasher.keyId).toBe(sha256Hex(bytes).slice(0, 8));
  });

  it.each([
    ['odd number of hex digits', 'hex:abc'],
    ['non-hex characters', `hex:${'zz'.repeat(16)}`],
    ['empty hex', 'hex:'],
  ])('rejects a hex key with %s', (_label, value) => {
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY: value })).toThrow(/"hex:" but the rest is not/);
  });

  it.each([
    ['characters outside base64', 'base64:not*base64!!not*base64!!'],
    ['a bad length', 'base64:AAAAA'],
    ['nothing after the prefix', 'base64:'],
  ])('rejects a base64 key with %s', (_label, value) => {
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY: value })).toThrow(/"base64:" but the rest is not valid base64/);
  });

  it('rejects a decoded key shorter than 16 bytes', () => {
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY: `hex:${'ab'.repeat(15)}` })).toThrow(/15 bytes; at least 16/);
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY: 'short' })).toThrow(/5 bytes/);
  });

  it('rejects a bad key id from the environment', () => {
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY: KEY, LLM_AUDIT_HASH_KEY_ID: 'a b' })).toThrow(/whitespace/);
  });

  it('rejects LLM_AUDIT_HASH_KEY_ID without LLM_AUDIT_HASH_KEY', () => {
    expect(() => hasherFromEnv({ LLM_AUDIT_HASH_KEY_ID: 'k1' })).toThrow(/LLM_AUDIT_HASH_KEY_ID is set but LLM_AUDIT_HASH_KEY is not/);
  });

  it('falls back to unkeyed SHA-256 without a key (an empty variable counts as unset)', () => {
    for (const env of [{}, { LLM_AUDIT_HASH_KEY: '' }, { LLM_AUDIT_HASH_KEY: '', LLM_AUDIT_HASH_KEY_ID: '' }]) {
      const hasher = hasherFromEnv(env);
      expect(hasher.keyed).toBe(false);
      expect(hasher.hash('x')).toBe(`sha256:${sha256Hex('"x"')}`);
    }
  });

  it('reads only the environment it is given; the process environment is read by src/config for an instrumentation built without a key', () => {
    const saved = process.env.LLM_AUDIT_HASH_KEY;
    process.env.LLM_AUDIT_HASH_KEY = KEY;
    try {
      expect(hasherFromEnv({}).hash('x')).toBe(`sha256:${sha256Hex('"x"')}`);
      const { hashKey, hashKeyId } = processDefaults.hashKey();
      expect(createContentHasher({ key: hashKey, keyId: hashKeyId }).hash('x')).toBe(`hmac-sha256:${sha256Hex(KEY).slice(0, 8)}:${hmacHex(KEY, '"x"')}`);
    } finally {
      if (saved === undefined) delete process.env.LLM_AUDIT_HASH_KEY;
      else process.env.LLM_AUDIT_HASH_KEY = saved;
    }
  });
});

describe('the unkeyed warning', () => {
  afterEach(() => {
    diag.disable();
  });

  function captureWarnings(): string[] {
    const warnings: string[] = [];
    const noop = (): void => {};
    const logger: DiagLogger = {
      error: noop,
      info: noop,
      debug: noop,
      verbose: noop,
      warn: (message: string) => {
        warnings.push(message);
      },
    };
    diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    return warnings;
  }

  it('is logged once per process, names LLM_AUDIT_HASH_KEY, and not for keyed hashers', async () => {
    vi.resetModules(); // a fresh module: other tests in this file already created unkeyed hashers
    const fresh = await import('../../src/audit/hashing');
    const warnings = captureWarnings();

    fresh.createContentHasher({ key: KEY });
    expect(warnings).toHaveLength(0);

    fresh.createContentHasher({});
    fresh.hasherFromEnv({});
    fresh.createContentHasher({}).hash('x');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('LLM_AUDIT_HASH_KEY');
    expect(warnings[0]).toMatch(/reversed by hashing guesses/);
  });
});
