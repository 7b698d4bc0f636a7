/**
 * Encrypted content envelopes: the system instructions, input and output of one call, in the
 * GenAI conventions' message shapes, as AES-256-GCM ciphertext under the tenant's data key.
 *
 * The envelope is a JSON string whose members come in this fixed order (the collector's content
 * guard lets through only strings starting with `{"llm_audit_envelope":1`):
 *
 *     {"llm_audit_envelope":1,"alg":"AES-256-GCM","kid":"<master key id>","dek":"<data key id>",
 *      "tenant":"<tenant id>"|null,"nonce":"<base64, 12 bytes>","ct":"<base64: ciphertext || 16-byte tag>"}
 *
 * - plaintext = canonical JSON (RFC 8785) of {system_instructions?, input_messages?, output_messages?};
 * - AAD = canonical JSON of {v:1, alg, kid, dek, tenant, request_id}. The request id is not in the
 *   envelope: `open` takes it (and, optionally, the tenant) from the record that holds the envelope,
 *   so an envelope copied into another record, or relabelled with another tenant, does not open.
 *
 * Nothing in the envelope is plaintext content: ids, the tenant id (already a span attribute) and
 * ciphertext only.
 */
import { createCipheriv, createDecipheriv, randomFillSync, type KeyObject } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson } from '../canonical-json';
import { ContentError } from './errors';
import { jsonSafe, type ContentPayload } from './genai-messages';
import { ContentKeystore, DEFAULT_KEYSTORE_NAME, normalizeTenant, unwrapDataKey, type DekEntry, type ShredResult } from './keystore';
import { loadContentMasterKey, type MasterKey } from './master-key';

export type { ContentPayload } from './genai-messages';

export const ENVELOPE_PREFIX = '{"llm_audit_envelope":1,';
export const CONTENT_ALG = 'AES-256-GCM';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ENVELOPE_KEYS = ['llm_audit_envelope', 'alg', 'kid', 'dek', 'tenant', 'nonce', 'ct'];
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SealContext {
  /** The call's `llm_audit.request_id` (the record's `request_id`). */
  requestId: string;
  /** The call's tenant (`llm_audit.tenant.id`); undefined, null or "" = no tenant (default data key). */
  tenantId?: string | null;
}

export interface OpenContext {
  /** The `request_id` of the record the envelope was read from. */
  requestId: string;
  /**
   * The `tenant_id` of that record. When given (null included), it must be the envelope's tenant,
   * else CONTENT_TAMPERED; when undefined, the envelope's own tenant field is used.
   */
  tenantId?: string | null;
}

export interface ContentCipher {
  /** Id of the master key new data keys are wrapped under ("" when this cipher can only open). */
  readonly keyId: string;
  /** The keystore file. */
  readonly keystorePath: string;
  /**
   * Encrypts `payload` for one call and returns the envelope string. On the hot path: after the
   * first call per tenant (which may create and store the tenant's data key, under a file lock),
   * it is one AES-GCM encryption plus canonical JSON, with no I/O except a stat of the keystore at
   * most once per refresh interval.
   * @throws ContentError (CONTENT_KEY_MISSING without a current master key, CONTENT_KEYSTORE_* when a
   *   new data key cannot be stored, CONTENT_USAGE for a bad request id / tenant id). Never returns plaintext.
   */
  seal(payload: ContentPayload, ctx: SealContext): string;
  /**
   * Decrypts an envelope read from the record with `ctx.requestId` (and tenant).
   * @throws ContentError CONTENT_ENVELOPE_INVALID, CONTENT_TAMPERED, CONTENT_KEY_SHREDDED, CONTENT_KEY_MISSING, CONTENT_KEY_INVALID
   */
  open(envelope: string, ctx: OpenContext): ContentPayload;
  /** Destroys the tenant's data keys (see keystore.ts) and forgets any this cipher holds in memory. */
  shred(tenant: string, options?: { reason?: string }): ShredResult;
}

