/**
 * A loopback fake of the OpenAI and Anthropic HTTP APIs, for tests.
 *
 * It answers on 127.0.0.1 only, with the wire format the real services use (JSON bodies, SSE
 * streams, error envelopes, request-id headers), so the real `openai` and `@anthropic-ai/sdk`
 * packages parse its answers, stream helpers included. It has no dependencies besides node:http.
 *
 *   const fake = await startFakeProvider();
 *   const openai = new OpenAI({ baseURL: fake.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
 *   const anthropic = new Anthropic({ baseURL: fake.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
 *   fake.enqueue({ text: 'hi', usage: { input: 10, output: 2 } });
 *   ...
 *   await fake.close();
 *
 * Endpoints (POST): /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions,
 * /v1/moderations, /v1/images/generations and /edits, /v1/audio/transcriptions, /translations and
 * /speech, /v1/files (and GET /v1/files/{id}/content), /v1/batches (and GET retrieve and list,
 * POST cancel) (OpenAI; multipart uploads are parsed, see the section on the other operations),
 * /v1/messages, /v1/messages/count_tokens and the Message Batches (create, GET retrieve, list and
 * results, POST cancel, DELETE; see the Anthropic section) (Anthropic), also under the Azure OpenAI, Bedrock and Vertex AI URL shapes
 * (./platform-routes.ts), and the Gemini API and Vertex AI model methods
 * (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
 * `:batchEmbedContents`; Vertex `/v1beta1/[projects/{p}/locations/{l}/]publishers/google/models/{model}:`
 * the same and `:predict`), in the shapes of the recordings that googleapis/js-genai publishes under
 * test/system/recordings (Apache-2.0): see the Gemini section below; Mistral under `/mistral`
 * (`/mistral/v1/chat/completions`, `/mistral/v1/embeddings`, see the Mistral section). Anything else gets a 404 in the provider's error shape (Anthropic's
 * when the request carries an `anthropic-version` or `x-api-key` header, OpenAI's otherwise).
 *
 * Scenarios: `enqueue()` queues scenarios; each request to one of the endpoints above takes the
 * next one (FIFO); an empty queue means the defaults. Requests to unknown paths are recorded but
 * take no scenario.
 *
 * RETRIES: error answers with a retryable status (408, 409, 429, >= 500) carry `retry-after: 0` and
 * `retry-after-ms: 1`, so an SDK that retries does so at once, and each retry takes the next
 * scenario from the queue. Tests of error scenarios should build their clients with
 * `maxRetries: 0`, or they will see the retry's (default, successful) answer instead of the error.
 *
 * USAGE: `usage.input` is the TOTAL number of input tokens, cached ones included (the OpenAI and
 * OpenTelemetry GenAI meaning). OpenAI reports it as is (`prompt_tokens` / `input_tokens`, with
 * `cached_tokens = cacheRead` and `cache_write_tokens = cacheCreation` as subsets). Anthropic's
 * `input_tokens` EXCLUDES cache reads and writes, as the real API does, so the fake sends
 * `input_tokens = input - cacheRead - cacheCreation` and the two cache counts separately
 * (see `anthropicWireUsage`). `usage.output` includes `usage.reasoning` (OpenAI's
 * `reasoning_tokens`; Anthropic's `output_tokens_details.thinking_tokens`, sent only when the
 * request enabled thinking).
 *
 * TEXT: `text` defaults to DEFAULT_TEXT, except when `toolCalls` are given without `text`: then
 * the model says nothing (chat `content: null`, no Responses message item, no Anthropic text
 * block). `expectedText()` applies that rule.
 *
 * LIMITS: when the request's output-token limit (`max_completion_tokens` / `max_tokens` /
 * `max_output_tokens`) is <= the reported output tokens and no tool is called, the answer is
 * truncated the provider's way: chat finish_reason 'length', Anthropic stop_reason 'max_tokens',
 * Responses status 'incomplete' (stream: `response.incomplete`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { bedrockChunk, platformRoute } from './platform-routes';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface Scenario {
  /** Non-2xx: answer with the provider's error body shape and this status. */
  status?: number;
  /** Message inside the error body (default 'fake provider error'). */
  errorMessage?: string;
  /** OpenAI error.type / Anthropic error.type (defaults depend on the status). */
  errorType?: string;
  /** OpenAI error.code of an HTTP error or a chat stream's error event (defaults depend on the status; null in streams). */
  errorCode?: string | null;
  /**
   * The error message (of a non-2xx answer or of a stream's error frame) quotes the request, as
   * some providers and gateways do: `full` quotes the system prompt, the last input message's text
   * whole and JSON-escaped, and the request URL with its query string; `prefix` quotes the first
   * ECHO_PREFIX_CHARS characters of that text only, cut mid-word. Overrides `errorMessage`.
   */
  echoRequest?: 'full' | 'prefix';
  /** Assistant output text (default DEFAULT_TEXT; '' when toolCalls are given without text). */
  text?: string;
  /** Number of text deltas in a stream (default 5); the text is split across them. */
  chunks?: number;
  /** Delay between SSE events (default 0). */
  chunkDelayMs?: number;
  /** Delay before sending the response head. */
  headersDelayMs?: number;
  /** Streams: after N text deltas send the provider's in-stream error event and end. */
  failAfterChunks?: number;
  /** Streams: after N text deltas destroy the socket abruptly. */
  dropAfterChunks?: number;
  /** Override the reported usage numbers (defaults: `defaultUsage`). */
  usage?: {
    input?: number;
    output?: number;
    cacheRead?: number;
    cacheCreation?: number;
    reasoning?: number;
  };
  /** Report no usage at all (non-stream: no `usage` field; streams: no usage anywhere). */
  omitUsage?: boolean;
  /** The model asks for these tools (finish/stop reason tool_calls / tool_use). */
  toolCalls?: { name: string; arguments: string; id?: string }[];
  /** Response model (default: see `expectedModel`). */
  model?: string;
  /** Response id (default: generated, chatcmpl- / resp_ / msg_ prefixed). */
  responseId?: string;
  /**
   * `messages.batches.create` (Anthropic) and `batches.create` (OpenAI): the result type of each
   * request, in request order, when its results are read (default `succeeded` for all). A
   * succeeded result is this scenario's message (text, usage, model). OpenAI writes `succeeded`
   * lines to the batch's output file and the others to its error file (`errored`: a 400 response,
   * `expired` and `canceled`: no response, error code `batch_expired` / `batch_cancelled`).
   */
  batchResults?: Array<'succeeded' | 'errored' | 'canceled' | 'expired'>;
  /**
   * Answer with these exact bytes (a response recorded from a real provider) instead of building
   * one; status 200 unless `status` says otherwise.
   */
  replay?: { contentType: string; body: string };
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/chat/completions'. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, undefined when the body was empty or not JSON. */
  body: any;
  rawBody: string;
}

export interface FakeProvider {
  /** http://127.0.0.1:<port> */
  url: string;
  /** `${url}/v1`: pass to new OpenAI({ baseURL, apiKey: 'test' }) */
  openaiBaseURL: string;
  /** `url`: pass to new Anthropic({ baseURL, apiKey: 'test' }) */
  anthropicBaseURL: string;
  /** `url`: pass to new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl } }) (Gemini API and Vertex express mode alike). */
  googleBaseURL: string;
  /** `${url}/mistral`: pass to new Mistral({ apiKey: 'test', serverURL }) */
  mistralBaseURL: string;
  requests: RecordedRequest[];
  /** FIFO; each request to a known endpoint consumes one; empty queue = defaults. Throws on an inconsistent scenario. */
  enqueue(...scenarios: Scenario[]): void;
  /** Clear the queue and the recorded requests. */
  reset(): void;
  /** Close the server and destroy open sockets (streams in flight are cut). */
  close(): Promise<void>;
}

export interface UsageNumbers {
  /** Total input tokens, cached ones included. */
  input: number;
  /** Output tokens, reasoning included. */
  output: number;
  cacheRead: number;
  cacheCreation: number;
  reasoning: number;
}

export interface ResolvedUsage extends UsageNumbers {
  /** input + output */
  total: number;
}

export type Endpoint = 'chat' | 'responses' | 'embeddings' | 'messages' | 'gemini' | 'mistral' | 'completions';

// ---------------------------------------------------------------------------------------------
// Defaults and helpers tests use to compute expectations
// ---------------------------------------------------------------------------------------------

export const DEFAULT_TEXT = 'Hello from the fake provider.';
export const DEFAULT_CHUNKS = 5;
export const DEFAULT_ERROR_MESSAGE = 'fake provider error';
/** How much of the prompt an `echoRequest: 'prefix'` error quotes. */
export const ECHO_PREFIX_CHARS = 17;
/** Text of the Anthropic `thinking` block sent when the request enables thinking. */
export const THINKING_TEXT = 'The user greeted me; a short friendly answer fits.';
/** Number of thinking_delta events in an Anthropic stream with thinking enabled. */
export const THINKING_CHUNKS = 2;

/** Usage reported when a scenario overrides nothing. All distinct and non-zero. */
export const defaultUsage: Readonly<UsageNumbers> = Object.freeze({
  input: 42,
  output: 17,
  cacheRead: 8,
  cacheCreation: 4,
  reasoning: 3,
});

/** The assistant text the scenario produces ('' when only tool calls are produced). */
export function expectedText(scenario: Scenario = {}): string {
  if (scenario.text !== undefined) return scenario.text;
  return scenario.toolCalls && scenario.toolCalls.length > 0 ? '' : DEFAULT_TEXT;
}

/** Splits `text` into at most `parts` non-empty pieces of near-equal length (by code point). */
export function splitText(text: string, parts: number): string[] {
  const chars = Array.from(text);
  if (chars.length === 0) return [];
  const n = Math.max(1, Math.min(Math.floor(parts), chars.length));
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = Math.round(((i + 1) * chars.length) / n);
    out.push(chars.slice(start, end).join(''));
    start = end;
  }
  return out;
}

/** The text deltas a stream for this scenario carries, in order. */
export function expectedChunks(scenario: Scenario = {}): string[] {
  return splitText(expectedText(scenario), scenario.chunks ?? DEFAULT_CHUNKS);
}

