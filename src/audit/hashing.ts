/**
 * Content hashes for the audit trail: prompts and outputs are never recorded, only a digest that
 * lets an auditor prove what was sent or received by recomputing it from their own copy.
 *
 * A plain SHA-256 of a short prompt ("yes", a customer id, a diagnosis code) can be reversed by
 * hashing guesses, so the recommended setup is keyed: HMAC-SHA-256 with a key the telemetry backend
 * never sees. The key id travels in the hash string so that hashes stay verifiable across key
 * rotation.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { diag } from '@opentelemetry/api';
import { canonicalJson } from './canonical-json';

export interface ContentHasher {
  readonly keyed: boolean;
  readonly keyId: string | undefined;
  /** `hmac-sha256:<keyId>:<hex>` when keyed, else `sha256:<hex>`, over canonicalJson(value). */
  hash(value: unknown): string;
  /**
   * The same hash, for a value that is expected to come back call after call (a system prompt):
   * the hashes of the last few short canonical texts are remembered, and looking one up costs a
   * fraction of initialising an HMAC.
   */
  hashRepeated(value: unknown): string;
}

const HASH_KEY_ENV = 'LLM_AUDIT_HASH_KEY';
const HASH_KEY_ID_ENV = 'LLM_AUDIT_HASH_KEY_ID';

/** 128 bits is the floor for a secret key; a shorter key is too weak whatever its source. */
const MIN_HASH_KEY_BYTES = 16;

// A key id is embedded in `hmac-sha256:<keyId>:<hex>`, where `:` is the separator and whitespace
// would break attribute parsing downstream; anything else printable is the operator's choice.
const INVALID_KEY_ID = /[:\s]/;
const HEX_BODY = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64_BODY = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

let warnedUnkeyed = false;

/**
 * Creates a hasher. With `key`, hashes are HMAC-SHA-256 labelled with `keyId` (default: the first 8
 * hex digits of SHA-256 over the key bytes). Without a key, hashes are plain SHA-256 and a warning is
 * logged once per process.
 *
 * @throws Error when the key is shorter than 16 bytes, when the key id is empty or contains `:` or
 *   whitespace, or when a key id is given without a key.
 */
export function createContentHasher(options: { key?: string | Buffer; keyId?: string }): ContentHasher {
  const { key, keyId } = options;
  if (key === undefined) {
    if (keyId !== undefined) {
      throw new Error(`otel-llm-audit: a hash key id (${JSON.stringify(keyId)}) was given without a hash key`);
    }
    warnUnkeyedOnce();
    return new Sha256Hasher();
  }
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (!Buffer.isBuffer(keyBytes)) {
    throw new TypeError('otel-llm-audit: the hash key must be a string or a Buffer');
  }
  if (keyBytes.length < MIN_HASH_KEY_BYTES) {
    throw new Error(
      `otel-llm-audit: the hash key is ${keyBytes.length} bytes; at least ${MIN_HASH_KEY_BYTES} are required ` +
        'so that hashes of short content cannot be reversed by guessing',
    );
  }
  const id = keyId ?? fingerprint(keyBytes);
  validateKeyId(id);
  return new HmacSha256Hasher(createSecretKey(keyBytes), id);
}

/**
 * Creates the hasher configured by the environment: `LLM_AUDIT_HASH_KEY` is the key (its UTF-8
 * bytes, or binary given as `hex:<hex>` or `base64:<base64>`), `LLM_AUDIT_HASH_KEY_ID` optionally
 * names it. An empty variable counts as unset.
 *
 * @throws Error for a malformed `hex:`/`base64:` key, a key shorter than 16 bytes, a key id with
 *   `:` or whitespace, or a key id without a key.
 */
export function hasherFromEnv(env: NodeJS.ProcessEnv = process.env): ContentHasher {
  const rawKey = env[HASH_KEY_ENV];
  const rawKeyId = env[HASH_KEY_ID_ENV];
  const keyId = rawKeyId === undefined || rawKeyId === '' ? undefined : rawKeyId;
  if (rawKey === undefined || rawKey === '') {
    if (keyId !== undefined) {
      throw new Error(`otel-llm-audit: ${HASH_KEY_ID_ENV} is set but ${HASH_KEY_ENV} is not`);
    }
    return createContentHasher({});
  }
  return createContentHasher({ key: parseEnvKey(rawKey), keyId });
}

