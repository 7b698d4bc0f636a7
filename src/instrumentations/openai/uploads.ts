/**
 * Files the SDK uploads (multipart requests: audio to transcribe or translate, images to edit,
 * files for batches). What the request walk can say of one without reading it
 * ({@link uploadDescription}), and its bytes read again once the SDK has sent them
 * ({@link bytesOf}), for the hashes recorded when the call ends ({@link settleWithUploads}).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { jsonSafe } from '../../audit/content/genai-messages';
import * as A from '../../semconv';
import type { ResponseSummary } from '../../core/types';

type Obj = Record<string, unknown>;

/**
 * What can be said of an uploaded file (`Uploadable`: a File or Blob, a `fetch` Response, a Node
 * ReadStream, a Buffer) without reading it: reading a stream would take its bytes from the SDK.
 * Bytes in memory are digested (SHA-256, as the envelope digests inline data, never kept).
 */
export function uploadDescription(file: unknown): { type: 'upload'; [detail: string]: unknown } {
  if (file instanceof Uint8Array || file instanceof ArrayBuffer) {
    const bytes = file instanceof ArrayBuffer ? new Uint8Array(file) : file;
    return { ...(jsonSafe(bytes) as Obj), type: 'upload' };
  }
  if (typeof file !== 'object' || file === null) return { type: 'upload', value: jsonSafe(file) };
  const f = file as { name?: unknown; path?: unknown; size?: unknown; type?: unknown; url?: unknown };
  const out: { type: 'upload'; [detail: string]: unknown } = { type: 'upload' };
  const name = typeof f.name === 'string' ? f.name : typeof f.path === 'string' ? f.path : typeof f.url === 'string' ? f.url : undefined;
  if (name !== undefined) out['name'] = name;
  if (typeof f.size === 'number') out['bytes'] = f.size;
  if (typeof f.type === 'string' && f.type !== '') out['mime_type'] = f.type;
  return out;
}

/** The bytes of an upload, read again after the SDK sent it; undefined when they cannot be. */
export async function bytesOf(file: any): Promise<Uint8Array | undefined> {
  if (file instanceof Uint8Array) return file;
  if (file instanceof ArrayBuffer) return new Uint8Array(file);
  if (typeof file?.arrayBuffer === 'function' && typeof file?.size === 'number') return new Uint8Array(await file.arrayBuffer());
  // fs.createReadStream(): read from its path (a file changed in between would differ: said in the docs).
  if (typeof file?.path === 'string' && typeof file?.pipe === 'function') return readFile(file.path);
  return undefined;
}

/**
 * A call that uploaded files (`fields` of the request): its summary, and the keyed hash of each
 * file's bytes (`llm_audit.file.hashes`, over `sha256:<hex>` of the bytes, in field order), read
 * again after the request was sent; a file whose bytes cannot be read again (a stream of another
 * kind than a Node ReadStream) is `unreadable`. The bytes are never kept.
 */
export function settleWithUploads(summarize: (data: unknown) => ResponseSummary, fields: readonly string[]) {
  return async (data: unknown, params: any): Promise<ResponseSummary> => {
    const summary = summarize(data);
    const digests: string[] = [];
    for (const name of fields) {
      const value = params?.[name];
      if (value === undefined || value === null) continue;
      for (const file of Array.isArray(value) ? value : [value]) {
        const bytes = await bytesOf(file).catch(() => undefined);
        digests.push(bytes === undefined ? 'unreadable' : `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      }
    }
    return { ...summary, hashes: { ...summary.hashes, [A.ATTR_AUDIT_FILE_HASHES]: { each: digests } } };
  };
}
