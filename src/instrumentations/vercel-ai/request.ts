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
import { sanitizeWith, type Walk } from '../../audit/sanitize';
import { isObj, type Obj } from '../../audit/sanitize/messages';
import {
  embeddingsInput,
  inlineDataPart,
  jsonSafe,
  payloadOf,
  unknownPart,
  type GenAIInputMessage,
  type GenAIPart,
} from '../../audit/content/genai-messages';
import type { RequestWalker } from '../../core/types';

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

function walkPrompt(w: Walk, params: Obj): Obj {
  return w.field(params, 'prompt', (prompt) => (Array.isArray(prompt) ? w.array(prompt, (message) => walkMessage(w, message)) : prompt));
}

function walkMessage(w: Walk, message: unknown): unknown {
  if (!isObj(message)) return message;
  if (message['role'] === 'system') return w.textField(message, 'content');
  return w.field(message, 'content', (content) => (Array.isArray(content) ? w.array(content, (part) => walkPart(w, part)) : content));
}

function walkPart(w: Walk, part: unknown): unknown {
  if (!isObj(part)) return part;
  switch (part['type']) {
    case 'text':
      return w.textField(part, 'text');
    case 'tool-call':
      // A JSON string from the providers of ai 6/7, an object from older ones.
      return w.field(part, 'input', (input) => (typeof input === 'string' ? w.jsonText(input) : w.json(input, 0, new Map())));
    case 'tool-result':
      return w.field(part, 'output', (output) => walkToolOutput(w, output));
    default:
      // file (binary or a URL), reasoning (the model's own, signed by some providers), tool
      // approval responses, and any newer part type.
      return part;
  }
}

function walkToolOutput(w: Walk, output: unknown): unknown {
  if (!isObj(output)) return output;
  switch (output['type']) {
    case 'text':
    case 'error-text':
      return w.textField(output, 'value');
    case 'json':
    case 'error-json':
      return w.field(output, 'value', (value) => w.json(value, 0, new Map()));
    case 'content':
      return w.field(output, 'value', (value) =>
        Array.isArray(value) ? w.array(value, (item) => (isObj(item) && item['type'] === 'text' ? w.textField(item, 'text') : item)) : value,
      );
    default:
      return output;
  }
}

function walkEmbedding(w: Walk, params: Obj): Obj {
  return w.field(params, 'values', (values) => (Array.isArray(values) ? w.array(values, (value) => (typeof value === 'string' ? w.text(value) : value)) : values));
}

// --- encrypted content ---------------------------------------------------------------------------

function promptContent(params: unknown): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  const prompt: unknown[] = isObj(params) && Array.isArray(params['prompt']) ? params['prompt'] : [];
  let system: GenAIPart[] | undefined;
  const input: GenAIInputMessage[] = [];
  for (const message of prompt) {
    try {
      if (!isObj(message) || typeof message['role'] !== 'string') {
        input.push({ role: 'unknown', parts: [unknownPart(message)] });
      } else if (message['role'] === 'system') {
        (system ??= []).push(typeof message['content'] === 'string' ? { type: 'text', content: message['content'] } : unknownPart(message['content']));
      } else {
        const content = message['content'];
        input.push({ role: message['role'], parts: Array.isArray(content) ? content.map(contentPart) : [contentPart(content)] });
      }
    } catch {
      input.push({ role: 'unknown', parts: [{ type: 'unknown', value: '[unreadable]' }] });
    }
  }
  return system === undefined ? { input_messages: input } : { system_instructions: system, input_messages: input };
}

function contentPart(part: unknown): GenAIPart {
  if (typeof part === 'string') return { type: 'text', content: part };
  if (!isObj(part)) return unknownPart(part);
  switch (part['type']) {
    case 'text':
      if (typeof part['text'] === 'string') return { type: 'text', content: part['text'] };
      break;
    case 'reasoning':
      if (typeof part['text'] === 'string') return { type: 'reasoning', content: part['text'] };
      break;
    case 'tool-call':
      if (typeof part['toolName'] === 'string') return { type: 'tool_call', id: stringOrNull(part['toolCallId']), name: part['toolName'], arguments: jsonSafe(part['input']) };
      break;
    case 'tool-result':
      return { type: 'tool_call_response', id: stringOrNull(part['toolCallId']), response: jsonSafe(part['output'] ?? part['result']) };
    case 'file':
      return filePart(part) ?? unknownPart(part);
  }
  return unknownPart(part);
}

function filePart(part: Obj): GenAIPart | undefined {
  const mime = typeof part['mediaType'] === 'string' ? part['mediaType'] : typeof part['mimeType'] === 'string' ? part['mimeType'] : undefined;
  const data = part['data'];
  if (data instanceof URL) return { type: 'uri', modality: modality(mime), ...(mime ? { mime_type: mime } : {}), uri: data.href };
  if (typeof data === 'string' && /^https?:\/\//i.test(data)) return { type: 'uri', modality: modality(mime), ...(mime ? { mime_type: mime } : {}), uri: data };
  if (typeof data === 'string' || data instanceof Uint8Array) return inlineDataPart(data, mime);
  return undefined;
}

function modality(mime: string | undefined): string {
  return mime?.startsWith('image/') ? 'image' : mime?.startsWith('audio/') ? 'audio' : mime?.startsWith('video/') ? 'video' : 'document';
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

// --- the walkers the specs carry -----------------------------------------------------------------

export const languageWalker: RequestWalker = {
  sanitize: (params, sanitizer, mode) => sanitizeWith(walkPrompt, params, sanitizer, mode),
  content: (params, output) => payloadOf(promptContent(params), output),
};

export const embeddingWalker: RequestWalker = {
  sanitize: (params, sanitizer, mode) => sanitizeWith(walkEmbedding, params, sanitizer, mode),
  content: (params, output) => payloadOf({ input_messages: embeddingsInput(isObj(params) ? params['values'] : undefined) }, output),
};
