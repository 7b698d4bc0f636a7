/**
 * SDK request params to the OpenTelemetry GenAI conventions' message shapes
 * (`gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages`; JSON schemas
 * in semantic-conventions docs/gen-ai/gen-ai-*-messages.json). These are what encrypted content
 * capture encrypts, so that a reviewer reads one shape whichever provider made the call.
 *
 * Pure and total: nothing here throws, mutates its input or does I/O. Input of an unexpected shape
 * is kept, not dropped, so a reviewer still sees what was sent:
 *
 * - a part or item this module does not know becomes `{type:'unknown', provider_type?, value}`,
 *   `value` being a JSON-safe copy of the original (cycles, BigInts, functions, non-finite numbers
 *   and excessive depth replaced by markers); it is a GenericPart of the conventions;
 * - a message that is not an object becomes `{role:'unknown', parts:[unknown part]}`.
 *
 * What a provider's system prompt is, is decided by its request walker
 * (src/instrumentations/<provider>/), once for the hashes and the envelope: its parts go to
 * `system_instructions`, so that the envelope holds what `llm_audit.system_prompt.hash` covers
 * (for OpenAI chat the `system` and `developer` messages, which the conventions would rather keep
 * in the history: the hash and the reviewer must agree on what the system prompt was).
 *
 * Tool call arguments are kept as the provider carries them: a JSON string for OpenAI, an object
 * for Anthropic `tool_use.input`. Inline binary data (base64 images, audio, files, data: URLs) is
 * by default replaced by `{type:'blob_digest', modality, mime_type, sha256, bytes}` (SHA-256 of the
 * decoded bytes), which keeps envelopes small; `{binary:'include'}` keeps it as the conventions'
 * BlobPart with base64 `content`. Opaque provider data (Anthropic thinking signatures and redacted
 * thinking, OpenAI encrypted reasoning) is never copied.
 */
import { createHash } from 'node:crypto';
import type { RequestWalker } from '../../core/types';

export type GenAIPart =
  | { type: 'text'; content: string; [extra: string]: unknown }
  | { type: 'reasoning'; content: string; [extra: string]: unknown }
  | { type: 'tool_call'; id?: string | null; name: string; arguments?: unknown }
  | { type: 'tool_call_response'; id?: string | null; response: unknown; [extra: string]: unknown }
  | { type: 'blob'; modality: string; mime_type?: string | null; content: string }
  | { type: 'blob_digest'; modality: string; mime_type?: string | null; sha256: string; bytes: number }
  | { type: 'uri'; modality: string; mime_type?: string | null; uri: string }
  | { type: 'file'; modality: string; mime_type?: string | null; file_id: string; [extra: string]: unknown }
  | { type: string; [extra: string]: unknown };

export interface GenAIInputMessage {
  role: string;
  parts: GenAIPart[];
  name?: string;
}

export interface GenAIOutputMessage extends GenAIInputMessage {
  /** Required by the conventions; absent here only when the provider did not report one (never invented). */
  finish_reason?: string;
}

/** The plaintext of an envelope: what `seal` encrypts and `open` returns. */
export interface ContentPayload {
  system_instructions?: unknown[];
  input_messages?: unknown[];
  output_messages?: unknown[];
}

/** The content of one request: what a provider's RequestWalker.content returns. */
export interface RequestContent {
  system_instructions?: GenAIPart[];
  input_messages: GenAIInputMessage[];
}

export interface ConvertOptions {
  /** `digest` (default): inline binary data becomes a `blob_digest` part; `include`: a BlobPart with the base64 content. */
  binary?: 'digest' | 'include';
}

type Obj = Record<string, unknown>;
const MAX_DEPTH = 64;

interface Ctx {
  binary: 'digest' | 'include';
}

function ctxOf(options: ConvertOptions | undefined): Ctx {
  return { binary: options?.binary === 'include' ? 'include' : 'digest' };
}

// --- entry points --------------------------------------------------------------------------------

/**
 * The system instructions and input messages of one request, as its provider's walker reads them.
 * Never throws; `system_instructions` is absent when the request has none.
 */
export function requestContent(
  kind: RequestWalker,
  params: unknown,
  options?: ConvertOptions,
): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  try {
    const p = isObj(params) ? params : {};
    if (typeof kind?.content === 'function') return kind.content(p, contentParts(options));
    return { input_messages: [{ role: 'unknown', parts: [unknownPart(params)] }] };
  } catch {
    // Unreachable by construction (every helper is total); kept so a future edit cannot make a
    // converter throw into the instrumented call.
    return { input_messages: [] };
  }
}

/**
 * The whole plaintext of an envelope: the request's content plus the output messages (the
 * `OutputMessage[]` the instrumentation already builds for the output hash, or undefined when the
 * call produced none, e.g. embeddings or an error before any output).
 */
