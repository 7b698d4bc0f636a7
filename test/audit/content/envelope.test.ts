import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ContentError,
  ENVELOPE_PREFIX,
  contentCipherFromEnv,
  contentPayload,
  createContentMasterKey,
  isContentEnvelope,
  loadContentMasterKey,
  masterKeyFromBytes,
  parseEnvelope,
  type ContentCipher,
  type ContentPayload,
} from '../../../src/audit/content';
import { cipherFor, newKey, tempDir } from './helpers';
import { messagesRequest } from '../../../src/instrumentations/anthropic/request';
import { chatRequest, embeddingsRequest, responsesRequest } from '../../../src/instrumentations/openai/request';
import type { RequestWalker } from '../../../src/core/types';

const CANARY = 'CANARY-7f3a9-do-not-leak';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ContentError);
    return (error as ContentError).code;
  }
  return undefined;
}

/** Rewrites one member of an envelope, keeping its member order. */
function withMember(envelope: string, name: string, value: unknown): string {
  const doc = JSON.parse(envelope) as Record<string, unknown>;
  doc[name] = value;
  return JSON.stringify(doc);
}

const PROVIDER_CALLS: Array<{ kind: RequestWalker; params: unknown; output?: unknown }> = [
  {
    kind: chatRequest,
    params: {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: `system ${CANARY}` },
        { role: 'user', content: `question ${CANARY}` },
        { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: `{"secret":"${CANARY}"}` } }] },
        { role: 'tool', tool_call_id: 'c1', content: `tool said ${CANARY}` },
      ],
    },
    output: [{ role: 'assistant', parts: [{ type: 'text', content: `answer ${CANARY}` }], finish_reason: 'stop' }],
  },
  {
    kind: responsesRequest,
    params: { instructions: `be brief ${CANARY}`, input: [{ role: 'user', content: [{ type: 'input_text', text: CANARY }] }, { type: 'function_call', call_id: 'f', name: 'n', arguments: CANARY }] },
    output: [{ role: 'assistant', parts: [{ type: 'tool_call', id: 'f2', name: 'n', arguments: `{"x":"${CANARY}"}` }], finish_reason: 'completed' }],
  },
  { kind: embeddingsRequest, params: { input: [CANARY, 'second'] } },
  {
    kind: messagesRequest,
    params: {
      system: [{ type: 'text', text: `sys ${CANARY}` }],
      messages: [
        { role: 'user', content: `hello ${CANARY}` },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'search', input: { q: CANARY } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: CANARY }] },
      ],
    },
    output: [{ role: 'assistant', parts: [{ type: 'reasoning', content: CANARY }, { type: 'text', content: 'ok' }], finish_reason: 'end_turn' }],
  },
];

describe('seal / open', () => {
  it('round-trips every provider shape, and the envelope starts with the exact prefix and carries no plaintext', () => {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    for (const [i, call] of PROVIDER_CALLS.entries()) {
      const payload = contentPayload(call.kind, call.params, call.output);
      const envelope = cipher.seal(payload, { requestId: `req-${i}`, tenantId: 'acme' });
      expect(envelope.startsWith('{"llm_audit_envelope":1,')).toBe(true);
      expect(envelope.startsWith(ENVELOPE_PREFIX)).toBe(true);
      expect(isContentEnvelope(envelope)).toBe(true);
      expect(envelope).not.toContain(CANARY);
      expect(envelope).not.toContain(Buffer.from(CANARY).toString('base64').slice(0, 12));
      expect(Object.keys(JSON.parse(envelope))).toEqual(['llm_audit_envelope', 'alg', 'kid', 'dek', 'tenant', 'nonce', 'ct']);
      const opened = cipher.open(envelope, { requestId: `req-${i}`, tenantId: 'acme' });
      expect(opened).toEqual(JSON.parse(JSON.stringify(payload)));
      expect(JSON.stringify(opened)).toContain(CANARY);
    }
  });

  it('uses fresh nonces: the same content sealed twice gives different envelopes', () => {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    const payload: ContentPayload = { input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'same' }] }] };
    const a = cipher.seal(payload, { requestId: 'r' });
    const b = cipher.seal(payload, { requestId: 'r' });
    expect(parseEnvelope(a).nonce.equals(parseEnvelope(b).nonce)).toBe(false);
    expect(a).not.toBe(b);
  });

  it('uses one data key per tenant, and the default (null tenant) key for records without a tenant', () => {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    const p: ContentPayload = { input_messages: [] };
    const none1 = parseEnvelope(cipher.seal(p, { requestId: 'r1' }));
    const none2 = parseEnvelope(cipher.seal(p, { requestId: 'r2', tenantId: '' }));
    const a1 = parseEnvelope(cipher.seal(p, { requestId: 'r3', tenantId: 'a' }));
    const a2 = parseEnvelope(cipher.seal(p, { requestId: 'r4', tenantId: 'a' }));
    const b = parseEnvelope(cipher.seal(p, { requestId: 'r5', tenantId: 'b' }));
    expect(none1.tenant).toBeNull();
    expect(none1.dek).toBe(none2.dek);
    expect(a1.dek).toBe(a2.dek);
    expect(new Set([none1.dek, a1.dek, b.dek]).size).toBe(3);
  });

  it('encrypts even a payload canonical JSON refuses (cycles, BigInt), as its JSON-safe copy', () => {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    const cyc: Record<string, unknown> = { type: 'text', content: 'x', n: 1n };
    cyc.me = cyc;
    const envelope = cipher.seal({ input_messages: [{ role: 'user', parts: [cyc] }] }, { requestId: 'r' });
    expect(cipher.open(envelope, { requestId: 'r' })).toEqual({ input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'x', n: '1', me: '[circular]' }] }] });
  });

  it('refuses a missing request id or a non-string tenant', () => {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    expect(codeOf(() => cipher.seal({}, { requestId: '' }))).toBe('CONTENT_USAGE');
    expect(codeOf(() => cipher.seal({}, { requestId: 'r', tenantId: 5 as unknown as string }))).toBe('CONTENT_USAGE');
  });
});