/** The usage numbers the scenario reports (validated). */
export function expectedUsage(scenario: Scenario = {}): ResolvedUsage {
  const u = scenario.usage ?? {};
  const usage: UsageNumbers = {
    input: u.input ?? defaultUsage.input,
    output: u.output ?? defaultUsage.output,
    cacheRead: u.cacheRead ?? defaultUsage.cacheRead,
    cacheCreation: u.cacheCreation ?? defaultUsage.cacheCreation,
    reasoning: u.reasoning ?? defaultUsage.reasoning,
  };
  for (const [key, value] of Object.entries(usage)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`fake provider: usage.${key} must be a non-negative integer, got ${String(value)}`);
    }
  }
  if (usage.cacheRead + usage.cacheCreation > usage.input) {
    throw new Error(
      `fake provider: usage.input (${usage.input}) is the TOTAL input and must be >= cacheRead (${usage.cacheRead}) + cacheCreation (${usage.cacheCreation}); set the cache counts too`,
    );
  }
  if (usage.reasoning > usage.output) {
    throw new Error(
      `fake provider: usage.output (${usage.output}) includes reasoning and must be >= reasoning (${usage.reasoning}); set reasoning too`,
    );
  }
  return { ...usage, total: usage.input + usage.output };
}

/** The numbers the Anthropic API puts on the wire for this scenario (input excludes the cache). */
export function anthropicWireUsage(scenario: Scenario = {}): {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
} {
  const u = expectedUsage(scenario);
  return {
    input_tokens: u.input - u.cacheRead - u.cacheCreation,
    output_tokens: u.output,
    cache_read_input_tokens: u.cacheRead,
    cache_creation_input_tokens: u.cacheCreation,
  };
}

const OPENAI_SNAPSHOT_DATES: Record<string, string> = {
  'gpt-4o-mini': '2024-07-18',
  'gpt-4o': '2024-08-06',
  'gpt-4.1': '2025-04-14',
  'gpt-4.1-mini': '2025-04-14',
  'gpt-4.1-nano': '2025-04-14',
  'gpt-4-turbo': '2024-04-09',
  'gpt-5': '2025-08-07',
  'gpt-5-mini': '2025-08-07',
  'gpt-5-nano': '2025-08-07',
  o1: '2024-12-17',
  'o3-mini': '2025-01-31',
  o3: '2025-04-16',
  'o4-mini': '2025-04-16',
};
const DEFAULT_SNAPSHOT_DATE = '2024-07-18';

/**
 * The model name the fake reports. OpenAI chat/responses: the request model with a dated snapshot
 * suffix ('gpt-4o-mini' -> 'gpt-4o-mini-2024-07-18'; a model already ending in a date is echoed);
 * embeddings and Anthropic: the request model as is. `scenario.model` overrides all of that.
 */
export function expectedModel(endpoint: Endpoint, requestModel: string, scenario: Scenario = {}): string {
  if (scenario.model !== undefined) return scenario.model;
  if (endpoint === 'embeddings' || endpoint === 'messages' || endpoint === 'gemini' || endpoint === 'mistral' || endpoint === 'completions') return requestModel;
  if (/-\d{4}-\d{2}-\d{2}$/.test(requestModel) || /-\d{4}$/.test(requestModel)) return requestModel;
  if (requestModel === 'gpt-3.5-turbo') return 'gpt-3.5-turbo-0125';
  return `${requestModel}-${OPENAI_SNAPSHOT_DATES[requestModel] ?? DEFAULT_SNAPSHOT_DATE}`;
}

/** Default embedding width for a model when the request sets no `dimensions`. */
export function embeddingDimensions(model: string): number {
  return model.includes('3-large') ? 3072 : 1536;
}

/**
 * The deterministic, unit-length embedding the fake returns for one input (a string or a token
 * array). Every value is exactly representable as float32, so the base64 and float encodings
 * decode to the same numbers.
 */
export function fakeEmbedding(input: string | number[], dimensions: number): number[] {
  const key = typeof input === 'string' ? input : input.join(',');
  let seed = 2166136261;
  for (let i = 0; i < key.length; i++) {
    seed ^= key.charCodeAt(i);
    seed = Math.imul(seed, 16777619) >>> 0;
  }
  const raw: number[] = [];
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const v = Math.sin(seed / 997 + i * 0.7071) + Math.cos((seed % 1009) * 0.013 + i * 0.37) * 0.5;
    raw.push(v);
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return raw.map((v) => Math.fround(v * scale));
}

