/**
 * What the Vercel AI SDK sends to a model: the call options of `doGenerate` / `doStream` (a
 * LanguageModelV2/V3/V4 prompt, the same shape in ai 5, 6 and 7) and of `doEmbed` (`values`). One
 * definition of what is system, input and text, used for the hashes, for redaction and for the
 * encrypted content alike.
 *
 * The prompt is provider-neutral (the @ai-sdk provider turns it into its wire format after us):
 * `{role:'system', content: string}`, and user / assistant / tool messages whose content is an
 * array of parts: `text`, `file` (bytes, base64 or a URL), `reasoning`, `tool-call` (`input`),
 * `tool-result` (`output`: `{type:'text'|'json'|'error-text'|'error-json'|'content', value}`).
 */
import type { TextWalk } from '../../audit/sanitize';
import { embeddingsInput, type ContentParts, type GenAIInputMessage, type GenAIPart } from '../../audit/content/genai-messages';
import type { RequestWalker } from '../../core/types';

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// --- hashes --------------------------------------------------------------------------------------

/** The system messages (the `system` option, and any the app put in `messages`) and the rest. */
export function promptForHash(params: any): { system?: unknown; input?: unknown } {
  const prompt: unknown[] = Array.isArray(params?.prompt) ? params.prompt : [];
  let system: unknown[] | undefined;
  const input: unknown[] = [];
  for (const message of prompt) {
    if ((message as { role?: unknown } | null)?.role === 'system') (system ??= []).push(message);
    else input.push(message);
  }
  return { system, input };
}

// --- redaction -----------------------------------------------------------------------------------

function walkPrompt(w: TextWalk, params: Obj): Obj {
  return w.field(params, 'prompt', (prompt) => (Array.isArray(prompt) ? w.array(prompt, (message) => walkMessage(w, message)) : prompt));
}

function walkMessage(w: TextWalk, message: unknown): unknown {
  if (!isObj(message)) return message;
  if (message['role'] === 'system') return w.textField(message, 'content');
  return w.field(message, 'content', (content) => (Array.isArray(content) ? w.array(content, (part) => walkPart(w, part)) : content));
}

function walkPart(w: TextWalk, part: unknown): unknown {
  if (!isObj(part)) return part;
  switch (part['type']) {
    case 'text':
      return w.textField(part, 'text');
    case 'tool-call':
      // A JSON string from the providers of ai 6/7, an object from older ones.
      return w.field(part, 'input', (input) => (typeof input === 'string' ? w.jsonText(input) : w.json(input)));
    case 'tool-result':
      return w.field(part, 'output', (output) => walkToolOutput(w, output));
    default:
      // file (binary or a URL), reasoning (the model's own, signed by some providers), tool
      // approval responses, and any newer part type.
      return part;
  }
}

function walkToolOutput(w: TextWalk, output: unknown): unknown {
  if (!isObj(output)) return output;
  switch (output['type']) {
    case 'text':
    case 'error-text':
      return w.textField(output, 'value');
    case 'json':
    case 'error-json':
      return w.field(output, 'value', (value) => w.json(value));
    case 'content':
      return w.field(output, 'value', (value) =>
        Array.isArray(value) ? w.array(value, (item) => (isObj(item) && item['type'] === 'text' ? w.textField(item, 'text') : item)) : value,
      );
    default:
      return output;
  }
}

function walkEmbedding(w: TextWalk, params: Obj): Obj {
  return w.field(params, 'values', (values) => (Array.isArray(values) ? w.array(values, (value) => (typeof value === 'string' ? w.text(value) : value)) : values));
}

// --- encrypted content ---------------------------------------------------------------------------

function promptContent(params: Obj, parts: ContentParts): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  const prompt: unknown[] = Array.isArray(params['prompt']) ? params['prompt'] : [];
  let system: GenAIPart[] | undefined;
  const input: GenAIInputMessage[] = [];
  for (const message of prompt) {
    if (!isObj(message) || typeof message['role'] !== 'string') {
      input.push({ role: 'unknown', parts: [parts.unknown(message)] });
    } else if (message['role'] === 'system') {
      const content = message['content'];
      (system ??= []).push(typeof content === 'string' ? parts.text(content) : parts.unknown(content));
    } else {
      const content = message['content'];
      const items = Array.isArray(content) ? content : [content];
      input.push({ role: message['role'], parts: items.map((part) => parts.safe(() => contentPart(part, parts))) });
    }
  }
  return system === undefined ? { input_messages: input } : { system_instructions: system, input_messages: input };
}

