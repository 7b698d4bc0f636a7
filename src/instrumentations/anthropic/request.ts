/**
 * The request of Anthropic `messages` calls (`messages.create`, `beta.messages.create`, each
 * request of a batch, `countTokens`, and Claude's InvokeModel body on Bedrock), walked ONCE: this
 * walk decides what the system prompt, the messages and their content blocks are; the sanitizer
 * (scan, redact) and the encrypted content both run it, each with its own visitor, and the hashes
 * cover the same two fields ({@link promptOf}).
 *
 * What the sanitizer scans, per block type (@anthropic-ai/sdk 1 request types): text, tool_use
 * input (the string leaves of free-form JSON), tool results, plain-text and content documents with
 * their title and context, search results. Left alone: images, base64 / URL / file documents,
 * thinking and redacted_thinking blocks (signed by the provider), server tool blocks, container
 * uploads, and anything of an unexpected shape. The envelope keeps every block, unknown ones as
 * `{type:'unknown'}` parts, and never copies a thinking signature or redacted thinking.
 */
import type { TextWalk } from '../../audit/sanitize';
import { jsonSafe, type ContentParts, type GenAIInputMessage, type GenAIPart } from '../../audit/content/genai-messages';
import type { RequestWalker } from '../../core/types';
import { readOnly, type Traversal } from '../../core/request-walk';

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the walk needs from its visitor: copy-on-write traversal, where messages start, and each block. */
interface Visitor extends Traversal {
  /** A message starts: the system prompt (`system` true, role 'system'), else a message of its role ('unknown' when it has none). */
  message(role: string, system: boolean): void;
  /** One content block of the current message, or its whole content when that is a string; returns what to send. */
  block(block: unknown): unknown;
  /** Something where a message or its content should be, of another shape: recorded by the envelope, never scanned. */
  odd(value: unknown): void;
}

/** What the system and input hashes cover: `system` (absent when the request has none) and `messages`, as sent. */
export function promptOf(params: any): { system?: unknown; input?: unknown } {
  return { system: params?.system ?? undefined, input: params?.messages };
}

function walk(params: Obj, v: Visitor): Obj {
  let out = v.field(params, 'system', (system) => {
    if (system !== undefined && system !== null) v.message('system', true);
    return content(v, system);
  });
  out = v.field(out, 'messages', (messages) => {
    if (Array.isArray(messages)) return v.array(messages, (m) => message(v, m));
    if (messages !== undefined && messages !== null) v.odd(messages);
    return messages;
  });
  return out;
}

function message(v: Visitor, m: unknown): unknown {
  if (!isObj(m)) {
    v.message('unknown', false);
    v.odd(m);
    return m;
  }
  v.message(typeof m.role === 'string' ? m.role : 'unknown', false);
  return v.field(m, 'content', (c) => content(v, c));
}

/** A string or an array of content blocks. */
function content(v: Visitor, value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (typeof value === 'string') return v.block(value);
  if (Array.isArray(value)) return v.array(value, (block) => v.block(block));
  v.odd(value);
  return value;
}

// --- the sanitizer's visitor ----------------------------------------------------------------------

/** A string or blocks nested in a block (tool results, search results, content documents). */
function sanitizeBlocks(w: TextWalk, value: unknown): unknown {
  if (typeof value === 'string') return w.text(value);
  return Array.isArray(value) ? w.array(value, (block) => sanitizeBlock(w, block)) : value;
}

function sanitizeBlock(w: TextWalk, block: unknown): unknown {
  if (typeof block === 'string') return w.text(block);
  if (!isObj(block)) return block;
  switch (block.type) {
    case 'text':
      // `citations` quote documents sent earlier in the request; they are left as they are.
      return w.textField(block, 'text');
    case 'tool_use':
      return w.field(block, 'input', (input) => w.json(input));
    case 'tool_result':
    case 'search_result':
      return w.field(block, 'content', (c) => sanitizeBlocks(w, c));
    case 'document': {
      let out = w.field(block, 'source', (source) => {
        if (!isObj(source)) return source;
        if (source.type === 'text') return w.textField(source, 'data');
        if (source.type === 'content') return w.field(source, 'content', (c) => sanitizeBlocks(w, c));
        return source; // base64 / URL PDFs, file ids
      });
      out = w.textField(out, 'context');
      return w.textField(out, 'title');
    }
    default:
      // image, thinking / redacted_thinking (signed), server tool blocks, container uploads.
      return block;
  }
}

// --- the envelope's visitor -----------------------------------------------------------------------

function blockParts(b: ContentParts, value: unknown): GenAIPart[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [b.text(value)];
  if (!Array.isArray(value)) return [b.unknown(value)];
  return value.map((block) => b.safe(() => contentBlock(b, block)));
}

