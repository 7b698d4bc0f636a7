/**
 * Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), witness
 * cosignatures (c2sp.org/tlog-cosignature) and the proof formats other transparency-log tools read
 * (c2sp.org/tlog-proof, the c2sp.org/tlog-witness add-checkpoint body).
 *
 * The JSON checkpoint stays the ledger's own record (it carries the frontier, the position and the
 * tombstones); the note is the same tree head in the form every existing verifier, monitor and
 * witness checks: `note.Open` in golang.org/x/mod/sumdb/note, litewitness, and so on. It is signed
 * with the same Ed25519 key. A note is
 *
 *     <origin>\n<tree size>\n<base64 root>\n   the checkpoint body
 *     \n
 *     — <key name> <base64(key hash[4] || signature)>\n   one line per signature
 *
 * The key name is the origin (witnesses require it), the key hash is the first four bytes of
 * SHA-256(name || "\n" || 0x01 || public key), and the log's signature covers the body. A witness
 * cosignature line has key type 0x04 and signs "cosignature/v1\ntime <t>\n" || body, its base64
 * holding key hash || t (8 bytes, big-endian) || signature.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { LedgerError } from './errors';

export const NOTE_KEY_ED25519 = 0x01;
export const NOTE_KEY_COSIGNATURE_V1 = 0x04;
const EM_DASH = '\u2014';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

// --- Origins and keys ----------------------------------------------------------------------------

/** Why `name` cannot be a note key name or checkpoint origin; undefined when it can. */
export function invalidNameReason(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (/\s/u.test(name)) return 'it contains white space';
  if (name.includes('+')) return 'it contains "+"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it contains a control character';
  return undefined;
}

/** The origin line used when LLM_AUDIT_LOG_ORIGIN is not set: stable for the life of the ledger. */
export function defaultOrigin(ledgerId: string): string {
  return `otel-llm-audit.invalid/ledger/${ledgerId}`;
}

/** Validates a configured origin (LLM_AUDIT_LOG_ORIGIN, --origin); `what` names it in the error. */
export function checkOrigin(origin: string, what: string): string {
  const why = invalidNameReason(origin);
  if (why) {
    throw new LedgerError(
      'LEDGER_USAGE',
      `${what} ${JSON.stringify(origin)} is not a valid log origin (${why}); use a schema-less URL such as audit.example.com/llm/prod`,
    );
  }
  return origin;
}

/** LLM_AUDIT_LOG_ORIGIN, validated; undefined when unset. */
export function originFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.LLM_AUDIT_LOG_ORIGIN?.trim();
  return raw ? checkOrigin(raw, 'LLM_AUDIT_LOG_ORIGIN') : undefined;
}