/** Base64 of the little-endian float32 bytes of `values`, as OpenAI's `encoding_format: 'base64'`. */
export function float32Base64(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Scenario validation
// ---------------------------------------------------------------------------------------------

function checkCount(name: string, value: number | undefined, min: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`fake provider: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

function validateScenario(s: Scenario): void {
  if (s.status !== undefined && (!Number.isInteger(s.status) || s.status < 200 || s.status > 599)) {
    throw new Error(`fake provider: status must be an HTTP status between 200 and 599, got ${String(s.status)}`);
  }
  checkCount('chunks', s.chunks, 1);
  checkCount('chunkDelayMs', s.chunkDelayMs, 0);
  checkCount('headersDelayMs', s.headersDelayMs, 0);
  checkCount('failAfterChunks', s.failAfterChunks, 0);
  checkCount('dropAfterChunks', s.dropAfterChunks, 0);
  if (s.failAfterChunks !== undefined && s.dropAfterChunks !== undefined) {
    throw new Error('fake provider: set at most one of failAfterChunks and dropAfterChunks');
  }
  for (const call of s.toolCalls ?? []) {
    if (!call || typeof call.name !== 'string' || call.name === '' || typeof call.arguments !== 'string') {
      throw new Error('fake provider: each toolCalls entry needs a non-empty name and an arguments string');
    }
  }
  expectedUsage(s);
}

// ---------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[bytes[i]! % 62];
  return out;
}

function hex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------------
// Request plumbing
// ---------------------------------------------------------------------------------------------

type Provider = 'openai' | 'anthropic' | 'google' | 'mistral';
type Json = Record<string, unknown>;

interface Ctx {
  res: ServerResponse;
  signal: AbortSignal;
  provider: Provider;
  requestId: string;
  scenario: Scenario;
  body: any;
  /** The request target as received, query string included. */
  url: string;
  /** Stream framing other than SSE (Bedrock's AWS event stream, see platform-routes.ts). */
  framing?: 'aws-eventstream';
}

/** The text of a message or of a Responses input: a string, or the text parts of a content array. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part?.text === 'string' ? part.text : '')).join(' ');
}

/** The error message of an `echoRequest` scenario (see Scenario.echoRequest). */
function echoMessage(ctx: Ctx): string {
  const body = ctx.body ?? {};
  const messages: any[] = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : Array.isArray(body.contents) ? body.contents : [];
  const last = messages.length > 0 ? messages[messages.length - 1] : undefined;
  const text = typeof body.input === 'string' ? body.input : textOf(last?.content ?? last?.parts);
  if (ctx.scenario.echoRequest === 'prefix') return `Invalid 'messages': the content starting "${text.slice(0, ECHO_PREFIX_CHARS)}" could not be processed.`;
  const systemMessage = messages.find((m) => m?.role === 'system' || m?.role === 'developer');
  const system =
    textOf(body.system) || (typeof body.instructions === 'string' ? body.instructions : '') || textOf(systemMessage?.content) || textOf(body.systemInstruction?.parts);
  return (
    `Could not process the request to ${ctx.url}: system prompt "${system}" with message "${text}". ` +
    `Request body excerpt: ${JSON.stringify(last ?? null)}`
  );
}

/** Thrown inside a handler to answer with a provider error (used for 400s on bad requests). */
class ProviderError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorType?: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

function baseHeaders(ctx: Ctx): Record<string, string> {
  if (ctx.provider === 'google') {
    // As in the js-genai recordings: Google's front end names no request id.
    return { server: 'scaffolding on HTTPServer2', vary: 'Origin, X-Origin, Referer', 'x-content-type-options': 'nosniff', 'x-xss-protection': '0' };
  }
  if (ctx.provider === 'mistral') return { 'x-kong-request-id': ctx.requestId, 'mistral-correlation-id': ctx.requestId };
  if (ctx.provider === 'anthropic') {
    return { 'request-id': ctx.requestId, 'anthropic-organization-id': '00000000-0000-4000-8000-000000000000' };
  }
  return {
    'x-request-id': ctx.requestId,
    'openai-version': '2020-10-01',
    'openai-organization': 'user-fakeprovider',
    'openai-processing-ms': '7',
  };
}

function sendJson(ctx: Ctx, status: number, payload: unknown, extra: Record<string, string> = {}): void {
  if (ctx.res.destroyed || ctx.res.headersSent) return;
  const text = JSON.stringify(payload);
  ctx.res.writeHead(status, {
    ...baseHeaders(ctx),
    ...extra,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  ctx.res.end(text);
}

const OPENAI_ERROR_DEFAULTS: Record<number, { type: string; code: string | null }> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  409: { type: 'invalid_request_error', code: null },
  422: { type: 'invalid_request_error', code: null },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
};

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

function openaiErrorObject(status: number, message: string, type?: string, param: string | null = null, code?: string | null): Json {
  const d = OPENAI_ERROR_DEFAULTS[status] ?? (status >= 500 ? { type: 'server_error', code: null } : { type: 'invalid_request_error', code: null });
  return { message, type: type ?? d.type, param, code: code === undefined ? d.code : code };
}

function anthropicErrorType(status: number, type?: string): string {
  return type ?? ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** google.rpc.Code names, as the Gemini API puts them in `error.status`. */
const GOOGLE_ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function isRetryable(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

function sendError(ctx: Ctx, status: number, message: string, type?: string, param: string | null = null, code?: string | null): void {
  const extra: Record<string, string> = isRetryable(status) ? { 'retry-after': '0', 'retry-after-ms': '1' } : {};
  if (ctx.provider === 'mistral') {
    sendJson(ctx, status, { object: 'error', message, type: type ?? (status >= 500 ? 'internal_error' : 'invalid_request_error'), param, code: code ?? null }, extra);
  } else if (ctx.provider === 'google') {
    sendJson(ctx, status, { error: { code: status, message, status: type ?? GOOGLE_ERROR_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT') } }, extra);
  } else if (ctx.provider === 'anthropic') {
    sendJson(ctx, status, { type: 'error', error: { type: anthropicErrorType(status, type), message }, request_id: ctx.requestId }, extra);
  } else {
    sendJson(ctx, status, { error: openaiErrorObject(status, message, type, param, code) }, extra);
  }
}

// ---------------------------------------------------------------------------------------------
// SSE streaming
// ---------------------------------------------------------------------------------------------

/** One unit of a stream plan. */
type Frame =
  | { kind: 'event'; event?: string; data: unknown; textDelta?: boolean; crlf?: boolean }
  | { kind: 'raw'; text: string }
  /** A point where failAfterChunks / dropAfterChunks may fire (after the text deltas sent so far). */
  | { kind: 'checkpoint' };

interface StreamPlan {
  frames: Frame[];
  /** The provider's in-stream error frame. */
  failure: () => Frame;
}

function encodeFrame(frame: Frame): string {
  if (frame.kind === 'raw') return frame.text;
  if (frame.kind === 'checkpoint') return '';
  const data = typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data);
  // The Gemini API ends its events with CRLF CRLF.
  if (frame.crlf) return `data: ${data}\r\n\r\n`;
  return `${frame.event !== undefined ? `event: ${frame.event}\n` : ''}data: ${data}\n\n`;
}

async function runStream(ctx: Ctx, plan: StreamPlan): Promise<void> {
  const { res, signal, scenario } = ctx;
  const eventStream = ctx.framing === 'aws-eventstream';
  res.writeHead(scenario.status ?? 200, {
    ...baseHeaders(ctx),
    'content-type': eventStream ? 'application/vnd.amazon.eventstream' : 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  let lastWrite: Promise<void> = Promise.resolve();
  const writeBytes = (bytes: string | Uint8Array): void => {
    lastWrite = new Promise((resolve) => res.write(bytes, () => resolve()));
  };
  const write = (text: string): void => {
    if (res.destroyed || text === '') return;
    writeBytes(text);
  };
  // Bedrock: each event's JSON in an event-stream message; SSE-only frames ([DONE]) have no equivalent.
  const writeFrame = (frame: Frame): void => {
    if (!eventStream) write(encodeFrame(frame));
    else if (frame.kind === 'event' && !res.destroyed) writeBytes(bedrockChunk(typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data)));
  };
  const delay = scenario.chunkDelayMs ?? 0;
  let sent = 0;
  let deltas = 0;
  for (const frame of plan.frames) {
    if (signal.aborted || res.destroyed) return;
    if (frame.kind === 'checkpoint') {
      if (scenario.dropAfterChunks !== undefined && deltas >= scenario.dropAfterChunks) {
        await lastWrite;
        res.socket?.destroy();
        res.destroy();
        return;
      }
      if (scenario.failAfterChunks !== undefined && deltas >= scenario.failAfterChunks) {
        if (sent > 0) await sleep(delay, signal);
        if (signal.aborted || res.destroyed) return;
        writeFrame(plan.failure());
        res.end();
        return;
      }
      continue;
    }
    if (sent > 0) await sleep(delay, signal);
    if (signal.aborted || res.destroyed) return;
    writeFrame(frame);
    sent++;
    if (frame.kind === 'event' && frame.textDelta) deltas++;
  }
  if (!res.destroyed) res.end();
}

// ---------------------------------------------------------------------------------------------
// Shared response facts
// ---------------------------------------------------------------------------------------------

interface ToolCall {
  name: string;
  arguments: string;
  id: string;
}

interface Facts {
  text: string;
  textChunks: string[];
  usage: ResolvedUsage;
  model: string;
  toolCalls: ToolCall[];
  truncated: boolean;
}

function requireModel(body: any): string {
  if (!body || typeof body.model !== 'string' || body.model === '') {
    throw new ProviderError(400, 'you must provide a model parameter', undefined, 'model');
  }
  return body.model;
}

function facts(ctx: Ctx, endpoint: Endpoint, limit: unknown, toolId: () => string): Facts {
  const { scenario } = ctx;
  const usage = expectedUsage(scenario);
  const toolCalls = (scenario.toolCalls ?? []).map((c) => ({ name: c.name, arguments: c.arguments, id: c.id ?? toolId() }));
  const truncated = toolCalls.length === 0 && typeof limit === 'number' && limit <= usage.output;
  return {
    text: expectedText(scenario),
    textChunks: expectedChunks(scenario),
    usage,
    model: expectedModel(endpoint, requireModel(ctx.body), scenario),
    toolCalls,
    truncated,
  };
}

/** The real API adds random padding to streamed deltas unless stream_options.include_obfuscation is false. */
function obfuscation(body: any): Json {
  if (body?.stream_options?.include_obfuscation === false) return {};
  return { obfuscation: base62(4 + (randomBytes(1)[0]! % 12)) };
}

// ---------------------------------------------------------------------------------------------
// OpenAI: /v1/chat/completions
// ---------------------------------------------------------------------------------------------

function chatUsage(u: ResolvedUsage): Json {
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.total,
    prompt_tokens_details: { cached_tokens: u.cacheRead, audio_tokens: 0, cache_write_tokens: u.cacheCreation },
    completion_tokens_details: {
      reasoning_tokens: u.reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function handleChat(ctx: Ctx): Promise<void> | void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.messages)) {
    throw new ProviderError(400, "Missing required parameter: 'messages'.", undefined, 'messages', 'missing_required_parameter');
  }
  const f = facts(ctx, 'chat', body.max_completion_tokens ?? body.max_tokens, () => `call_${base62(24)}`);
  const n = Number.isInteger(body.n) && body.n > 0 ? (body.n as number) : 1;
  const finishReason = f.toolCalls.length > 0 ? 'tool_calls' : f.truncated ? 'length' : 'stop';
  const head = {
    id: scenario.responseId ?? `chatcmpl-${base62(29)}`,
    object: body.stream ? 'chat.completion.chunk' : 'chat.completion',
    created: nowSeconds(),
    model: f.model,
    service_tier: body.service_tier && body.service_tier !== 'auto' ? body.service_tier : 'default',
    system_fingerprint: `fp_${hex(10)}`,
  };
  const hasText = f.text !== '';

  if (!body.stream) {
    const choices = Array.from({ length: n }, (_, index) => ({
      index,
      message: {
        role: 'assistant',
        content: hasText ? f.text : null,
        refusal: null,
        annotations: [],
        ...(f.toolCalls.length > 0
          ? { tool_calls: f.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) }
          : {}),
      },
      logprobs: null,
      finish_reason: finishReason,
    }));
    sendJson(ctx, scenario.status ?? 200, { ...head, choices, ...(scenario.omitUsage ? {} : { usage: chatUsage(f.usage) }) });
    return;
  }

  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (choices: unknown[], extra: Json = {}): Json => ({
    ...head,
    choices,
    ...(includeUsage ? { usage: null } : {}),
    ...extra,
    ...obfuscation(body),
  });
  const choice = (index: number, delta: Json, finish: string | null = null): Json => ({ index, delta, logprobs: null, finish_reason: finish });
  const toolStart = (k: number, c: ToolCall): Json => ({ index: k, id: c.id, type: 'function', function: { name: c.name, arguments: '' } });
  const argPieces = f.toolCalls.map((c) => splitText(c.arguments, Math.max(2, scenario.chunks ?? DEFAULT_CHUNKS)));

  const frames: Frame[] = [];
  const ev = (data: Json, textDelta = false): void => {
    frames.push({ kind: 'event', data, textDelta });
  };
  for (let i = 0; i < n; i++) {
    const first: Json = { role: 'assistant', content: hasText ? '' : null, refusal: null };
    if (!hasText && f.toolCalls.length > 0) first.tool_calls = [toolStart(0, f.toolCalls[0]!)];
    ev(chunk([choice(i, first)]));
  }
  frames.push({ kind: 'checkpoint' });
  for (const piece of f.textChunks) {
    for (let i = 0; i < n; i++) ev(chunk([choice(i, { content: piece })]), i === 0);
    frames.push({ kind: 'checkpoint' });
  }
  for (let i = 0; i < n; i++) {
    f.toolCalls.forEach((c, k) => {
      if (hasText || k > 0) ev(chunk([choice(i, { tool_calls: [toolStart(k, c)] })]));
      for (const piece of argPieces[k]!) ev(chunk([choice(i, { tool_calls: [{ index: k, function: { arguments: piece } }] })]));
    });
  }
  for (let i = 0; i < n; i++) ev(chunk([choice(i, {}, finishReason)]));
  if (includeUsage && !scenario.omitUsage) ev(chunk([], { usage: chatUsage(f.usage) }));
  frames.push({ kind: 'raw', text: 'data: [DONE]\n\n' });

  return runStream(ctx, {
    frames,
    failure: () => ({
      kind: 'event',
      data: { error: openaiErrorObject(500, scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, scenario.errorType ?? 'server_error', null, scenario.errorCode ?? null) },
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// OpenAI: /v1/responses
// ---------------------------------------------------------------------------------------------

function responsesUsage(u: ResolvedUsage): Json {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cacheRead, cache_write_tokens: u.cacheCreation },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning },
    total_tokens: u.total,
  };
}

function echoResponseTools(tools: unknown): unknown[] {
  if (!Array.isArray(tools)) return [];
  return tools.map((t: any) =>
    t && t.type === 'function' ? { description: null, strict: true, ...t } : t,
  );
}

function handleResponses(ctx: Ctx): Promise<void> | void {
  const { body, scenario } = ctx;
  if (body.input === undefined && body.previous_response_id === undefined && body.prompt === undefined) {
    throw new ProviderError(400, "Missing required parameter: 'input'.", undefined, 'input', 'missing_required_parameter');
  }
  const f = facts(ctx, 'responses', body.max_output_tokens, () => `call_${base62(24)}`);
  const id = scenario.responseId ?? `resp_${hex(48)}`;
  const createdAt = nowSeconds();
  const hasText = f.text !== '';
  const finalStatus = f.truncated ? 'incomplete' : 'completed';
  const messageId = `msg_${hex(48)}`;
  const items = f.toolCalls.map((c) => ({ ...c, itemId: `fc_${hex(48)}` }));

  const responseObject = (status: string, output: unknown[], final: boolean): Json => ({
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: body.background ?? false,
    completed_at: final && status === 'completed' ? nowSeconds() : null,
    error: null,
    incomplete_details: final && f.truncated ? { reason: 'max_output_tokens' } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: f.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    prompt_cache_retention: body.prompt_cache_retention ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: body.service_tier && body.service_tier !== 'auto' ? body.service_tier : 'default',
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' }, verbosity: body.text?.verbosity ?? 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: echoResponseTools(body.tools),
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    ...(final ? (scenario.omitUsage ? {} : { usage: responsesUsage(f.usage) }) : { usage: null }),
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  });
  const textPart = (text: string): Json => ({ type: 'output_text', annotations: [], logprobs: [], text });
  const messageItem = (status: string, content: unknown[]): Json => ({ id: messageId, type: 'message', status, content, role: 'assistant' });
  const callItem = (c: (typeof items)[number], status: string, args: string): Json => ({
    id: c.itemId,
    type: 'function_call',
    status,
    arguments: args,
    call_id: c.id,
    name: c.name,
  });
  const itemStatus = f.truncated ? 'incomplete' : 'completed';
  const finalOutput: unknown[] = [
    ...(hasText ? [messageItem(itemStatus, [textPart(f.text)])] : []),
    ...items.map((c) => callItem(c, 'completed', c.arguments)),
  ];

  if (!body.stream) {
    sendJson(ctx, scenario.status ?? 200, responseObject(finalStatus, finalOutput, true));
    return;
  }

  let seq = 0;
  const frames: Frame[] = [];
  const ev = (type: string, data: Json, textDelta = false): void => {
    frames.push({ kind: 'event', event: type, data: { type, sequence_number: seq++, ...data }, textDelta });
  };
  ev('response.created', { response: responseObject('in_progress', [], false) });
  ev('response.in_progress', { response: responseObject('in_progress', [], false) });
  let outputIndex = 0;
  if (hasText) {
    const at = { item_id: messageId, output_index: outputIndex, content_index: 0 };
    ev('response.output_item.added', { output_index: outputIndex, item: messageItem('in_progress', []) });
    ev('response.content_part.added', { ...at, part: textPart('') });
    frames.push({ kind: 'checkpoint' });
    for (const piece of f.textChunks) {
      ev('response.output_text.delta', { ...at, delta: piece, logprobs: [], ...obfuscation(body) }, true);
      frames.push({ kind: 'checkpoint' });
    }
    ev('response.output_text.done', { ...at, text: f.text, logprobs: [] });
    ev('response.content_part.done', { ...at, part: textPart(f.text) });
    ev('response.output_item.done', { output_index: outputIndex, item: messageItem(itemStatus, [textPart(f.text)]) });
    outputIndex++;
  } else {
    frames.push({ kind: 'checkpoint' });
  }
  for (const c of items) {
    ev('response.output_item.added', { output_index: outputIndex, item: callItem(c, 'in_progress', '') });
    for (const piece of splitText(c.arguments, Math.max(2, scenario.chunks ?? DEFAULT_CHUNKS))) {
      ev('response.function_call_arguments.delta', { item_id: c.itemId, output_index: outputIndex, delta: piece, ...obfuscation(body) });
    }
    ev('response.function_call_arguments.done', { item_id: c.itemId, output_index: outputIndex, name: c.name, arguments: c.arguments });
    ev('response.output_item.done', { output_index: outputIndex, item: callItem(c, 'completed', c.arguments) });
    outputIndex++;
  }
  ev(f.truncated ? 'response.incomplete' : 'response.completed', { response: responseObject(finalStatus, finalOutput, true) });

  return runStream(ctx, {
    frames,
    // What the real API sends mid-stream: `event: error` with the error envelope nested under
    // `error` (not the flat shape the OpenAPI spec documents). The SDK's Stream throws an APIError
    // for any SSE data with a truthy `error` field.
    failure: () => {
      const type = scenario.errorType ?? 'server_error';
      return {
        kind: 'event',
        event: 'error',
        data: {
          type: 'error',
          sequence_number: seq++,
          error: { type, code: type, message: scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, param: null },
        },
      };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// OpenAI: /v1/embeddings
// ---------------------------------------------------------------------------------------------

function handleEmbeddings(ctx: Ctx): void {
  const { body, scenario } = ctx;
  const model = expectedModel('embeddings', requireModel(body), scenario);
  const input: unknown = body.input;
  let inputs: (string | number[])[];
  if (typeof input === 'string') inputs = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'number')) inputs = [input as number[]];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string' || Array.isArray(x))) inputs = input as (string | number[])[];
  else throw new ProviderError(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", undefined, 'input');
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    throw new ProviderError(400, `Invalid value for 'encoding_format': '${String(format)}'.`, undefined, 'encoding_format');
  }
  const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? (body.dimensions as number) : embeddingDimensions(body.model);
  const usage = expectedUsage(scenario);
  const data = inputs.map((one, index) => {
    const vector = fakeEmbedding(one, dims);
    return { object: 'embedding', index, embedding: format === 'base64' ? float32Base64(vector) : vector };
  });
  sendJson(ctx, scenario.status ?? 200, {
    object: 'list',
    data,
    model,
    ...(scenario.omitUsage ? {} : { usage: { prompt_tokens: usage.input, total_tokens: usage.input } }),
  });
}

// ---------------------------------------------------------------------------------------------
// OpenAI: /v1/moderations (takes no scenario: guardrail examples call it before the audited call)
// ---------------------------------------------------------------------------------------------

/** Inputs containing this word are flagged (category `violence`) by the fake moderation endpoint. */
export const MODERATION_TRIGGER = 'violence';
const MODERATION_CATEGORIES = ['harassment', 'hate', 'illicit', 'self-harm', 'sexual', 'violence'];

function handleModerations(ctx: Ctx): void {
  const { body } = ctx;
  if (body.input === undefined) throw new ProviderError(400, "Missing required parameter: 'input'.", undefined, 'input', 'missing_required_parameter');
  const inputs: unknown[] = Array.isArray(body.input) ? body.input : [body.input];
  const results = inputs.map((input) => {
    const flagged = typeof input === 'string' && input.toLowerCase().includes(MODERATION_TRIGGER);
    const categories = Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, flagged && c === 'violence']));
    const scores = Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, flagged && c === 'violence' ? 0.97 : 0.0004]));
    const applied = Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, ['text']]));
    return { flagged, categories, category_scores: scores, category_applied_input_types: applied };
  });
  sendJson(ctx, 200, { id: `modr-${base62(20)}`, model: body.model ?? 'omni-moderation-latest', results });
}

// ---------------------------------------------------------------------------------------------
// OpenAI: the other operations that send data (legacy completions, images, audio, files, batches)
//
// Shapes from the OpenAI API reference as typed by openai-node 6 (Apache-2.0; src/resources/
// completions.ts, images.ts, audio/*.ts, files.ts, batches.ts) and, where a recording exists, from
// traceloop/openllmetry's cassettes (Apache-2.0): tests/traces/cassettes/test_completions/
// test_async_completion.yaml (a `text_completion`: id `cmpl-`, `choices[].text/index/logprobs/
// finish_reason`, usage) and test_audio_transcription/test_audio_transcription.yaml
// (`{"text": ...}` for a multipart request).
// ---------------------------------------------------------------------------------------------

/** The bytes of the fake's speech audio (any content: the SDK hands the body to the app as it is). */
export const SPEECH_AUDIO = Buffer.from('ID3\u0004fake mp3 frames of the spoken text');

/** What the fake transcribes any audio to. */
export const TRANSCRIPT_TEXT = 'The caller asked for the balance of the account.';

function handleCompletions(ctx: Ctx): Promise<void> | void {
  const { body, scenario } = ctx;
  if (body.prompt === undefined) throw new ProviderError(400, "Missing required parameter: 'prompt'.", undefined, 'prompt', 'missing_required_parameter');
  const f = facts(ctx, 'completions', body.max_tokens, () => '');
  const finishReason = f.truncated ? 'length' : 'stop';
  const head = { id: scenario.responseId ?? `cmpl-${base62(29)}`, object: 'text_completion', created: nowSeconds(), model: f.model, system_fingerprint: `fp_${hex(10)}` };
  const usage = (u: ResolvedUsage): Json => ({ prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.total });
  if (!body.stream) {
    sendJson(ctx, scenario.status ?? 200, {
      ...head,
      choices: [{ text: f.text, index: 0, logprobs: null, finish_reason: finishReason }],
      ...(scenario.omitUsage ? {} : { usage: usage(f.usage) }),
    });
    return;
  }
  const includeUsage = body.stream_options?.include_usage === true;
  const frames: Frame[] = [{ kind: 'checkpoint' }];
  const pieces = f.textChunks;
  pieces.forEach((piece, i) => {
    const finish = i === pieces.length - 1 ? finishReason : null;
    frames.push({ kind: 'event', data: { ...head, choices: [{ text: piece, index: 0, logprobs: null, finish_reason: finish }] }, textDelta: true }, { kind: 'checkpoint' });
  });
  if (includeUsage && !scenario.omitUsage) frames.push({ kind: 'event', data: { ...head, choices: [], usage: usage(f.usage) } });
  frames.push({ kind: 'raw', text: 'data: [DONE]\n\n' });
  return runStream(ctx, {
    frames,
    failure: () => ({ kind: 'event', data: { error: openaiErrorObject(500, scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, scenario.errorType ?? 'server_error', null, scenario.errorCode ?? null) } }),
  });
}

/** gpt-image-1 reports token usage; DALL-E does not. */
function imageUsage(ctx: Ctx, model: string): Json {
  if (ctx.scenario.omitUsage || !model.startsWith('gpt-image')) return {};
  const u = expectedUsage(ctx.scenario);
  return { usage: { input_tokens: u.input, output_tokens: u.output, total_tokens: u.total, input_tokens_details: { text_tokens: u.input, image_tokens: 0 } } };
}

/** A tiny PNG per image (its bytes differ per prompt, so their digests do too). */
export function fakeImage(prompt: string, index: number): Buffer {
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from(`fake image ${index} of: ${prompt}`)]);
}

