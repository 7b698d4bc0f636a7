/**
 * Error text goes onto exported spans, and SDK errors often echo request details: headers with the
 * API key, a bearer token, a URL with a key in its query string, and the prompt itself (providers and
 * gateways quote the offending message in a 400, whole or cut). Everything recorded from an error
 * has the request's text removed (removeRequestText) and then passes through maskSecrets.
 *
 * The patterns (./sanitize/secrets.ts, shared with the request sanitizer) each start with a fixed
 * literal followed by a single character class (or classes that cannot overlap), so the regex engine
 * never backtracks more than a constant amount per candidate start: the cost is linear in the input,
 * also for adversarial megabyte-sized messages.
 */

import { createSanitizer, type Sanitizer } from './sanitize/detectors';
import { CONTENT_SECRET_PATTERNS, findPrivateKeyBlocks, MASK, SECRET_PATTERNS, type SecretPattern } from './sanitize/secrets';

/** The cap of `llm_audit.error.message`, in UTF-16 code units, ellipsis included. */
const MAX_ERROR_MESSAGE_LENGTH = 500;
const ELLIPSIS = '…';
// Masking a message of unbounded size on a failure path is wasted work: only the first 500
// characters survive. Masking a generous prefix keeps the cost bounded; see auditErrorMessage for
// why a secret cut by that prefix cannot leak.
const MASK_WINDOW = 16 * 1024;

