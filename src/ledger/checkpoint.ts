/**
 * Checkpoints: signed statements "the ledger had `tree_size` records and Merkle root `root`".
 *
 * A checkpoint is one canonical JSON object. When a signing key is configured it carries an
 * Ed25519 signature (RFC 8032, via node:crypto) over
 *
 *     "otel-llm-audit/checkpoint/v1\n" || canonicalJson(checkpoint without "signature")
 *
 * so every other field, including `key_id` and the tombstone details, is covered. Keys are PEM
 * files: PKCS#8 private key, SPKI public key. `key_id` is hex SHA-256 of the SPKI DER encoding.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { canonicalJson } from '../audit/canonical-json';
import { LedgerError, fsError } from './errors';

export const CHECKPOINT_VERSION = 1;
export const SIGNATURE_CONTEXT = 'otel-llm-audit/checkpoint/v1\n';
export const ZERO_HASH = '0'.repeat(64);

/** What a retention run removed; present only on `type: "tombstone"` checkpoints. */
export interface TombstoneInfo {
  policy: Record<string, string | number | null>;
  /** The `now` the retention run used to decide expiry. */
  applied_at: string;
  removed_segments: Array<{
    name: string;
    first_seq: number;
    last_seq: number;
    records: number;
    newest_timestamp: string;
    expired_at: string;
  }>;
  /** Size and root of the whole ledger when the retention ran. */
  head: { tree_size: number; root: string };
}

export interface Checkpoint {
  v: typeof CHECKPOINT_VERSION;
  type: 'checkpoint' | 'tombstone';
  ledger_id: string;
  tree_size: number;
  /** Hex MTH of records [0, tree_size). */
  root: string;
  /** Hex leaf hash of record tree_size - 1 (the `prev` of the next record); zeros when empty. */
  last_leaf: string;
  /** Hex frontier (compact range) of the tree: lets a writer or verifier resume at tree_size. */
  frontier: string[];
  /** Segment and byte offset where record tree_size starts (a hint for fast reopening). */
  position: { segment: string; offset: number } | null;
  timestamp: string;
  tombstone?: TombstoneInfo;
  key_id: string | null;
  signature: string | null;
}

export type UnsignedCheckpoint = Omit<Checkpoint, 'key_id' | 'signature'>;

const HEX64 = /^[0-9a-f]{64}$/;

/** Bytes the signature covers. */
/** Records between checkpoints when LLM_AUDIT_CHECKPOINT_EVERY (checkpointEvery) is not given. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

export function signedMessage(checkpoint: Omit<Checkpoint, 'signature'> & { signature?: unknown }): Buffer {
  const { signature: _ignored, ...body } = checkpoint;
  return Buffer.from(SIGNATURE_CONTEXT + canonicalJson(body), 'utf8');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Signs (when a key is given) or marks unsigned. */
export function finishCheckpoint(body: UnsignedCheckpoint, privateKey: KeyObject | undefined): Checkpoint {
  if (!privateKey) return { ...body, key_id: null, signature: null };
  const withKey = { ...body, key_id: keyIdOf(createPublicKey(privateKey)) };
  const signature = sign(null, signedMessage(withKey), privateKey).toString('base64');
  return { ...withKey, signature };
}

export type SignatureState = 'valid' | 'invalid' | 'unsigned' | 'other-key';