function handleImages(ctx: Ctx): void {
  const { body, scenario } = ctx;
  if (typeof body.prompt !== 'string') throw new ProviderError(400, "Missing required parameter: 'prompt'.", undefined, 'prompt', 'missing_required_parameter');
  const model = typeof body.model === 'string' ? body.model : 'dall-e-2';
  const n = Number(body.n ?? 1) || 1;
  const url = body.response_format === 'url';
  const data = Array.from({ length: n }, (_, i) => {
    const image = fakeImage(body.prompt, i);
    const out: Json = url ? { url: `https://oaidalleapiprodscus.blob.core.windows.net/private/img-${i}.png` } : { b64_json: image.toString('base64') };
    if (model === 'dall-e-3') out.revised_prompt = `A detailed rendering of: ${body.prompt}`;
    return out;
  });
  const gptImage = model.startsWith('gpt-image');
  sendJson(ctx, scenario.status ?? 200, {
    created: nowSeconds(),
    ...(gptImage ? { background: 'opaque', output_format: 'png', quality: 'medium', size: '1024x1024' } : {}),
    data,
    ...imageUsage(ctx, model),
  });
}

function handleTranscription(ctx: Ctx, task: 'transcribe' | 'translate'): Promise<void> | void {
  const { body, scenario } = ctx;
  const file = body.file as UploadedFile | undefined;
  if (file === undefined || typeof file !== 'object') throw new ProviderError(400, "Missing required parameter: 'file'.", undefined, 'file', 'missing_required_parameter');
  const model = String(body.model ?? 'whisper-1');
  const text = scenario.text ?? TRANSCRIPT_TEXT;
  const u = expectedUsage(scenario);
  const usage = scenario.omitUsage
    ? {}
    : model.startsWith('whisper')
      ? { usage: { type: 'duration', seconds: 3 } }
      : { usage: { type: 'tokens', input_tokens: u.input, output_tokens: u.output, total_tokens: u.total, input_token_details: { audio_tokens: u.input, text_tokens: 0 } } };
  if (body.stream === 'true' && task === 'transcribe') {
    const frames: Frame[] = [{ kind: 'checkpoint' }];
    for (const piece of splitText(text, scenario.chunks ?? DEFAULT_CHUNKS)) {
      frames.push({ kind: 'event', data: { type: 'transcript.text.delta', delta: piece }, textDelta: true }, { kind: 'checkpoint' });
    }
    frames.push({ kind: 'event', data: { type: 'transcript.text.done', text, ...usage } });
    return runStream(ctx, { frames, failure: () => ({ kind: 'event', data: { type: 'error', error: openaiErrorObject(500, DEFAULT_ERROR_MESSAGE) } }) });
  }
  const format = body.response_format ?? 'json';
  if (format === 'text' || format === 'srt' || format === 'vtt') {
    const payload = format === 'text' ? `${text}\n` : format === 'srt' ? `1\n00:00:00,000 --> 00:00:03,000\n${text}\n\n` : `WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n${text}\n\n`;
    ctx.res.writeHead(scenario.status ?? 200, { ...baseHeaders(ctx), 'content-type': 'text/plain; charset=utf-8' });
    ctx.res.end(payload);
    return;
  }
  if (format === 'verbose_json') {
    sendJson(ctx, 200, { task, language: task === 'translate' ? 'english' : 'english', duration: 3, text, segments: [], ...usage });
    return;
  }
  sendJson(ctx, 200, { text, ...usage });
}

