/**
 * Batches, the part every provider shares (OpenAI's Batch API, Anthropic's Message Batches). A
 * batch is one request carrying many model requests, answered later by many results:
 *
 * - Its requests are hashed once, here ({@link batchHashes}): for each one its `custom_id` and the
 *   input and system prompt hashes the same request sent alone would carry. Whichever record sends
 *   the requests (OpenAI's `files.create` of a batch file, Anthropic's `messages.batches.create`)
 *   records them as aligned arrays ({@link batchHashAttributes}); the provider hands the requests
 *   over in its response summary (ResponseSummary.batch), the one way in.
 * - What this process learned of a batch (its id, its requests' hashes) is remembered under every
 *   id that names it (OpenAI: the input file, the batch, its output and error files; Anthropic: the
 *   batch), for the last {@link MAX_KEYS} ids, so that a later record can be linked to it.
 * - Each result line the application retrieves is a record of its own ({@link recordBatchResult}):
 *   the model call the provider ran for one request, with its custom_id, the batch id, the output
 *   hash, usage and status of that line, and, where the request is known here, the request's
 *   input hashes, so that the result record looks like the record of the same call sent alone.
 */
import { diag, type Attributes } from '@opentelemetry/api';
import * as A from '../semconv';
import type { ContentHasher } from '../audit/hashing';
import type { AuditedCall } from './audited-call';
import type { OperationSpec, RequestWalker, ResponseSummary } from './types';

/** One request of a batch: its custom_id, its model, and what its hashes cover (as OperationSpec.prompt for a call sent alone). */
export interface BatchItem {
  id?: string;
  model?: string;
  system?: unknown;
  input?: unknown;
}

/** One request as recorded: hashes only, never the content (so remembering it keeps no prompt in memory). */
export interface BatchRequestHash {
  id: string;
  model?: string;
  /** '' when the request has no input or no system prompt. */
  input: string;
  system: string;
}

/** What this process knows of a batch. */
export interface KnownBatch {
  batchId?: string;
  /** The requests in file (or request) order; undefined when they were sent by another process. */
  requests?: BatchRequestHash[];
}

/** How many ids (batches, files) are remembered for the links; the oldest is forgotten first. */
export const MAX_KEYS = 1024;

const known = new Map<string, KnownBatch>();

function remember(key: string, batch: KnownBatch): void {
  known.delete(key);
  known.set(key, batch);
  if (known.size > MAX_KEYS) known.delete(known.keys().next().value as string);
}

/** The requests of a batch, hashed as each would be sent alone. */
export function batchHashes(hasher: ContentHasher, items: readonly BatchItem[]): BatchRequestHash[] {
  return items.map((item) => ({
    id: item.id ?? '',
    model: item.model,
    input: item.input === undefined ? '' : hasher.hashMessages(item.input),
    system: item.system === undefined ? '' : hasher.hashRepeated(item.system),
  }));
}

/** The aligned per-request arrays of a batch's record, and how many requests it holds. */
export function batchHashAttributes(requests: readonly BatchRequestHash[]): Attributes {
  return {
    [A.ATTR_AUDIT_BATCH_REQUEST_COUNT]: requests.length,
    [A.ATTR_AUDIT_BATCH_CUSTOM_IDS]: requests.map((r) => r.id),
    [A.ATTR_AUDIT_BATCH_REQUEST_HASHES]: requests.map((r) => r.input),
    [A.ATTR_AUDIT_BATCH_SYSTEM_PROMPT_HASHES]: requests.map((r) => r.system),
  };
}

/** Remembers a batch's requests under `key` (a batch id, or the id of the file that holds them). */
export function rememberBatchRequests(key: string, requests: BatchRequestHash[]): void {
  remember(key, { ...known.get(key), requests });
}

/**
 * Links what is known under `from` (the batch's input file) to the batch `batchId` and to the
 * other ids that name it (its output and error files); returns what is known of the batch.
 */
export function linkBatch(batchId: string, from: string | undefined, also: ReadonlyArray<unknown> = []): KnownBatch {
  const batch: KnownBatch = { batchId, requests: known.get(batchId)?.requests ?? knownBatch(from)?.requests };
  for (const key of [batchId, ...also]) if (typeof key === 'string' && key !== '') remember(key, batch);
  return batch;
}

// A batch's requests by custom_id, made once per batch at its first result: a batch holds up to
// 50,000 (OpenAI) or 100,000 (Anthropic) requests, too many to search for each result line.
const indexes = new WeakMap<readonly BatchRequestHash[], Map<string, BatchRequestHash>>();

function requestById(batch: KnownBatch | undefined): Map<string, BatchRequestHash> | undefined {
  const requests = batch?.requests;
  if (requests === undefined) return undefined;
  let index = indexes.get(requests);
  if (index === undefined) {
    index = new Map();
    // The first request of a custom_id wins (the providers refuse a batch that repeats one).
    for (const request of requests) if (!index.has(request.id)) index.set(request.id, request);
    indexes.set(requests, index);
  }
  return index;
}

/** What is known of the batch named by `key` (a batch or file id), if anything. */
export function knownBatch(key: string | undefined): KnownBatch | undefined {
  return key === undefined ? undefined : known.get(key);
}

