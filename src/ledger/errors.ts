/**
 * The one error type of the ledger. Every failure the ledger, its verifier or the CLI can report is
 * a {@link LedgerError} with a stable string `code` (part of the public API: scripts may match on
 * it) and a one-line, operator-facing `message`. The CLI prints `llm-audit: CODE: message` and
 * exits with {@link exitCodeFor}; it never prints a stack trace.
 */

/** Exit codes of the `llm-audit` CLI. */
export const EXIT = {
  ok: 0,
  /** The ledger, a proof or a signature failed verification (evidence of tampering or damage). */
  integrity: 1,
  /** Bad command line. */
  usage: 2,
  /** The ledger could not be used: missing, unreadable, locked, disk full, torn tail... */
  unusable: 3,
  /** The ledger is fine but holds no record with the id asked for (`prove`, `decrypt`). */
  notFound: 4,
  /** A bug: anything that is not a LedgerError. */
  internal: 70,
} as const;

/** Stable error codes, grouped by the exit code they produce. */
export const INTEGRITY_CODES = [
  'LEDGER_RECORD_MALFORMED',
  'LEDGER_RECORD_NOT_CANONICAL',
  'LEDGER_RECORD_HASH_MISMATCH',
  'LEDGER_CHAIN_BROKEN',
  'LEDGER_RECORD_MISSING',
  'LEDGER_RECORD_INSERTED',
  'LEDGER_RECORD_REORDERED',
  'LEDGER_RECORD_DUPLICATE',
  'LEDGER_TORN_TAIL',
  'LEDGER_TRUNCATED',
  'LEDGER_CHECKPOINT_MISMATCH',
  'LEDGER_CHECKPOINT_MALFORMED',
  'LEDGER_CHECKPOINT_UNSIGNED',
  'LEDGER_SIGNATURE_INVALID',
  'LEDGER_TOMBSTONE_INVALID',
  /** `--public-key` given but a retention tombstone is not signed: anyone who can write the checkpoints could have written it. */
  'LEDGER_TOMBSTONE_UNSIGNED',
  'LEDGER_SEGMENT_UNEXPECTED',
  'LEDGER_METADATA_CORRUPT',
  /** ledger.json (the ledger's identity) was deleted although checkpoints name the ledger: `llm-audit repair` recreates it. */
  'LEDGER_METADATA_MISSING',
  /** `verify --strict`: records were recovered at a writer's startup (after a crash), not signed when written. */
  'LEDGER_RECORDS_RECOVERED',
  /** `verify --strict --public-key` (PostgreSQL): records whose append transaction recorded no signed checkpoint (the writer role without the key). */
  'LEDGER_RECORDS_UNSIGNED',
  'LEDGER_PROOF_INVALID',
  'LEDGER_CONSISTENCY_FAILED',
  /** `verify-proof` without --public-key (or on an unsigned checkpoint): the arithmetic holds, but anyone can recompute a root; nothing was proven. */
  'LEDGER_PROOF_UNAUTHENTICATED',
  /** PostgreSQL backend: a row's hash or indexed columns do not match its hashed line. */
  'LEDGER_ROW_MISMATCH',
  /** `evidence verify`: a bundle file was changed, added or removed, or its proofs do not lead to its checkpoint. */
  'LEDGER_EVIDENCE_INVALID',
  /** A stored C2SP checkpoint note disagrees with the checkpoint of its size, or its signature is wrong. */
  'LEDGER_NOTE_INVALID',
  /** `verify --witness`: a checkpoint lacks the required number of valid witness cosignatures. */
  'LEDGER_WITNESS_QUORUM',
] as const;

export const UNUSABLE_CODES = [
  'LEDGER_NOT_FOUND',
  'LEDGER_UNREADABLE',
  'LEDGER_LOCKED',
  'LEDGER_IO',
  'LEDGER_NO_SPACE',
  'LEDGER_CLOSED',
  'LEDGER_NOT_CHECKPOINTED',
  'LEDGER_RECORD_NOT_FOUND',
  'LEDGER_PROOF_UNAVAILABLE',
  'LEDGER_KEY_INVALID',
  /** A C2SP note or tlog-proof cannot be produced (no signing key, so no note). */
  'LEDGER_NOTE_UNAVAILABLE',
  'LEDGER_RETENTION_REFUSED',
  'LEDGER_FILE_EXISTS',
  /** PostgreSQL backend: the schema is missing, older or newer than this version expects, or was changed by hand. */
  'LEDGER_SCHEMA_MISMATCH',
  /** verify, prove...: the reader sees only part of the ledger (a PostgreSQL tenant reader), so the chain cannot be checked from it. Not a sign of tampering. */
  'LEDGER_PARTIAL_VIEW',
] as const;

export const USAGE_CODES = ['LEDGER_USAGE'] as const;

export type LedgerErrorCode =
  | (typeof INTEGRITY_CODES)[number]
  | (typeof UNUSABLE_CODES)[number]
  | (typeof USAGE_CODES)[number];

/** Where in the ledger a problem was found; `line` is 1-based. */
export interface LedgerLocation {
  file: string;
  line?: number;
  seq?: number;
}

export class LedgerError extends Error {
  override readonly name = 'LedgerError';
  readonly code: LedgerErrorCode;
  readonly location: LedgerLocation | undefined;

  constructor(code: LedgerErrorCode, message: string, options: { location?: LedgerLocation; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.location = options.location;
  }
}

export function isLedgerError(error: unknown): error is LedgerError {
  return error instanceof LedgerError;
}

export function exitCodeFor(error: unknown): number {
  if (!isLedgerError(error)) return EXIT.internal;
  if ((INTEGRITY_CODES as readonly string[]).includes(error.code)) return EXIT.integrity;
  if ((USAGE_CODES as readonly string[]).includes(error.code)) return EXIT.usage;
  if (error.code === 'LEDGER_RECORD_NOT_FOUND') return EXIT.notFound;
  return EXIT.unusable;
}

/** `segments/2026-11-22.jsonl:12 (seq 11)`: how messages name a record. */
export function describeLocation(location: LedgerLocation): string {
  let out = location.file;
  if (location.line !== undefined) out += `:${location.line}`;
  if (location.seq !== undefined) out += ` (seq ${location.seq})`;
  return out;
}

/**
 * Turns an error thrown by node:fs into a LedgerError with a message that says what the ledger was
 * doing (`what`) and with which path. Already-LedgerErrors pass through unchanged.
 */
export function fsError(error: unknown, what: string, path: string): LedgerError {
  if (isLedgerError(error)) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return new LedgerError('LEDGER_NOT_FOUND', `${what}: ${path} does not exist`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new LedgerError('LEDGER_UNREADABLE', `${what}: permission denied on ${path}`, { cause: error });
    case 'ENOTDIR':
      return new LedgerError('LEDGER_UNREADABLE', `${what}: ${path} is not a directory`, { cause: error });
    case 'EISDIR':
      return new LedgerError('LEDGER_UNREADABLE', `${what}: ${path} is a directory, expected a file`, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new LedgerError('LEDGER_NO_SPACE', `${what}: no space left on the device holding ${path}`, { cause: error });
    case 'EROFS':
      return new LedgerError('LEDGER_IO', `${what}: ${path} is on a read-only file system`, { cause: error });
    default: {
      const detail = error instanceof Error ? error.message : String(error);
      return new LedgerError('LEDGER_IO', `${what}: ${path}: ${detail}`, { cause: error });
    }
  }
}
