/**
 * The one error type of otel-llm-audit. Every failure that `register` or the `llm-audit` CLI can
 * print is an {@link AuditError} with a stable `code` from {@link ERROR_CODES} (public API: scripts
 * match on it, so a code is never renamed and its exit status never changes), a one-line,
 * operator-facing message (never key material or content) and, when there is one, the fix.
 *
 * The families: `CONFIG_*` (the configuration, src/config), `LEDGER_*` (the ledger, its verifier and
 * the CLI's flags: LedgerError), `CONTENT_*` (encrypted content capture: ContentError),
 * `LLM_AUDIT_UNAVAILABLE` (a call refused under LLM_AUDIT_ON_FAILURE=block) and `INTERNAL` (a bug).
 * LedgerError and ContentError are subclasses, kept because the public API exports them.
 *
 * Exit statuses (the CLI; `register` exits 78 for a configuration error): 0 ok, 1 integrity, 2
 * usage, 3 unusable, 4 no such record, 70 internal, 78 configuration. docs/errors.md is the table,
 * checked against {@link ERROR_CODES} by test/errors/codes.test.ts.
 */

/** Exit statuses of the `llm-audit` CLI and of `register`. */
export const EXIT = {
  ok: 0,
  /** The ledger, a proof, a signature or an envelope failed verification (evidence of tampering or damage). */
  integrity: 1,
  /** Bad command line. */
  usage: 2,
  /** Something could not be used: a ledger missing, unreadable, locked, disk full; a key missing... */
  unusable: 3,
  /** The ledger is fine but holds no record with the id asked for (`prove`, `decrypt`). */
  notFound: 4,
  /** A bug: anything that is not an AuditError. */
  internal: 70,
  /** The configuration (environment or flags that stand for it) has a value that is not accepted (sysexits EX_CONFIG). */
  config: 78,
} as const;

type Exit = (typeof EXIT)[keyof typeof EXIT];

