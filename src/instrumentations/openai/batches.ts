/**
 * OpenAI batches: the requests of a batch travel in a JSONL file uploaded with `files.create`
 * (purpose `batch`), and `batches.create` names that file by id; the results come back in an
 * output file (and the failed requests in an error file) that `files.content` downloads. What is
 * shared with Anthropic's batches (the hashes of the requests, the links, one record per result
 * line) is src/core/batches.ts; this file reads OpenAI's files and objects into it:
 *
 * - `files.create` is audited as a call of its own. When it succeeds, the uploaded bytes are read
 *   again (a Buffer or Blob as it is, a Node ReadStream from its path; a stream of another kind
 *   cannot be read twice and its file stays unlinked), each line is parsed, and each request is
 *   reduced to what its hashes cover for the same request sent alone (the endpoint's own walker:
 *   chat messages, system ones apart...). The record carries the file id, the hash of the file's
 *   bytes and the per-request arrays, in file order; the hashes are remembered under the file id.
 * - `batches.create` looks its `input_file_id` up: its record carries the batch id and the same
 *   per-request arrays (`llm_audit.batch.link=file`). A file uploaded by another process (or
 *   forgotten) leaves it `unlinked`: the ledger then links the two only by the file id. The batch
 *   is remembered under its id and its output and error files, which `batches.retrieve`,
 *   `batches.list` and `batches.cancel` tell too (a batch's files are named once it has ended).
 * - `files.content` of a batch output or error file: one record for the download (file id, hash
 *   of its bytes, line count, the batch id when known), then one record per result line (see
 *   core/batches.ts recordBatchResult). The application's Response is not touched: the body is read
 *   from a clone.
 */
import * as A from '../../semconv';
import type { Attributes } from '@opentelemetry/api';
import type { OperationSpec, ResponseSummary } from '../../core/types';
import { batchHashAttributes, batchListSummary, batchResultSpec, knownBatch, linkBatch, type BatchItem, type BatchResultLine } from '../../core/batches';
import { knownString } from '../../core/values';
import { chatRequest, embeddingsRequest, completionsRequest, moderationsRequest, responsesRequest, type Prompt } from './request';
import { bytesOf, fileDigest } from './uploads';

type Obj = Record<string, unknown>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What the hashes cover, per endpoint a batch can call. */
const PROMPTS: Readonly<Record<string, Prompt>> = {
  '/v1/chat/completions': chatRequest.prompt,
  '/v1/responses': responsesRequest.prompt,
  '/v1/embeddings': embeddingsRequest.prompt,
  '/v1/completions': completionsRequest.prompt,
  '/v1/moderations': moderationsRequest.prompt,
};

/** One request per JSONL line (a line of no known endpoint, or no JSON, is hashed as it is). */
function requestItems(text: string): BatchItem[] {
  const items: BatchItem[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let request: { custom_id?: unknown; url?: unknown; body?: { model?: unknown } } | undefined;
    try {
      request = JSON.parse(line);
    } catch {
      items.push({ input: { unparsable: line } });
      continue;
    }
    const prompt = typeof request?.url === 'string' && Object.prototype.hasOwnProperty.call(PROMPTS, request.url) ? PROMPTS[request.url] : undefined;
    const { system, input } = prompt === undefined ? { system: undefined, input: { unknown: line } } : prompt(request!.body);
    items.push({ id: knownString(request?.custom_id), model: knownString(request?.body?.model), system, input });
  }
  return items;
}