function handleSpeech(ctx: Ctx): void {
  const { body } = ctx;
  if (typeof body.input !== 'string') throw new ProviderError(400, "Missing required parameter: 'input'.", undefined, 'input', 'missing_required_parameter');
  const format = body.response_format ?? 'mp3';
  const mime = format === 'mp3' ? 'audio/mpeg' : format === 'wav' ? 'audio/wav' : `audio/${format}`;
  ctx.res.writeHead(ctx.scenario.status ?? 200, { ...baseHeaders(ctx), 'content-type': mime, 'transfer-encoding': 'chunked' });
  ctx.res.end(SPEECH_AUDIO);
}

/** OpenAI Skills (`POST /v1/skills`, @ai-sdk/openai 4's `skills().uploadSkill`): the files as `files[]`, a new skill id. */
function handleSkillUpload(ctx: Ctx): void {
  const files = ctx.body.files as UploadedFile[] | undefined;
  if (!Array.isArray(files) || files.length === 0) throw new ProviderError(400, "Missing required parameter: 'files'.", undefined, 'files', 'missing_required_parameter');
  sendJson(ctx, ctx.scenario.status ?? 200, { id: `skill_${base62(22)}`, name: files[0]!.filename, latest_version: '1', created_at: nowSeconds() });
}

/**
 * OpenAI Decisions (`POST /v1/decisions`, what @ai-sdk/openai 4's decision models call): one
 * answer per question, in order: a `predicate` (probability 0.8), a `choice` (the first choice,
 * most likely) or a `score` (0), with the usage the scenario gives.
 */
function handleDecisions(ctx: Ctx): void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.questions) || !Array.isArray(body.input)) throw new ProviderError(400, "Missing required parameter: 'questions'.", undefined, 'questions', 'missing_required_parameter');
  const u = expectedUsage(scenario);
  const answers = body.questions.map((question: Json) => {
    if (question.type === 'predicate') return { type: 'predicate', name: question.name, probability: 0.8 };
    if (question.type === 'choice') {
      const values: string[] = (Array.isArray(question.choices) ? question.choices : []).map((choice: Json) => String(choice.value));
      return { type: 'choice', name: question.name, choice: values[0], probabilities: values.map((value, index) => ({ value, probability: index === 0 ? 0.9 : 0.1 / (values.length - 1) })) };
    }
    return { type: 'score', name: question.name, score: 0, probabilities: [{ value: 0, probability: 1 }] };
  });
  sendJson(ctx, scenario.status ?? 200, { model: expectedModel('responses', requireModel(body), scenario), ...(scenario.omitUsage ? {} : { usage: { input_tokens: u.input, output_tokens: u.output, total_tokens: u.total } }), answers });
}

/** Files kept by the fake (uploads, and batch output files it writes), by id. */
const files = new Map<string, { bytes: Buffer; filename: string; purpose: string }>();

function fileObject(id: string, file: { bytes: Buffer; filename: string; purpose: string }): Json {
  return { object: 'file', id, purpose: file.purpose, filename: file.filename, bytes: file.bytes.length, created_at: nowSeconds(), expires_at: null, status: 'processed', status_details: null };
}

function handleFileUpload(ctx: Ctx): void {
  const { body } = ctx;
  const file = body.file as UploadedFile | undefined;
  if (file === undefined || typeof file !== 'object') throw new ProviderError(400, "Missing required parameter: 'file'.", undefined, 'file', 'missing_required_parameter');
  const id = `file-${base62(22)}`;
  const kept = { bytes: file.bytes, filename: file.filename, purpose: String(body.purpose ?? 'user_data') };
  files.set(id, kept);
  sendJson(ctx, 200, fileObject(id, kept));
}

function handleFileContent(ctx: Ctx, id: string): void {
  const file = files.get(id);
  if (file === undefined) throw new ProviderError(404, `No such File object: ${id}`, 'invalid_request_error', 'id');
  ctx.res.writeHead(200, { ...baseHeaders(ctx), 'content-type': 'application/octet-stream', 'content-length': String(file.bytes.length) });
  ctx.res.end(file.bytes);
}

/**
 * A batch completes at once: its output file holds one result line per request line of the
 * input file that succeeded (a chat completion for chat requests), its error file one per request
 * that did not, as the Batch API writes them. Shapes from the API reference ("The batch object",
 * "The request output object": `{id, custom_id, response: {status_code, request_id, body} | null,
 * error: {code, message} | null}`, the OpenAPI schema BatchRequestOutput) and the openai SDK's
 * Batch and BatchRequestCounts types (openai-node, Apache-2.0).
 */
const OPENAI_BATCHES = new Map<string, Json>();

