/**
 * Content master keys: 32 random bytes that wrap (encrypt) the per-tenant data keys of the
 * keystore. A master key never encrypts content itself and never leaves the process.
 *
 * File format (written by `createContentMasterKey` / `llm-audit content-key`, mode 0600):
 *
 *     {"created":"2026-11-22T10:00:00.000Z","key":"<base64 of 32 bytes>","kid":"ck-2026-11","llm_audit_content_key":1}
 *
 * Also accepted, for keys made by other tools: a file holding exactly 32 raw bytes, or 64 hex
 * digits, or the base64 of 32 bytes (whitespace around it ignored). Such a file has no key id of
 * its own: it is `LLM_AUDIT_CONTENT_KEY_ID` (for the current key) or else a fingerprint
 * `ck-<first 12 hex of SHA-256 over a label and the key>`. A JSON file's own `kid` wins; an
 * environment key id that disagrees with it is refused rather than silently renaming the key
 * (data keys record the id of the master key that wrapped them).
 */
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { syncDirSync } from '../../util/durable-file';
import { canonicalJson } from '../canonical-json';
import { ContentError } from './errors';

export const CONTENT_KEY_BYTES = 32;
/** Key ids travel in envelopes, keystore lines and file names of operators' choosing. */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

export interface MasterKey {
  readonly kid: string;
  /** AES-256 key, held as a KeyObject (native memory, not in heap snapshots). */
  readonly key: KeyObject;
  /** Where it was loaded from (for messages), if from a file. */
  readonly path?: string;
}

/** Throws CONTENT_KEY_INVALID unless `kid` is 1-64 characters of `A-Z a-z 0-9 . _ -`, starting alphanumeric. */
export function validateKeyId(kid: unknown, what = 'content key id'): string {
  if (typeof kid !== 'string' || !KEY_ID.test(kid)) {
    throw new ContentError('CONTENT_KEY_INVALID', `${what} ${JSON.stringify(kid)} must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return kid;
}

/** The default key id of a key without one: not secret (SHA-256 is one-way; 48 bits cannot help guess 256). */
export function contentKeyFingerprint(key: Buffer): string {
  return 'ck-' + createHash('sha256').update('otel-llm-audit content key id\n').update(key).digest('hex').slice(0, 12);
}

/** A master key from raw bytes (tests, or keys held by a KMS the application unwraps itself). */
export function masterKeyFromBytes(bytes: Buffer, kid?: string): MasterKey {
  if (!Buffer.isBuffer(bytes) || bytes.length !== CONTENT_KEY_BYTES) {
    throw new ContentError('CONTENT_KEY_INVALID', `a content master key is ${CONTENT_KEY_BYTES} bytes`);
  }
  const id = kid === undefined ? contentKeyFingerprint(bytes) : validateKeyId(kid);
  return { kid: id, key: createSecretKey(bytes) };
}

/**
 * Loads a master key file. `keyId` (from `LLM_AUDIT_CONTENT_KEY_ID`) names a key file that has no
 * id of its own; for a JSON key file it must equal the file's `kid`.
 *
 * @throws ContentError CONTENT_KEY_MISSING (no such file), CONTENT_KEY_INVALID (not a content key, bad or conflicting id)
 */
export function loadContentMasterKey(path: string, keyId?: string): MasterKey {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ContentError('CONTENT_KEY_MISSING', `content key file ${path} does not exist`, { cause: error });
    if (code === 'EACCES' || code === 'EPERM') throw new ContentError('CONTENT_KEY_MISSING', `content key file ${path}: permission denied`, { cause: error });
    if (code === 'EISDIR') throw new ContentError('CONTENT_KEY_INVALID', `content key file ${path} is a directory`, { cause: error });
    throw new ContentError('CONTENT_KEY_MISSING', `cannot read content key file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let bytes: Buffer | undefined;
  let fileKid: string | undefined;
  try {
    const text = raw.toString('utf8').trim();
    if (text.startsWith('{')) {
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new ContentError('CONTENT_KEY_INVALID', `content key file ${path} is not valid JSON`);
      }
      if (doc === null || typeof doc !== 'object' || doc.llm_audit_content_key !== 1 || typeof doc.key !== 'string' || !BASE64_KEY.test(doc.key)) {
        throw new ContentError('CONTENT_KEY_INVALID', `${path} is not an otel-llm-audit content key file (expected {"llm_audit_content_key":1,"kid":..,"key":"<base64 of 32 bytes>"})`);
      }
      bytes = Buffer.from(doc.key, 'base64');
      if (doc.kid !== undefined) fileKid = validateKeyId(doc.kid, `the key id in ${path}`);
    } else if (HEX_KEY.test(text)) {
      bytes = Buffer.from(text, 'hex');
    } else if (BASE64_KEY.test(text)) {
      bytes = Buffer.from(text, 'base64');
    } else if (raw.length === CONTENT_KEY_BYTES) {
      bytes = Buffer.from(raw);
    } else {
      throw new ContentError('CONTENT_KEY_INVALID', `content key file ${path} holds neither a content key file, 64 hex digits, base64 of 32 bytes, nor 32 raw bytes`);
    }
    if (bytes.length !== CONTENT_KEY_BYTES) throw new ContentError('CONTENT_KEY_INVALID', `the key in ${path} is ${bytes.length} bytes, not ${CONTENT_KEY_BYTES}`);
    if (keyId !== undefined) validateKeyId(keyId, 'LLM_AUDIT_CONTENT_KEY_ID');
    if (fileKid !== undefined && keyId !== undefined && keyId !== fileKid) {
      throw new ContentError(
        'CONTENT_KEY_INVALID',
        `the key id ${JSON.stringify(keyId)} given for ${path} differs from the file's own ${JSON.stringify(fileKid)}; data keys are bound to the id they were wrapped under, so a key cannot be renamed`,
      );
    }
    const kid = fileKid ?? keyId ?? contentKeyFingerprint(bytes);
    return { kid, key: createSecretKey(bytes), path };
  } finally {
    raw.fill(0);
    bytes?.fill(0);
  }
}

/**
 * Writes a new random master key to `path` (mode 0600; never overwrites: CONTENT_FILE_EXISTS)
 * and returns its id. Default id: the key's fingerprint.
 */
export function createContentMasterKey(path: string, keyId?: string): { path: string; kid: string } {
  const bytes = randomBytes(CONTENT_KEY_BYTES);
  const kid = keyId === undefined ? contentKeyFingerprint(bytes) : validateKeyId(keyId);
  const text = canonicalJson({ llm_audit_content_key: 1, kid, key: bytes.toString('base64'), created: new Date().toISOString() }) + '\n';
  bytes.fill(0);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch {
    // openSync below reports the real problem.
  }
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ContentError('CONTENT_FILE_EXISTS', `${path} already exists; refusing to overwrite a key`, { cause: error });
    throw new ContentError('CONTENT_KEYSTORE_IO', `cannot create ${path}: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDirSync(dirname(path));
  return { path, kid };
}
