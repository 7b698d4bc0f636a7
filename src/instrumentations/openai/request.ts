/**
 * The requests of the `openai` SDK, walked ONCE per request shape: the sanitizer (scan, redact)
 * runs a walk with its TextWalk, the encrypted content and the hashes run the same walk with a
 * walk that changes nothing (`readOnly`), so what "the system prompt" and "the input" of a call
 * are is decided here, in one place, for the three of them.
 *
 * The system prompt of a chat call is its `system` and `developer` messages (the API's
 * instructions to the model, wherever they sit in the history): the system hash covers them, and
 * the envelope holds their parts as `system_instructions`; the other messages are the input.
 * Responses: `instructions` and `input`. The other operations have no system prompt.
 *
 * What is scanned is decided per field, from the SDK request types (openai 6): user-visible text,
 * tool call arguments and tool results. Binary and opaque fields are never touched: images, audio,
 * files, reasoning items (encrypted). Anything of an unexpected shape is left alone and not
 * counted by the sanitizer, and kept as an `unknown` part in the content.
 */
import type { ContentParts, GenAIInputMessage, GenAIPart, RequestContent } from '../../audit/content/genai-messages';
import { isTokenArray, tokensPart } from '../../audit/content/genai-messages';
import { uploadDescription } from './uploads';
import { readingWalk, type TextWalk } from '../../audit/sanitize';
import type { RequestWalker } from '../../core/types';

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const IDENTIFIER = /^[A-Za-z_$][\w$]{0,63}$/;

/** The walk that reads a request and changes nothing (shared: a walk keeps no state between requests). */
const readOnly = readingWalk();

/** What one walk over a request yields besides the params to send: the content, when a part builder was given. */
class Walked {
  system: GenAIPart[] | undefined;
  readonly messages: GenAIInputMessage[] = [];

  constructor(
    public params: Obj,
    readonly make: ContentParts | undefined,
  ) {}

  /** A message of the history; `system` ones go to the system instructions. */
  message(role: string, system: boolean, parts: GenAIPart[], name?: unknown): void {
    if (system) (this.system ??= []).push(...parts);
    else this.messages.push(typeof name === 'string' ? { role, parts, name } : { role, parts });
  }

  content(): RequestContent {
    return this.system === undefined ? { input_messages: this.messages } : { system_instructions: this.system, input_messages: this.messages };
  }
}

type Walk = (w: TextWalk, walked: Walked) => void;

/** What the system prompt and input hashes cover (OperationSpec.prompt). */
export type Prompt = (params: any) => { system?: unknown; input?: unknown };

/** One request shape of the SDK: its walker, and what its hashes cover. */
export type OpenAIRequest = RequestWalker & { prompt: Prompt };

/**
 * The walker of one request shape: one walk for the sanitizer and the content, and beside it what
 * the hashes cover, split the same way. The hashes take the request's own values (messages as
 * sent), not the walk's: hashing runs on every call and resumes a long conversation where the
 * previous call left it (audit/conversation-memo.ts), which a walk over every message would undo.
 */
function requestWalker(walk: Walk, prompt: Prompt): OpenAIRequest {
  const run = (w: TextWalk, params: Obj, make?: ContentParts): Walked => {
    const walked = new Walked(params, make);
    walk(w, walked);
    return walked;
  };
  return {
    sanitize: (w, params) => run(w, params).params,
    content: (params, make) => run(readOnly, params, make).content(),
    prompt,
  };
}

/**
 * Walks one message or item; for the content, one that cannot be read (a getter that throws) is
 * an `unknown` message rather than an exception (the sanitizer's walk lets it throw: its caller
 * fails closed).
 */
function guarded(walked: Walked, item: unknown, walk: (item: unknown) => unknown): unknown {
  if (walked.make === undefined) return walk(item);
  const depth = readOnly.path.length;
  try {
    return walk(item);
  } catch {
    // The shared walk's location is left as it was before the item.
    readOnly.path.length = depth;
    walked.message('unknown', false, [{ type: 'unknown', value: '[unreadable]' }]);
    return item;
  }
}