function handleBatches(ctx: Ctx): void {
  const { body, scenario } = ctx;
  const input = typeof body.input_file_id === 'string' ? files.get(body.input_file_id) : undefined;
  if (input === undefined) throw new ProviderError(400, `Invalid 'input_file_id': '${String(body.input_file_id)}'.`, undefined, 'input_file_id');
  const id = `batch_${hex(32)}`;
  const u = expectedUsage(scenario);
  const lines = input.bytes.toString('utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { custom_id: string; body: { model: string } });
  const results = lines.map((request, i) => {
    const type = scenario.batchResults?.[i] ?? 'succeeded';
    const line = { id: `batch_req_${hex(24)}`, custom_id: request.custom_id };
    if (type === 'expired' || type === 'canceled') {
      const error = type === 'expired' ? { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' } : { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' };
      return { type, line: { ...line, response: null, error } };
    }
    if (type === 'errored') {
      const error = { message: "Invalid value for 'max_tokens': integer below minimum value.", type: 'invalid_request_error', param: 'max_tokens', code: 'integer_below_min_value' };
      return { type, line: { ...line, response: { status_code: 400, request_id: hex(32), body: { error } }, error: null } };
    }
    const completion = {
      id: `chatcmpl-${base62(29)}`,
      object: 'chat.completion',
      created: nowSeconds(),
      model: expectedModel('chat', request.body.model),
      choices: [{ index: 0, message: { role: 'assistant', content: `${scenario.text ?? DEFAULT_TEXT} (${i + 1})`, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
      usage: chatUsage(u),
    };
    return { type, line: { ...line, response: { status_code: 200, request_id: hex(32), body: completion }, error: null } };
  });
  const keep = (kind: string, lines: Json[]): string | null => {
    if (lines.length === 0) return null;
    const fileId = `file-${base62(22)}`;
    files.set(fileId, { bytes: Buffer.from(lines.map((r) => JSON.stringify(r)).join('\n') + '\n'), filename: `${id}_${kind}.jsonl`, purpose: 'batch_output' });
    return fileId;
  };
  const succeeded = results.filter((r) => r.type === 'succeeded').map((r) => r.line);
  const failed = results.filter((r) => r.type !== 'succeeded').map((r) => r.line);
  const batch: Json = {
    id,
    object: 'batch',
    endpoint: body.endpoint,
    errors: null,
    input_file_id: body.input_file_id,
    completion_window: body.completion_window ?? '24h',
    status: 'completed',
    output_file_id: keep('output', succeeded),
    error_file_id: keep('error', failed),
    created_at: nowSeconds(),
    in_progress_at: nowSeconds(),
    expires_at: nowSeconds() + 86_400,
    finalizing_at: nowSeconds(),
    completed_at: nowSeconds(),
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: lines.length, completed: succeeded.length, failed: failed.length },
    metadata: body.metadata ?? null,
  };
  OPENAI_BATCHES.set(id, batch);
  sendJson(ctx, 200, batch);
}

/** GET /v1/batches/{id}, POST /v1/batches/{id}/cancel (the batch, now `cancelling`), GET /v1/batches (`limit`, `after`: a cursor page). */
function handleOpenAIBatchGet(ctx: Ctx, id: string | undefined, cancel: boolean): void {
  if (id === undefined) {
    sendJson(ctx, 200, cursorPage(ctx, [...OPENAI_BATCHES.values()].reverse(), { object: 'list' }));
    return;
  }
  const batch = OPENAI_BATCHES.get(id);
  if (batch === undefined) throw new ProviderError(404, `No batch found with id '${id}'.`, 'invalid_request_error');
  if (cancel) Object.assign(batch, { status: 'cancelling', cancelling_at: nowSeconds() });
  sendJson(ctx, 200, batch);
}

/** A list page as both APIs page them: `limit` items after the `after_id` / `after` cursor, with `first_id`, `last_id`, `has_more`. */
function cursorPage(ctx: Ctx, items: Json[], extra: Json): Json {
  const query = new URL(ctx.url, 'http://127.0.0.1').searchParams;
  const limit = Number(query.get('limit') ?? 20);
  const after = query.get('after') ?? query.get('after_id');
  const start = after === null ? 0 : items.findIndex((b) => b.id === after) + 1;
  const data = items.slice(start, start + limit);
  return { ...extra, data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: start + limit < items.length };
}

/** A part of a multipart/form-data body that is a file. */
export interface UploadedFile {
  filename: string;
  type: string;
  bytes: Buffer;
}

/** Parses a multipart/form-data body (the SDKs' uploads) into its fields; files as UploadedFile. */
async function parseMultipart(raw: Buffer, contentType: string): Promise<Record<string, unknown>> {
  const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType } }).formData();
  const out: Record<string, unknown> = {};
  for (const [name, value] of form.entries()) {
    const parsed = typeof value === 'string' ? value : { filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) };
    // `image[]` and repeated fields (several images to edit) become arrays.
    const key = name.endsWith('[]') ? name.slice(0, -2) : name;
    if (key in out) out[key] = ([] as unknown[]).concat(out[key], parsed);
    else out[key] = name.endsWith('[]') ? [parsed] : parsed;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Anthropic: /v1/messages
// ---------------------------------------------------------------------------------------------

function handleMessages(ctx: Ctx): Promise<void> | void {
  const { body, scenario } = ctx;
  requireModel(body);
  if (!Array.isArray(body.messages)) throw new ProviderError(400, 'messages: Field required');
  if (typeof body.max_tokens !== 'number') throw new ProviderError(400, 'max_tokens: Field required');
  const f = facts(ctx, 'messages', body.max_tokens, () => `toolu_01${base62(22)}`);
  const inputs = f.toolCalls.map((c) => {
    try {
      return JSON.parse(c.arguments === '' ? '{}' : c.arguments) as unknown;
    } catch {
      throw new ProviderError(500, `fake provider: toolCalls arguments for '${c.name}' must be JSON for Anthropic`, 'api_error');
    }
  });
  const thinking = body.thinking?.type === 'enabled';
  const hasText = f.text !== '';
  const stopReason = f.toolCalls.length > 0 ? 'tool_use' : f.truncated ? 'max_tokens' : 'end_turn';
  const wire = anthropicWireUsage(scenario);
  const signature = randomBytes(96).toString('base64');
  const usage = (outputTokens: number): Json => ({
    input_tokens: wire.input_tokens,
    cache_creation_input_tokens: wire.cache_creation_input_tokens,
    cache_read_input_tokens: wire.cache_read_input_tokens,
    cache_creation: { ephemeral_5m_input_tokens: wire.cache_creation_input_tokens, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: thinking ? { thinking_tokens: f.usage.reasoning } : null,
    server_tool_use: null,
    service_tier: 'standard',
    inference_geo: 'global',
    speed: 'standard',
  });
  const messageId = scenario.responseId ?? `msg_01${base62(22)}`;
  const message = (content: unknown[], stop: string | null, usageField: Json | undefined): Json => ({
    id: messageId,
    type: 'message',
    role: 'assistant',
    model: f.model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    ...(usageField ? { usage: usageField } : {}),
  });
  const toolBlock = (c: ToolCall, input: unknown): Json => ({ type: 'tool_use', id: c.id, name: c.name, input, caller: { type: 'direct' } });
  // No `citations` member on a block without citations: the API reference's examples (whole
  // message and stream) have none, and @ai-sdk/anthropic 3 (Apache-2.0), which parses the real
  // API's answers, rejects `citations: null`.
  const textBlock = (text: string): Json => ({ type: 'text', text });

  if (!body.stream) {
    const content: unknown[] = [
      ...(thinking ? [{ type: 'thinking', thinking: THINKING_TEXT, signature }] : []),
      ...(hasText ? [textBlock(f.text)] : []),
      ...f.toolCalls.map((c, k) => toolBlock(c, inputs[k])),
    ];
    sendJson(ctx, scenario.status ?? 200, message(content, stopReason, scenario.omitUsage ? undefined : usage(f.usage.output)));
    return;
  }

  const frames: Frame[] = [];
  const ev = (type: string, data: Json, textDelta = false): void => {
    frames.push({ kind: 'event', event: type, data: { type, ...data }, textDelta });
  };
  let pinged = false;
  const ping = (): void => {
    if (!pinged) frames.push({ kind: 'event', event: 'ping', data: { type: 'ping' } });
    pinged = true;
  };
  ev('message_start', { message: message([], null, scenario.omitUsage ? undefined : usage(1)) });
  let index = 0;
  if (thinking) {
    ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
    ping();
    for (const piece of splitText(THINKING_TEXT, THINKING_CHUNKS)) {
      ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: piece } });
    }
    ev('content_block_delta', { index, delta: { type: 'signature_delta', signature } });
    ev('content_block_stop', { index });
    index++;
  }
  if (hasText) {
    ev('content_block_start', { index, content_block: textBlock('') });
    ping();
    frames.push({ kind: 'checkpoint' });
    for (const piece of f.textChunks) {
      ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }, true);
      frames.push({ kind: 'checkpoint' });
    }
    ev('content_block_stop', { index });
    index++;
  } else {
    frames.push({ kind: 'checkpoint' });
  }
  f.toolCalls.forEach((c) => {
    ev('content_block_start', { index, content_block: toolBlock(c, {}) });
    ping();
    ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of splitText(c.arguments, Math.max(2, scenario.chunks ?? DEFAULT_CHUNKS))) {
      ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } });
    }
    ev('content_block_stop', { index });
    index++;
  });
  ev('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: null, stop_details: null, container: null },
    ...(scenario.omitUsage
      ? {}
      : {
          usage: {
            input_tokens: wire.input_tokens,
            cache_creation_input_tokens: wire.cache_creation_input_tokens,
            cache_read_input_tokens: wire.cache_read_input_tokens,
            output_tokens: f.usage.output,
            output_tokens_details: thinking ? { thinking_tokens: f.usage.reasoning } : null,
            server_tool_use: null,
          },
        }),
  });
  ev('message_stop', {});

  return runStream(ctx, {
    frames,
    failure: () => ({
      kind: 'event',
      event: 'error',
      data: {
        type: 'error',
        error: { type: scenario.errorType ?? 'overloaded_error', message: scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE },
        request_id: ctx.requestId,
      },
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// Anthropic: token counting and Message Batches
//
// Shapes from the Anthropic API reference (docs.claude.com: "Count tokens in a Message", "Create a
// Message Batch", "Retrieve a Message Batch", "Retrieve Message Batch Results" and its JSONL
// example) and the @anthropic-ai/sdk types they are generated with (anthropic-sdk-typescript, MIT:
// MessageTokensCount, MessageBatch, MessageBatchIndividualResponse). A batch is "ended" as soon as
// it is created: retrieving it gives its `results_url`, which the SDK then reads as JSONL.
// ---------------------------------------------------------------------------------------------

function handleCountTokens(ctx: Ctx): void {
  requireModel(ctx.body);
  if (!Array.isArray(ctx.body.messages)) throw new ProviderError(400, 'messages: Field required');
  sendJson(ctx, 200, { input_tokens: expectedUsage(ctx.scenario).input });
}

interface StoredBatch {
  id: string;
  createdAt: string;
  /** Per request: its custom_id, the result type and the message a success answers with. */
  results: Array<{ customId: string; type: string; message: Json }>;
}

const BATCHES = new Map<string, StoredBatch>();

function batchObject(batch: StoredBatch, ended: boolean, origin: string): Json {
  const count = (type: string): number => (ended ? batch.results.filter((r) => r.type === type).length : 0);
  return {
    id: batch.id,
    type: 'message_batch',
    processing_status: ended ? 'ended' : 'in_progress',
    request_counts: { processing: ended ? 0 : batch.results.length, succeeded: count('succeeded'), errored: count('errored'), canceled: count('canceled'), expired: count('expired') },
    ended_at: ended ? batch.createdAt : null,
    created_at: batch.createdAt,
    expires_at: new Date(Date.parse(batch.createdAt) + 86_400_000).toISOString(),
    archived_at: null,
    cancel_initiated_at: null,
    results_url: ended ? `${origin}/v1/messages/batches/${batch.id}/results` : null,
  };
}

function handleBatchCreate(ctx: Ctx): void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.requests) || body.requests.length === 0) throw new ProviderError(400, 'requests: Field required');
  const wire = anthropicWireUsage(scenario);
  const results = body.requests.map((request: any, index: number) => {
    if (typeof request?.custom_id !== 'string') throw new ProviderError(400, `requests.${index}.custom_id: Field required`);
    const params = request.params ?? {};
    if (typeof params.model !== 'string' || typeof params.max_tokens !== 'number' || !Array.isArray(params.messages)) {
      throw new ProviderError(400, `requests.${index}.params: model, max_tokens and messages are required`);
    }
    const message: Json = {
      id: `msg_01${base62(22)}`,
      type: 'message',
      role: 'assistant',
      model: expectedModel('messages', params.model, scenario),
      content: [{ type: 'text', text: expectedText(scenario) }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { ...wire, service_tier: 'batch' },
    };
    return { customId: request.custom_id, type: scenario.batchResults?.[index] ?? 'succeeded', message };
  });
  const batch: StoredBatch = { id: `msgbatch_01${base62(22)}`, createdAt: new Date().toISOString(), results };
  BATCHES.set(batch.id, batch);
  sendJson(ctx, 200, batchObject(batch, false, ''));
}

/**
 * GET /v1/messages/batches/{id} and /v1/messages/batches/{id}/results; GET /v1/messages/batches
 * (a page, `limit` and `after_id`); POST /v1/messages/batches/{id}/cancel (the batch, now
 * `canceling`); DELETE /v1/messages/batches/{id} (`message_batch_deleted`), as in the API
 * reference ("List", "Cancel", "Delete a Message Batch") and the SDK's DeletedMessageBatch type.
 */
function handleBatchGet(ctx: Ctx, id: string | undefined, action: 'get' | 'results' | 'cancel' | 'delete'): void {
  const origin = `http://${ctx.res.req.headers.host ?? '127.0.0.1'}`;
  if (id === undefined) {
    sendJson(ctx, 200, cursorPage(ctx, [...BATCHES.values()].reverse().map((b) => batchObject(b, true, origin)), {}));
    return;
  }
  const batch = BATCHES.get(id);
  if (batch === undefined) throw new ProviderError(404, `Batch ${id} not found`, 'not_found_error');
  if (action === 'delete') {
    BATCHES.delete(id);
    sendJson(ctx, 200, { id, type: 'message_batch_deleted' });
    return;
  }
  if (action !== 'results') {
    const object = batchObject(batch, action === 'get', origin);
    sendJson(ctx, 200, action === 'cancel' ? { ...object, processing_status: 'canceling', cancel_initiated_at: new Date().toISOString() } : object);
    return;
  }
  const lines = batch.results.map((r) => {
    const result =
      r.type === 'succeeded'
        ? { type: 'succeeded', message: r.message }
        : r.type === 'errored'
          ? { type: 'errored', error: { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Input should be greater than or equal to 1' }, request_id: null } }
          : { type: r.type };
    return JSON.stringify({ custom_id: r.customId, result });
  });
  const text = lines.join('\n') + '\n';
  ctx.res.writeHead(200, { ...baseHeaders(ctx), 'content-type': 'application/binary', 'content-length': String(Buffer.byteLength(text)) });
  ctx.res.end(text);
}

const BATCH_PATH = /^\/v1\/messages\/batches(?:\/([A-Za-z0-9_]+)(\/results|\/cancel)?)?$/;
const OPENAI_BATCH_PATH = /^\/v1\/batches(?:\/([A-Za-z0-9_]+)(\/cancel)?)?$/;

/**
 * The routes that take no body: an Anthropic Message Batch, its results, its list, its cancel and
 * delete; an OpenAI batch, its list and its cancel (the create routes are in ROUTES).
 */
function batchRoute(method: string, path: string) {
  const route = (provider: 'anthropic' | 'openai', handle: (ctx: Ctx) => void) => ({ provider, noScenario: true, get: true, handle });
  const anthropic = BATCH_PATH.exec(path);
  if (anthropic !== null) {
    const [, id, tail] = anthropic;
    const action = method === 'DELETE' ? 'delete' : tail === '/cancel' ? 'cancel' : tail === '/results' ? 'results' : 'get';
    const fits = id === undefined ? method === 'GET' : method === 'DELETE' ? tail === undefined : (method === 'POST') === (tail === '/cancel');
    return fits ? route('anthropic', (ctx) => handleBatchGet(ctx, id, action)) : undefined;
  }
  const openai = OPENAI_BATCH_PATH.exec(path);
  if (openai === null) return undefined;
  const [, id, cancel] = openai;
  const fits = id === undefined ? method === 'GET' : (method === 'POST') === (cancel !== undefined);
  return fits ? route('openai', (ctx) => handleOpenAIBatchGet(ctx, id, cancel !== undefined)) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Google: the Gemini API (`/v1beta/models/...`) and Vertex AI (`/v1beta1/...publishers/google/models/...`)
//
// Shapes from the recordings googleapis/js-genai publishes (test/system/recordings/*.json,
// Apache-2.0): a response has `candidates[].content {role:'model', parts}`, `finishReason`,
// `index`, `usageMetadata`, `modelVersion`, `responseId` (Vertex adds `createTime` and
// `usageMetadata.trafficType`); a stream (`?alt=sse`) is a series of such responses, each a
// `data:` event ended by CRLF CRLF, the last with the finish reason and the final counts; errors
// are `{error: {code, message, status}}`, also in a stream.
//
// Usage: `promptTokenCount` is the total input (cached included, `cachedContentTokenCount` being
// part of it); `candidatesTokenCount` EXCLUDES the thinking tokens, reported apart as
// `thoughtsTokenCount`, so the fake sends `output - reasoning` and `reasoning`. Thought text parts
// (`thought: true`) are sent when the request sets `thinkingConfig.includeThoughts`. Gemini API
// embeddings (`batchEmbedContents`) report no usage at all; Vertex `predict` reports a token count
// per instance (`statistics.token_count`).
// ---------------------------------------------------------------------------------------------

const GEMINI_PATH =
  /^\/(?:v1beta|v1|v1alpha|v1beta1)\/(?:projects\/[^/]+\/locations\/[^/]+\/)?(?:publishers\/google\/)?models\/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents|predict)$/;

/** Default width of a Google embedding when the request sets no `outputDimensionality`. */
export function googleEmbeddingDimensions(model: string): number {
  return model.startsWith('gemini-embedding') ? 3072 : 768;
}

function geminiRoute(path: string): { provider: Provider; handle: (ctx: Ctx) => Promise<void> | void } | undefined {
  const match = GEMINI_PATH.exec(path);
  if (match === null) return undefined;
  const model = decodeURIComponent(match[1]!);
  const vertex = path.startsWith('/v1beta1/');
  switch (match[2]) {
    case 'generateContent':
      return { provider: 'google', handle: (ctx) => handleGenerateContent(ctx, model, vertex, false) };
    case 'streamGenerateContent':
      return { provider: 'google', handle: (ctx) => handleGenerateContent(ctx, model, vertex, true) };
    case 'batchEmbedContents':
      return { provider: 'google', handle: (ctx) => handleBatchEmbed(ctx, model) };
    default:
      return { provider: 'google', handle: (ctx) => handlePredict(ctx, model) };
  }
}

function geminiUsage(u: ResolvedUsage, thoughts: boolean, vertex: boolean): Json {
  const candidates = u.output - u.reasoning;
  const usage: Json = { promptTokenCount: u.input, candidatesTokenCount: candidates };
  if (u.cacheRead > 0) usage.cachedContentTokenCount = u.cacheRead;
  usage.totalTokenCount = u.input + u.output;
  usage.promptTokensDetails = [{ modality: 'TEXT', tokenCount: u.input }];
  if (u.cacheRead > 0) usage.cacheTokensDetails = [{ modality: 'TEXT', tokenCount: u.cacheRead }];
  usage.candidatesTokensDetails = [{ modality: 'TEXT', tokenCount: candidates }];
  if (thoughts || u.reasoning > 0) usage.thoughtsTokenCount = u.reasoning;
  if (vertex) usage.trafficType = 'ON_DEMAND';
  return usage;
}

function handleGenerateContent(ctx: Ctx, model: string, vertex: boolean, stream: boolean): Promise<void> | void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    throw new ProviderError(400, '* GenerateContentRequest.contents: contents is not specified\n');
  }
  const config = body.generationConfig ?? {};
  const usage = expectedUsage(scenario);
  const toolCalls = scenario.toolCalls ?? [];
  const truncated = toolCalls.length === 0 && typeof config.maxOutputTokens === 'number' && config.maxOutputTokens <= usage.output;
  const finishReason = truncated ? 'MAX_TOKENS' : 'STOP';
  const withThoughts = config.thinkingConfig?.includeThoughts === true;
  const responseModel = expectedModel('gemini', model, scenario);
  const responseId = scenario.responseId ?? base62(22);
  const envelope = (candidate: Json, usageMetadata: Json | undefined): Json => {
    const response: Json = { candidates: [candidate] };
    if (vertex) response.createTime = new Date().toISOString();
    if (usageMetadata !== undefined) response.usageMetadata = usageMetadata;
    response.modelVersion = responseModel;
    response.responseId = responseId;
    return response;
  };
  const finalUsage = scenario.omitUsage ? undefined : geminiUsage(usage, withThoughts, vertex);
  const toolParts = toolCalls.map((c) => ({ functionCall: { name: c.name, args: JSON.parse(c.arguments) as unknown } }));
  const text = expectedText(scenario);
  if (!stream) {
    const parts: Json[] = [];
    if (withThoughts) parts.push({ text: THINKING_TEXT, thought: true });
    if (text !== '') parts.push({ text });
    parts.push(...toolParts);
    sendJson(ctx, scenario.status ?? 200, envelope({ content: { parts, role: 'model' }, finishReason, index: 0 }, finalUsage));
    return;
  }
  // Every chunk but the last carries the prompt count only (the output is not counted yet).
  const partial = scenario.omitUsage ? undefined : { promptTokenCount: usage.input, totalTokenCount: usage.input, ...(vertex ? { trafficType: 'ON_DEMAND' } : {}) };
  const frames: Frame[] = [];
  const event = (parts: Json[], last: boolean, textDelta: boolean): Frame => ({
    kind: 'event',
    crlf: true,
    textDelta,
    data: envelope(last ? { content: { parts, role: 'model' }, finishReason, index: 0 } : { content: { parts, role: 'model' }, index: 0 }, last ? finalUsage : partial),
  });
  if (withThoughts) for (const piece of splitText(THINKING_TEXT, THINKING_CHUNKS)) frames.push(event([{ text: piece, thought: true }], false, false));
  const chunks = expectedChunks(scenario);
  frames.push({ kind: 'checkpoint' });
  chunks.forEach((piece, i) => {
    const last = i === chunks.length - 1 && toolParts.length === 0;
    frames.push(event([{ text: piece }], last, true));
    frames.push({ kind: 'checkpoint' });
  });
  if (toolParts.length > 0 || chunks.length === 0) frames.push(event(toolParts, true, false));
  return runStream(ctx, {
    frames,
    failure: () => ({ kind: 'event', crlf: true, data: { error: { code: 500, message: scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, status: 'INTERNAL' } } }),
  });
}

function embedText(content: any): string {
  return textOf(content?.parts);
}

function handleBatchEmbed(ctx: Ctx, model: string): void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.requests) || body.requests.length === 0) throw new ProviderError(400, '* BatchEmbedContentsRequest.requests: at least one request is required\n');
  const embeddings = body.requests.map((request: any) => {
    const dims = Number.isInteger(request?.outputDimensionality) ? (request.outputDimensionality as number) : googleEmbeddingDimensions(model);
    return { values: fakeEmbedding(embedText(request?.content), dims) };
  });
  // The Gemini API reports no token usage for embeddings.
  sendJson(ctx, scenario.status ?? 200, { embeddings });
}

