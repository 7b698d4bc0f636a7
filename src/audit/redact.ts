/**
 * Error text goes onto exported spans, and SDK errors often echo request details: headers with the
 * API key, a bearer token, a pasted credential in a prompt fragment. Everything recorded from an
 * error passes through maskSecrets first.
 *
 * The patterns (./sanitize/secrets.ts, shared with the request sanitizer) each start with a fixed
 * literal followed by a single character class (or classes that cannot overlap), so the regex engine
 * never backtracks more than a constant amount per candidate start: the cost is linear in the input,
 * also for adversarial megabyte-sized messages.
 */

import { findPrivateKeyBlocks, MASK, SECRET_PATTERNS } from './sanitize/secrets';

/** The cap of `llm_audit.error.message`, in UTF-16 code units, ellipsis included. */
const MAX_ERROR_MESSAGE_LENGTH = 500;
const ELLIPSIS = '…';
// Masking a message of unbounded size on a failure path is wasted work: only the first 500
// characters survive. Masking a generous prefix keeps the cost bounded; see auditErrorMessage for
// why a secret cut by that prefix cannot leak.
const MASK_WINDOW = 16 * 1024;

// The credential shapes (API keys, bearer tokens, api-key headers, AWS key ids and secrets) live in
// one table shared with the request sanitizer: ./sanitize/secrets.ts.

/** Masks API keys (OpenAI sk-..., sk-proj-..., Anthropic sk-ant-...), `Bearer <token>`, `x-api-key: ...`, AWS access key ids (AKIA...), and private key blocks. */
export function maskSecrets(text: string): string {
  let out = maskPrivateKeyBlocks(text);
  // A message without secrets, the usual case, costs a few scans and no copies: replace() returns
  // its input when nothing matched.
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern.regex, pattern.mask);
  return out;
}

/** Keeps each block's BEGIN line and END marker, masks the key material; a truncated block is masked to the end of the text. */
function maskPrivateKeyBlocks(text: string): string {
  const blocks = findPrivateKeyBlocks(text);
  if (blocks.length === 0) return text;
  let out = '';
  let copiedUpTo = 0;
  for (const block of blocks) {
    out += text.slice(copiedUpTo, block.start) + `-----BEGIN ${block.label}-----${MASK}`;
    // Resume at the END line, so that it is kept.
    copiedUpTo = block.endMarker;
  }
  return out + text.slice(copiedUpTo);
}

/** The message of an error for the `llm_audit.error.message` attribute: masked, at most 500 characters (cut with an ellipsis). Handles non-Error throwables. */
export function auditErrorMessage(error: unknown): string {
  let text = rawMessage(error);
  if (text.length > MASK_WINDOW) {
    // A secret straddling the window edge would be cut into a prefix too short for its pattern.
    // Dropping the trailing run of token-like characters removes any such partial secret; the
    // masked text is then cut to 500 characters, far inside the window, anyway.
    let cut = MASK_WINDOW;
    while (cut > 0 && isTokenChar(text.charCodeAt(cut - 1))) cut--;
    text = text.slice(0, cut);
  }
  return truncate(maskSecrets(text));
}

function rawMessage(error: unknown): string {
  try {
    if (error instanceof Error) {
      const { message } = error as { message: unknown };
      if (typeof message === 'string' && message !== '') return message;
      return String(error.name);
    }
    if (typeof error === 'string') return error;
    if (typeof error === 'object' && error !== null) {
      const message = (error as { message?: unknown }).message;
      if (typeof message === 'string' && message !== '') return message;
      const json = JSON.stringify(error);
      if (json !== undefined && json !== '{}') return json;
      return Object.prototype.toString.call(error);
    }
    return String(error);
  } catch {
    // A throwing getter, toJSON or toString, or a cyclic object without a message.
    return `unserializable ${error === null ? 'null' : typeof error} thrown`;
  }
}

function truncate(text: string): string {
  if (text.length <= MAX_ERROR_MESSAGE_LENGTH) return text;
  let cut = MAX_ERROR_MESSAGE_LENGTH - ELLIPSIS.length;
  // Do not split a surrogate pair: half of one is not valid UTF-8 once exported.
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return text.slice(0, cut) + ELLIPSIS;
}

function isTokenChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // 0-9
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    code === 0x2d || // -
    code === 0x5f || // _
    code === 0x2b || // +
    code === 0x2f || // /
    code === 0x3d || // =
    code === 0x2e || // .
    code === 0x7e // ~
  );
}

// Status codes as the GenAI and HTTP conventions use them for error.type.
const MIN_HTTP_STATUS = 100;
const MAX_HTTP_STATUS = 599;
// A name fit for a metric attribute: an identifier, not a sentence someone assigned to `name`.
const TYPE_NAME = /^[A-Za-z_$][\w$.]{0,63}$/;
// Names that say nothing beyond "an error happened"; a status code or error code is more useful.
const GENERIC_NAMES: ReadonlySet<string> = new Set(['Error', 'APIError', 'Object']);
// Node system error codes (ECONNRESET, ERR_STREAM_PREMATURE_CLOSE, UND_ERR_CONNECT_TIMEOUT…).
const ERROR_CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

/** A low-cardinality error type for `error.type`: the error's class name or an HTTP status code string as the GenAI conventions suggest; '_OTHER' as last resort. */
export function errorType(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '_OTHER';
  try {
    const candidate = error as { name?: unknown; status?: unknown; statusCode?: unknown; code?: unknown };
    // `name` first (Anthropic's SDK and DOMException's AbortError set it), then the class: OpenAI's
    // SDK errors inherit `name` "Error" from Error.prototype and are only told apart by class.
    let name = typeName(candidate.name);
    if (name === undefined || GENERIC_NAMES.has(name)) {
      const className = typeName((error as { constructor?: { name?: unknown } }).constructor?.name);
      if (className !== undefined && (name === undefined || !GENERIC_NAMES.has(className))) name = className;
    }
    if (name !== undefined && !GENERIC_NAMES.has(name)) return name;

    const status = httpStatus(candidate.status) ?? httpStatus(candidate.statusCode);
    if (status !== undefined) return status;
    if (typeof candidate.code === 'string' && ERROR_CODE.test(candidate.code)) return candidate.code;
    if (name !== undefined && name !== 'Object') return name;
  } catch {
    // A throwing getter on a hostile throwable: fall through to the catch-all.
  }
  return '_OTHER';
}

function typeName(value: unknown): string | undefined {
  return typeof value === 'string' && TYPE_NAME.test(value) ? value : undefined;
}

function httpStatus(value: unknown): string | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= MIN_HTTP_STATUS && value <= MAX_HTTP_STATUS
    ? String(value)
    : undefined;
}