/** Pushes a part (built only when content is asked for). */
function push(walked: Walked, parts: GenAIPart[], build: (make: ContentParts) => GenAIPart): void {
  const make = walked.make;
  if (make !== undefined) parts.push(make.safe(() => build(make)));
}

// --- chat.completions ------------------------------------------------------------------------------

/** The messages the API reads as instructions: the system prompt of a chat call. */
function isChatSystem(role: unknown): boolean {
  return role === 'system' || role === 'developer';
}

/** The system prompt is the system and developer messages, the input the others, each in order. */
const chatPrompt: Prompt = (params) => {
  const messages: unknown[] = Array.isArray(params?.messages) ? params.messages : [];
  let system: unknown[] | undefined;
  const input: unknown[] = [];
  for (const message of messages) {
    if (isChatSystem((message as { role?: unknown } | null)?.role)) (system ??= []).push(message);
    else input.push(message);
  }
  return { system, input };
};

const CHAT_ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

const chatWalk: Walk = (w, walked) => {
  walked.params = w.field(walked.params, 'messages', (messages) => {
    if (!Array.isArray(messages)) {
      if (messages !== undefined && messages !== null && walked.make !== undefined) walked.message('unknown', false, [walked.make.unknown(messages)]);
      return messages;
    }
    return w.array(messages, (m) => guarded(walked, m, () => chatMessage(w, walked, m)));
  });
  // Predicted output is sent to the model as text too (scanned; not a message of the history).
  walked.params = w.field(walked.params, 'prediction', (p) => (isObj(p) ? w.field(p, 'content', (c) => chatContent(w, walked, c, [])) : p));
};

function chatMessage(w: TextWalk, walked: Walked, m: unknown): unknown {
  if (!isObj(m) || typeof m['role'] !== 'string') {
    if (walked.make !== undefined) walked.message('unknown', false, [walked.make.unknown(m)]);
    return m;
  }
  const role = m['role'];
  // A role the API does not know is refused by it: such a message is not scanned (nor counted),
  // but it is in the content as it was sent.
  if (!CHAT_ROLES.has(role) && w !== readOnly) {
    chatMessage(readOnly, walked, m);
    return m;
  }
  const parts: GenAIPart[] = [];
  if (role === 'tool' || role === 'function') {
    // A tool result; `function` is the deprecated function-calling result (`name` is the function).
    const next = w.field(m, 'content', (c) => chatContent(w, walked, c, undefined));
    push(walked, parts, (make) => make.toolResponse(role === 'tool' ? m['tool_call_id'] : null, chatToolResult(make, next['content'])));
    walked.message('tool', false, parts, m['name']);
    return next;
  }
  // `name` identifies a participant and is not content.
  let out = w.field(m, 'content', (c) => chatContent(w, walked, c, parts));
  out = w.textField(out, 'refusal');
  if (typeof out['refusal'] === 'string') push(walked, parts, (make) => make.text(out['refusal'] as string));
  out = w.field(out, 'tool_calls', (calls) => (Array.isArray(calls) ? w.array(calls, (call) => chatToolCall(w, walked, call, parts)) : calls));
  out = w.field(out, 'function_call', (call) => {
    if (!isObj(call)) return call;
    const next = w.jsonField(call, 'arguments');
    if (typeof next['name'] === 'string') push(walked, parts, (make) => make.toolCall(undefined, next['name'] as string, next['arguments']));
    return next;
  });
  if (out['audio'] !== undefined && out['audio'] !== null) push(walked, parts, (make) => make.unknown(out['audio'], 'audio'));
  walked.message(role, isChatSystem(role), parts, m['name']);
  return out;
}

/** A message's content: a string, or parts of which `text` and `refusal` are text; image, audio and file parts are left alone. */
function chatContent(w: TextWalk, walked: Walked, content: unknown, parts: GenAIPart[] | undefined): unknown {
  if (typeof content === 'string') {
    const next = w.text(content);
    if (parts !== undefined) push(walked, parts, (make) => make.text(next));
    return next;
  }
  if (!Array.isArray(content)) {
    if (parts !== undefined && content !== undefined && content !== null) push(walked, parts, (make) => make.unknown(content));
    return content;
  }
  return w.array(content, (part) => {
    const next = chatPart(w, part);
    if (parts !== undefined) push(walked, parts, (make) => chatPartContent(make, next));
    return next;
  });
}