/** The 32 raw bytes of an Ed25519 public key. */
export function rawEd25519(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

function ed25519FromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function keyHash(name: string, typedKey: Buffer): Buffer {
  return createHash('sha256').update(name, 'utf8').update('\n').update(typedKey).digest().subarray(0, 4);
}

/** A note verifier key: who signs (name), with which key, and whether it is a log key or a witness's. */
export interface NoteVerifier {
  name: string;
  type: typeof NOTE_KEY_ED25519 | typeof NOTE_KEY_COSIGNATURE_V1;
  hash: Buffer;
  key: KeyObject;
  /** The `<name>+<hash>+<base64>` text. */
  text: string;
}

/** The verifier key `<name>+<hex key hash>+<base64(type || key)>` of `publicKey` under `name`. */
export function verifierKey(name: string, publicKey: KeyObject, type: NoteVerifier['type'] = NOTE_KEY_ED25519): string {
  checkOrigin(name, 'the key name');
  const typed = Buffer.concat([Buffer.from([type]), rawEd25519(publicKey)]);
  return `${name}+${keyHash(name, typed).toString('hex')}+${typed.toString('base64')}`;
}

/** Parses a verifier key (a log's Ed25519 key or a witness's cosignature/v1 key); throws LEDGER_KEY_INVALID. */
export function parseVerifierKey(text: string): NoteVerifier {
  const bad = (why: string): never => {
    throw new LedgerError('LEDGER_KEY_INVALID', `${JSON.stringify(text)} is not a note verifier key <name>+<hash>+<base64> (${why})`);
  };
  // The name and the hash cannot contain "+"; the base64 key can.
  const m = /^([^+]*)\+([^+]*)\+(.*)$/.exec(text.trim());
  if (!m) return bad('expected three parts separated by "+"');
  const [, name, hashHex, b64] = m as unknown as [string, string, string, string];
  if (invalidNameReason(name)) bad(`bad name: ${invalidNameReason(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) bad('the hash must be 8 hex digits');
  if (!BASE64.test(b64)) bad('the key is not base64');
  const typed = Buffer.from(b64, 'base64');
  if (typed.length !== 33) bad('the key must be a type byte and 32 bytes of Ed25519 key');
  const type = typed[0];
  if (type !== NOTE_KEY_ED25519 && type !== NOTE_KEY_COSIGNATURE_V1) bad(`key type ${type} is not Ed25519 (1) or cosignature/v1 (4)`);
  if (!keyHash(name, typed).equals(Buffer.from(hashHex, 'hex'))) bad('the hash does not match the name and key');
  return { name, type: type as NoteVerifier['type'], hash: Buffer.from(hashHex, 'hex'), key: ed25519FromRaw(typed.subarray(1)), text: text.trim() };
}

// --- Notes ---------------------------------------------------------------------------------------

/** The tlog-checkpoint body of a tree head. */
export function checkpointBody(origin: string, treeSize: number, rootHex: string): string {
  return `${origin}\n${treeSize}\n${Buffer.from(rootHex, 'hex').toString('base64')}\n`;
}

export interface NoteSignature {
  name: string;
  hash: Buffer;
  /** Everything after the key hash: the signature (log), or timestamp || signature (cosignature). */
  signature: Buffer;
  line: string;
}

export interface CheckpointNote {
  /** The signed body, with its final newline. */
  body: string;
  origin: string;
  treeSize: number;
  /** Hex root. */
  root: string;
  signatures: NoteSignature[];
}

function signatureLine(name: string, hash: Buffer, signature: Buffer): string {
  return `${EM_DASH} ${name} ${Buffer.concat([hash, signature]).toString('base64')}\n`;
}

/** Signs a checkpoint body as a note with the log key `privateKey` under key name `origin`. */
export function signCheckpointNote(body: string, origin: string, privateKey: KeyObject): string {
  const typed = Buffer.concat([Buffer.from([NOTE_KEY_ED25519]), rawEd25519(createPublicKey(privateKey))]);
  const signature = sign(null, Buffer.from(body, 'utf8'), privateKey);
  return `${body}\n${signatureLine(origin, keyHash(origin, typed), signature)}`;
}

/** Parses a checkpoint note (strictly: the format of c2sp.org/tlog-checkpoint); throws LEDGER_NOTE_INVALID naming `where`. */
export function parseCheckpointNote(text: string, where: string): CheckpointNote {
  const bad = (why: string): never => {
    throw new LedgerError('LEDGER_NOTE_INVALID', `${where}: not a checkpoint note (${why})`);
  };
  const split = text.lastIndexOf('\n\n');
  if (split < 0) return bad('no blank line before the signatures');
  const body = text.slice(0, split + 1);
  const sigText = text.slice(split + 2);
  const lines = body.split('\n');
  if (lines.length < 4) bad('the body must have an origin, a tree size and a root');
  const [origin, sizeText, rootB64] = lines as [string, string, string];
  if (invalidNameReason(origin)) bad(`bad origin: ${invalidNameReason(origin)}`);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) bad('bad tree size');
  const root = Buffer.from(rootB64, 'base64');
  if (!BASE64.test(rootB64) || root.length !== 32) bad('the root must be 32 bytes of base64');
  if (!sigText.endsWith('\n')) bad('the signatures must end with a newline');
  const signatures = sigText
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
      if (!m) return bad(`bad signature line ${JSON.stringify(line)}`);
      const raw = Buffer.from(m[2]!, 'base64');
      if (raw.length < 5) return bad('a signature is too short');
      return { name: m[1]!, hash: raw.subarray(0, 4), signature: raw.subarray(4), line: line + '\n' };
    });
  return { body, origin, treeSize: Number(sizeText), root: root.toString('hex'), signatures };
}

/** True when `note` carries a valid signature (or cosignature) by `verifier`. */
export function hasValidSignature(note: CheckpointNote, verifier: NoteVerifier): boolean {
  return note.signatures.some((s) => s.name === verifier.name && s.hash.equals(verifier.hash) && signatureValid(note.body, s, verifier));
}

function signatureValid(body: string, s: NoteSignature, verifier: NoteVerifier): boolean {
  try {
    if (verifier.type === NOTE_KEY_ED25519) return verify(null, Buffer.from(body, 'utf8'), verifier.key, s.signature);
    if (s.signature.length !== 8 + 64) return false;
    const time = s.signature.readBigUInt64BE(0);
    return verify(null, Buffer.from(`cosignature/v1\ntime ${time}\n${body}`, 'utf8'), verifier.key, s.signature.subarray(8));
  } catch {
    return false;
  }
}

/** `note` with the signature lines of `more` (notes over the same body) added, without repeats. */
export function mergeSignatures(note: CheckpointNote, more: readonly NoteSignature[]): CheckpointNote {
  const seen = new Set(note.signatures.map((s) => s.line));
  const signatures = [...note.signatures];
  for (const s of more) {
    if (seen.has(s.line)) continue;
    seen.add(s.line);
    signatures.push(s);
  }
  return { ...note, signatures };
}

export function formatNote(note: CheckpointNote): string {
  return `${note.body}\n${note.signatures.map((s) => s.line).join('')}`;
}

/**
 * Groups stored note texts (the log's note and the cosigned copies witnesses returned) by body:
 * one note per tree head with every signature line any copy carries.
 */
export function collectNotes(texts: readonly { text: string; where: string }[]): CheckpointNote[] {
  const byBody = new Map<string, CheckpointNote>();
  for (const { text, where } of texts) {
    const note = parseCheckpointNote(text, where);
    const known = byBody.get(note.body);
    byBody.set(note.body, known ? mergeSignatures(known, note.signatures) : note);
  }
  return [...byBody.values()];
}

// --- Proof formats -------------------------------------------------------------------------------

/** c2sp.org/tlog-proof: index, inclusion path (hex in, base64 out), the checkpoint note; `extra` is the leaf data. */
export function formatTlogProof(index: number, path: readonly string[], note: string, extra?: string): string {
  return (
    'c2sp.org/tlog-proof@v1\n' +
    (extra !== undefined ? `extra ${Buffer.from(extra, 'utf8').toString('base64')}\n` : '') +
    `index ${index}\n` +
    path.map((h) => Buffer.from(h, 'hex').toString('base64') + '\n').join('') +
    '\n' +
    note
  );
}

/** The c2sp.org/tlog-witness add-checkpoint request body: old size, consistency proof, the note. */
export function formatAddCheckpoint(oldSize: number, path: readonly string[], note: string): string {
  return `old ${oldSize}\n` + path.map((h) => Buffer.from(h, 'hex').toString('base64') + '\n').join('') + '\n' + note;
}