describe('tampering', () => {
  function sealed(): { cipher: ContentCipher; envelope: string; other: string } {
    const dir = tempDir();
    const cipher = cipherFor(dir, newKey(dir, 'ck-a'));
    const payload: ContentPayload = { input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'the real question' }] }] };
    const envelope = cipher.seal(payload, { requestId: 'req-1', tenantId: 'acme' });
    // Another tenant's envelope, for moving members between them.
    const other = cipher.seal(payload, { requestId: 'req-1', tenantId: 'globex' });
    return { cipher, envelope, other };
  }

  it('fails with CONTENT_TAMPERED when the ciphertext, tag or nonce changes', () => {
    const { cipher, envelope } = sealed();
    const doc = JSON.parse(envelope) as { ct: string; nonce: string };
    const ct = Buffer.from(doc.ct, 'base64');
    for (const index of [0, ct.length - 17, ct.length - 1]) {
      const flipped = Buffer.from(ct);
      flipped[index]! ^= 0x01;
      expect(codeOf(() => cipher.open(withMember(envelope, 'ct', flipped.toString('base64')), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    }
    const nonce = Buffer.from(doc.nonce, 'base64');
    nonce[3]! ^= 0x80;
    expect(codeOf(() => cipher.open(withMember(envelope, 'nonce', nonce.toString('base64')), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    // Truncated ciphertext.
    expect(codeOf(() => cipher.open(withMember(envelope, 'ct', ct.subarray(1).toString('base64')), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
  });

  it('fails with CONTENT_TAMPERED when moved to another record or tenant, or when a bound field is edited', () => {
    const { cipher, envelope, other } = sealed();
    expect(cipher.open(envelope, { requestId: 'req-1', tenantId: 'acme' }).input_messages).toHaveLength(1);
    // Another record (request id).
    expect(codeOf(() => cipher.open(envelope, { requestId: 'req-2' }))).toBe('CONTENT_TAMPERED');
    // A record of another tenant.
    expect(codeOf(() => cipher.open(envelope, { requestId: 'req-1', tenantId: 'globex' }))).toBe('CONTENT_TAMPERED');
    expect(codeOf(() => cipher.open(envelope, { requestId: 'req-1', tenantId: null }))).toBe('CONTENT_TAMPERED');
    // Relabelled tenant (with and without a matching record tenant).
    const relabelled = withMember(envelope, 'tenant', 'globex');
    expect(codeOf(() => cipher.open(relabelled, { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    expect(codeOf(() => cipher.open(relabelled, { requestId: 'req-1', tenantId: 'globex' }))).toBe('CONTENT_TAMPERED');
    // Pointed at the other tenant's data key, with and without its tenant label.
    const otherDek = (JSON.parse(other) as { dek: string }).dek;
    expect(codeOf(() => cipher.open(withMember(envelope, 'dek', otherDek), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    expect(codeOf(() => cipher.open(withMember(withMember(envelope, 'dek', otherDek), 'tenant', 'globex'), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    // Another key id.
    expect(codeOf(() => cipher.open(withMember(envelope, 'kid', 'ck-b'), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
    // The other tenant's ciphertext in this envelope.
    expect(codeOf(() => cipher.open(withMember(envelope, 'ct', (JSON.parse(other) as { ct: string }).ct), { requestId: 'req-1' }))).toBe('CONTENT_TAMPERED');
  });

  it('fails with CONTENT_ENVELOPE_INVALID for values that are not envelopes', () => {
    const { cipher, envelope } = sealed();
    const bad = [
      '',
      'plain text',
      envelope.replace('"llm_audit_envelope":1,', '"llm_audit_envelope":2,'),
      envelope.slice(0, -1),
      withMember(envelope, 'alg', 'AES-128-CBC'),
      withMember(envelope, 'nonce', 'AAAA'),
      withMember(envelope, 'nonce', 'not base64!'),
      withMember(envelope, 'ct', 'AAAA'),
      withMember(envelope, 'extra', 1),
      withMember(envelope, 'tenant', ''),
      withMember(envelope, 'kid', 'has space'),
      JSON.stringify({ alg: 'AES-256-GCM', llm_audit_envelope: 1 }),
    ];
    for (const value of bad) expect(codeOf(() => cipher.open(value, { requestId: 'req-1' })), value.slice(0, 60)).toBe('CONTENT_ENVELOPE_INVALID');
    expect(codeOf(() => cipher.open(null as unknown as string, { requestId: 'req-1' }))).toBe('CONTENT_ENVELOPE_INVALID');
  });
});

describe('keys', () => {
  it('a wrong master key file for the same key id fails with CONTENT_KEY_INVALID, an unknown key id with CONTENT_KEY_MISSING', () => {
    const dir = tempDir();
    const right = newKey(dir, 'ck-a');
    const envelope = cipherFor(dir, right).seal({ input_messages: [] }, { requestId: 'r' });
    const impostor = masterKeyFromBytes(Buffer.alloc(32, 7), 'ck-a');
    const err = (() => {
      try {
        cipherFor(dir, impostor).open(envelope, { requestId: 'r' });
      } catch (error) {
        return error as ContentError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('CONTENT_KEY_INVALID');
    expect(err?.message).toContain('does not unwrap');
    expect(codeOf(() => cipherFor(dir, newKey(dir, 'ck-other')).open(envelope, { requestId: 'r' }))).toBe('CONTENT_KEY_MISSING');
    // An open-only cipher cannot seal.
    expect(codeOf(() => cipherFor(dir, undefined, [right]).seal({}, { requestId: 'r' }))).toBe('CONTENT_KEY_MISSING');
    expect(cipherFor(dir, undefined, [right]).open(envelope, { requestId: 'r' })).toEqual({ input_messages: [] });
  });

  it('rotation: new envelopes use the new key id, old ones still open with the old key listed, and not without it', () => {
    const dir = tempDir();
    const k1 = newKey(dir, 'ck-2026-01');
    const k2 = newKey(dir, 'ck-2026-07');
    const p: ContentPayload = { input_messages: [{ role: 'user', parts: [{ type: 'text', content: 'old' }] }] };
    const before = cipherFor(dir, k1);
    const oldA = before.seal(p, { requestId: 'r1', tenantId: 'a' });
    const oldNone = before.seal(p, { requestId: 'r2' });

    const after = cipherFor(dir, k2, [k1]);
    expect(after.keyId).toBe('ck-2026-07');
    const newA = after.seal(p, { requestId: 'r3', tenantId: 'a' });
    expect(parseEnvelope(newA).kid).toBe('ck-2026-07');
    expect(parseEnvelope(newA).dek).not.toBe(parseEnvelope(oldA).dek);
    expect(after.open(oldA, { requestId: 'r1', tenantId: 'a' })).toEqual(p);
    expect(after.open(oldNone, { requestId: 'r2' })).toEqual(p);
    expect(after.open(newA, { requestId: 'r3' })).toEqual(p);

    const withoutOld = cipherFor(dir, k2);
    expect(codeOf(() => withoutOld.open(oldA, { requestId: 'r1' }))).toBe('CONTENT_KEY_MISSING');
    expect(withoutOld.open(newA, { requestId: 'r3' })).toEqual(p);
  });

  it('loads key files: own JSON format, hex, base64 and raw bytes; refuses bad files and conflicting ids', () => {
    const dir = tempDir();
    const { kid } = createContentMasterKey(join(dir, 'k.json'), 'ck-json');
    expect(kid).toBe('ck-json');
    expect(loadContentMasterKey(join(dir, 'k.json')).kid).toBe('ck-json');
    expect(loadContentMasterKey(join(dir, 'k.json'), 'ck-json').kid).toBe('ck-json');
    expect(codeOf(() => loadContentMasterKey(join(dir, 'k.json'), 'ck-renamed'))).toBe('CONTENT_KEY_INVALID');
    expect(codeOf(() => createContentMasterKey(join(dir, 'k.json')))).toBe('CONTENT_FILE_EXISTS');

    const bytes = Buffer.alloc(32, 0xab);
    writeFileSync(join(dir, 'hex'), bytes.toString('hex') + '\n');
    writeFileSync(join(dir, 'b64'), bytes.toString('base64'));
    writeFileSync(join(dir, 'raw'), bytes);
    const fromHex = loadContentMasterKey(join(dir, 'hex'));
    expect(fromHex.kid).toMatch(/^ck-[0-9a-f]{12}$/);
    expect(loadContentMasterKey(join(dir, 'b64')).kid).toBe(fromHex.kid);
    expect(loadContentMasterKey(join(dir, 'raw')).kid).toBe(fromHex.kid);
    expect(loadContentMasterKey(join(dir, 'hex'), 'ck-named').kid).toBe('ck-named');

    writeFileSync(join(dir, 'short'), 'abcd');
    writeFileSync(join(dir, 'badjson'), '{"llm_audit_content_key":1,"key":"AAAA"}');
    expect(codeOf(() => loadContentMasterKey(join(dir, 'short')))).toBe('CONTENT_KEY_INVALID');
    expect(codeOf(() => loadContentMasterKey(join(dir, 'badjson')))).toBe('CONTENT_KEY_INVALID');
    expect(codeOf(() => loadContentMasterKey(join(dir, 'absent')))).toBe('CONTENT_KEY_MISSING');
    expect(codeOf(() => loadContentMasterKey(join(dir, 'hex'), 'bad:id'))).toBe('CONTENT_KEY_INVALID');
  });
});

describe('contentCipherFromEnv', () => {
  it('is off unless LLM_AUDIT_CONTENT=encrypted, and says clearly what is missing', () => {
    const dir = tempDir();
    expect(contentCipherFromEnv({})).toBeUndefined();
    expect(contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'off' })).toBeUndefined();
    expect(codeOf(() => contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'plaintext' }))).toBe('CONTENT_CONFIG_INVALID');
    expect(codeOf(() => contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted' }))).toBe('CONTENT_KEY_MISSING');
    expect(codeOf(() => contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: join(dir, 'nope.json') }))).toBe('CONTENT_KEY_MISSING');
  });

  it('builds a cipher from the key, key id, old keys and keystore variables', () => {
    const dir = tempDir();
    const old = newKey(dir, 'ck-old');
    writeFileSync(join(dir, 'current.hex'), Buffer.alloc(32, 3).toString('hex'));
    // An envelope of the old key, in a keystore outside the key directory.
    const oldEnvelope = cipherFor(join(dir, 'store'), old).seal({ input_messages: [] }, { requestId: 'r0' });
    const cipher = contentCipherFromEnv({
      LLM_AUDIT_CONTENT: 'encrypted',
      LLM_AUDIT_CONTENT_KEY: join(dir, 'current.hex'),
      LLM_AUDIT_CONTENT_KEY_ID: 'ck-current',
      LLM_AUDIT_CONTENT_OLD_KEYS: ` ${old.path} ,`,
      LLM_AUDIT_CONTENT_KEYSTORE: join(dir, 'store', 'content-keystore.jsonl'),
    })!;
    expect(cipher.keyId).toBe('ck-current');
    expect(cipher.open(oldEnvelope, { requestId: 'r0' })).toEqual({ input_messages: [] });
    const fresh = cipher.seal({ output_messages: [] }, { requestId: 'r1', tenantId: 't' });
    expect(parseEnvelope(fresh).kid).toBe('ck-current');
    // Default keystore: next to the master key.
    const defaulted = contentCipherFromEnv({ LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: old.path })!;
    expect(defaulted.keystorePath).toBe(join(dir, 'content-keystore.jsonl'));
  });
});