function chatPart(w: TextWalk, part: unknown): unknown {
  if (!isObj(part)) return part;
  if (part['type'] === 'text') return w.textField(part, 'text');
  if (part['type'] === 'refusal') return w.textField(part, 'refusal');
  return part;
}

function chatPartContent(make: ContentParts, part: unknown): GenAIPart {
  if (typeof part === 'string') return make.text(part);
  if (!isObj(part)) return make.unknown(part);
  switch (part['type']) {
    case 'text':
      return typeof part['text'] === 'string' ? make.text(part['text']) : make.unknown(part);
    case 'refusal':
      return typeof part['refusal'] === 'string' ? make.text(part['refusal']) : make.unknown(part);
    case 'image_url': {
      const url = isObj(part['image_url']) ? part['image_url']['url'] : part['image_url'];
      return typeof url === 'string' ? make.url(url, undefined, 'image') : make.unknown(part);
    }
    case 'input_audio':
      return audioPart(make, part['input_audio'], part);
    case 'file': {
      const file = part['file'];
      return (isObj(file) ? make.file({ fileId: file['file_id'], fileData: file['file_data'], filename: file['filename'] }) : undefined) ?? make.unknown(part);
    }
    default:
      return make.unknown(part);
  }
}

function audioPart(make: ContentParts, audio: unknown, part: Obj): GenAIPart {
  if (!isObj(audio) || typeof audio['data'] !== 'string') return make.unknown(part);
  return make.inline(audio['data'], typeof audio['format'] === 'string' ? `audio/${audio['format']}` : undefined, 'audio');
}

/** A tool result: the string as is, else its content parts. */
function chatToolResult(make: ContentParts, content: unknown): unknown {
  if (typeof content === 'string') return content;
  if (content === undefined || content === null) return null;
  if (!Array.isArray(content)) return [make.unknown(content)];
  return content.map((part) => make.safe(() => chatPartContent(make, part)));
}

function chatToolCall(w: TextWalk, walked: Walked, call: unknown, parts: GenAIPart[]): unknown {
  if (!isObj(call)) {
    push(walked, parts, (make) => make.unknown(call));
    return call;
  }
  if (call['type'] === 'custom' || (call['type'] === undefined && isObj(call['custom']))) {
    const next = w.field(call, 'custom', (c) => (isObj(c) ? w.textField(c, 'input') : c));
    const custom = next['custom'];
    push(walked, parts, (make) => (isObj(custom) && typeof custom['name'] === 'string' ? make.toolCall(next['id'], custom['name'], custom['input']) : make.unknown(call)));
    return next;
  }
  // `type: 'function'` (older SDKs may omit the type).
  const next = w.field(call, 'function', (f) => (isObj(f) ? w.jsonField(f, 'arguments') : f));
  const fn = next['function'];
  push(walked, parts, (make) => (isObj(fn) && typeof fn['name'] === 'string' ? make.toolCall(next['id'], fn['name'], fn['arguments']) : make.unknown(call)));
  return next;
}

// --- responses ---------------------------------------------------------------------------------

