/**
 * Content hashes for the audit trail: prompts and outputs are never recorded, only a digest that
 * lets an auditor prove what was sent or received by recomputing it from their own copy.
 *
 * A plain SHA-256 of a short prompt ("yes", a customer id, a diagnosis code) can be reversed by
 * hashing guesses, so the recommended setup is keyed: HMAC-SHA-256 with a key the telemetry backend
 * never sees. The key id travels in the hash string so that hashes stay verifiable across key
 * rotation.
 */
import { createHash, createHmac, createSecretKey, type Hash, type KeyObject } from 'node:crypto';
import { diag } from '@opentelemetry/api';
import { canonicalElement, canonicalJson } from './canonical-json';
import { ConversationMemo, matchesSnapshot, takeSnapshot, UNCHECKABLE, type Snapshot } from './conversation-memo';

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
  /**
   * The same hash as `hash(messages)`, for a message list that is sent again call after call with
   * new turns appended: the hash state after the turns already hashed is resumed when they are the
   * same, unchanged message objects (see conversation-memo.ts). Anything but an array is hashed as
   * `hash` does.
   */
  hashMessages(messages: unknown): string;
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
  return new HmacSha256Hasher(keyBytes, id);
}

/**
 * Creates the hasher configured by the environment: `LLM_AUDIT_HASH_KEY` is the key (its UTF-8
 * bytes, or binary given as `hex:<hex>` or `base64:<base64>`), `LLM_AUDIT_HASH_KEY_ID` optionally
 * names it. An empty variable counts as unset.
 *
 * @throws Error for a malformed `hex:`/`base64:` key, a key shorter than 16 bytes, a key id with
 *   `:` or whitespace, or a key id without a key.
 */
export function hasherFromEnv(env: NodeJS.ProcessEnv): ContentHasher {
  const { hashKey, hashKeyId } = hashKeyFromEnv(env);
  return createContentHasher({ key: hashKey, keyId: hashKeyId });
}

/** The key and key id of `LLM_AUDIT_HASH_KEY` / `LLM_AUDIT_HASH_KEY_ID` (unset or empty: none); throws for a malformed key or an id without a key. */
export function hashKeyFromEnv(env: NodeJS.ProcessEnv): { hashKey: Buffer | undefined; hashKeyId: string | undefined } {
  const rawKey = env[HASH_KEY_ENV];
  const rawKeyId = env[HASH_KEY_ID_ENV];
  const hashKeyId = rawKeyId === undefined || rawKeyId === '' ? undefined : rawKeyId;
  if (rawKey === undefined || rawKey === '') {
    if (hashKeyId !== undefined) {
      throw new Error(`otel-llm-audit: ${HASH_KEY_ID_ENV} is set but ${HASH_KEY_ENV} is not`);
    }
    return { hashKey: undefined, hashKeyId: undefined };
  }
  return { hashKey: parseEnvKey(rawKey), hashKeyId };
}