/** Every code, with the exit status it produces and what it means (docs/errors.md is generated from the same words). */
export const ERROR_CODES = {
  CONFIG_INVALID: [EXIT.config, 'one or more settings have a value that is not accepted; every problem is listed, naming the variable and the accepted values'],
  CONFIG_CHECK_FAILED: [EXIT.unusable, '`llm-audit config check`: the configuration is valid but something it names cannot be used (ledger directory, database, key, OTLP endpoint)'],

  LEDGER_RECORD_MALFORMED: [EXIT.integrity, 'a ledger line is not a record'],
  LEDGER_RECORD_NOT_CANONICAL: [EXIT.integrity, 'a record is not in canonical JSON'],
  LEDGER_RECORD_HASH_MISMATCH: [EXIT.integrity, "a record's hash does not match its content"],
  LEDGER_CHAIN_BROKEN: [EXIT.integrity, "a record's previous hash is not the hash of the record before it"],
  LEDGER_RECORD_MISSING: [EXIT.integrity, 'a sequence number is missing'],
  LEDGER_RECORD_INSERTED: [EXIT.integrity, 'a record was inserted'],
  LEDGER_RECORD_REORDERED: [EXIT.integrity, 'records are out of order'],
  LEDGER_RECORD_DUPLICATE: [EXIT.integrity, 'a record appears twice'],
  LEDGER_TORN_TAIL: [EXIT.integrity, 'the last line was cut by an interrupted write (`llm-audit repair`)'],
  LEDGER_TRUNCATED: [EXIT.integrity, 'records a checkpoint covers are gone'],
  LEDGER_CHECKPOINT_MISMATCH: [EXIT.integrity, 'a checkpoint does not match the records'],
  LEDGER_CHECKPOINT_MALFORMED: [EXIT.integrity, 'a checkpoint cannot be read'],
  LEDGER_CHECKPOINT_UNSIGNED: [EXIT.integrity, 'a public key was given but a checkpoint is not signed'],
  LEDGER_SIGNATURE_INVALID: [EXIT.integrity, 'a signature does not verify'],
  LEDGER_TOMBSTONE_INVALID: [EXIT.integrity, 'a retention tombstone does not match what it replaced'],
  LEDGER_TOMBSTONE_UNSIGNED: [EXIT.integrity, 'a public key was given but a retention tombstone is not signed'],
  LEDGER_SEGMENT_UNEXPECTED: [EXIT.integrity, 'a segment file that no record leads to'],
  LEDGER_SUMMARY_MISMATCH: [EXIT.integrity, "a segment's summary (summaries/) does not follow from the segment's lines, or describes another segment"],
  LEDGER_METADATA_CORRUPT: [EXIT.integrity, 'ledger.json cannot be read'],
  LEDGER_METADATA_MISSING: [EXIT.integrity, 'ledger.json was deleted although checkpoints name the ledger (`llm-audit repair`)'],
  LEDGER_RECORDS_RECOVERED: [EXIT.integrity, '`verify --strict`: records were recovered at a writer’s startup after a crash'],
  LEDGER_RECORDS_UNSIGNED: [EXIT.integrity, '`verify --strict --public-key` (PostgreSQL): records whose transaction recorded no signed checkpoint'],
  LEDGER_PROOF_INVALID: [EXIT.integrity, 'a proof does not verify'],
  LEDGER_CONSISTENCY_FAILED: [EXIT.integrity, 'a newer checkpoint does not extend an older one'],
  LEDGER_PROOF_UNAUTHENTICATED: [EXIT.integrity, '`verify-proof` without a public key (or on an unsigned checkpoint): nothing was proven'],
  LEDGER_ROW_MISMATCH: [EXIT.integrity, "PostgreSQL: a row's hashes, indexed columns or chain ids do not follow from its line"],
  LEDGER_EVIDENCE_INVALID: [EXIT.integrity, '`evidence verify`: a bundle file was changed, added or removed, or its proofs do not lead to its checkpoint'],
  LEDGER_NOTE_INVALID: [EXIT.integrity, 'a stored C2SP note disagrees with the checkpoint of its size, or its signature is wrong'],
  LEDGER_WITNESS_QUORUM: [EXIT.integrity, '`verify --witness`: a checkpoint lacks the required valid cosignatures'],
  LEDGER_NOT_FOUND: [EXIT.unusable, 'the ledger (or a file it needs) does not exist'],
  LEDGER_UNREADABLE: [EXIT.unusable, 'permission denied, or not a directory / not a file'],
  LEDGER_LOCKED: [EXIT.unusable, 'another process holds the ledger'],
  LEDGER_IO: [EXIT.unusable, 'an I/O error, a read-only file system, or PostgreSQL not reachable'],
  LEDGER_NO_SPACE: [EXIT.unusable, 'no space left on the device'],
  LEDGER_CLOSED: [EXIT.unusable, 'the writer was closed'],
  LEDGER_NOT_CHECKPOINTED: [EXIT.unusable, 'nothing to prove yet: no checkpoint'],
  LEDGER_RECORD_NOT_FOUND: [EXIT.notFound, 'no record with that id (`prove`, `decrypt`): the ledger itself is usable'],
  LEDGER_PROOF_UNAVAILABLE: [EXIT.unusable, 'the hashes a proof needs were removed by retention'],
  LEDGER_KEY_INVALID: [EXIT.unusable, 'not an Ed25519 PEM key (or not a note verifier key)'],
  LEDGER_NOTE_UNAVAILABLE: [EXIT.unusable, 'a note or tlog-proof was asked for a checkpoint that has none'],
  LEDGER_RETENTION_REFUSED: [EXIT.unusable, 'the ledger does not verify, so retention removed nothing'],
  LEDGER_FILE_EXISTS: [EXIT.unusable, 'a key file would be overwritten'],
  LEDGER_SCHEMA_MISMATCH: [EXIT.unusable, 'PostgreSQL: the schema is missing, older or newer than this version expects, or was changed by hand'],
  LEDGER_PARTIAL_VIEW: [EXIT.unusable, 'the reader sees only part of the ledger (a PostgreSQL tenant reader), so the chain cannot be checked from it; not a sign of tampering'],
  LEDGER_VERIFY_INCOMPLETE: [EXIT.unusable, 'a verify worker thread failed, so not every segment was checked: the ledger was not verified (run again, `--workers 0` for none)'],
  LEDGER_USAGE: [EXIT.usage, 'bad command line: an unknown command or option, a missing or bad value'],

  CONTENT_CONFIG_INVALID: [EXIT.usage, 'a content setting has a value this version does not know'],
  CONTENT_KEY_MISSING: [EXIT.unusable, 'no master key configured, a key file that does not exist, or a key id no key has'],
  CONTENT_KEY_INVALID: [EXIT.unusable, 'a key file that is not a 32-byte content key, or a master key that does not unwrap its data key'],
  CONTENT_KEY_SHREDDED: [EXIT.unusable, 'the data key was destroyed by `shred`: the content is erased for good'],
  CONTENT_TAMPERED: [EXIT.integrity, 'the envelope does not authenticate: changed, or moved to another record'],
  CONTENT_ENVELOPE_INVALID: [EXIT.integrity, 'not an envelope of a version and shape this code understands'],
  CONTENT_KEYSTORE_IO: [EXIT.unusable, 'the keystore (or its directory) cannot be read or written'],
  CONTENT_KEYSTORE_NOT_FOUND: [EXIT.unusable, 'the keystore file does not exist'],
  CONTENT_KEYSTORE_LOCKED: [EXIT.unusable, 'another process held the keystore lock for longer than the timeout'],
  CONTENT_FILE_EXISTS: [EXIT.unusable, 'a key file would be overwritten'],
  CONTENT_NOT_CAPTURED: [EXIT.unusable, 'the record has no encrypted content (capture was off for that call)'],
  CONTENT_USAGE: [EXIT.usage, 'bad arguments (empty request id, bad tenant id...)'],

  LLM_AUDIT_UNAVAILABLE: [EXIT.unusable, 'thrown to the application: an LLM call refused while the audit trail cannot be written (LLM_AUDIT_ON_FAILURE=block)'],
  INTERNAL: [EXIT.internal, 'a bug: please report it (LLM_AUDIT_DEBUG=1 prints the stack)'],
} as const satisfies Record<string, readonly [Exit, string]>;