export interface ContentCipherOptions {
  /** The master key that wraps new data keys. Without it the cipher can only open. */
  masterKey?: MasterKey;
  /** Earlier master keys, to open envelopes whose data keys they wrapped (rotation). */
  oldKeys?: readonly MasterKey[];
  /** The keystore file. */
  keystorePath: string;
  /** See KeystoreOptions. */
  refreshMs?: number;
  lockTimeoutMs?: number;
}

/** The parsed members of an envelope (no key material, no content). */
export interface EnvelopeFields {
  v: 1;
  alg: typeof CONTENT_ALG;
  kid: string;
  dek: string;
  tenant: string | null;
  nonce: Buffer;
  /** Ciphertext without the tag. */
  ciphertext: Buffer;
  tag: Buffer;
}

/** True when `value` is a string that claims to be an envelope (the collector guard's test). */
export function isContentEnvelope(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('{"llm_audit_envelope":1');
}

function invalid(message: string): ContentError {
  return new ContentError('CONTENT_ENVELOPE_INVALID', message);
}

function strictBase64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !B64.test(value)) throw invalid(`the envelope's ${what} is not base64`);
  return Buffer.from(value, 'base64');
}

/** Parses and checks an envelope's shape. @throws ContentError CONTENT_ENVELOPE_INVALID */
export function parseEnvelope(envelope: unknown): EnvelopeFields {
  if (typeof envelope !== 'string') throw invalid(`an envelope is a string, got ${envelope === null ? 'null' : typeof envelope}`);
  if (!envelope.startsWith(ENVELOPE_PREFIX)) throw invalid('not an otel-llm-audit content envelope (it must start with {"llm_audit_envelope":1,)');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(envelope) as Record<string, unknown>;
  } catch {
    throw invalid('the envelope is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('the envelope is not a JSON object');
  const keys = Object.keys(doc);
  if (keys.length !== ENVELOPE_KEYS.length || !ENVELOPE_KEYS.every((k) => keys.includes(k))) {
    throw invalid(`the envelope must have exactly the members ${ENVELOPE_KEYS.join(', ')}`);
  }
  if (doc.llm_audit_envelope !== 1) throw invalid(`envelope version ${JSON.stringify(doc.llm_audit_envelope)} is not supported`);
  if (doc.alg !== CONTENT_ALG) throw invalid(`envelope algorithm ${JSON.stringify(doc.alg)} is not supported`);
  if (typeof doc.kid !== 'string' || !ID.test(doc.kid)) throw invalid("the envelope's kid is not a key id");
  if (typeof doc.dek !== 'string' || !ID.test(doc.dek)) throw invalid("the envelope's dek is not a data key id");
  if (!(doc.tenant === null || (typeof doc.tenant === 'string' && doc.tenant !== ''))) throw invalid("the envelope's tenant is not a tenant id or null");
  const nonce = strictBase64(doc.nonce, 'nonce');
  if (nonce.length !== NONCE_BYTES) throw invalid(`the envelope's nonce is ${nonce.length} bytes, not ${NONCE_BYTES}`);
  const ct = strictBase64(doc.ct, 'ct');
  if (ct.length < TAG_BYTES) throw invalid("the envelope's ct is shorter than an authentication tag");
  return {
    v: 1,
    alg: CONTENT_ALG,
    kid: doc.kid,
    dek: doc.dek,
    tenant: doc.tenant as string | null,
    nonce,
    ciphertext: ct.subarray(0, ct.length - TAG_BYTES),
    tag: ct.subarray(ct.length - TAG_BYTES),
  };
}

// Nonces come from a pool refilled by the CSPRNG 4 KiB at a time: one randomBytes(12) call costs
// several microseconds of fixed overhead, a slice of the pool almost nothing. Each slice is used once.
const NONCE_POOL = Buffer.alloc(NONCE_BYTES * 341);
let noncePoolOffset = NONCE_POOL.length;

function freshNonce(): Buffer {
  if (noncePoolOffset + NONCE_BYTES > NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePoolOffset = 0;
  }
  const nonce = Buffer.from(NONCE_POOL.subarray(noncePoolOffset, noncePoolOffset + NONCE_BYTES));
  NONCE_POOL.fill(0, noncePoolOffset, noncePoolOffset + NONCE_BYTES);
  noncePoolOffset += NONCE_BYTES;
  return nonce;
}

function aadOf(kid: string, dek: string, tenant: string | null, requestId: string): Buffer {
  return Buffer.from(canonicalJson({ v: 1, alg: CONTENT_ALG, kid, dek, tenant, request_id: requestId }), 'utf8');
}

function requestIdOf(ctx: { requestId?: unknown } | undefined): string {
  const id = ctx?.requestId;
  if (typeof id !== 'string' || id === '') throw new ContentError('CONTENT_USAGE', 'sealing and opening content need the request id of the call');
  return id;
}

/** The plaintext bytes: canonical JSON of the three members that are present. */
function plaintextOf(payload: ContentPayload): Buffer {
  if (typeof payload !== 'object' || payload === null) throw new ContentError('CONTENT_USAGE', 'the content payload must be an object');
  const doc: Record<string, unknown> = {};
  if (payload.system_instructions !== undefined) doc.system_instructions = payload.system_instructions;
  if (payload.input_messages !== undefined) doc.input_messages = payload.input_messages;
  if (payload.output_messages !== undefined) doc.output_messages = payload.output_messages;
  let text: string;
  try {
    text = canonicalJson(doc);
  } catch {
    // A cycle, BigInt or non-finite number from an odd caller: encrypt the JSON-safe copy rather than fail the audit.
    text = canonicalJson(jsonSafe(doc));
  }
  return Buffer.from(text, 'utf8');
}

interface CachedKey {
  entry: DekEntry;
  key: KeyObject;
}

class KeystoreContentCipher implements ContentCipher {
  readonly keyId: string;
  readonly keystorePath: string;
  private readonly current: MasterKey | undefined;
  private readonly keyring = new Map<string, MasterKey>();
  private readonly store: ContentKeystore;
  /** Unwrapped data keys by id, and the id of each tenant's current one (tenant null under ""). */
  private readonly keys = new Map<string, CachedKey>();
  private readonly currentByTenant = new Map<string, string>();
  private generation = -1;

  constructor(options: ContentCipherOptions) {
    this.current = options.masterKey;
    this.keyId = options.masterKey?.kid ?? '';
    for (const key of [...(options.oldKeys ?? []), ...(options.masterKey ? [options.masterKey] : [])]) {
      const other = this.keyring.get(key.kid);
      if (other !== undefined && !other.key.equals(key.key)) {
        throw new ContentError('CONTENT_KEY_INVALID', `two different master keys have the id ${key.kid}${key.path ? ` (${other.path ?? '?'} and ${key.path})` : ''}`);
      }
      this.keyring.set(key.kid, key);
    }
    this.keystorePath = options.keystorePath;
    this.store = new ContentKeystore({
      path: options.keystorePath,
      ...(options.refreshMs !== undefined ? { refreshMs: options.refreshMs } : {}),
      ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}),
    });
  }

  /** Drops cached keys whose lines are gone (shredded by another process) after the store reloaded. */
  private sync(force = false): void {
    this.store.refresh(force);
    if (this.store.generation === this.generation) return;
    this.generation = this.store.generation;
    for (const id of this.keys.keys()) if (!this.store.hasLive(id)) this.keys.delete(id);
    for (const [tenant, id] of this.currentByTenant) if (!this.keys.has(id)) this.currentByTenant.delete(tenant);
  }

  seal(payload: ContentPayload, ctx: SealContext): string {
    const requestId = requestIdOf(ctx);
    const tenant = normalizeTenant(ctx.tenantId);
    const master = this.current;
    if (master === undefined) throw new ContentError('CONTENT_KEY_MISSING', 'no current content master key: this cipher can only open envelopes');
    this.sync();
    const slot = tenant ?? '';
    let cached = this.keys.get(this.currentByTenant.get(slot) ?? '');
    if (cached === undefined) {
      cached = this.store.obtain(tenant, master);
      this.keys.set(cached.entry.dek, cached);
      this.currentByTenant.set(slot, cached.entry.dek);
      this.sync();
    }
    const plaintext = plaintextOf(payload);
    const nonce = freshNonce();
    const cipher = createCipheriv('aes-256-gcm', cached.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(master.kid, cached.entry.dek, tenant, requestId));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return (
      ENVELOPE_PREFIX +
      '"alg":"' + CONTENT_ALG +
      '","kid":' + JSON.stringify(master.kid) +
      ',"dek":' + JSON.stringify(cached.entry.dek) +
      ',"tenant":' + JSON.stringify(tenant) +
      ',"nonce":"' + nonce.toString('base64') +
      '","ct":"' + ct.toString('base64') +
      '"}'
    );
  }

  open(envelope: string, ctx: OpenContext): ContentPayload {
    const fields = parseEnvelope(envelope);
    const requestId = requestIdOf(ctx);
    if (ctx.tenantId !== undefined) {
      const recordTenant = normalizeTenant(ctx.tenantId);
      if (recordTenant !== fields.tenant) {
        throw new ContentError(
          'CONTENT_TAMPERED',
          `the envelope is bound to tenant ${JSON.stringify(fields.tenant)} but its record is tenant ${JSON.stringify(recordTenant)}: it was moved or altered`,
        );
      }
    }
    const { entry, key } = this.dataKey(fields.dek);
    if (entry.tenant !== fields.tenant || entry.kid !== fields.kid) {
      throw new ContentError('CONTENT_TAMPERED', `the envelope's tenant or key id does not match its data key ${fields.dek}: it was altered`);
    }
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, fields.nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aadOf(fields.kid, fields.dek, fields.tenant, requestId));
      decipher.setAuthTag(fields.tag);
      plaintext = Buffer.concat([decipher.update(fields.ciphertext), decipher.final()]);
    } catch (error) {
      throw new ContentError(
        'CONTENT_TAMPERED',
        `the envelope does not authenticate for request ${JSON.stringify(requestId)}: its ciphertext, nonce or bound fields were altered, or it belongs to another record`,
        { cause: error },
      );
    }
    let payload: unknown;
    try {
      payload = JSON.parse(plaintext.toString('utf8'));
    } catch {
      throw invalid('the decrypted content is not JSON');
    } finally {
      plaintext.fill(0);
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('the decrypted content is not a JSON object');
    return payload as ContentPayload;
  }

  private dataKey(dek: string): CachedKey {
    this.sync();
    const cached = this.keys.get(dek);
    if (cached !== undefined) return cached;
    let entry = this.store.entry(dek);
    if (entry === undefined) {
      // Perhaps created or shredded by another process since the last look.
      this.sync(true);
      entry = this.store.entry(dek);
    }
    if (entry === undefined) {
      const shredded = this.store.shreddedInfo(dek);
      if (shredded !== undefined) {
        const when = shredded.at ? ` at ${shredded.at}` : '';
        throw new ContentError(
          'CONTENT_KEY_SHREDDED',
          `data key ${dek}${shredded.tenant !== null ? ` of tenant ${JSON.stringify(shredded.tenant)}` : ''} was destroyed${when} (crypto-shredding): this content is erased and cannot be recovered`,
        );
      }
      throw new ContentError(
        'CONTENT_KEY_MISSING',
        `data key ${dek} is not in the keystore ${this.store.path} (wrong keystore, a damaged keystore line, or an altered envelope)`,
      );
    }
    const master = this.keyring.get(entry.kid);
    if (master === undefined) {
      throw new ContentError(
        'CONTENT_KEY_MISSING',
        `data key ${dek} is wrapped by master key ${entry.kid}, which is not loaded (add its file to LLM_AUDIT_CONTENT_OLD_KEYS, or --key FILE)`,
      );
    }
    const key = unwrapDataKey(master, entry);
    const fresh = { entry, key };
    this.keys.set(dek, fresh);
    return fresh;
  }

  shred(tenant: string, options: { reason?: string } = {}): ShredResult {
    const result = this.store.shred(tenant, options);
    for (const id of result.deks) this.keys.delete(id);
    this.sync(true);
    return result;
  }
}

