/**
 * The errors of encrypted content capture. Every failure to seal, open, load a key or shred is a
 * {@link ContentError}: the AuditError (src/errors) of the `CONTENT_*` codes, with a one-line,
 * operator-facing message that never contains key material or plaintext content.
 */
import { AuditError, describeFsError, ERROR_CODES, exitStatusFor, type AuditErrorCode } from '../../errors';

/** The content codes, in the order docs/content-encryption.md lists them (meanings: src/errors ERROR_CODES). */
export const CONTENT_ERROR_CODES = (Object.keys(ERROR_CODES) as AuditErrorCode[]).filter((code): code is ContentErrorCode => code.startsWith('CONTENT_'));

export type ContentErrorCode = Extract<AuditErrorCode, `CONTENT_${string}`>;

export class ContentError extends AuditError<ContentErrorCode> {
  override readonly name = 'ContentError';
}

export function isContentError(error: unknown): error is ContentError {
  return error instanceof ContentError;
}

/**
 * Exit code of the `llm-audit` content commands, from the one table (src/errors): 1 integrity (the
 * envelope was altered or is damaged), 2 usage, 3 unusable (key missing, invalid or shredded,
 * keystore unreadable or locked, nothing captured).
 */
export function contentExitCode(error: ContentError): number {
  return exitStatusFor(error);
}

/** A node:fs error as a ContentError naming what was being done and with which path. */
export function contentFsError(error: unknown, what: string, path: string): ContentError {
  if (isContentError(error)) return error;
  const { problem, message } = describeFsError(error, what, path);
  return new ContentError(problem === 'missing' ? 'CONTENT_KEYSTORE_NOT_FOUND' : 'CONTENT_KEYSTORE_IO', message, { cause: error });
}
