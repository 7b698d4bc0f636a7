/**
 * The one error type of encrypted content capture. Every failure to seal, open, load a key or
 * shred is a {@link ContentError} with a stable `code` (public API: scripts may match on it) and a
 * one-line, operator-facing message that never contains key material or plaintext content.
 */

export const CONTENT_ERROR_CODES = [
  /** `LLM_AUDIT_CONTENT` (or another setting) has a value this version does not know. */
  'CONTENT_CONFIG_INVALID',
  /** No master key configured, a key file that does not exist, or a key id / data key id that no loaded key or keystore entry has. */
  'CONTENT_KEY_MISSING',
  /** A key file that is not a 32-byte content key, a key id that is not allowed, or a master key that does not unwrap its data key (wrong file for that key id, or an altered keystore line). */
  'CONTENT_KEY_INVALID',
  /** The data key of this envelope was destroyed by `shred`: the content is erased for good. */
  'CONTENT_KEY_SHREDDED',
  /** The envelope does not authenticate: its ciphertext, nonce or bound context (key ids, tenant, request id) was changed, or it was moved to another record. */
  'CONTENT_TAMPERED',
  /** The value is not an envelope of a version and shape this code understands. */
  'CONTENT_ENVELOPE_INVALID',
  /** The keystore file (or its directory) cannot be read or written. */
  'CONTENT_KEYSTORE_IO',
  /** The keystore file does not exist (a read-only command was pointed at the wrong place). */
  'CONTENT_KEYSTORE_NOT_FOUND',
  /** Another process held the keystore lock for longer than the timeout. */
  'CONTENT_KEYSTORE_LOCKED',
  /** A key file would be overwritten. */
  'CONTENT_FILE_EXISTS',
  /** The ledger record has no encrypted content (capture was off for that call). */
  'CONTENT_NOT_CAPTURED',
  /** Bad arguments (empty request id, bad tenant id...). */
  'CONTENT_USAGE',
] as const;

export type ContentErrorCode = (typeof CONTENT_ERROR_CODES)[number];

export class ContentError extends Error {
  override readonly name = 'ContentError';
  readonly code: ContentErrorCode;

  constructor(code: ContentErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

export function isContentError(error: unknown): error is ContentError {
  return error instanceof ContentError;
}

/**
 * Exit code of the `llm-audit` content commands, in the CLI's scheme (src/ledger/errors.ts EXIT):
 * 1 integrity (the envelope was altered or is damaged), 2 usage, 3 unusable (key missing, invalid
 * or shredded, keystore unreadable or locked, nothing captured).
 */
export function contentExitCode(error: ContentError): 1 | 2 | 3 {
  switch (error.code) {
    case 'CONTENT_TAMPERED':
    case 'CONTENT_ENVELOPE_INVALID':
      return 1;
    case 'CONTENT_USAGE':
    case 'CONTENT_CONFIG_INVALID':
      return 2;
    default:
      return 3;
  }
}

/** A node:fs error as a ContentError naming what was being done and with which path. */
export function contentFsError(error: unknown, what: string, path: string): ContentError {
  if (isContentError(error)) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return new ContentError('CONTENT_KEYSTORE_NOT_FOUND', `${what}: ${path} does not exist`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new ContentError('CONTENT_KEYSTORE_IO', `${what}: permission denied on ${path}`, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new ContentError('CONTENT_KEYSTORE_IO', `${what}: no space left on the device holding ${path}`, { cause: error });
    case 'EROFS':
      return new ContentError('CONTENT_KEYSTORE_IO', `${what}: ${path} is on a read-only file system`, { cause: error });
    default: {
      const detail = error instanceof Error ? error.message : String(error);
      return new ContentError('CONTENT_KEYSTORE_IO', `${what}: ${path}: ${detail.split('\n')[0]}`, { cause: error });
    }
  }
}