/** A cipher over a keystore with the given master keys. */
export function createContentCipher(options: ContentCipherOptions): ContentCipher {
  return new KeystoreContentCipher(options);
}

/** The keystore file for a master key file when none is given: next to it. */
export function defaultKeystorePath(masterKeyPath: string): string {
  return join(dirname(masterKeyPath), DEFAULT_KEYSTORE_NAME);
}

/**
 * Where the keystore is, the one rule for the application and the CLI: the flag, else
 * LLM_AUDIT_CONTENT_KEYSTORE, else beside the (first) master key file; undefined with none of them.
 */
export function keystorePathFrom(flag: string | undefined, env: NodeJS.ProcessEnv, masterKeyPath: string | undefined): string | undefined {
  return flag ?? (env.LLM_AUDIT_CONTENT_KEYSTORE?.trim() || (masterKeyPath !== undefined ? defaultKeystorePath(masterKeyPath) : undefined));
}

export const CONTENT_MODES = ['off', 'encrypted'] as const;
export type ContentMode = (typeof CONTENT_MODES)[number];

/** `LLM_AUDIT_CONTENT`: unset, "" or "off"/"none"/"hash" (the default: hashes only) = off; "encrypted" = on. */
export function contentModeFromEnv(env: NodeJS.ProcessEnv): ContentMode {
  const raw = env.LLM_AUDIT_CONTENT?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === 'off' || raw === 'none' || raw === 'hash') return 'off';
  if (raw === 'encrypted') return 'encrypted';
  throw new ContentError('CONTENT_CONFIG_INVALID', `LLM_AUDIT_CONTENT must be "encrypted" or "off", got ${JSON.stringify(env.LLM_AUDIT_CONTENT)}`);
}