const responsesWalk: Walk = (w, walked) => {
  let out = w.field(walked.params, 'instructions', (instructions) => {
    if (typeof instructions === 'string') {
      const next = w.text(instructions);
      push(walked, (walked.system ??= []), (make) => make.text(next));
      return next;
    }
    // As echoed in a response (or a previous response's instructions sent again): input items.
    if (Array.isArray(instructions)) {
      const before = walked.messages.length;
      const next = w.array(instructions, (item) => responsesItem(w, walked, item));
      for (const message of walked.messages.splice(before)) (walked.system ??= []).push(...message.parts);
      return next;
    }
    if (instructions !== undefined && instructions !== null) push(walked, (walked.system ??= []), (make) => make.unknown(instructions));
    return instructions;
  });
  out = w.field(out, 'input', (input) => {
    if (typeof input === 'string') {
      const next = w.text(input);
      const parts: GenAIPart[] = [];
      push(walked, parts, (make) => make.text(next));
      walked.message('user', false, parts);
      return next;
    }
    if (!Array.isArray(input)) {
      if (input !== undefined && input !== null && walked.make !== undefined) walked.message('unknown', false, [walked.make.unknown(input)]);
      return input;
    }
    return w.array(input, (item) => guarded(walked, item, () => responsesItem(w, walked, item)));
  });
  // Reusable prompt variables are substituted into the prompt: strings or input_text parts.
  out = w.field(out, 'prompt', (prompt) =>
    isObj(prompt)
      ? w.field(prompt, 'variables', (vars) => {
          if (!isObj(vars)) return vars;
          let copy = vars;
          for (const key of Object.keys(vars)) {
            const value = vars[key];
            w.path.push(IDENTIFIER.test(key) ? key : '*');
            const next = typeof value === 'string' ? w.text(value) : responsesPart(w, value);
            w.path.pop();
            if (next !== value) copy = { ...copy, [key]: next };
          }
          return copy;
        })
      : prompt,
  );
  walked.params = out;
};

function responsesItem(w: TextWalk, walked: Walked, item: unknown): unknown {
  if (!isObj(item)) {
    if (walked.make !== undefined) walked.message('unknown', false, [walked.make.unknown(item)]);
    return item;
  }
  const type = item['type'];
  const parts: GenAIPart[] = [];
  // Messages (`{ role, content }`), input and output messages alike.
  if ((type === undefined || type === 'message') && typeof item['role'] === 'string') {
    const next = w.field(item, 'content', (content) => responsesContent(w, walked, content, parts));
    walked.message(item['role'], false, parts);
    return next;
  }
  let next: Obj = item;
  let role = 'assistant';
  switch (type) {
    case 'function_call':
      next = w.jsonField(item, 'arguments');
      push(walked, parts, (make) => make.toolCall(next['call_id'], typeof next['name'] === 'string' ? next['name'] : '', next['arguments']));
      break;
    case 'custom_tool_call':
      next = w.textField(item, 'input');
      push(walked, parts, (make) => make.toolCall(next['call_id'], typeof next['name'] === 'string' ? next['name'] : '', next['input']));
      break;
    case 'function_call_output':
    case 'custom_tool_call_output':
      role = 'tool';
      next = w.field(item, 'output', (output) => {
        if (typeof output === 'string') return w.text(output);
        return Array.isArray(output) ? w.array(output, (part) => responsesPart(w, part)) : output;
      });
      push(walked, parts, (make) =>
        make.toolResponse(next['call_id'], typeof next['output'] === 'string' ? next['output'] : responsesPartsOf(make, next['output'])),
      );
      break;
    case 'reasoning':
      // The model's own reasoning, sent back as it came; `encrypted_content` is opaque provider
      // data, neither scanned nor copied.
      for (const list of [item['summary'], item['content']]) {
        if (!Array.isArray(list)) continue;
        for (const entry of list) if (isObj(entry) && typeof entry['text'] === 'string') push(walked, parts, (make) => make.reasoning(entry['text'] as string));
      }
      break;
    default:
      // Tool calls and outputs kept whole in the content (MCP and shell calls and their outputs:
      // their text is scanned), item_reference, computer and image generation calls, and any
      // newer item type.
      if (type === 'mcp_call') next = w.textField(w.jsonField(item, 'arguments'), 'output');
      else if (type === 'local_shell_call_output') next = w.textField(item, 'output');
      else if (type === 'shell_call_output') {
        next = w.field(item, 'output', (output) =>
          Array.isArray(output) ? w.array(output, (chunk) => (isObj(chunk) ? w.textField(w.textField(chunk, 'stdout'), 'stderr') : chunk)) : output,
        );
      }
      role = typeof item['role'] === 'string' ? item['role'] : 'unknown';
      push(walked, parts, (make) => make.unknown(next));
  }
  walked.message(role, false, parts);
  return next;
}