function contentPart(part: unknown, parts: ContentParts): GenAIPart {
  if (typeof part === 'string') return parts.text(part);
  if (!isObj(part)) return parts.unknown(part);
  switch (part['type']) {
    case 'text':
      if (typeof part['text'] === 'string') return parts.text(part['text']);
      break;
    case 'reasoning':
      if (typeof part['text'] === 'string') return parts.reasoning(part['text']);
      break;
    case 'tool-call':
      if (typeof part['toolName'] === 'string') return parts.toolCall(part['toolCallId'], part['toolName'], part['input']);
      break;
    case 'tool-result':
      return parts.toolResponse(part['toolCallId'], part['output'] ?? part['result']);
    case 'file':
      return filePart(part, parts) ?? parts.unknown(part);
  }
  return parts.unknown(part);
}

/** A file part's `data`: bytes, base64 text, or a URL (a string URL or a URL object) the provider fetches. */
function filePart(part: Obj, parts: ContentParts): GenAIPart | undefined {
  const mime = typeof part['mediaType'] === 'string' ? part['mediaType'] : typeof part['mimeType'] === 'string' ? part['mimeType'] : undefined;
  const data = part['data'];
  if (data instanceof URL) return parts.url(data.href, mime);
  if (typeof data === 'string') return /^(https?|data):/i.test(data) ? parts.url(data, mime) : parts.inline(data, mime);
  if (data instanceof Uint8Array) return parts.inline(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), mime);
  return undefined;
}

// --- the walkers the specs carry -----------------------------------------------------------------

export const languageWalker: RequestWalker = { sanitize: walkPrompt, content: promptContent };

export const embeddingWalker: RequestWalker = {
  sanitize: walkEmbedding,
  content: (params) => ({ input_messages: embeddingsInput(params['values']) }),
};

// --- images, speech, transcription, reranking ----------------------------------------------------
//
// The call options of ImageModel / SpeechModel / TranscriptionModel `doGenerate` and RerankingModel
// `doRerank` (V2 in ai 5, V3 in ai 6 and 7: the same fields).

/** An image or audio given as base64 text or bytes (`data`), or an image file `{type:'file'|'url', ...}` (V3 `files`, `mask`). */
function mediaPart(value: unknown, modality: string, mime: string | undefined, parts: ContentParts): GenAIPart {
  if (typeof value === 'string' || value instanceof Uint8Array) return parts.inline(value, mime, modality);
  if (isObj(value) && value['type'] === 'url' && typeof value['url'] === 'string') return parts.url(value['url'], mime, modality);
  if (isObj(value) && value['type'] === 'file') {
    return mediaPart(value['data'], modality, typeof value['mediaType'] === 'string' ? value['mediaType'] : mime, parts);
  }
  return parts.unknown(value);
}

/** `generateImage`: the prompt is text the model reads; reference images and a mask are input too (digested). */
export const imageWalker: RequestWalker = {
  sanitize: (w, params) => w.textField(params, 'prompt'),
  content(params, parts) {
    const items: GenAIPart[] = [];
    if (typeof params['prompt'] === 'string') items.push(parts.text(params['prompt']));
    for (const file of Array.isArray(params['files']) ? params['files'] : []) items.push(parts.safe(() => mediaPart(file, 'image', undefined, parts)));
    if (params['mask'] !== undefined && params['mask'] !== null) items.push(parts.safe(() => mediaPart(params['mask'], 'image', undefined, parts)));
    return { input_messages: [{ role: 'user', parts: items }] };
  },
};

/**
 * `experimental_generateVideo` / `experimental_startVideo`: the prompt is text the model reads; the
 * start image (`image`), the frame images (`frameImages[].image`) and the reference inputs
 * (`inputReferences`) are input too, digested.
 */
export const videoWalker: RequestWalker = {
  sanitize: (w, params) => w.textField(params, 'prompt'),
  content(params, parts) {
    const items: GenAIPart[] = [];
    if (typeof params['prompt'] === 'string') items.push(parts.text(params['prompt']));
    const media: unknown[] = [params['image'] ?? []].flat();
    for (const frame of Array.isArray(params['frameImages']) ? params['frameImages'] : []) media.push(isObj(frame) ? frame['image'] : frame);
    for (const reference of Array.isArray(params['inputReferences']) ? params['inputReferences'] : []) media.push(reference);
    for (const item of media) {
      if (item === undefined || item === null) continue;
      const modality = isObj(item) && typeof item['mediaType'] === 'string' && item['mediaType'].startsWith('video/') ? 'video' : 'image';
      items.push(parts.safe(() => mediaPart(item, modality, undefined, parts)));
    }
    return { input_messages: [{ role: 'user', parts: items }] };
  },
};

