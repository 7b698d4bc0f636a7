/**
 * `uploadFile` (ai 7): a file handed to a provider's files API (`api.uploadFile`, or
 * `api.files().uploadFile` of a provider), where a later prompt refers to it. Its bytes leave the
 * process, so the upload is a record as the openai SDK's `files.create` is: operation
 * `upload_file`, action `uploadFile`, the file described (name, media type, size and SHA-256 of
 * the bytes, never the bytes) as the input, `llm_audit.file.hash` over the bytes, and the id the
 * provider gave it (`providerReference`) as `llm_audit.file.id`. The data arrives as
 * `{type:'data', data}` (bytes or base64), `{type:'text', text}` or `{type:'stream', stream}`; a
 * stream cannot be read without taking it from the provider, so its record has the name and media
 * type only, and no file hash. Nothing in a file is scanned by the sanitizer, as for `files.create`.
 * The provider does not charge for the upload itself: cost 0.
 */
import * as A from '../../semconv';
import type { OperationSpec, RequestWalker, ResponseSummary } from '../../core/types';
import { promptFromContent } from '../../core/request-walk';
import { fileDigest, uploadDescription } from '../openai/uploads';
import type { ModelInfo } from './specs';

type Obj = Record<string, unknown>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The bytes of the upload's `data`, or undefined for a stream. */
function uploadBytes(params: Obj): Uint8Array | undefined {
  const data = params['data'];
  if (!isObj(data)) return undefined;
  if (data['type'] === 'text' && typeof data['text'] === 'string') return Buffer.from(data['text'], 'utf8');
  if (data['type'] !== 'data') return undefined;
  if (data['data'] instanceof Uint8Array) return data['data'];
  return typeof data['data'] === 'string' ? Buffer.from(data['data'], 'base64') : undefined;
}

/** One file described (name, media type, size and SHA-256 of its bytes, never the bytes). */
function described(file: Obj, name: unknown): ReturnType<typeof uploadDescription> {
  const out = uploadDescription(uploadBytes(file) ?? {});
  if (typeof name === 'string') out['name'] = name;
  if (typeof file['mediaType'] === 'string') out['mime_type'] = file['mediaType'];
  return out;
}

const uploadWalker: RequestWalker = {
  sanitize: (_w, params) => params,
  content: (params) => ({ input_messages: [{ role: 'user', parts: [described(params, params['filename'])] }] }),
};

/** `uploadSkill`'s files (`{path, data}` each, the data as uploadFile's): one part each, named by its path. */
const skillFiles = (params: Obj): Obj[] => (Array.isArray(params['files']) ? params['files'].filter(isObj) : []);

const skillWalker: RequestWalker = {
  sanitize: (_w, params) => params,
  content: (params) => ({ input_messages: [{ role: 'user', parts: skillFiles(params).map((file) => described(file, file['path'])) }] }),
};

/** The provider's id of the file or skill: the first string of `providerReference` (`{ openai: 'file-…' }`). */
function fileId(data: unknown): string | undefined {
  const reference = isObj(data) ? data['providerReference'] : undefined;
  if (typeof reference === 'string') return reference;
  return isObj(reference) ? Object.values(reference).find((value): value is string => typeof value === 'string') : undefined;
}

/** What an upload's spec shares: no model, no stream, no cost, nothing for the sanitizer. */
function uploadBase(api: ModelInfo, operationName: string, action: string, walker: RequestWalker) {
  return {
    provider: api.provider,
    operationName,
    action,
    requestKind: walker,
    requestModel: () => undefined,
    isStream: () => false,
    requestAttributes: () => undefined,
    prompt: promptFromContent(walker),
    pricing: 'free' as const,
    accumulator(): never {
      throw new Error('an upload does not stream');
    },
  };
}

export function uploadSpec(api: ModelInfo): OperationSpec {
  return {
    ...uploadBase(api, 'upload_file', 'uploadFile', uploadWalker),
    summarize(data: unknown, params?: unknown): ResponseSummary {
      const id = fileId(data);
      const bytes = isObj(params) ? uploadBytes(params) : undefined;
      return {
        id,
        attributes: id !== undefined ? { [A.ATTR_AUDIT_FILE_ID]: id } : undefined,
        hashes: bytes !== undefined ? { [A.ATTR_AUDIT_FILE_HASH]: { value: fileDigest(bytes) } } : undefined,
      };
    },
  };
}

/**
 * `uploadSkill` (ai 7): a skill's files handed to a provider's skills API (`api.uploadSkill`, or
 * `api.skills().uploadSkill`), for later calls to run. Operation `upload_skill`, each file described
 * as the input (by its path), `llm_audit.file.hashes` over each file's bytes in order (`unreadable`
 * for a stream), the skill's id (`providerReference`) as `gen_ai.response.id`; cost 0.
 */
export function skillSpec(api: ModelInfo): OperationSpec {
  return {
    ...uploadBase(api, 'upload_skill', 'uploadSkill', skillWalker),
    summarize(data: unknown, params?: unknown): ResponseSummary {
      const files = isObj(params) ? skillFiles(params) : [];
      const digests = files.map((file) => {
        const bytes = uploadBytes(file);
        return bytes === undefined ? 'unreadable' : fileDigest(bytes);
      });
      return { id: fileId(data), hashes: digests.length > 0 ? { [A.ATTR_AUDIT_FILE_HASHES]: { each: digests } } : undefined };
    },
  };
}