/**
 * Polling and acting on a batch (`retrieve(id)`, `list()`, `cancel(id)`, Anthropic `delete(id)`):
 * no content goes out, but each is an action on the batch the trail shows (a cancel above all), so
 * each is a light record of the provider's endpoint: the batch id asked for, what `summarize` reads
 * of the answer (ids and status), no hashes, cost 0 (no model runs).
 */
export function batchPollingSpec(
  endpoint: Pick<OperationSpec, 'provider' | 'requestKind' | 'accumulator'>,
  operationName: string,
  action: string,
  summarize: OperationSpec['summarize'],
): OperationSpec {
  return {
    ...endpoint,
    operationName,
    action,
    isStream: () => false,
    requestModel: () => undefined,
    requestAttributes(id, attributes) {
      if (typeof id === 'string') attributes[A.ATTR_AUDIT_BATCH_ID] = id;
    },
    prompt: () => ({}),
    pricing: 'free',
    summarize,
  };
}

/** `list()` (its first page): how many batches the page named; `each` sees every one (to remember its files). */
export function batchListSummary(page: unknown, each?: (batch: unknown) => void): ResponseSummary {
  const batches = typeof page === 'object' && page !== null && Array.isArray((page as { data?: unknown }).data) ? (page as { data: unknown[] }).data : [];
  if (each !== undefined) for (const batch of batches) each(batch);
  return { attributes: { [A.ATTR_AUDIT_BATCH_LISTED_COUNT]: batches.length } };
}

/** One result line of a batch, in the shape every provider's line is turned into. */
export interface BatchResultLine {
  customId?: string;
  /** `succeeded`, or what befell the request (Anthropic `errored`, `canceled`, `expired`; OpenAI `errored`). */
  type: string;
  /** A line that succeeded: the response body, as the endpoint answers the same request sent alone. */
  body?: unknown;
  /** A line that failed: the provider's error type or code (its message is not copied: nothing of the request is at hand to scrub it against). */
  errorType?: string;
  /** The HTTP status the provider gives the line (OpenAI). */
  status?: number;
}

/** A result line that did not succeed; `type` and `status` are what `error.type` and the status code are recorded from. */
class BatchResultError extends Error {
  constructor(
    readonly type: string,
    readonly status?: number,
  ) {
    super(`batch result ${type}`);
    this.name = type;
  }
}

const RESULT_REQUEST: RequestWalker = { sanitize: (_walk, params) => params, content: () => ({ input_messages: [] }) };

/**
 * The spec of each result line's record, from the spec of the endpoint's calls: what the line's
 * request hashes to (its {@link BatchRequestHash}, the `params` of the record: the hashes were
 * computed when the batch was sent) and the response body summarized as the endpoint's answer.
 * genai-prices (0.1.8) has no batch prices and both providers bill batches at half the per-call
 * rate, which would overstate the cost: `unpriced`, said explicitly.
 */
export function batchResultSpec(endpoint: OperationSpec, action: string): OperationSpec<BatchRequestHash | undefined> {
  return {
    ...endpoint,
    action,
    // The request was sent (and captured, when content is) with the batch: the line's own record
    // seals the output only.
    requestKind: RESULT_REQUEST,
    byDeployment: false,
    isStream: () => false,
    requestModel: (request) => request?.model,
    requestAttributes: () => undefined,
    // Hashed already: AuditedCall records no hash of its own here (see recordBatchResult).
    prompt: () => ({}),
    pricing: { unpriced: 'the price data has no batch prices' },
    settle: undefined,
    signal: undefined,
  };
}

/**
 * Records one result line as the model call it is: started by `start` (the provider's: its
 * services, endpoint and context), linked to its batch (`batchId`, or what `key`, a batch or file
 * id, is known as) and, when the batch's requests are known here, to its request's hashes. Never
 * throws into the application's loop.
 */
export function recordBatchResult(start: (request: BatchRequestHash | undefined) => AuditedCall, line: BatchResultLine, link: { batchId?: string; key?: string; attributes?: Attributes }): void {
  try {
    const batch = knownBatch(link.batchId ?? link.key);
    const request = line.customId === undefined ? undefined : requestById(batch)?.get(line.customId);
    const call = start(request);
    const attributes: Attributes = { ...link.attributes, [A.ATTR_AUDIT_BATCH_RESULT_TYPE]: line.type };
    const batchId = link.batchId ?? batch?.batchId;
    if (batchId !== undefined) attributes[A.ATTR_AUDIT_BATCH_ID] = batchId;
    if (line.customId !== undefined) attributes[A.ATTR_AUDIT_BATCH_CUSTOM_ID] = line.customId;
    attributes[A.ATTR_AUDIT_BATCH_LINK] = request !== undefined ? 'request' : 'unlinked';
    if (request?.input) attributes[A.ATTR_AUDIT_INPUT_HASH] = request.input;
    if (request?.system) attributes[A.ATTR_AUDIT_SYSTEM_PROMPT_HASH] = request.system;
    call.span.setAttributes(attributes);
    if (line.type === 'succeeded') call.completeWith(line.body);
    else call.fail(new BatchResultError(line.errorType ?? line.type, line.status));
  } catch (error) {
    diag.error('otel-llm-audit: could not record a batch result', error);
  }
}
