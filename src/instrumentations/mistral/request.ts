/**
 * The request of `@mistralai/mistralai` calls (the SDK's camelCase params), walked ONCE: the
 * sanitizer (scan, redact) and the encrypted content both run this walk with their own visitor,
 * and the hashes split the same messages the same way ({@link promptOf}): `system` messages are
 * the system prompt, the others the input.
 *
 * Text a model reads: message content (a string, or `text` chunks), assistant tool call arguments
 * (a JSON string or an object) and tool results. Images, documents, audio and `thinking` chunks
 * (the model's own reasoning, sent back as it came) are left alone by the sanitizer; inline data
 * is digested in the envelope.
 */
import type { TextWalk } from '../../audit/sanitize';
import type { ContentParts, GenAIInputMessage, GenAIPart } from '../../audit/content/genai-messages';
import type { RequestWalker } from '../../core/types';
import { MessageCollector, readOnly, type Traversal } from '../../core/request-walk';

type Obj = Record<string, unknown>;
type PartKind = 'content' | 'tool_call' | 'tool_result';

interface Visitor extends Traversal {
  /** A message starts (its role: system, user, assistant, tool). */
  message(role: string): void;
  /** One piece of the current message; `id` is the tool call a result answers. Returns what to send. */
  part(value: unknown, kind: PartKind, id?: unknown): unknown;
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isSystem = (message: unknown): boolean => isObj(message) && message.role === 'system';

/** What the system and input hashes cover: the system messages and the others, in order. */
export function promptOf(params: any): { system?: unknown; input?: unknown } {
  const messages: unknown[] = Array.isArray(params?.messages) ? params.messages : [];
  const system = messages.filter(isSystem);
  return { system: system.length > 0 ? system : undefined, input: messages.filter((m) => !isSystem(m)) };
}

function walkChat(params: Obj, v: Visitor): Obj {
  return v.field(params, 'messages', (messages) => (Array.isArray(messages) ? v.array(messages, (m) => message(v, m)) : messages));
}

function message(v: Visitor, m: unknown): unknown {
  if (!isObj(m)) return m;
  const role = typeof m.role === 'string' ? m.role : 'user';
  v.message(role);
  if (role === 'tool') return v.field(m, 'content', (content) => v.part(content, 'tool_result', m.toolCallId));
  let out = v.field(m, 'content', (content) => (Array.isArray(content) ? v.array(content, (chunk) => v.part(chunk, 'content')) : v.part(content, 'content')));
  if (role === 'assistant') out = v.field(out, 'toolCalls', (calls) => (Array.isArray(calls) ? v.array(calls, (call) => v.part(call, 'tool_call')) : calls));
  return out;
}

/** `embeddings.create`: each input is a message of its own. */
function walkEmbed(params: Obj, v: Visitor): Obj {
  return v.field(params, 'inputs', (inputs) => {
    if (!Array.isArray(inputs)) {
      v.message('user');
      return v.part(inputs, 'content');
    }
    return v.array(inputs, (input) => {
      v.message('user');
      return v.part(input, 'content');
    });
  });
}

// --- the sanitizer's visitor ----------------------------------------------------------------------

function sanitizeChunk(w: TextWalk, chunk: unknown): unknown {
  if (typeof chunk === 'string') return w.text(chunk);
  return isObj(chunk) && chunk.type === 'text' ? w.textField(chunk, 'text') : chunk;
}

function sanitizePart(w: TextWalk, value: unknown, kind: PartKind): unknown {
  if (kind === 'tool_call') {
    if (!isObj(value)) return value;
    return w.field(value, 'function', (fn) =>
      isObj(fn) ? (typeof fn.arguments === 'string' ? w.jsonField(fn, 'arguments') : w.field(fn, 'arguments', (args) => w.json(args))) : fn,
    );
  }
  return Array.isArray(value) ? w.array(value, (chunk) => sanitizeChunk(w, chunk)) : sanitizeChunk(w, value);
}

// --- the envelope's visitor -----------------------------------------------------------------------

function chunkText(chunks: unknown): string {
  if (typeof chunks === 'string') return chunks;
  return Array.isArray(chunks) ? chunks.map((c) => (isObj(c) && typeof c.text === 'string' ? c.text : '')).join('') : '';
}

function contentChunk(b: ContentParts, chunk: unknown): GenAIPart {
  if (typeof chunk === 'string') return b.text(chunk);
  if (!isObj(chunk)) return b.unknown(chunk);
  switch (chunk.type) {
    case 'text':
      return typeof chunk.text === 'string' ? b.text(chunk.text) : b.unknown(chunk);
    case 'thinking':
      return b.reasoning(chunkText(chunk.thinking));
    case 'image_url': {
      const url = isObj(chunk.imageUrl) ? chunk.imageUrl.url : chunk.imageUrl;
      return typeof url === 'string' ? b.url(url, undefined, 'image') : b.unknown(chunk);
    }
    case 'document_url':
      return typeof chunk.documentUrl === 'string' ? b.url(chunk.documentUrl, undefined, 'document') : b.unknown(chunk);
    default:
      return b.unknown(chunk);
  }
}

function contentPart(b: ContentParts, value: unknown, kind: PartKind, id: unknown): GenAIPart[] {
  if (kind === 'tool_call') {
    const fn = isObj(value) ? value.function : undefined;
    return [isObj(fn) && typeof fn.name === 'string' ? b.toolCall((value as Obj).id, fn.name, fn.arguments) : b.unknown(value)];
  }
  if (kind === 'tool_result') return [b.toolResponse(id, typeof value === 'string' || Array.isArray(value) ? chunkText(value) : value)];
  if (value === undefined || value === null) return [];
  return [b.safe(() => contentChunk(b, value))];
}

function collect(walk: (params: Obj, v: Visitor) => Obj, params: Obj, b: ContentParts): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  const messages = new MessageCollector();
  walk(params, {
    ...readOnly,
    message: (role) => messages.message(role),
    part(value, kind, id) {
      messages.push(...contentPart(b, value, kind, id));
      return value;
    },
  });
  return messages.result();
}

function requestWalker(walk: (params: Obj, v: Visitor) => Obj): RequestWalker {
  return {
    sanitize: (w, params) =>
      walk(params, {
        field: (obj, key, fn) => w.field(obj, key, fn),
        array: (items, fn) => w.array(items, fn),
        message: () => undefined,
        part: (value, kind) => sanitizePart(w, value, kind),
      }),
    content: (params, parts) => collect(walk, params, parts),
  };
}

export const chatRequest = requestWalker(walkChat);
export const embedRequest = requestWalker(walkEmbed);