function responsesContent(w: TextWalk, walked: Walked, content: unknown, parts: GenAIPart[]): unknown {
  if (typeof content === 'string') {
    const next = w.text(content);
    push(walked, parts, (make) => make.text(next));
    return next;
  }
  if (!Array.isArray(content)) {
    if (content !== undefined && content !== null) push(walked, parts, (make) => make.unknown(content));
    return content;
  }
  return w.array(content, (part) => {
    const next = responsesPart(w, part);
    push(walked, parts, (make) => responsesPartContent(make, next));
    return next;
  });
}

/** A content part: `input_text` and `output_text` text, `refusal`; images, files and audio are left alone. */
function responsesPart(w: TextWalk, part: unknown): unknown {
  if (!isObj(part)) return part;
  switch (part['type']) {
    case 'input_text':
    case 'output_text':
      return w.textField(part, 'text');
    case 'refusal':
      return w.textField(part, 'refusal');
    default:
      return part;
  }
}

function responsesPartsOf(make: ContentParts, content: unknown): GenAIPart[] {
  if (content === undefined || content === null) return [];
  if (!Array.isArray(content)) return [make.unknown(content)];
  return content.map((part) => make.safe(() => responsesPartContent(make, part)));
}

function responsesPartContent(make: ContentParts, part: unknown): GenAIPart {
  if (!isObj(part)) return typeof part === 'string' ? make.text(part) : make.unknown(part);
  switch (part['type']) {
    case 'input_text':
    case 'output_text':
    case 'text':
      return typeof part['text'] === 'string' ? make.text(part['text']) : make.unknown(part);
    case 'refusal':
      return typeof part['refusal'] === 'string' ? make.text(part['refusal']) : make.unknown(part);
    case 'summary_text':
    case 'reasoning_text':
      return typeof part['text'] === 'string' ? make.reasoning(part['text']) : make.unknown(part);
    case 'input_image':
      if (typeof part['image_url'] === 'string') return make.url(part['image_url'], undefined, 'image');
      if (typeof part['file_id'] === 'string') return { type: 'file', modality: 'image', file_id: part['file_id'] };
      return make.unknown(part);
    case 'input_file':
      return make.file({ fileId: part['file_id'], fileData: part['file_data'], fileUrl: part['file_url'], filename: part['filename'] }) ?? make.unknown(part);
    case 'input_audio':
      return audioPart(make, isObj(part['input_audio']) ? part['input_audio'] : part, part);
    default:
      return make.unknown(part);
  }
}

// --- inputs that are a list of texts: embeddings, legacy completions, moderations, image prompts ----

/**
 * A field holding text the model reads: a string or a list (of strings, token arrays, or, for
 * moderations, `text` / `image_url` parts). The whole field is what the input hash covers; the
 * content is one user message whose parts are the inputs, in order.
 */
function textInputWalk(field: string, also: readonly string[] = []): Walk {
  return (w, walked) => {
    const parts: GenAIPart[] = [];
    const item = (value: unknown): unknown => {
      const sent = textItem(w, value);
      push(walked, parts, (make) => textItemContent(make, sent));
      return sent;
    };
    // Pre-tokenized input (token ids) is one input, kept as a GenericPart.
    let out = w.field(walked.params, field, (input) =>
      input === undefined || input === null ? input : Array.isArray(input) && !isTokenArray(input) ? w.array(input, item) : item(input),
    );
    // More text sent with the input (a legacy completion's `suffix`, a transcription's `prompt`).
    for (const name of also) {
      out = w.textField(out, name);
      if (typeof out[name] === 'string') push(walked, parts, (make) => make.text(out[name] as string));
    }
    walked.params = out;
    if (parts.length > 0) walked.message('user', false, parts);
  };
}

/** What the input hash of a {@link textInputWalk} covers: the field, or the fields present when text comes beside it. */
function textInputPrompt(field: string, also: readonly string[] = []): Prompt {
  return (params) => ({ input: also.length === 0 ? params?.[field] : pick(isObj(params) ? params : {}, [field, ...also]) });
}