/** `generateSpeech`: the text to speak, and the speaking `instructions` as the system instructions. */
export const speechWalker: RequestWalker = {
  sanitize: (w, params) => w.textField(w.textField(params, 'text'), 'instructions'),
  content(params, parts) {
    const input: GenAIInputMessage[] = [{ role: 'user', parts: typeof params['text'] === 'string' ? [parts.text(params['text'])] : [] }];
    return typeof params['instructions'] === 'string' ? { system_instructions: [parts.text(params['instructions'])], input_messages: input } : { input_messages: input };
  },
};

/** `transcribe`: the audio, digested; nothing in it for the sanitizer to read. */
export const transcriptionWalker: RequestWalker = {
  sanitize: (_w, params) => params,
  content: (params, parts) => ({
    input_messages: [{ role: 'user', parts: [parts.safe(() => mediaPart(params['audio'], 'audio', typeof params['mediaType'] === 'string' ? params['mediaType'] : undefined, parts))] }],
  }),
};

/** `rerank`: the query (a user message) and the documents (one user message, a part per document: text, or JSON objects). */
export const rerankWalker: RequestWalker = {
  sanitize(w, params) {
    const out = w.textField(params, 'query');
    return w.field(out, 'documents', (documents) =>
      isObj(documents) ? w.field(documents, 'values', (values) => (Array.isArray(values) ? w.array(values, (value) => (typeof value === 'string' ? w.text(value) : w.json(value))) : values)) : documents,
    );
  },
  content(params, parts) {
    const documents = isObj(params['documents']) && Array.isArray(params['documents']['values']) ? params['documents']['values'] : [];
    return {
      input_messages: [
        { role: 'user', parts: typeof params['query'] === 'string' ? [parts.text(params['query'])] : [] },
        { role: 'user', parts: documents.map((value) => (typeof value === 'string' ? parts.text(value) : parts.unknown(value, 'document'))) },
      ],
    };
  },
};

// --- decisions -----------------------------------------------------------------------------------
//
// ai 7's `experimental_decide` / `experimental_evaluate` (Experimental_DecisionModelV4 `doDecide`,
// or a legacy model's `doEvaluate`): `state`, the material to judge (text, JSON values and files,
// downloaded by ai before the call), and `questions`, by name: `{type: 'boolean'|'choice'|'score',
// instructions?, criteria?}`, which the provider turns into the model's instructions.

/** A decision state part: `{type:'text', text}`, `{type:'json', value}`, `{type:'file', mediaType, data:{type:'data', data}|{type:'url', url}}`. */
function statePart(part: unknown, parts: ContentParts): GenAIPart {
  if (!isObj(part)) return parts.unknown(part);
  if (part['type'] === 'text' && typeof part['text'] === 'string') return parts.text(part['text']);
  if (part['type'] === 'file' && isObj(part['data'])) {
    const mime = typeof part['mediaType'] === 'string' ? part['mediaType'] : undefined;
    const data = part['data'];
    return mediaPart(data['type'] === 'data' ? data['data'] : data, 'image', mime, parts);
  }
  return parts.unknown(part['type'] === 'json' ? part['value'] : part, typeof part['type'] === 'string' ? part['type'] : undefined);
}

/** The state as the user's message, the questions (with their instructions and criteria) as the system instructions. */
export const decisionWalker: RequestWalker = {
  sanitize(w, params) {
    const out = w.field(params, 'state', (state) =>
      Array.isArray(state)
        ? w.array(state, (part) => (isObj(part) && part['type'] === 'text' ? w.textField(part, 'text') : isObj(part) && part['type'] === 'json' ? w.field(part, 'value', (value) => w.json(value)) : part))
        : state,
    );
    // Instructions and criteria are text the model reads; their keys (question names, choice values) are the answer's shape.
    return w.field(out, 'questions', (questions) => (isObj(questions) ? w.json(questions) : questions));
  },
  content(params, parts) {
    const state: unknown[] = Array.isArray(params['state']) ? params['state'] : [];
    const questions = params['questions'];
    const input: GenAIInputMessage[] = [{ role: 'user', parts: state.map((part) => parts.safe(() => statePart(part, parts))) }];
    return questions === undefined ? { input_messages: input } : { system_instructions: [parts.unknown(questions, 'questions')], input_messages: input };
  },
};