function parseEnvKey(raw: string): Buffer {
  if (raw.startsWith('hex:')) {
    const body = raw.slice(4);
    if (!HEX_BODY.test(body)) {
      throw new Error(`otel-llm-audit: ${HASH_KEY_ENV} starts with "hex:" but the rest is not an even number of hex digits`);
    }
    return Buffer.from(body, 'hex');
  }
  if (raw.startsWith('base64:')) {
    const body = raw.slice(7);
    // Buffer.from(…, 'base64') silently skips characters it does not know, which would turn a
    // mangled key into a different, shorter one; validate first.
    if (body === '' || !BASE64_BODY.test(body)) {
      throw new Error(`otel-llm-audit: ${HASH_KEY_ENV} starts with "base64:" but the rest is not valid base64`);
    }
    return Buffer.from(body, 'base64');
  }
  return Buffer.from(raw, 'utf8');
}

function validateKeyId(keyId: string): void {
  if (typeof keyId !== 'string' || keyId === '') {
    throw new Error('otel-llm-audit: the hash key id must be a non-empty string');
  }
  if (INVALID_KEY_ID.test(keyId)) {
    throw new Error(
      `otel-llm-audit: the hash key id ${JSON.stringify(keyId)} contains ":" or whitespace, ` +
        'which would make `hmac-sha256:<keyId>:<hex>` ambiguous',
    );
  }
}

/** Names a key without revealing it: SHA-256 is one-way, and 32 bits cannot help guess the key. */
function fingerprint(keyBytes: Buffer): string {
  return createHash('sha256').update(keyBytes).digest('hex').slice(0, 8);
}

function warnUnkeyedOnce(): void {
  if (warnedUnkeyed) return;
  warnedUnkeyed = true;
  diag.warn(
    `otel-llm-audit: ${HASH_KEY_ENV} is not set, so content hashes are unkeyed SHA-256. ` +
      'Unkeyed hashes of short prompts and outputs can be reversed by hashing guesses; ' +
      `set ${HASH_KEY_ENV} (at least ${MIN_HASH_KEY_BYTES} bytes) to get HMAC-SHA-256 hashes.`,
  );
}

/** What both hashers share: canonical text in, labelled hex digest out, with a small memo. */
abstract class CanonicalHasher implements ContentHasher {
  abstract readonly keyed: boolean;
  abstract readonly keyId: string | undefined;
  // Bounded in entry count and text length (what is remembered is a copy of prompt text, in
  // process memory only); dropped whole when full rather than tracking recency.
  static readonly #MAX_TEXT_LENGTH = 4096;
  static readonly #MAX_ENTRIES = 64;
  readonly #recent = new Map<string, string>();

  protected abstract digest(text: string): string;

  hash(value: unknown): string {
    return this.digest(canonicalJson(value));
  }

  hashRepeated(value: unknown): string {
    const text = canonicalJson(value);
    if (text.length > CanonicalHasher.#MAX_TEXT_LENGTH) return this.digest(text);
    let hash = this.#recent.get(text);
    if (hash === undefined) {
      hash = this.digest(text);
      if (this.#recent.size >= CanonicalHasher.#MAX_ENTRIES) this.#recent.clear();
      this.#recent.set(text, hash);
    }
    return hash;
  }
}

class Sha256Hasher extends CanonicalHasher {
  readonly keyed = false;
  readonly keyId = undefined;

  protected digest(text: string): string {
    return 'sha256:' + createHash('sha256').update(text, 'utf8').digest('hex');
  }
}

class HmacSha256Hasher extends CanonicalHasher {
  readonly keyed = true;
  readonly keyId: string;
  // Imported once as a KeyObject: the key lives in native memory (out of heap snapshots, unaffected
  // if the caller later overwrites their Buffer) and every HMAC reuses it.
  readonly #key: KeyObject;
  readonly #prefix: string;

  constructor(key: KeyObject, keyId: string) {
    super();
    this.#key = key;
    this.keyId = keyId;
    this.#prefix = `hmac-sha256:${keyId}:`;
  }

  protected digest(text: string): string {
    return this.#prefix + createHmac('sha256', this.#key).update(text, 'utf8').digest('hex');
  }
}