function handlePredict(ctx: Ctx, model: string): void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.instances) || body.instances.length === 0) throw new ProviderError(400, 'instances must not be empty');
  const dims = Number.isInteger(body.parameters?.outputDimensionality) ? (body.parameters.outputDimensionality as number) : googleEmbeddingDimensions(model);
  const usage = expectedUsage(scenario);
  const predictions = body.instances.map((instance: any, i: number) => ({
    embeddings: {
      values: fakeEmbedding(String(instance?.content ?? ''), dims),
      // The whole scenario input count on the first instance, 0 on the others: the sum is what tests expect.
      ...(scenario.omitUsage ? {} : { statistics: { token_count: i === 0 ? usage.input : 0, truncated: false } }),
    },
  }));
  const characters = body.instances.reduce((n: number, instance: any) => n + String(instance?.content ?? '').length, 0);
  sendJson(ctx, scenario.status ?? 200, { predictions, metadata: { billableCharacterCount: characters } });
}

// ---------------------------------------------------------------------------------------------
// Mistral: /mistral/v1/chat/completions and /mistral/v1/embeddings (pass `serverURL: fake.mistralBaseURL`)
//
// Shapes from Mistral's API reference and the chunks Vercel's ai publishes in its Mistral provider
// tests (packages/mistral, Apache-2.0): ids are 32 hex digits, the model is echoed as requested,
// a stream opens with `delta: {role: 'assistant', content: ''}` and its last chunk carries
// `finish_reason` and `usage` (always: no stream option asks for it), then `data: [DONE]`. Usage is
// `prompt_tokens`, `completion_tokens`, `total_tokens`; no cache or reasoning details. Errors are
// `{object: 'error', message, type, param, code}`.
// ---------------------------------------------------------------------------------------------