export function contentPayload(
  kind: RequestWalker,
  params: unknown,
  output?: unknown,
  options?: ConvertOptions,
): ContentPayload {
  const request = requestContent(kind, params, options);
  const payload: ContentPayload = {};
  if (request.system_instructions !== undefined) payload.system_instructions = request.system_instructions;
  payload.input_messages = request.input_messages;
  const out = outputMessages(output);
  if (out !== undefined) payload.output_messages = out;
  return payload;
}

/**
 * Output messages in the conventions' shape, from the instrumentation's `OutputMessage[]` (already
 * that shape) or anything else: a JSON-safe copy, messages without `parts` made tolerant. Undefined
 * for undefined/null.
 */
export function outputMessages(output: unknown): GenAIOutputMessage[] | undefined {
  if (output === undefined || output === null) return undefined;
  const list = Array.isArray(output) ? output : [output];
  return list.map((message) => {
    if (!isObj(message)) return { role: 'unknown', parts: [unknownPart(message)] };
    const out: GenAIOutputMessage = {
      role: typeof message.role === 'string' ? message.role : 'assistant',
      parts: Array.isArray(message.parts) ? message.parts.map((part) => (isObj(part) && typeof part.type === 'string' ? (jsonSafe(part) as GenAIPart) : unknownPart(part))) : [],
    };
    if (typeof message.name === 'string') out.name = message.name;
    if (typeof message.finish_reason === 'string') out.finish_reason = message.finish_reason;
    return out;
  });
}

/**
 * The part builders a provider's RequestWalker.content uses, so that tool calls, inline binary
 * data (digested or kept, per the options) and unknown parts come out as for the built-in kinds.
 */
export interface ContentParts {
  text(content: string): GenAIPart;
  reasoning(content: string): GenAIPart;
  toolCall(id: unknown, name: string, args: unknown): GenAIPart;
  toolResponse(id: unknown, response: unknown): GenAIPart;
  /** Inline data of a MIME type (else of `modality`): base64 text, or the bytes themselves (the AWS SDK takes bytes). */
  inline(data: string | Uint8Array, mime: string | undefined, modality?: string): GenAIPart;
  /** Data the provider fetches from a URL or URI (uploaded files, cloud storage); a `data:` URL is inline data. */
  url(url: string, mime: string | undefined, modality?: string): GenAIPart;
  /** A file sent by id, as inline data or by URL (OpenAI's file parts); undefined when it is none of these. */
  file(f: { fileId?: unknown; fileData?: unknown; fileUrl?: unknown; filename?: unknown }): GenAIPart | undefined;
  unknown(value: unknown, providerType?: string): GenAIPart;
  /** Runs a converter; a getter that throws yields an unknown part, never an exception. */
  safe(convert: () => GenAIPart): GenAIPart;
  /** The options these parts follow, for a walker that hands a request shape to a built-in converter. */
  readonly options: ConvertOptions | undefined;
}

export function contentParts(options?: ConvertOptions): ContentParts {
  const ctx = ctxOf(options);
  return {
    text: (content) => ({ type: 'text', content }),
    reasoning: (content) => ({ type: 'reasoning', content }),
    toolCall,
    toolResponse: (id, response) => ({ type: 'tool_call_response', id: strOrNull(id), response: jsonSafe(response) }),
    inline: (data, mime, modality) => base64Part(data, modalityOf(mime) ?? modality ?? 'document', mime, ctx),
    url: (url, mime, modality) => urlPart(url, modalityOf(mime) ?? modality ?? 'document', mime, ctx),
    file: (f) => filePart(f, ctx),
    unknown: unknownPart,
    safe: safePart,
    options,
  };
}

// --- lists of inputs ------------------------------------------------------------------------------

/** Inputs given as a list (embedding values): one user message whose parts are the inputs, in order. */
export function embeddingsInput(input: unknown): GenAIInputMessage[] {
  if (input === undefined || input === null) return [];
  const items = Array.isArray(input) && !isTokenArray(input) ? input : [input];
  const parts = items.map((item): GenAIPart => {
    if (typeof item === 'string') return { type: 'text', content: item };
    // Pre-tokenized input: token ids, kept as a GenericPart.
    if (isTokenArray(item)) return tokensPart(item);
    return unknownPart(item);
  });
  return [{ role: 'user', parts }];
}

export function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

/** Pre-tokenized input (token ids), kept as a GenericPart. */
export function tokensPart(tokens: number[]): GenAIPart {
  return { type: 'tokens', content: tokens.slice() };
}

// --- shared parts --------------------------------------------------------------------------------

function toolCall(id: unknown, name: string, args: unknown): GenAIPart {
  const part: GenAIPart = { type: 'tool_call', id: strOrNull(id), name };
  if (args !== undefined) part.arguments = jsonSafe(args);
  return part;
}

