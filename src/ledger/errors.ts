/**
 * The ledger's errors: {@link LedgerError} is the AuditError (src/errors) of the `LEDGER_*` codes,
 * a subclass so that the public API's name and `instanceof` checks keep working. The CLI prints
 * `llm-audit: CODE: message` and exits with the code's status; it never prints a stack trace.
 */
import { AuditError, describeFsError, exitStatusFor, type AuditErrorCode, type FsProblem } from '../errors';

export { EXIT } from '../errors';

/** The ledger's codes (the `LEDGER_*` family of src/errors ERROR_CODES, with their exit statuses and meanings). */
export type LedgerErrorCode = Extract<AuditErrorCode, `LEDGER_${string}`>;

/** Where in the ledger a problem was found; `line` is 1-based. */
export interface LedgerLocation {
  file: string;
  line?: number;
  seq?: number;
}

export class LedgerError extends AuditError<LedgerErrorCode> {
  override readonly name = 'LedgerError';
  readonly location: LedgerLocation | undefined;

  constructor(code: LedgerErrorCode, message: string, options: { location?: LedgerLocation; cause?: unknown; fix?: string } = {}) {
    super(code, message, options);
    this.location = options.location;
  }
}

export function isLedgerError(error: unknown): error is LedgerError {
  return error instanceof LedgerError;
}

/** The exit status of any error (src/errors exitStatusFor; kept under its old name, which the public API exports). */
export const exitCodeFor = exitStatusFor;

/** `segments/2026-11-22.jsonl:12 (seq 11)`: how messages name a record. */
export function describeLocation(location: LedgerLocation): string {
  let out = location.file;
  if (location.line !== undefined) out += `:${location.line}`;
  if (location.seq !== undefined) out += ` (seq ${location.seq})`;
  return out;
}

const LEDGER_FS_CODES: Record<FsProblem, LedgerErrorCode> = {
  missing: 'LEDGER_NOT_FOUND',
  denied: 'LEDGER_UNREADABLE',
  'not-a-directory': 'LEDGER_UNREADABLE',
  'is-a-directory': 'LEDGER_UNREADABLE',
  'no-space': 'LEDGER_NO_SPACE',
  'read-only': 'LEDGER_IO',
  other: 'LEDGER_IO',
};

/**
 * Turns an error thrown by node:fs into a LedgerError with a message that says what the ledger was
 * doing (`what`) and with which path. Already-LedgerErrors pass through unchanged.
 */
export function fsError(error: unknown, what: string, path: string): LedgerError {
  if (isLedgerError(error)) return error;
  const { problem, message } = describeFsError(error, what, path);
  return new LedgerError(LEDGER_FS_CODES[problem], message, { cause: error });
}