export type AuditErrorCode = keyof typeof ERROR_CODES;

export class AuditError<C extends AuditErrorCode = AuditErrorCode> extends Error {
  override readonly name: string = 'AuditError';
  readonly code: C;
  /** What the operator can do about it, when there is one thing to do (printed as `fix: ...`). */
  readonly fix: string | undefined;

  constructor(code: C, message: string, options: { cause?: unknown; fix?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fix = options.fix;
  }
}

export function isAuditError(error: unknown): error is AuditError {
  return error instanceof AuditError;
}

/** The exit status for an error: its code's, or 70 (internal) for anything that is not an AuditError. */
export function exitStatusFor(error: unknown): number {
  return isAuditError(error) ? ERROR_CODES[error.code][0] : EXIT.internal;
}

/**
 * The lines to print for an error: `<program>: CODE: message` (further message lines as they
 * are), then `fix: ...` when there is one. Anything that is not an AuditError is a bug: its first
 * line under INTERNAL, and the stack only with `debug` (LLM_AUDIT_DEBUG=1).
 */
export function renderError(error: unknown, program: 'llm-audit' | 'otel-llm-audit', debug = false): string[] {
  const lines: string[] = [];
  if (isAuditError(error)) {
    const [first, ...more] = error.message.split('\n');
    lines.push(`${program}: ${error.code}: ${first}`, ...more);
    if (error.fix !== undefined) lines.push(`fix: ${error.fix}`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    lines.push(`${program}: INTERNAL: ${message.split('\n')[0]} (set LLM_AUDIT_DEBUG=1 for details, and please report it)`);
  }
  if (debug && error instanceof Error && error.stack) lines.push(error.stack);
  return lines;
}

/** What went wrong with a node:fs call, in the words every family's message uses. */
export type FsProblem = 'missing' | 'denied' | 'not-a-directory' | 'is-a-directory' | 'no-space' | 'read-only' | 'other';

/**
 * The one reading of a node:fs error: what kind of problem it is, and a one-line message saying
 * what was being done (`what`) with which path. Each family turns the kind into its own code
 * (ledger/errors.ts fsError, audit/content/errors.ts contentFsError).
 */
export function describeFsError(error: unknown, what: string, path: string): { problem: FsProblem; message: string } {
  switch ((error as NodeJS.ErrnoException | null)?.code) {
    case 'ENOENT':
      return { problem: 'missing', message: `${what}: ${path} does not exist` };
    case 'EACCES':
    case 'EPERM':
      return { problem: 'denied', message: `${what}: permission denied on ${path}` };
    case 'ENOTDIR':
      return { problem: 'not-a-directory', message: `${what}: ${path} is not a directory` };
    case 'EISDIR':
      return { problem: 'is-a-directory', message: `${what}: ${path} is a directory, expected a file` };
    case 'ENOSPC':
    case 'EDQUOT':
      return { problem: 'no-space', message: `${what}: no space left on the device holding ${path}` };
    case 'EROFS':
      return { problem: 'read-only', message: `${what}: ${path} is on a read-only file system` };
    default: {
      const detail = error instanceof Error ? error.message : String(error);
      return { problem: 'other', message: `${what}: ${path}: ${detail.split('\n')[0]}` };
    }
  }
}