/** An http(s) URL is a UriPart; a `data:` URL is inline binary. */
function urlPart(url: string, modality: string, mime: string | undefined, ctx: Ctx): GenAIPart {
  const data = parseDataUrl(url);
  if (data !== undefined) return base64Part(data.base64, modalityOf(data.mime) ?? modality, data.mime, ctx);
  return { type: 'uri', modality, ...(mime ? { mime_type: mime } : {}), uri: url };
}

function filePart(f: { fileId?: unknown; fileData?: unknown; fileUrl?: unknown; filename?: unknown }, ctx: Ctx): GenAIPart | undefined {
  const filename = typeof f.filename === 'string' ? f.filename : undefined;
  let part: GenAIPart | undefined;
  if (typeof f.fileId === 'string') part = { type: 'file', modality: 'document', file_id: f.fileId };
  else if (typeof f.fileData === 'string') {
    const data = parseDataUrl(f.fileData);
    part = data !== undefined ? base64Part(data.base64, modalityOf(data.mime) ?? 'document', data.mime, ctx) : base64Part(f.fileData, 'document', undefined, ctx);
  } else if (typeof f.fileUrl === 'string') part = { type: 'uri', modality: 'document', uri: f.fileUrl };
  if (part !== undefined && filename !== undefined) (part as Obj).filename = filename;
  return part;
}

/** Inline data (base64 text or bytes) as a `blob_digest` part, or with `{binary:'include'}` a BlobPart with the base64 content. */
function base64Part(data: string | Uint8Array, modality: string, mime: string | undefined, ctx: Ctx): GenAIPart {
  const bytes = typeof data === 'string' ? undefined : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (ctx.binary === 'include') return { type: 'blob', modality, ...(mime ? { mime_type: mime } : {}), content: bytes?.toString('base64') ?? (data as string) };
  const decoded = bytes ?? Buffer.from(data as string, 'base64');
  return {
    type: 'blob_digest',
    modality,
    ...(mime ? { mime_type: mime } : {}),
    sha256: createHash('sha256').update(decoded).digest('hex'),
    bytes: decoded.length,
  };
}

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*?);base64,/i;

function parseDataUrl(url: string): { mime: string | undefined; base64: string } | undefined {
  const match = DATA_URL.exec(url.slice(0, 256));
  if (match === null) return undefined;
  return { mime: match[1] ? match[1].toLowerCase() : undefined, base64: url.slice(match[0].length) };
}

function modalityOf(mime: string | undefined): string | undefined {
  if (mime === undefined) return undefined;
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('audio/')) return 'audio';
  if (mime.startsWith('video/')) return 'video';
  return 'document';
}

/** A part this module does not know: kept as JSON so the reviewer still sees it. */
function unknownPart(value: unknown, providerType?: string): GenAIPart {
  const part: GenAIPart = { type: 'unknown', value: jsonSafe(value) };
  const type = providerType ?? (isObj(value) && typeof value.type === 'string' ? value.type : undefined);
  if (type !== undefined) part.provider_type = type;
  return part;
}

function strOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Runs a part converter; a getter that throws (proxies, odd SDK objects) yields an unknown part, never an exception. */
function safePart(convert: () => GenAIPart): GenAIPart {
  try {
    return convert();
  } catch {
    return { type: 'unknown', value: '[unreadable]' };
  }
}

/**
 * A JSON-safe deep copy: what canonicalJson can always serialize. Follows JSON.stringify's value
 * model (toJSON, dropped undefined/function/symbol members) and replaces what JSON cannot hold:
 * BigInt as its decimal string, non-finite numbers as null, cycles as "[circular]", depth beyond
 * 64 as "[too deep]", a throwing getter or toJSON as "[unreadable]". Buffers and typed arrays
 * become a `blob_digest`-like object, never their bytes.
 */
export function jsonSafe(value: unknown, depth = 0, ancestors: object[] = []): unknown {
  try {
    if (value === null) return null;
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        return Number.isFinite(value) ? value : null;
      case 'bigint':
        return value.toString();
      case 'undefined':
      case 'function':
      case 'symbol':
        return undefined;
    }
    const obj = value as object;
    if (ArrayBuffer.isView(obj)) {
      const bytes = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength);
      return { type: 'binary', sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
    }
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return jsonSafe(toJSON.call(obj), depth, ancestors);
    if (depth >= MAX_DEPTH) return '[too deep]';
    if (ancestors.includes(obj)) return '[circular]';
    ancestors.push(obj);
    try {
      if (Array.isArray(obj)) return obj.map((item) => jsonSafe(item, depth + 1, ancestors) ?? null);
      const out: Obj = {};
      for (const key of Object.keys(obj)) {
        const member = jsonSafe((obj as Obj)[key], depth + 1, ancestors);
        if (member !== undefined) out[key] = member;
      }
      return out;
    } finally {
      ancestors.pop();
    }
  } catch {
    return '[unreadable]';
  }
}