/** The bytes of an `LLM_AUDIT_HASH_KEY` value (UTF-8, or `hex:` / `base64:`); throws for a malformed one. */
export function parseEnvKey(raw: string): Buffer {
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

/** What both hashers share: canonical text in, labelled hex digest out, with small memos. */
abstract class CanonicalHasher implements ContentHasher {
  abstract readonly keyed: boolean;
  abstract readonly keyId: string | undefined;
  // Bounded in entry count and text length (what is remembered is a copy of prompt text, in
  // process memory only); dropped whole when full rather than tracking recency.
  static readonly #MAX_TEXT_LENGTH = 4096;
  static readonly #MAX_ENTRIES = 64;
  readonly #recent = new Map<string, string>();
  // The last string given to hashRepeated and its hash: a system prompt sent as one string
  // (Anthropic's `system`) is the same string call after call, and comparing it (the same string:
  // one pointer; an equal one: its characters) costs less than quoting it and looking it up.
  #lastString: string | undefined;
  #lastStringHash = '';
  // The same for a list of objects (an OpenAI chat call's system and developer messages, a new
  // array each call): its hash stands while the list holds the same objects, each unchanged by
  // its snapshot (conversation-memo.ts), so the canonical text is neither built nor looked up.
  #lastList: { items: readonly unknown[]; snapshots: readonly Snapshot[]; hash: string } | undefined;
  readonly #conversations = new ConversationMemo<Hash>();

  /** The labelled digest of `text`, in one go. */
  protected abstract digest(text: string): string;
  /** A state to feed text into; `finish` turns it into the same labelled digest. */
  protected abstract begin(): Hash;
  protected abstract finish(state: Hash): string;

  hash(value: unknown): string {
    if (!isPlainArray(value)) return this.digest(canonicalJson(value));
    // Arrays (conversations, output messages) element by element: a small one is hashed in one go,
    // a large one continues in pieces (see PieceFeed).
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      text += (i > 0 ? ',' : '') + canonicalElement(value, i);
      if (text.length >= FEED_CHARS) {
        const feed = new PieceFeed(this.begin());
        feed.add(text);
        for (let j = i + 1; j < value.length; j++) feed.add(',' + canonicalElement(value, j));
        feed.add(']');
        return this.finish(feed.flush());
      }
    }
    return this.digest(text + ']');
  }

  hashRepeated(value: unknown): string {
    if (typeof value === 'string' && value === this.#lastString) return this.#lastStringHash;
    const list = isPlainArray(value) ? value : undefined;
    if (list !== undefined && this.#lastList !== undefined && sameUnchanged(list, this.#lastList.items, this.#lastList.snapshots)) return this.#lastList.hash;
    const text = canonicalJson(value);
    let hash = text.length > CanonicalHasher.#MAX_TEXT_LENGTH ? this.digest(text) : this.#recent.get(text);
    if (hash === undefined) {
      hash = this.digest(text);
      if (this.#recent.size >= CanonicalHasher.#MAX_ENTRIES) this.#recent.clear();
      this.#recent.set(text, hash);
    }
    if (typeof value === 'string') {
      this.#lastString = value;
      this.#lastStringHash = hash;
    } else if (list !== undefined) {
      const snapshots = list.map(takeSnapshot);
      this.#lastList = snapshots.includes(UNCHECKABLE) ? undefined : { items: list.slice(), snapshots: snapshots as Snapshot[], hash };
    }
    return hash;
  }

  hashMessages(messages: unknown): string {
    if (!isPlainArray(messages) || messages.length === 0) return this.hash(messages);
    const memo = this.#conversations;
    const resumed = memo.resume(messages);
    if (resumed === undefined && !memo.worthRemembering()) return this.hash(messages);
    // States are only ever copied out of the memo, never fed: a remembered state stays as it was.
    const from = resumed?.covered ?? 0;
    if (resumed !== undefined && from === messages.length) {
      // The very list again: its hash depends on the remembered state alone, which is never fed.
      return (resumed.entry.final ??= this.finish(resumed.state.copy().update(']', 'utf8')));
    }
    const state = resumed !== undefined ? resumed.state.copy() : this.begin();
    const snapshots: Snapshot[] = resumed !== undefined ? resumed.snapshots.slice() : [];
    const feed = new PieceFeed(state);
    if (from === 0) feed.add('[');
    // The state after the last message a snapshot can check is the one remembered; a message that
    // cannot be checked ends what can be resumed later.
    let checkable = true;
    for (let i = from; i < messages.length; i++) {
      const text = (i > 0 ? ',' : '') + canonicalElement(messages, i);
      if (checkable) {
        const snapshot = takeSnapshot(messages[i]);
        if (snapshot === UNCHECKABLE) {
          checkable = false;
          if (snapshots.length > from) memo.remember(messages, snapshots.length, snapshots, feed.flush().copy(), resumed);
        } else {
          snapshots.push(snapshot);
        }
      }
      feed.add(text);
    }
    if (checkable) memo.remember(messages, snapshots.length, snapshots, feed.flush().copy(), resumed);
    feed.add(']');
    return this.finish(feed.flush());
  }
}

/** Whether `list` holds the very objects of `items`, each still as its snapshot recorded (primitives: equal). */
function sameUnchanged(list: readonly unknown[], items: readonly unknown[], snapshots: readonly Snapshot[]): boolean {
  if (list.length !== items.length) return false;
  for (let i = 0; i < list.length; i++) if (list[i] !== items[i] || !matchesSnapshot(list[i], snapshots[i]!)) return false;
  return true;
}

function isPlainArray(value: unknown): value is readonly unknown[] {
  // An array with toJSON is serialized as what toJSON returns, not element by element.
  return Array.isArray(value) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

// Strings above about 128 KiB live in V8's large-object space, and building one (then flattening
// it for the hash) costs several times what hashing it does: a 1 MB conversation hashed as one
// string took 5 ms, fed in pieces 1.8 ms. Pieces stay well below that, also for two-byte strings.
const FEED_CHARS = 32 * 1024;

/** Collects text and feeds it to a hash state whenever FEED_CHARS have gathered. */
class PieceFeed {
  #text = '';

  constructor(private readonly state: Hash) {}

  add(text: string): void {
    this.#text += text;
    if (this.#text.length >= FEED_CHARS) this.flush();
  }

  /** Feeds what has gathered and returns the state. */
  flush(): Hash {
    if (this.#text !== '') {
      this.state.update(this.#text, 'utf8');
      this.#text = '';
    }
    return this.state;
  }
}

class Sha256Hasher extends CanonicalHasher {
  readonly keyed = false;
  readonly keyId = undefined;

  protected digest(text: string): string {
    return 'sha256:' + createHash('sha256').update(text, 'utf8').digest('hex');
  }

  protected begin(): Hash {
    return createHash('sha256');
  }

  protected finish(state: Hash): string {
    return 'sha256:' + state.digest('hex');
  }
}

class HmacSha256Hasher extends CanonicalHasher {
  readonly keyed = true;
  readonly keyId: string;
  // Imported once as a KeyObject: the key lives in native memory (out of heap snapshots, unaffected
  // if the caller later overwrites their Buffer) and every HMAC reuses it.
  readonly #key: KeyObject;
  readonly #prefix: string;
  // The same HMAC built from two SHA-256 states, for hashes fed piece by piece whose intermediate
  // state must be copied (node's Hmac has no copy()); one-shot hashes use createHmac, which is
  // faster for them.
  readonly #inner: Hash;
  readonly #outer: Hash;

  constructor(keyBytes: Buffer, keyId: string) {
    super();
    this.#key = createSecretKey(keyBytes);
    this.keyId = keyId;
    this.#prefix = `hmac-sha256:${keyId}:`;
    [this.#inner, this.#outer] = hmacKeyedStates(keyBytes);
  }

  protected digest(text: string): string {
    return this.#prefix + createHmac('sha256', this.#key).update(text, 'utf8').digest('hex');
  }

  protected begin(): Hash {
    return this.#inner.copy();
  }

  protected finish(state: Hash): string {
    return this.#prefix + this.#outer.copy().update(state.digest()).digest('hex');
  }
}

const SHA256_BLOCK_BYTES = 64;

/**
 * RFC 2104 section 2: HMAC(K, text) = H(K' XOR opad || H(K' XOR ipad || text)), where K' is the key
 * (hashed first when longer than the 64-byte block, section 3) padded with zeros to the block.
 * Returns H's states after the two padded keys, from which each HMAC continues. The padded copies
 * are wiped; the states live in native memory, like the KeyObject.
 */
function hmacKeyedStates(keyBytes: Buffer): [inner: Hash, outer: Hash] {
  const block = Buffer.alloc(SHA256_BLOCK_BYTES);
  const shortKey = keyBytes.length > SHA256_BLOCK_BYTES ? createHash('sha256').update(keyBytes).digest() : keyBytes;
  shortKey.copy(block);
  if (shortKey !== keyBytes) shortKey.fill(0);
  const padded = Buffer.alloc(SHA256_BLOCK_BYTES);
  for (let i = 0; i < SHA256_BLOCK_BYTES; i++) padded[i] = block[i]! ^ 0x36;
  const inner = createHash('sha256').update(padded);
  for (let i = 0; i < SHA256_BLOCK_BYTES; i++) padded[i] = block[i]! ^ 0x5c;
  const outer = createHash('sha256').update(padded);
  padded.fill(0);
  block.fill(0);
  return [inner, outer];
}