/** Paths of `LLM_AUDIT_CONTENT_OLD_KEYS` (comma-separated; blanks ignored). */
export function oldKeyPathsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return (env.LLM_AUDIT_CONTENT_OLD_KEYS ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/**
 * The cipher configured by the environment, or undefined when content capture is off.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `LLM_AUDIT_CONTENT` | `encrypted` turns capture on; unset/`off` = hashes only |
 * | `LLM_AUDIT_CONTENT_KEY` | master key file (required with `encrypted`) |
 * | `LLM_AUDIT_CONTENT_KEY_ID` | id for a key file that has none of its own (must match a JSON key file's `kid`) |
 * | `LLM_AUDIT_CONTENT_OLD_KEYS` | comma-separated earlier master key files, still used to open |
 * | `LLM_AUDIT_CONTENT_KEYSTORE` | keystore file (default `content-keystore.jsonl` next to the master key) |
 *
 * Loads every key and checks the keystore directory is usable now, so a misconfiguration stops the
 * process at startup instead of failing on the first call.
 * @throws ContentError CONTENT_CONFIG_INVALID, CONTENT_KEY_MISSING, CONTENT_KEY_INVALID, CONTENT_KEYSTORE_IO
 */
export function contentCipherFromEnv(env: NodeJS.ProcessEnv): ContentCipher | undefined {
  if (contentModeFromEnv(env) === 'off') return undefined;
  const keyPath = env.LLM_AUDIT_CONTENT_KEY?.trim();
  if (!keyPath) {
    throw new ContentError('CONTENT_KEY_MISSING', 'LLM_AUDIT_CONTENT=encrypted needs LLM_AUDIT_CONTENT_KEY (a key file from `llm-audit content-key --out FILE`)');
  }
  const keyId = env.LLM_AUDIT_CONTENT_KEY_ID?.trim() || undefined;
  const masterKey = loadContentMasterKey(keyPath, keyId);
  const oldKeys = oldKeyPathsFromEnv(env).map((path) => loadContentMasterKey(path));
  const keystorePath = keystorePathFrom(undefined, env, keyPath)!;
  checkKeystoreDir(keystorePath);
  return createContentCipher({ masterKey, oldKeys, keystorePath });
}

function checkKeystoreDir(keystorePath: string): void {
  const dir = dirname(keystorePath);
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK | constants.R_OK);
    if (existsSync(keystorePath)) accessSync(keystorePath, constants.W_OK | constants.R_OK);
  } catch (error) {
    throw new ContentError('CONTENT_KEYSTORE_IO', `the content keystore ${keystorePath} is not readable and writable: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
}