// The credential shapes (API keys, bearer tokens, api-key headers, AWS key ids and secrets) live in
// one table shared with the request sanitizer: ./sanitize/secrets.ts. The shapes below only make
// sense in error text (a URL, a parameter list), where masking too much costs nothing; in a prompt
// they would turn prose into `[SECRET]`.
const ERROR_SECRET_PATTERNS: readonly SecretPattern[] = [
  ...SECRET_PATTERNS,
  ...CONTENT_SECRET_PATTERNS,
  {
    // `scheme://user:password@host`: the password (and the user) of a URL.
    name: 'url-userinfo',
    regex: /(?<scheme>\b[a-z][a-z0-9+.-]{0,15}:\/\/)(?<value>[^\s/@:"']{1,256}:[^\s/@"']{1,256})@/gi,
    mask: `$<scheme>${MASK}@`,
    contextIsSecret: false,
  },
];

// A credential named as a parameter: `?key=…`, `&access_token=…`, `api_key: …`, `"secret":"…"`,
// `password=…`, `sig=…` (query strings, form bodies, JSON, config dumps quoted by a gateway). Only
// the name's last word is matched (`api_key` is found at `key`), so each start costs a constant,
// and the value is one greedy run of a class that nothing follows, so it never backtracks. A value
// starts with a letter or digit (`key: -----BEGIN …` is left to the private key masking).
const CREDENTIAL_PARAMETER =
  /(?<name>key|token|secret|password|passwd|pwd|signature|sig|credential|auth)(?<sep>"?[ \t]{0,4}[:=][ \t]{0,4}"?)(?<value>[A-Za-z0-9_][^\s"'&,;}<>[\]]*)/gi;

function maskParameter(match: string, name: string, sep: string, _value: string, offset: number, text: string): string {
  // A value that runs into `[` was masked by an earlier pattern (`sk-proj-[REDACTED]`,
  // `AKIA[REDACTED]`): its visible kind prefix stays.
  return text.charCodeAt(offset + match.length) === 0x5b ? match : `${name}${sep}${MASK}`;
}

/**
 * Masks API keys (OpenAI sk-..., sk-proj-..., Anthropic sk-ant-...), `Bearer <token>`, `x-api-key: ...`,
 * AWS access key ids (AKIA...), JWTs, credential parameters (`?key=`, `token=`, `password:`...),
 * URL passwords, and private key blocks.
 */
export function maskSecrets(text: string): string {
  let out = maskPrivateKeyBlocks(text);
  // A message without secrets, the usual case, costs a few scans and no copies: replace() returns
  // its input when nothing matched.
  for (const pattern of ERROR_SECRET_PATTERNS) out = out.replace(pattern.regex, pattern.mask);
  return out.replace(CREDENTIAL_PARAMETER, maskParameter as (match: string, ...rest: any[]) => string);
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

/**
 * The message of an error for the `llm_audit.error.message` attribute: prefixed with the provider's
 * error type and code when the SDK error has them (`[invalid_request_error/context_length_exceeded]
 * 400 …`), the text of `request` (the call's params) removed, secrets masked, at most 500
 * characters (cut with an ellipsis). Handles non-Error throwables.
 */
export function auditErrorMessage(error: unknown, request?: unknown): string {
  return boundedMessage(rawMessage(error), request, providerErrorCode(error, request));
}

/**
 * An error thrown by user code around a call (a hook, a sanitizer pattern), for a diag log line:
 * its type and scrubbed message (as auditErrorMessage), then its stack frames, without the raw
 * message that heads `stack`. Logs are shipped like spans; a hook's error may quote the prompt.
 */
export function loggableError(error: unknown, request: unknown): string {
  let frames = '';
  try {
    const stack = (error as { stack?: unknown } | null)?.stack;
    if (typeof stack === 'string') frames = stack.split('\n').filter((line) => line.startsWith('    at ')).map((line) => `\n${line}`).join('');
  } catch {
    // A throwing stack getter: the frames are left out.
  }
  return `${errorType(error)}: ${auditErrorMessage(error, request)}${frames}`;
}

/** `text` (a block reason, a log line) with the request's text removed and secrets masked, at most 500 characters. */
export function scrubText(text: string, request?: unknown): string {
  return boundedMessage(text, request, undefined);
}

let piiSanitizer: Sanitizer | undefined;

/**
 * Free text an application hands over for the record (a guardrail's or an audit event's reason, an
 * event's details): as scrubText, and then every built-in sensitive-data kind (e-mail, phone,
 * card, IBAN, SSN, IP, credential) replaced by `[KIND]`, as the request sanitizer's redact mode
 * does to prompts, whatever LLM_AUDIT_SANITIZE says: such text is often written around the very
 * user it is about.
 */
export function scrubFreeText(text: string, request?: unknown): string {
  piiSanitizer ??= createSanitizer();
  return piiSanitizer.redact(scrubText(text, request)).text;
}

function boundedMessage(message: string, request: unknown, prefix: string | undefined): string {
  let text = message;
  if (text.length > MASK_WINDOW) {
    // A secret straddling the window edge would be cut into a prefix too short for its pattern.
    // Dropping the trailing run of token-like characters removes any such partial secret; the
    // masked text is then cut to 500 characters, far inside the window, anyway.
    let cut = MASK_WINDOW;
    while (cut > 0 && isTokenChar(text.charCodeAt(cut - 1))) cut--;
    text = text.slice(0, cut);
  }
  if (request !== undefined) text = removeRequestText(text, request);
  text = maskSecrets(text);
  return truncate(prefix === undefined ? text : `[${prefix}] ${text}`);
}

// The shortest piece of the request that is removed from error text. Shorter pieces are common
// words the provider's own message shares with any prompt; from eight characters on, a piece is
// as likely to be the prompt quoted back as anything else, and masking a few of the provider's
// words by mistake costs nothing.
const MIN_QUOTED = 8;
/** What stands in error text where the request's own text was. */
export const REQUEST_TEXT_MASK = '[REDACTED:request]';
// A request is walked to this depth and this many values. A pathological one that does not fit
// cannot be scrubbed with certainty, so its error's whole text is withheld (REQUEST_TEXT_MASK).
const MAX_WALK_DEPTH = 64;
const MAX_WALK_VALUES = 100_000;

/**
 * Removes from `text` every run of at least MIN_QUOTED characters that occurs in one of the
 * request's strings, as sent or in the escaped forms an error body quotes it in (JSON-escaped once
 * or twice, \uXXXX for non-ASCII, URL-encoded). Any run: a provider that quotes a truncated prefix,
 * a middle slice or the whole prompt is caught alike. Each run becomes REQUEST_TEXT_MASK.
 *
 * Cost: only on the error path. The message's MIN_QUOTED-grams go into a set (the message is at
 * most MASK_WINDOW long), then every request string is slid over once: linear in the request's
 * size, with no copy of the request kept.
 */
export function removeRequestText(text: string, request: unknown): string {
  if (text.length < MIN_QUOTED) return text;
  const grams = new Set<string>();
  // A bit per hash value (modulo the table's size): a message of MASK_WINDOW characters sets at
  // most 16 Ki of the 1 Mi bits, so a request gram whose bit is set is rarely not in the message.
  const hashes = new Uint32Array(HASH_BITS / 32);
  for (let i = 0; i + MIN_QUOTED <= text.length; i++) {
    grams.add(text.slice(i, i + MIN_QUOTED));
    const bit = gramHash(text, i) & (HASH_BITS - 1);
    hashes[bit >>> 5]! |= 1 << (bit & 31);
  }
  const quoted = new Set<string>();
  // A rolling hash slides over the request in O(1) per character; only a hash that some gram of
  // the message has costs a slice and a string lookup. (A Set of the hashes instead of the bit
  // table made the scan six times slower: ~100 ns per lookup.)
  const scan = (form: string): void => {
    if (form.length < MIN_QUOTED || quoted.size === grams.size) return;
    let hash = gramHash(form, 0);
    for (let i = 0; ; i++) {
      const bit = hash & (HASH_BITS - 1);
      if ((hashes[bit >>> 5]! & (1 << (bit & 31))) !== 0) {
        const gram = form.slice(i, i + MIN_QUOTED);
        // Every gram of the message found: nothing more to learn from the request.
        if (grams.has(gram) && quoted.add(gram).size === grams.size) return;
      }
      if (i + MIN_QUOTED >= form.length) return;
      hash = (Math.imul(hash - Math.imul(form.charCodeAt(i), HASH_BASE_TOP), HASH_BASE) + form.charCodeAt(i + MIN_QUOTED)) | 0;
    }
  };
  const complete = forEachRequestString(request, (value) => {
    for (const form of quotedForms(value)) scan(form);
  });
  if (!complete) return REQUEST_TEXT_MASK;
  if (quoted.size === 0) return text;
  const masked = new Uint8Array(text.length);
  for (let i = 0; i + MIN_QUOTED <= text.length; i++) if (quoted.has(text.slice(i, i + MIN_QUOTED))) masked.fill(1, i, i + MIN_QUOTED);
  let out = '';
  let i = 0;
  while (i < text.length) {
    let j = i;
    while (j < text.length && masked[j] === masked[i]) j++;
    out += masked[i] === 1 ? REQUEST_TEXT_MASK : text.slice(i, j);
    i = j;
  }
  return out;
}

// Polynomial hash of MIN_QUOTED UTF-16 code units, modulo 2^32 (Math.imul): HASH_BASE_TOP is
// HASH_BASE^(MIN_QUOTED-1), the weight of the code unit that leaves the window.
const HASH_BASE = 0x01000193;
let HASH_BASE_TOP = 1;
for (let k = 1; k < MIN_QUOTED; k++) HASH_BASE_TOP = Math.imul(HASH_BASE_TOP, HASH_BASE);

const HASH_BITS = 1 << 20;

function gramHash(text: string, start: number): number {
  let hash = 0;
  for (let k = 0; k < MIN_QUOTED; k++) hash = (Math.imul(hash, HASH_BASE) + text.charCodeAt(start + k)) | 0;
  return hash;
}

/** A string as sent, and the escaped forms error bodies quote strings in (each only when different). */
function quotedForms(value: string): string[] {
  const forms = [value];
  const add = (form: string): void => {
    if (!forms.includes(form)) forms.push(form);
  };
  const json = JSON.stringify(value).slice(1, -1);
  add(json);
  // A body that quotes the request as JSON, inside an SDK message that is JSON itself (Anthropic's).
  add(JSON.stringify(json).slice(1, -1));
  // Python's json.dumps default (ensure_ascii): non-ASCII as \uXXXX.
  add(json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  try {
    add(encodeURIComponent(value));
  } catch {
    // A lone surrogate: no URL-encoded form.
  }
  return forms;
}

/**
 * Calls `visit` with every string of the request's JSON-visible values (what the SDK serializes)
 * of at least MIN_QUOTED characters, `String` objects included. The top-level `model` is left out:
 * it is exported as `gen_ai.request.model` anyway, and an error naming it stays readable. A getter
 * that throws is skipped (nothing it holds can have been sent): this runs on the error path and
 * must not throw. False when the walk could not see everything (too many values, too deep, a
 * hostile Proxy).
 */
function forEachRequestString(request: unknown, visit: (value: string) => void): boolean {
  let budget = MAX_WALK_VALUES;
  let complete = true;
  const seen = new Set<object>();
  const walk = (value: unknown, depth: number): void => {
    if (budget-- <= 0) {
      complete = false;
      return;
    }
    if (typeof value === 'string') {
      if (value.length >= MIN_QUOTED) visit(value);
      return;
    }
    if (typeof value !== 'object' || value === null || seen.has(value)) return;
    if (depth > MAX_WALK_DEPTH) {
      complete = false;
      return;
    }
    if (value instanceof String) return walk(value.valueOf(), depth);
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) walk(item, depth + 1);
      return;
    }
    for (const key of Object.keys(value)) {
      if (depth === 0 && key === 'model') continue;
      try {
        walk((value as Record<string, unknown>)[key], depth + 1);
      } catch {
        // A throwing getter: nothing to remove there.
      }
    }
  };
  try {
    walk(request, 0);
  } catch {
    // A hostile object (a throwing Proxy trap).
    complete = false;
  }
  return complete;
}

// The provider's own error type and code: identifiers, never text.
const PROVIDER_CODE = /^[A-Za-z_][\w.:-]{0,63}$/;
// @anthropic-ai/sdk 0.x turns an in-stream error event into an APIConnectionError whose cause quotes its data.
const SSE_ERROR = 'SSE Error: ';

/**
 * The error type and code the provider sent, read from the SDK's error: openai sets `type` and
 * `code` (from the body's `error.type` / `error.code`, also for an error event inside a stream);
 * @anthropic-ai/sdk 1.x `type` and `errorCode` (`error.details.error_code`), 0.x only the body
 * (`error.error.type`), and for an in-stream error the SSE data its `cause` quotes. Only errors
 * that came from the provider count (an HTTP status or an error body): a Node error's `code`
 * (ECONNRESET) or this package's own are not the provider's. A value that looks like anything
 * but an identifier, or is a piece of the request, is left out.
 */
function providerCodes(error: unknown, request: unknown): { type?: string; code?: string } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const identifier = (value: unknown): string | undefined => {
    if (typeof value !== 'string' || !PROVIDER_CODE.test(value)) return undefined;
    return request !== undefined && removeRequestText(value, request) !== value ? undefined : value;
  };
  try {
    const e = error as { status?: unknown; type?: unknown; code?: unknown; errorCode?: unknown; error?: unknown; cause?: { message?: unknown } };
    let body = typeof e.error === 'object' && e.error !== null ? (e.error as { type?: unknown; code?: unknown; error?: { type?: unknown } }) : undefined;
    if (body === undefined && typeof e.status !== 'number') {
      body = sseErrorBody(e.cause?.message);
      if (body === undefined) return undefined;
    }
    const type = identifier(e.type) ?? identifier(body?.error?.type) ?? identifier(body?.type);
    const code = identifier(e.errorCode) ?? identifier(e.code) ?? identifier(body?.code);
    return type === undefined && code === undefined ? undefined : { type, code };
  } catch {
    return undefined;
  }
}

/** The JSON an @anthropic-ai/sdk 0.x in-stream error's cause quotes (`SSE Error: {"type":"error",...}`), if that is what `message` is. */
function sseErrorBody(message: unknown): { error?: { type?: unknown } } | undefined {
  if (typeof message !== 'string' || !message.startsWith(SSE_ERROR)) return undefined;
  try {
    const body = JSON.parse(message.slice(SSE_ERROR.length));
    return typeof body === 'object' && body !== null ? body : undefined;
  } catch {
    return undefined;
  }
}

/** `type/code` for the message prefix: both when they differ, else the one there is. */
function providerErrorCode(error: unknown, request: unknown): string | undefined {
  const codes = providerCodes(error, request);
  if (codes === undefined) return undefined;
  const { type, code } = codes;
  return type !== undefined && code !== undefined && code !== type ? `${type}/${code}` : (type ?? code);
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

/**
 * `error.type`, one rule for every path (docs/attributes.md): the provider's error code when it
 * sent one (the more specific `code`, else its `type`: `insufficient_quota`,
 * `context_length_exceeded`, `invalid_request_error`, Anthropic `overloaded_error`), in an HTTP
 * error body or in an error event inside a stream; else the HTTP status code of an API error
 * (`502`); else the error's class name (`APIConnectionTimeoutError`, `AbortError`), or a Node
 * error code (`ECONNRESET`) when the name says nothing; `_OTHER` as last resort. All low
 * cardinality, as the conventions ask. `request`: the call's params, which a code must not quote.
 */
export function errorType(error: unknown, request?: unknown): string {
  if (typeof error !== 'object' || error === null) return '_OTHER';
  try {
    const codes = providerCodes(error, request);
    const provider = codes?.code ?? codes?.type;
    if (provider !== undefined) return provider;

    const candidate = error as { name?: unknown; status?: unknown; statusCode?: unknown; code?: unknown };
    const status = httpStatus(candidate.status) ?? httpStatus(candidate.statusCode);
    if (status !== undefined) return status;

    // `name` first (Anthropic's SDK and DOMException's AbortError set it), then the class: OpenAI's
    // SDK errors inherit `name` "Error" from Error.prototype and are only told apart by class.
    let name = typeName(candidate.name);
    if (name === undefined || GENERIC_NAMES.has(name)) {
      const className = typeName((error as { constructor?: { name?: unknown } }).constructor?.name);
      if (className !== undefined && (name === undefined || !GENERIC_NAMES.has(className))) name = className;
    }
    if (name !== undefined && !GENERIC_NAMES.has(name)) return name;
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