/** `files.create`: the file id, the hash of its bytes and, for a batch file, its requests (hashed and remembered in core/batches.ts). */
export async function settleUpload(data: any, params: any): Promise<ResponseSummary> {
  const id = knownString(data?.id);
  const summary: ResponseSummary = { id, attributes: id !== undefined ? { [A.ATTR_AUDIT_FILE_ID]: id } : {} };
  const bytes = await bytesOf(params?.file).catch(() => undefined);
  if (bytes === undefined) return summary;
  summary.hashes = { [A.ATTR_AUDIT_FILE_HASH]: { value: fileDigest(bytes) } };
  if (params?.purpose === 'batch') {
    summary.batch = { items: requestItems(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')), key: id };
  }
  return summary;
}

/**
 * A batch object (the answer of `batches.create`, `.retrieve`, `.cancel`, an item of `.list`):
 * remembered with its files, and its ids and status as attributes. `withRequests`: the record
 * that creates it also carries its requests' hashes when its input file is known here.
 */
function batchAttributes(batch: unknown, withRequests: boolean): Attributes {
  const attributes: Attributes = {};
  if (!isObj(batch)) return attributes;
  const id = knownString(batch.id);
  const fileId = knownString(batch.input_file_id);
  if (id !== undefined) attributes[A.ATTR_AUDIT_BATCH_ID] = id;
  if (fileId !== undefined) attributes[A.ATTR_AUDIT_FILE_ID] = fileId;
  if (typeof batch.status === 'string') attributes[A.ATTR_AUDIT_BATCH_STATUS] = batch.status;
  if (typeof batch.output_file_id === 'string') attributes[A.ATTR_AUDIT_BATCH_OUTPUT_FILE_ID] = batch.output_file_id;
  if (typeof batch.error_file_id === 'string') attributes[A.ATTR_AUDIT_BATCH_ERROR_FILE_ID] = batch.error_file_id;
  const known = id === undefined ? undefined : linkBatch(id, fileId, [batch.output_file_id, batch.error_file_id]);
  if (!withRequests) return attributes;
  attributes[A.ATTR_AUDIT_BATCH_LINK] = known?.requests !== undefined ? 'file' : 'unlinked';
  return known?.requests !== undefined ? { ...attributes, ...batchHashAttributes(known.requests) } : attributes;
}

/** `batches.create`: the batch, linked to its requests through the input file (see above). */
export function summarizeBatch(data: any, params: any): ResponseSummary {
  const attributes = batchAttributes({ input_file_id: params?.input_file_id, ...data }, true);
  return { id: knownString(data?.id), attributes };
}

/** `batches.retrieve`, `batches.cancel`: ids and status only. */
export function summarizeBatchStatus(data: unknown): ResponseSummary {
  return { attributes: batchAttributes(data, false) };
}

/** `batches.list` (its first page): each batch it names is remembered with its files; the record says how many. */
export function summarizeBatchList(page: unknown): ResponseSummary {
  return batchListSummary(page, (batch) => batchAttributes(batch, false));
}

/**
 * `files.content` returns the HTTP response (the file's bytes): read from a clone, the application's
 * copy untouched. A batch output or error file (JSONL lines with `custom_id`) gives one record per
 * line after this one (ResponseSummary.batchResults); any other file only the hash of its bytes.
 */
export function settleFileContent(data: any, fileId: unknown): Promise<ResponseSummary> | undefined {
  if (typeof data?.clone !== 'function') return undefined;
  return (data.clone() as Response).arrayBuffer().then((body): ResponseSummary => {
    const bytes = new Uint8Array(body);
    const hashes = { [A.ATTR_AUDIT_FILE_HASH]: { value: fileDigest(bytes) } };
    const attributes: Attributes = {};
    const key = typeof fileId === 'string' ? fileId : undefined;
    if (key !== undefined) attributes[A.ATTR_AUDIT_FILE_ID] = key;
    const lines: BatchResultLine[] = [];
    for (const line of Buffer.from(bytes).toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const result = parseResult(line);
      if (result === undefined) return { attributes, hashes };
      lines.push(result);
    }
    attributes[A.ATTR_AUDIT_BATCH_RESULT_COUNT] = lines.length;
    const batchId = knownBatch(key)?.batchId;
    if (batchId !== undefined) attributes[A.ATTR_AUDIT_BATCH_ID] = batchId;
    return { attributes, hashes, batchResults: { lines, link: { key, attributes: key === undefined ? undefined : { [A.ATTR_AUDIT_FILE_ID]: key } } } };
  });
}

/**
 * One line of a batch output or error file (the Batch API's "request output" object:
 * `{id, custom_id, response: {status_code, request_id, body} | null, error: {code, message} | null}`);
 * undefined when the line is not one. A line succeeded when its response has a 2xx status and no
 * error; a request the batch never ran says why in `error.code` (`batch_expired`, `batch_cancelled`).
 */
function parseResult(text: string): BatchResultLine | undefined {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObj(line) || typeof line.custom_id !== 'string') return undefined;
  const response = isObj(line.response) ? line.response : undefined;
  const status = typeof response?.status_code === 'number' ? response.status_code : undefined;
  const error = isObj(line.error) ? line.error : undefined;
  if (status !== undefined && status >= 200 && status < 300 && error === undefined) return { customId: line.custom_id, type: 'succeeded', body: response!.body };
  const bodyError = isObj(response?.body) && isObj(response.body.error) ? response.body.error : undefined;
  const code = knownString(bodyError?.code) ?? knownString(bodyError?.type) ?? knownString(error?.code);
  const type = code === 'batch_expired' ? 'expired' : code === 'batch_cancelled' ? 'canceled' : 'errored';
  return { customId: line.custom_id, type, errorType: code, status };
}

/**
 * The spec of a result line's record: the endpoint's answer as its own call would be summarized,
 * told by the body's `object` (a line without a body, a failure, is recorded as a chat call: the
 * Batch API's main use).
 */
export function resultLineSpec(endpoints: { chat: OperationSpec; responses: OperationSpec; embeddings: OperationSpec; completions: OperationSpec }): (line: BatchResultLine) => OperationSpec {
  const specs = {
    'chat.completion': batchResultSpec(endpoints.chat, 'files.content'),
    response: batchResultSpec(endpoints.responses, 'files.content'),
    list: batchResultSpec(endpoints.embeddings, 'files.content'),
    text_completion: batchResultSpec(endpoints.completions, 'files.content'),
  };
  return (line) => {
    const object = isObj(line.body) ? line.body.object : undefined;
    return typeof object === 'string' && Object.prototype.hasOwnProperty.call(specs, object) ? specs[object as keyof typeof specs] : specs['chat.completion'];
  };
}