function mistralUsage(u: ResolvedUsage): Json {
  return { prompt_tokens: u.input, total_tokens: u.input + u.output, completion_tokens: u.output };
}

function handleMistralChat(ctx: Ctx): Promise<void> | void {
  const { body, scenario } = ctx;
  if (!Array.isArray(body.messages)) throw new ProviderError(422, 'Field required: messages');
  const f = facts(ctx, 'mistral', body.max_tokens, () => base62(9));
  const finishReason = f.toolCalls.length > 0 ? 'tool_calls' : f.truncated ? 'length' : 'stop';
  const head = { id: scenario.responseId ?? hex(32), object: body.stream ? 'chat.completion.chunk' : 'chat.completion', created: nowSeconds(), model: f.model };
  const toolCalls = f.toolCalls.map((c, index) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments }, index }));
  if (!body.stream) {
    sendJson(ctx, scenario.status ?? 200, {
      ...head,
      // The API always reports usage on a whole response (the SDK refuses one without it).
      usage: mistralUsage(f.usage),
      choices: [{ index: 0, message: { role: 'assistant', tool_calls: toolCalls.length > 0 ? toolCalls : null, content: f.text }, finish_reason: finishReason }],
    });
    return;
  }
  const frames: Frame[] = [];
  const chunk = (delta: Json, finish: string | null, extra: Json = {}, textDelta = false): void => {
    frames.push({ kind: 'event', textDelta, data: { ...head, choices: [{ index: 0, delta, finish_reason: finish }], ...extra } });
  };
  chunk({ role: 'assistant', content: '' }, null);
  frames.push({ kind: 'checkpoint' });
  for (const piece of f.textChunks) {
    chunk({ content: piece }, null, {}, true);
    frames.push({ kind: 'checkpoint' });
  }
  if (toolCalls.length > 0) chunk({ content: '', tool_calls: toolCalls }, null);
  chunk({ content: '' }, finishReason, scenario.omitUsage ? {} : { usage: mistralUsage(f.usage) });
  frames.push({ kind: 'raw', text: 'data: [DONE]\n\n' });
  return runStream(ctx, {
    frames,
    failure: () => ({ kind: 'event', data: { object: 'error', message: scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, type: 'internal_error', param: null, code: null } }),
  });
}

function handleMistralEmbeddings(ctx: Ctx): void {
  const { body, scenario } = ctx;
  // The SDK's `inputs` is `input` on the wire.
  const inputs: unknown[] = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? body.input : [];
  if (inputs.length === 0) throw new ProviderError(422, 'Field required: input');
  const model = expectedModel('mistral', requireModel(body), scenario);
  const dims = Number.isInteger(body.output_dimension) ? (body.output_dimension as number) : 1024;
  const usage = expectedUsage(scenario);
  sendJson(ctx, scenario.status ?? 200, {
    id: hex(32),
    object: 'list',
    data: inputs.map((input, index) => ({ object: 'embedding', embedding: fakeEmbedding(String(input), dims), index })),
    model,
    ...(scenario.omitUsage ? {} : { usage: { prompt_tokens: usage.input, total_tokens: usage.input, completion_tokens: 0 } }),
  });
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

const ROUTES: Record<string, { provider: Provider; handle: (ctx: Ctx) => Promise<void> | void; noScenario?: boolean }> = {
  '/v1/chat/completions': { provider: 'openai', handle: handleChat },
  '/v1/responses': { provider: 'openai', handle: handleResponses },
  '/v1/embeddings': { provider: 'openai', handle: handleEmbeddings },
  '/v1/moderations': { provider: 'openai', handle: handleModerations, noScenario: true },
  '/v1/completions': { provider: 'openai', handle: handleCompletions },
  '/v1/images/generations': { provider: 'openai', handle: handleImages },
  '/v1/images/edits': { provider: 'openai', handle: handleImages },
  '/v1/audio/transcriptions': { provider: 'openai', handle: (ctx) => handleTranscription(ctx, 'transcribe') },
  '/v1/audio/translations': { provider: 'openai', handle: (ctx) => handleTranscription(ctx, 'translate') },
  '/v1/audio/speech': { provider: 'openai', handle: handleSpeech },
  '/v1/files': { provider: 'openai', handle: handleFileUpload },
  '/v1/decisions': { provider: 'openai', handle: handleDecisions },
  '/v1/skills': { provider: 'openai', handle: handleSkillUpload },
  '/v1/batches': { provider: 'openai', handle: handleBatches },
  '/v1/messages': { provider: 'anthropic', handle: handleMessages },
  '/v1/messages/count_tokens': { provider: 'anthropic', handle: handleCountTokens },
  '/v1/messages/batches': { provider: 'anthropic', handle: handleBatchCreate },
  '/mistral/v1/chat/completions': { provider: 'mistral', handle: handleMistralChat },
  '/mistral/v1/embeddings': { provider: 'mistral', handle: handleMistralEmbeddings },
};

function requestIdFor(provider: Provider): string {
  return provider === 'anthropic' ? `req_011C${base62(20)}` : provider === 'google' ? base62(22) : provider === 'mistral' ? hex(32) : `req_${hex(32)}`;
}

export function startFakeProvider(): Promise<FakeProvider> {
  const queue: Scenario[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const inFlight = new Set<AbortController>();
  let closing: Promise<void> | undefined;

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    inFlight.add(controller);
    res.on('close', () => {
      controller.abort();
      inFlight.delete(controller);
    });
    res.on('error', () => undefined);
    req.on('error', () => undefined);

    let rawBytes: Buffer;
    try {
      rawBytes = await readBody(req);
    } catch {
      res.destroy();
      return;
    }
    const rawBody = rawBytes.toString('utf8');
    const target = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = target.pathname;
    let body: any;
    let bodyIsJson = false;
    const contentType = String(req.headers['content-type'] ?? '');
    if (contentType.startsWith('multipart/form-data')) {
      try {
        body = await parseMultipart(rawBytes, contentType);
        bodyIsJson = true;
      } catch {
        body = undefined;
      }
    } else if (rawBody !== '') {
      try {
        body = JSON.parse(rawBody);
        bodyIsJson = true;
      } catch {
        body = undefined;
      }
    }
    const method = (req.method ?? 'GET').toUpperCase();
    requests.push({ method, path, headers: { ...req.headers }, body, rawBody });

    const platform = method === 'POST' ? platformRoute(path, target.searchParams) : undefined;
    const fileContent = method === 'GET' ? /^\/v1\/files\/([^/]+)\/content$/.exec(path) : null;
    const listOrCreate = method === 'POST' && (path === '/v1/batches' || path === '/v1/messages/batches');
    const route =
      (listOrCreate ? undefined : batchRoute(method, path)) ??
      (method === 'POST'
        ? (ROUTES[platform?.route ?? path] ?? geminiRoute(path))
        : fileContent !== null
          ? { provider: 'openai' as const, handle: (c: Ctx) => handleFileContent(c, fileContent[1]!), noScenario: true, get: true }
          : undefined);
    const provider: Provider =
      route?.provider ??
      (req.headers['x-goog-api-key'] !== undefined
        ? 'google'
        : req.headers['anthropic-version'] !== undefined || req.headers['x-api-key'] !== undefined
          ? 'anthropic'
          : 'openai');
    const ctx: Ctx = { res, signal: controller.signal, provider, requestId: requestIdFor(provider), scenario: {}, body, url: req.url ?? '/', framing: platform?.framing };

    try {
      if (!route) {
        if (provider === 'anthropic') sendError(ctx, 404, 'Not Found', 'not_found_error');
        else sendError(ctx, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, null);
        return;
      }
      const refusal = platform?.refusal(body);
      if (refusal !== undefined) throw new ProviderError(400, refusal);
      if (platform !== undefined && bodyIsJson) ctx.body = platform.body(body);
      ctx.scenario = route.noScenario ? {} : (queue.shift() ?? {});
      const replay = ctx.scenario.replay;
      if (replay !== undefined) {
        res.writeHead(ctx.scenario.status ?? 200, { ...baseHeaders(ctx), 'content-type': replay.contentType });
        res.end(replay.body);
        return;
      }
      if (ctx.scenario.echoRequest !== undefined) ctx.scenario = { ...ctx.scenario, errorMessage: echoMessage(ctx) };
      await sleep(ctx.scenario.headersDelayMs ?? 0, controller.signal);
      if (controller.signal.aborted) return;
      const status = ctx.scenario.status;
      if (status !== undefined && (status < 200 || status >= 300)) {
        sendError(ctx, status, ctx.scenario.errorMessage ?? DEFAULT_ERROR_MESSAGE, ctx.scenario.errorType, null, ctx.scenario.errorCode);
        return;
      }
      if (!('get' in route) && (!bodyIsJson || body === null || typeof body !== 'object' || Array.isArray(body))) {
        throw new ProviderError(
          400,
          provider === 'anthropic'
            ? 'There was an error parsing the body of your request.'
            : "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
        );
      }
      await route.handle(ctx);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof ProviderError) sendError(ctx, err.status, err.message, err.errorType, err.param, err.code);
      else sendError(ctx, 500, `fake provider internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const server = createServer((req, res) => {
    void onRequest(req, res);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => {
    socket.destroy();
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const url = `http://127.0.0.1:${port}`;
      resolve({
        url,
        openaiBaseURL: `${url}/v1`,
        anthropicBaseURL: url,
        googleBaseURL: url,
        mistralBaseURL: `${url}/mistral`,
        requests,
        enqueue(...scenarios: Scenario[]): void {
          scenarios.forEach(validateScenario);
          queue.push(...scenarios);
        },
        reset(): void {
          queue.length = 0;
          requests.length = 0;
        },
        close(): Promise<void> {
          closing ??= new Promise<void>((done) => {
            for (const c of inFlight) c.abort();
            server.close(() => done());
            for (const s of sockets) s.destroy();
          });
          return closing;
        },
      });
    });
  });
}