function contentBlock(b: ContentParts, block: unknown): GenAIPart {
  if (typeof block === 'string') return b.text(block);
  if (!isObj(block)) return b.unknown(block);
  switch (block.type) {
    case 'text':
      return typeof block.text === 'string' ? b.text(block.text) : b.unknown(block);
    case 'image':
    case 'document': {
      const part = source(b, block.source, block.type === 'image' ? 'image' : 'document');
      if (part === undefined) return b.unknown(block);
      if (typeof block.title === 'string') (part as Obj).title = block.title;
      return part;
    }
    case 'tool_use':
      return b.toolCall(block.id, typeof block.name === 'string' ? block.name : '', block.input);
    case 'server_tool_use':
      return {
        type: 'server_tool_call',
        id: typeof block.id === 'string' ? block.id : null,
        name: typeof block.name === 'string' ? block.name : '',
        server_tool_call: { type: String(block.name ?? 'unknown'), input: jsonSafe(block.input) },
      };
    case 'tool_result': {
      const part = b.toolResponse(block.tool_use_id, typeof block.content === 'string' || block.content === undefined ? (block.content ?? null) : blockParts(b, block.content));
      if (block.is_error === true) (part as Obj).is_error = true;
      return part;
    }
    case 'thinking':
      // The signature is opaque provider data and is not copied.
      return typeof block.thinking === 'string' ? b.reasoning(block.thinking) : b.unknown(block);
    case 'redacted_thinking':
      // Encrypted by the provider; nothing readable to keep.
      return { type: 'reasoning', content: '', redacted: true };
    default:
      return b.unknown(block);
  }
}

function source(b: ContentParts, src: unknown, modality: string): GenAIPart | undefined {
  if (!isObj(src)) return undefined;
  const mime = typeof src.media_type === 'string' ? src.media_type : undefined;
  switch (src.type) {
    case 'base64':
      return typeof src.data === 'string' ? b.inline(src.data, mime, modality) : undefined;
    case 'url':
      return typeof src.url === 'string' ? b.url(src.url, mime, modality) : undefined;
    case 'file':
      return typeof src.file_id === 'string' ? { type: 'file', modality, file_id: src.file_id } : undefined;
    case 'text':
      // A plain-text document is text the model reads.
      return typeof src.data === 'string' ? b.text(src.data) : undefined;
    case 'content': {
      const parts = blockParts(b, src.content);
      const text = parts.every((p) => p.type === 'text') ? parts.map((p) => (p as { content: string }).content).join('\n') : undefined;
      return text !== undefined ? b.text(text) : { type: 'unknown', provider_type: 'content', value: jsonSafe(parts) };
    }
    default:
      return undefined;
  }
}

/** The conventions' system instructions and input messages of one request. */
function collect(params: Obj, b: ContentParts): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  let system: GenAIPart[] | undefined;
  const input: GenAIInputMessage[] = [];
  let current: GenAIPart[] = [];
  walk(params, {
    ...readOnly,
    message(role, isSystem) {
      current = [];
      if (isSystem) system = current;
      else input.push({ role, parts: current });
    },
    block(block) {
      current.push(...(typeof block === 'string' ? [b.text(block)] : blockParts(b, [block])));
      return block;
    },
    odd(value) {
      current.push(b.unknown(value));
    },
  });
  return system === undefined ? { input_messages: input } : { system_instructions: system, input_messages: input };
}

function sanitizeWalk(w: TextWalk, params: Obj): Obj {
  let known = false;
  return walk(params, {
    field: (obj, key, fn) => w.field(obj, key, fn),
    array: (items, fn) => w.array(items, fn),
    // Only the roles the API has: the blocks of anything else are not text the model reads as sent.
    message: (role, isSystem) => void (known = isSystem || role === 'user' || role === 'assistant'),
    block: (block) => (known ? sanitizeBlock(w, block) : block),
    odd: () => undefined,
  });
}

/** The Messages API request: `messages.create` and everything that sends the same body. */
export const messagesRequest: RequestWalker = { sanitize: sanitizeWalk, content: collect };

/**
 * `messages.batches.create`: `requests[i].params` are Messages API requests. Their content goes to
 * the envelope in request order (each request's system prompt into the system instructions, its
 * messages into the input), each message named by its request's `custom_id`.
 */
export const batchRequest: RequestWalker = {
  sanitize: (w, params) =>
    w.field(params, 'requests', (requests) =>
      Array.isArray(requests) ? w.array(requests, (r) => (isObj(r) ? w.field(r, 'params', (p) => (isObj(p) ? sanitizeWalk(w, p) : p)) : r)) : requests,
    ),
  content(params, b) {
    let system: GenAIPart[] | undefined;
    const input: GenAIInputMessage[] = [];
    for (const request of Array.isArray(params.requests) ? params.requests : []) {
      const one = isObj(request) && isObj(request.params) ? collect(request.params, b) : { input_messages: [{ role: 'unknown', parts: [b.unknown(request)] }] };
      if (one.system_instructions !== undefined) (system ??= []).push(...one.system_instructions);
      const name = isObj(request) && typeof request.custom_id === 'string' ? request.custom_id : undefined;
      for (const m of one.input_messages) input.push(name === undefined ? m : { ...m, name });
    }
    return system === undefined ? { input_messages: input } : { system_instructions: system, input_messages: input };
  },
};