/** The named fields that are present, in order: what a hash over several request fields covers. */
function pick(obj: Obj, names: readonly string[]): Obj {
  const out: Obj = {};
  for (const name of names) if (obj[name] !== undefined) out[name] = obj[name];
  return out;
}

function textItem(w: TextWalk, item: unknown): unknown {
  if (typeof item === 'string') return w.text(item);
  // Moderation input parts.
  if (isObj(item) && item['type'] === 'text') return w.textField(item, 'text');
  return item;
}

function textItemContent(make: ContentParts, item: unknown): GenAIPart {
  if (typeof item === 'string') return make.text(item);
  if (isTokenArray(item)) return tokensPart(item);
  if (isObj(item) && item['type'] === 'text' && typeof item['text'] === 'string') return make.text(item['text']);
  if (isObj(item) && item['type'] === 'image_url') {
    const url = isObj(item['image_url']) ? item['image_url']['url'] : undefined;
    if (typeof url === 'string') return make.url(url, undefined, 'image');
  }
  return make.unknown(item);
}

// --- uploads: audio and images sent as files ---------------------------------------------------


/**
 * A multipart upload with text beside it: images.edit (`image`, `mask`, `prompt`), audio
 * transcriptions and translations (`file`, `prompt`). The input hash covers the text fields and a
 * description of each file (its bytes' SHA-256 when they are in memory, else its name and size):
 * the bytes of a stream are the SDK's to read, not the audit's.
 */
function uploadWalk(files: readonly string[], texts: readonly string[]): Walk {
  return (w, walked) => {
    const parts: GenAIPart[] = [];
    let out = walked.params;
    for (const name of texts) {
      out = w.textField(out, name);
      const value = out[name];
      if (typeof value === 'string') push(walked, parts, (make) => make.text(value));
    }
    for (const name of files) {
      const value = out[name];
      if (value === undefined || value === null) continue;
      for (const file of Array.isArray(value) ? value : [value]) push(walked, parts, () => ({ ...uploadDescription(file), field: name }));
    }
    walked.params = out;
    if (parts.length > 0) walked.message('user', false, parts);
  };
}

function uploadPrompt(files: readonly string[], texts: readonly string[]): Prompt {
  return (params) => {
    const input: Obj = {};
    for (const name of texts) if (typeof params?.[name] === 'string') input[name] = params[name];
    for (const name of files) {
      const value = params?.[name];
      if (value !== undefined && value !== null) input[name] = Array.isArray(value) ? value.map(uploadDescription) : uploadDescription(value);
    }
    return { input };
  };
}

// --- the walkers -----------------------------------------------------------------------------------

const textInput = (field: string, also: readonly string[] = []) => requestWalker(textInputWalk(field, also), textInputPrompt(field, also));
const upload = (files: readonly string[], texts: readonly string[]) => requestWalker(uploadWalk(files, texts), uploadPrompt(files, texts));

export const chatRequest = requestWalker(chatWalk, chatPrompt);
export const responsesRequest = requestWalker(responsesWalk, (params) => ({ system: params?.instructions ?? undefined, input: params?.input }));
export const embeddingsRequest = textInput('input');
/** Legacy `completions.create`: `prompt` (and `suffix`, text the model reads after the completion point). */
export const completionsRequest = textInput('prompt', ['suffix']);
export const moderationsRequest = textInput('input');
export const imageGenerateRequest = textInput('prompt');
/** `audio.speech.create`: the text to be spoken (the voice made of it is personal data: hashed, never kept). */
export const speechRequest = textInput('input', ['instructions']);
export const imageEditRequest = upload(['image', 'mask'], ['prompt']);
/** Audio transcriptions and translations: the audio file and the optional `prompt` (text that guides the model). */
export const transcriptionRequest = upload(['file'], ['prompt']);
/** `files.create`: the uploaded file (a batch's requests: see ./batches.ts). */
export const fileUploadRequest = upload(['file'], []);
/** Requests that carry no content, only ids (`files.content`, `batches.create`): nothing to scan, hash or capture. */
export const idsOnlyRequest = requestWalker(() => undefined, () => ({}));
