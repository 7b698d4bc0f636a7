/**
 * Error text goes onto exported spans, and SDK errors often echo request details: headers with the
 * API key, a bearer token, a pasted credential in a prompt fragment. Everything recorded from an
 * error passes through maskSecrets first.
 *
 * Every pattern below starts with a fixed literal and is followed by a single character class (or
 * classes that cannot overlap), so the regex engine never backtracks more than a constant amount per
 * candidate start: the cost is linear in the input, also for adversarial megabyte-sized messages.
 */

const MASK = '[REDACTED]';

/** The cap of `llm_audit.error.message`, in UTF-16 code units, ellipsis included. */
const MAX_ERROR_MESSAGE_LENGTH = 500;
const ELLIPSIS = '…';
// Masking a message of unbounded size on a failure path is wasted work: only the first 500
// characters survive. Masking a generous prefix keeps the cost bounded; see auditErrorMessage for
// why a secret cut by that prefix cannot leak.
const MASK_WINDOW = 16 * 1024;

// OpenAI (sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...) and Anthropic (sk-ant-api03-...) keys.
// The lookbehind keeps "task-list-…" style words out; the kind prefix stays visible for debugging.
const SK_KEY = /(?<![A-Za-z0-9])(sk-(?:ant-|proj-|svcacct-|admin-)?)[A-Za-z0-9_-]{20,}/g;
// RFC 6750 b64token characters.
const BEARER = /\b(Bearer)\s+[A-Za-z0-9._~+/-]+=*/gi;
// `x-api-key: v`, `"x-api-key":"v"`, `api-key=v` (Azure), `x-goog-api-key: v`.
const API_KEY_HEADER = /\b((?:x-(?:goog-)?)?api-key)("?\s*[:=]\s*"?)[^\s"',;}]+/gi;
// AWS access key ids: long-term (AKIA) and temporary (ASIA).
const AWS_ACCESS_KEY_ID = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/g;
// Its secret has no recognizable shape of its own; it is only findable next to its name.
const AWS_SECRET_ACCESS_KEY = /\b(aws_?secret_?access_?key)("?\s*[:=]\s*"?)[A-Za-z0-9/+=]{40}/gi;

const BEGIN_MARKER = '-----BEGIN ';
const END_MARKER = '-----END ';
const DASHES = '-----';

/** Masks API keys (OpenAI sk-..., sk-proj-..., Anthropic sk-ant-...), `Bearer <token>`, `x-api-key: ...`, AWS access key ids (AKIA...), and private key blocks. */
export function maskSecrets(text: string): string {
  let out = maskPrivateKeyBlocks(text);
  // A message without secrets, the usual case, costs a few scans and no copies: replace() returns
  // its input when nothing matched.
  if (out.includes('sk-')) out = out.replace(SK_KEY, `$1${MASK}`);
  out = out.replace(BEARER, `$1 ${MASK}`);
  out = out.replace(API_KEY_HEADER, `$1$2${MASK}`);
  out = out.replace(AWS_ACCESS_KEY_ID, `$1${MASK}`);
  out = out.replace(AWS_SECRET_ACCESS_KEY, `$1$2${MASK}`);
  return out;
}

/**
 * PEM private key blocks, found with indexOf rather than a `BEGIN…END` regex: a lazy `[\s\S]*?`
 * up to a matching END rescans the rest of the input for every BEGIN without an END, which is
 * quadratic. A block without its END (a truncated message) is masked to the end of the text.
 */
function maskPrivateKeyBlocks(text: string): string {
  let begin = text.indexOf(BEGIN_MARKER);
  if (begin === -1) return text;
  let out = '';
  let copiedUpTo = 0;
  while (begin !== -1) {
    const labelStart = begin + BEGIN_MARKER.length;
    const labelEnd = text.indexOf(DASHES, labelStart);
    if (labelEnd === -1) break;
    const label = text.slice(labelStart, labelEnd);
    // RSA/EC/OPENSSH/ENCRYPTED "… PRIVATE KEY" and PGP "PRIVATE KEY BLOCK" labels.
    if (!label.includes('PRIVATE KEY') || label.includes('\n')) {
      begin = text.indexOf(BEGIN_MARKER, labelEnd);
      continue;
    }
    out += text.slice(copiedUpTo, begin) + `-----BEGIN ${label}-----${MASK}`;
    const end = text.indexOf(END_MARKER, labelEnd + DASHES.length);
    if (end === -1) {
      copiedUpTo = text.length;
      break;
    }
    // Resume at the END line, so that it is kept and the next search starts after this block.
    copiedUpTo = end;
    begin = text.indexOf(BEGIN_MARKER, end);
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
