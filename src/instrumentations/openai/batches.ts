/**
 * OpenAI batches: the requests of a batch travel in a JSONL file uploaded with `files.create`
 * (purpose `batch`), and `batches.create` names that file by id. How the two records are linked:
 *
 * - `files.create` is audited as a call of its own. When it succeeds, the uploaded bytes are read
 *   again (a Buffer or Blob as it is, a Node ReadStream from its path; a stream of another kind
 *   cannot be read twice and its file stays unlinked), each line is parsed, and each request's
 *   input is reduced to what `llm_audit.input.hash` covers for the same request sent alone (the
 *   endpoint's own walker: chat messages but the system ones, embeddings input...). The record
 *   carries the file id, the hash of the file's bytes and those per-request hashes, in file order.
 * - The file id is remembered with the hash inputs, in this process, for the last
 *   {@link MAX_FILES} batch files. `batches.create` looks its `input_file_id` up: its record
 *   carries the batch id, the request count and the same per-request hashes. A file uploaded by
 *   another process (or forgotten) leaves the batch record with `llm_audit.batch.link=unlinked`:
 *   the ledger then links the two only by the file id.
 *
 * Results (`files.content` of the output file) are recorded as one record: the file id and the
 * output hash of each result line, in file order (see docs/attributes.md).
 */
import * as A from '../../semconv';
import type { OutputMessage, ResponseSummary } from '../../core/types';
import { knownString } from '../../core/values';
import { chatRequest, embeddingsRequest, completionsRequest, moderationsRequest, responsesRequest, type Prompt } from './request';
import { summarizeChat, summarizeCompletion, summarizeResponse } from './response';
import { bytesOf } from './uploads';

/** How many uploaded batch files are remembered for the link (the oldest is forgotten first). */
export const MAX_FILES = 256;

/** What the input hash covers, per endpoint a batch can call. */
const PROMPTS: Readonly<Record<string, Prompt>> = {
  '/v1/chat/completions': chatRequest.prompt,
  '/v1/responses': responsesRequest.prompt,
  '/v1/embeddings': embeddingsRequest.prompt,
  '/v1/completions': completionsRequest.prompt,
  '/v1/moderations': moderationsRequest.prompt,
};

/** Uploaded batch files by id: the input of each request line, as the input hash covers it. */
const uploaded = new Map<string, unknown[]>();

function remember(fileId: string, inputs: unknown[]): void {
  uploaded.delete(fileId);
  uploaded.set(fileId, inputs);
  if (uploaded.size > MAX_FILES) uploaded.delete(uploaded.keys().next().value as string);
}

/** One input per JSONL line (undefined for a line that is no request of a known endpoint). */
function requestInputs(text: string): unknown[] {
  const inputs: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const request = JSON.parse(line) as { url?: unknown; body?: unknown };
      const prompt = typeof request.url === 'string' && Object.prototype.hasOwnProperty.call(PROMPTS, request.url) ? PROMPTS[request.url] : undefined;
      inputs.push(prompt === undefined ? { unknown: line } : prompt(request.body).input);
    } catch {
      inputs.push({ unparsable: line });
    }
  }
  return inputs;
}

/** `files.create`: the file id, the hash of its bytes and, for a batch file, the per-request hashes. */
export async function settleUpload(data: any, params: any): Promise<ResponseSummary> {
  const id = knownString(data?.id);
  const summary: ResponseSummary = { id, attributes: id !== undefined ? { [A.ATTR_AUDIT_FILE_ID]: id } : {} };
  const bytes = await bytesOf(params?.file).catch(() => undefined);
  if (bytes === undefined) return summary;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  summary.hashes = { [A.ATTR_AUDIT_FILE_HASH]: { value: text } };
  if (params?.purpose === 'batch') {
    const inputs = requestInputs(text);
    summary.hashes[A.ATTR_AUDIT_BATCH_REQUEST_HASHES] = { each: inputs };
    summary.attributes![A.ATTR_AUDIT_BATCH_REQUEST_COUNT] = inputs.length;
    if (id !== undefined) remember(id, inputs);
  }
  return summary;
}

/** `batches.create`: the batch, linked to its requests through the input file (see above). */
export function summarizeBatch(data: any, params: any): ResponseSummary {
  const attributes: ResponseSummary['attributes'] = {};
  const id = knownString(data?.id);
  if (id !== undefined) attributes[A.ATTR_AUDIT_BATCH_ID] = id;
  const fileId = data?.input_file_id ?? params?.input_file_id;
  if (typeof fileId === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = fileId;
  const inputs = typeof fileId === 'string' ? uploaded.get(fileId) : undefined;
  attributes[A.ATTR_AUDIT_BATCH_LINK] = inputs !== undefined ? 'file' : 'unlinked';
  if (inputs === undefined) return { id, model: knownString(data?.model), attributes };
  attributes[A.ATTR_AUDIT_BATCH_REQUEST_COUNT] = inputs.length;
  return { id, model: knownString(data?.model), attributes, hashes: { [A.ATTR_AUDIT_BATCH_REQUEST_HASHES]: { each: inputs } } };
}

/**
 * `files.content` returns the HTTP response (the file's bytes): read from a clone, the application's
 * copy untouched. A batch output file (JSONL lines with `custom_id` and `response.body`) gives the
 * output hash of each result line; any other file the hash of its bytes.
 */
export function settleFileContent(data: any, fileId: unknown): Promise<ResponseSummary> | undefined {
  if (typeof data?.clone !== 'function') return undefined;
  return (data.clone() as Response).text().then((text): ResponseSummary => {
    const attributes: ResponseSummary['attributes'] = {};
    if (typeof fileId === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = fileId;
    const outputs: OutputMessage[][] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const result = parseResult(line);
      if (result === undefined) return { attributes, hashes: { [A.ATTR_AUDIT_FILE_HASH]: { value: text } } };
      outputs.push(result);
    }
    attributes[A.ATTR_AUDIT_BATCH_REQUEST_COUNT] = outputs.length;
    return { attributes, hashes: { [A.ATTR_AUDIT_FILE_HASH]: { value: text }, [A.ATTR_AUDIT_BATCH_RESULT_HASHES]: { each: outputs } } };
  });
}

/** The output messages of one batch result line; undefined when the line is not one. */
function parseResult(line: string): OutputMessage[] | undefined {
  try {
    const result = JSON.parse(line) as { custom_id?: unknown; response?: { body?: { object?: unknown } } | null; error?: unknown };
    if (typeof result.custom_id !== 'string') return undefined;
    const body = result.response?.body;
    const object = body?.object;
    const summarize =
      object === 'chat.completion' ? summarizeChat : object === 'response' ? summarizeResponse : object === 'text_completion' ? summarizeCompletion : undefined;
    return summarize?.(body).output ?? [];
  } catch {
    return undefined;
  }
}