/** Checks a checkpoint's signature against `publicKey`. */
export function checkSignature(checkpoint: Checkpoint, publicKey: KeyObject): SignatureState {
  if (checkpoint.signature === null || checkpoint.key_id === null) return 'unsigned';
  if (checkpoint.key_id !== keyIdOf(publicKey)) return 'other-key';
  let ok = false;
  try {
    ok = verify(null, signedMessage(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    ok = false;
  }
  return ok ? 'valid' : 'invalid';
}

/**
 * The size up to which a writer holding `publicKey`'s private key vouched for the ledger: the
 * largest checkpoint or tombstone head signed by it. When it signed none (no key, or a key newly
 * configured on an unsigned ledger), the largest of any checkpoint: nothing better exists.
 */
export function vouchedSize(checkpoints: ReadonlyArray<{ checkpoint: Checkpoint }>, publicKey: KeyObject | undefined): number {
  const mine = publicKey ? checkpoints.filter((c) => checkSignature(c.checkpoint, publicKey) === 'valid') : [];
  let size = 0;
  for (const { checkpoint } of mine.length > 0 ? mine : checkpoints) {
    size = Math.max(size, checkpoint.tree_size, checkpoint.tombstone?.head?.tree_size ?? 0);
  }
  return size;
}

/** Validates the shape of a parsed checkpoint; throws LEDGER_CHECKPOINT_MALFORMED naming `where`. */
export function parseCheckpoint(value: unknown, where: string): Checkpoint {
  const bad = (why: string): never => {
    throw new LedgerError('LEDGER_CHECKPOINT_MALFORMED', `${where}: not a valid checkpoint (${why})`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not an object');
  const c = value as Record<string, unknown>;
  if (c.v !== CHECKPOINT_VERSION) bad(`unsupported version ${JSON.stringify(c.v)}`);
  if (c.type !== 'checkpoint' && c.type !== 'tombstone') bad('type must be "checkpoint" or "tombstone"');
  if (typeof c.ledger_id !== 'string') bad('ledger_id missing');
  if (!Number.isSafeInteger(c.tree_size) || (c.tree_size as number) < 0) bad('tree_size must be a non-negative integer');
  if (typeof c.root !== 'string' || !HEX64.test(c.root)) bad('root must be 64 hex digits');
  if (typeof c.last_leaf !== 'string' || !HEX64.test(c.last_leaf)) bad('last_leaf must be 64 hex digits');
  if (!Array.isArray(c.frontier) || !c.frontier.every((h) => typeof h === 'string' && HEX64.test(h))) {
    bad('frontier must be a list of hashes');
  }
  if (typeof c.timestamp !== 'string') bad('timestamp missing');
  if (c.position !== null && c.position !== undefined) {
    const p = c.position as Record<string, unknown>;
    if (typeof p.segment !== 'string' || !Number.isSafeInteger(p.offset)) bad('position must be {segment, offset}');
  }
  if (c.key_id !== null && typeof c.key_id !== 'string') bad('key_id must be a string or null');
  if (c.signature !== null && typeof c.signature !== 'string') bad('signature must be a string or null');
  if (c.type === 'tombstone') {
    const t = c.tombstone as Record<string, unknown> | undefined;
    if (typeof t !== 'object' || t === null || !Array.isArray(t.removed_segments)) bad('tombstone details missing');
    const p = (t as Record<string, unknown>).policy;
    if (typeof p !== 'object' || p === null || typeof (t as Record<string, unknown>).applied_at !== 'string') bad('tombstone policy or applied_at missing');
  } else if (c.tombstone !== undefined) {
    // Only a tombstone may say segments were removed (verify skips what it lists).
    bad('a checkpoint of type "checkpoint" carries tombstone details');
  }
  return { ...(c as unknown as Checkpoint), position: (c.position as Checkpoint['position']) ?? null };
}

/**
 * Reads a checkpoint file: one or more checkpoints as JSON lines (a copy of checkpoints.jsonl, or
 * the output of `llm-audit checkpoint`), or one pretty-printed JSON object.
 */
export function readCheckpointFile(path: string): Checkpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw fsError(error, 'cannot read checkpoint file', path);
  }
  const trimmed = text.trim();
  if (trimmed === '') throw new LedgerError('LEDGER_CHECKPOINT_MALFORMED', `${path}: the checkpoint file is empty`);
  try {
    return [parseCheckpoint(JSON.parse(trimmed), path)];
  } catch (error) {
    if (error instanceof LedgerError) throw error;
  }
  const out: Checkpoint[] = [];
  const lines = trimmed.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new LedgerError('LEDGER_CHECKPOINT_MALFORMED', `${path}:${i + 1}: not valid JSON`);
    }
    out.push(parseCheckpoint(parsed, `${path}:${i + 1}`));
  });
  return out;
}

// --- Keys ----------------------------------------------------------------------------------------

export function generateSigningKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** `keygen`: writes `path` (0600) and `path.pub`; never overwrites an existing file. */
export function writeKeyFiles(path: string): { privatePath: string; publicPath: string; keyId: string } {
  const { privatePem, publicPem } = generateSigningKeyPair();
  const publicPath = `${path}.pub`;
  writeNewFile(path, privatePem, 0o600);
  writeNewFile(publicPath, publicPem, 0o644);
  return { privatePath: path, publicPath, keyId: keyIdOf(createPublicKey(publicPem)) };
}

function writeNewFile(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new LedgerError('LEDGER_FILE_EXISTS', `${path} already exists; refusing to overwrite a key`);
    }
    throw fsError(error, 'cannot write key file', path);
  }
  try {
    writeSync(fd, text);
  } catch (error) {
    throw fsError(error, 'cannot write key file', path);
  } finally {
    closeSync(fd);
  }
}

function readKeyText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw fsError(error, `cannot read ${what}`, path);
  }
}

export function loadPrivateKey(path: string): KeyObject {
  const text = readKeyText(path, 'signing key');
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new LedgerError('LEDGER_KEY_INVALID', `${path} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new LedgerError('LEDGER_KEY_INVALID', `${path} is a ${key.asymmetricKeyType} key; checkpoints need Ed25519 (llm-audit keygen)`);
  }
  return key;
}

/** Accepts a public key PEM, or a private key PEM (whose public half is used). */
export function loadPublicKey(path: string): KeyObject {
  const text = readKeyText(path, 'public key');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    throw new LedgerError('LEDGER_KEY_INVALID', `${path} is not a PEM public key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new LedgerError('LEDGER_KEY_INVALID', `${path} is a ${key.asymmetricKeyType} key; checkpoints use Ed25519`);
  }
  return key;
}
