/**
 * The request of `@google/genai` model calls, walked ONCE: this walk decides what the system
 * instruction, the input messages and their parts are, and the sanitizer (scan, redact) and the
 * encrypted content both run it, each with its own visitor. The hashes cover the same two fields
 * (`config.systemInstruction`, `contents`: {@link promptOf}).
 *
 * The SDK accepts loose shapes and normalizes them only when it builds the HTTP body (its
 * `tContents`): `contents` may be a string, a part, an array of strings and parts (one user
 * message), a Content `{role, parts}` or an array of Contents; `embedContent` makes each array item
 * a message of its own. The walk follows the same rules, so that what is redacted and recorded is
 * what the provider reads. Text, function call arguments and results, code and its output are
 * text the model reads; inline data, file URIs and thought parts (model-generated, signed) are
 * left alone by the sanitizer, and binary data is digested in the envelope.
 */
import type { TextWalk } from '../../audit/sanitize';
import type { ContentParts, GenAIInputMessage, GenAIPart } from '../../audit/content/genai-messages';
import type { RequestWalker } from '../../core/types';
import { MessageCollector, readOnly, type Traversal } from '../../core/request-walk';

type Obj = Record<string, unknown>;

/** What the walk needs from its visitor: copy-on-write traversal, and where messages start and parts are. */
interface Visitor extends Traversal {
  /** A message starts: 'system' for the system instruction, else the Content's role. */
  message(role: string): void;
  /** One part of the current message (an object, or a string the SDK sends as a text part); returns the part to send. */
  part(part: unknown): unknown;
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isContent(value: unknown): value is Obj & { parts: unknown[] } {
  return isObj(value) && Array.isArray(value.parts);
}

/** What the system and input hashes cover: the same fields the walk reads. */
export function promptOf(params: any): { system?: unknown; input?: unknown } {
  return { system: params?.config?.systemInstruction ?? undefined, input: params?.contents };
}

function walk(params: Obj, v: Visitor, embed: boolean): Obj {
  let out = v.field(params, 'config', (config) => (isObj(config) ? v.field(config, 'systemInstruction', (s) => contentUnion(v, s, 'system')) : config));
  out = v.field(out, 'contents', (contents) => {
    if (!Array.isArray(contents)) return contentUnion(v, contents, 'user');
    // generateContent: an array of Contents, or the parts of one user message; embedContent: one message per item.
    if (embed || isContent(contents[0])) return v.array(contents, (item) => contentUnion(v, item, 'user'));
    v.message('user');
    return v.array(contents, (part) => v.part(part));
  });
  return out;
}

/** A Content, or parts that make one message of `role`. */
function contentUnion(v: Visitor, value: unknown, role: string): unknown {
  if (value === undefined || value === null) return value;
  if (isContent(value)) {
    v.message(role === 'system' ? 'system' : typeof value.role === 'string' ? value.role : 'user');
    return v.field(value, 'parts', (parts) => v.array(parts as unknown[], (part) => v.part(part)));
  }
  v.message(role);
  return Array.isArray(value) ? v.array(value, (part) => v.part(part)) : v.part(value);
}

// --- the sanitizer's visitor ----------------------------------------------------------------------

function sanitizePart(w: TextWalk, part: unknown): unknown {
  if (typeof part === 'string') return w.text(part);
  if (!isObj(part) || part.thought === true) return part;
  if (typeof part.text === 'string') return w.textField(part, 'text');
  if (isObj(part.functionCall)) return w.field(part, 'functionCall', (call) => w.field(call as Obj, 'args', (args) => w.json(args)));
  if (isObj(part.functionResponse)) return w.field(part, 'functionResponse', (result) => w.field(result as Obj, 'response', (response) => w.json(response)));
  if (isObj(part.executableCode)) return w.field(part, 'executableCode', (code) => w.textField(code as Obj, 'code'));
  if (isObj(part.codeExecutionResult)) return w.field(part, 'codeExecutionResult', (result) => w.textField(result as Obj, 'output'));
  return part; // inlineData, fileData, videoMetadata...
}

// --- the envelope's visitor -----------------------------------------------------------------------

function contentPart(b: ContentParts, part: unknown): GenAIPart {
  if (typeof part === 'string') return b.text(part);
  if (!isObj(part)) return b.unknown(part);
  if (typeof part.text === 'string') return part.thought === true ? b.reasoning(part.text) : b.text(part.text);
  const call = part.functionCall;
  if (isObj(call) && typeof call.name === 'string') return b.toolCall(call.id, call.name, call.args);
  const result = part.functionResponse;
  if (isObj(result)) return b.toolResponse(result.id, result.response);
  const inline = part.inlineData;
  if (isObj(inline) && typeof inline.data === 'string') return b.inline(inline.data, typeof inline.mimeType === 'string' ? inline.mimeType : undefined);
  const file = part.fileData;
  if (isObj(file) && typeof file.fileUri === 'string') return b.url(file.fileUri, typeof file.mimeType === 'string' ? file.mimeType : undefined);
  if (isObj(part.executableCode) && typeof part.executableCode.code === 'string') return b.text(part.executableCode.code);
  if (isObj(part.codeExecutionResult) && typeof part.codeExecutionResult.output === 'string') return b.text(part.codeExecutionResult.output);
  return b.unknown(part, Object.keys(part)[0]);
}

function content(params: Obj, b: ContentParts, embed: boolean): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
  // The conventions call the model's turns `assistant`.
  const messages = new MessageCollector({ model: 'assistant' });
  walk(
    params,
    {
      ...readOnly,
      message: (role) => messages.message(role),
      part(part) {
        messages.push(b.safe(() => contentPart(b, part)));
        return part;
      },
    },
    embed,
  );
  return messages.result();
}

function requestWalker(embed: boolean): RequestWalker {
  return {
    sanitize: (w, params) =>
      walk(
        params,
        {
          field: (obj, key, fn) => w.field(obj, key, fn),
          array: (items, fn) => w.array(items, fn),
          message: () => undefined,
          part: (part) => sanitizePart(w, part),
        },
        embed,
      ),
    content: (params, parts) => content(params, parts, embed),
  };
}

/** `generateContent` and `generateContentStream` (also as called by chats). */
export const generateRequest = requestWalker(false);
/** `embedContent`: each item of a `contents` array is a message of its own. */
export const embedRequest = requestWalker(true);
