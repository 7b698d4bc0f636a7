/**
 * The Bedrock Converse shape: `ConverseCommand` / `ConverseStreamCommand` input and output, which
 * Amazon Nova's InvokeModel body shares (./invoke-model.ts). One walker reads a request for the
 * sanitizer, the hashes and the encrypted content alike (`converseRequest`), so what is "the
 * system prompt" and "the input" is decided here once.
 *
 * Field names are those of @aws-sdk/client-bedrock-runtime 3.x (ContentBlock, SystemContentBlock,
 * ToolResultContentBlock, ConverseStreamOutput); Nova's InvokeModel body uses the same names with
 * base64 text where the SDK takes bytes.
 */
import type { Attributes } from '@opentelemetry/api';
import { jsonSafe, type GenAIInputMessage, type GenAIPart, type RequestContent } from '../../audit/content';
import type { ContentParts } from '../../audit/content/genai-messages';
import { readingWalk, type TextWalk } from '../../audit/sanitize';
import * as A from '../../semconv';
import type { OutputPart, RequestWalker, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { appendOutputPart, definedNumber, setNumber, sumCounts, withFinish, setRequestSettings } from '../../core/values';
import { bedrockGuardrails } from './guardrails';

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a walk over a Converse-shaped request collects besides the params to send. */
export interface WalkedRequest {
  params: Obj;
  system?: GenAIPart[];
  messages: GenAIInputMessage[];
}

/**
 * Walks a Converse request: `system`, `messages` and `promptVariables` (text substituted into a
 * Bedrock managed prompt). Text, tool inputs and tool results are scanned; images, documents and
 * videos given as bytes or S3 locations are not, and appear in the content as digests or URIs.
 * Reasoning blocks of earlier turns are the model's own signed output: left alone, like Anthropic
 * thinking blocks.
 */
export function converseRequest(w: TextWalk, params: Obj, make?: ContentParts): WalkedRequest {
  let system: GenAIPart[] | undefined;
  const messages: GenAIInputMessage[] = [];
  let out = w.field(params, 'system', (blocks) => {
    if (!Array.isArray(blocks)) return blocks;
    const parts: GenAIPart[] = [];
    const next = w.array(blocks, (block) => contentBlock(w, block, parts, make));
    system = parts;
    return next;
  });
  out = w.field(out, 'messages', (list) =>
    Array.isArray(list)
      ? w.array(list, (message) => {
          if (!isObj(message)) {
            messages.push({ role: 'unknown', parts: [unknownPart(message)] });
            return message;
          }
          const parts: GenAIPart[] = [];
          const next = w.field(message, 'content', (blocks) =>
            Array.isArray(blocks) ? w.array(blocks, (block) => contentBlock(w, block, parts, make)) : blocks,
          );
          messages.push({ role: typeof message['role'] === 'string' ? message['role'] : 'unknown', parts });
          return next;
        })
      : list,
  );
  out = w.field(out, 'promptVariables', (variables) => {
    if (!isObj(variables)) return variables;
    const parts: GenAIPart[] = [];
    let copy = variables;
    for (const key of Object.keys(variables)) {
      const value = variables[key];
      w.path.push(/^[A-Za-z_$][\w$]{0,63}$/.test(key) ? key : '*');
      const next = isObj(value) ? w.textField(value, 'text') : value;
      w.path.pop();
      if (isObj(next) && typeof next['text'] === 'string') parts.push({ type: 'text', content: next['text'], variable: key });
      if (next !== value) copy = { ...copy, [key]: next };
    }
    // Variables fill a prompt template the provider keeps: recorded as the input they are.
    if (parts.length > 0) messages.push({ role: 'user', parts });
    return copy;
  });
  return system === undefined ? { params: out, messages } : { params: out, system, messages };
}

/** A walked request's content, as the envelope and the hashes take it. */
export function contentOf(walked: WalkedRequest): RequestContent {
  return walked.system === undefined ? { input_messages: walked.messages } : { system_instructions: walked.system, input_messages: walked.messages };
}

/** The walk that reads a request for its content and changes nothing (shared: a walk keeps no state between requests). */
export const readOnly = readingWalk();

/** The Converse request walker: system, messages and prompt variables. */
export const converseWalker: RequestWalker = {
  sanitize: (w, params) => converseRequest(w, params).params,
  content: (params, make) => contentOf(converseRequest(readOnly, params, make)),
};

/** One ContentBlock / SystemContentBlock / ToolResultContentBlock: the block to send, its parts pushed. */
export function contentBlock(w: TextWalk, block: unknown, parts: GenAIPart[], make: ContentParts | undefined): unknown {
  if (!isObj(block)) {
    parts.push(unknownPart(block));
    return block;
  }
  if (typeof block['text'] === 'string') {
    const next = w.textField(block, 'text');
    parts.push({ type: 'text', content: next['text'] as string });
    return next;
  }
  if (isObj(block['image'])) return media(w, block, 'image', parts, make);
  if (isObj(block['document'])) return media(w, block, 'document', parts, make);
  if (isObj(block['video'])) return media(w, block, 'video', parts, make);
  if (isObj(block['toolUse'])) {
    return w.field(block, 'toolUse', (use) => {
      const next = w.field(use as Obj, 'input', (input) => w.json(input));
      parts.push({ type: 'tool_call', id: stringOrNull(next['toolUseId']), name: typeof next['name'] === 'string' ? next['name'] : '', arguments: jsonSafe(next['input']) });
      return next;
    });
  }
  if (isObj(block['toolResult'])) {
    return w.field(block, 'toolResult', (result) => {
      const response: GenAIPart[] = [];
      const next = w.field(result as Obj, 'content', (items) =>
        Array.isArray(items) ? w.array(items, (item) => (isObj(item) && 'json' in item ? jsonItem(w, item, response) : contentBlock(w, item, response, make))) : items,
      );
      const part: GenAIPart = { type: 'tool_call_response', id: stringOrNull(next['toolUseId']), response };
      if (next['status'] === 'error') part.is_error = true;
      parts.push(part);
      return next;
    });
  }
  if (isObj(block['guardContent'])) {
    // Text the request marks for the guardrail to assess: sent to the model like any text.
    return w.field(block, 'guardContent', (guard) =>
      w.field(guard as Obj, 'text', (text) => {
        if (!isObj(text)) return text;
        const next = w.textField(text, 'text');
        if (typeof next['text'] === 'string') parts.push({ type: 'text', content: next['text'], guard: true });
        return next;
      }),
    );
  }
  if (isObj(block['reasoningContent'])) {
    const reasoning = block['reasoningContent'];
    const text = isObj(reasoning['reasoningText']) ? reasoning['reasoningText']['text'] : undefined;
    // The signature and redacted reasoning are opaque provider data and are not copied.
    parts.push(typeof text === 'string' ? { type: 'reasoning', content: text } : { type: 'reasoning', content: '', redacted: true });
    return block;
  }
  // A cache point marks where the provider may cache the prefix: no content.
  if ('cachePoint' in block) return block;
  parts.push(unknownPart(block));
  return block;
}

function jsonItem(w: TextWalk, item: Obj, parts: GenAIPart[]): Obj {
  const next = w.field(item, 'json', (json) => w.json(json));
  parts.push({ type: 'text', content: JSON.stringify(jsonSafe(next['json'])) ?? 'null', json: true });
  return next;
}

const DOCUMENT_MIME: Readonly<Record<string, string>> = {
  pdf: 'application/pdf',
  csv: 'text/csv',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  html: 'text/html',
  txt: 'text/plain',
  md: 'text/markdown',
};

/** An image, document or video block: bytes (SDK) or base64 (Nova body), S3, or a document's own text. */
function media(w: TextWalk, block: Obj, modality: 'image' | 'document' | 'video', parts: GenAIPart[], make: ContentParts | undefined): Obj {
  const item = block[modality] as Obj;
  const format = typeof item['format'] === 'string' ? item['format'] : undefined;
  const mime = format === undefined ? undefined : modality === 'document' ? DOCUMENT_MIME[format] : `${modality}/${format}`;
  const source = item['source'];
  if (!isObj(source)) {
    parts.push(unknownPart(block));
    return block;
  }
  const bytes = source['bytes'];
  if (typeof bytes === 'string' || bytes instanceof Uint8Array) {
    // Digested (or kept) only for the content: the sanitizer's walk has no use for it.
    if (make !== undefined) parts.push(make.inline(bytes, mime ?? `${modality}/octet-stream`));
    return block;
  }
  const s3 = isObj(source['s3Location']) ? source['s3Location']['uri'] : undefined;
  if (typeof s3 === 'string') {
    parts.push({ type: 'uri', modality, ...(mime ? { mime_type: mime } : {}), uri: s3 });
    return block;
  }
  // A document given as text (or as text blocks) is text the model reads.
  return w.field(block, modality, (doc) =>
    w.field(doc as Obj, 'source', (src) => {
      let next = w.textField(src as Obj, 'text');
      if (typeof next['text'] === 'string') parts.push({ type: 'text', content: next['text'] });
      next = w.field(next, 'content', (blocks) => (Array.isArray(blocks) ? w.array(blocks, (b) => contentBlock(w, b, parts, make)) : blocks));
      return next;
    }),
  );
}

export function unknownPart(value: unknown): GenAIPart {
  return { type: 'unknown', value: jsonSafe(value) };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** `inferenceConfig` of a Converse request (camelCase) or of a Nova body (which also takes snake_case). */
function inferenceAttributes(config: unknown, attributes: Attributes): void {
  if (!isObj(config)) return;
  setRequestSettings(attributes, {
    maxTokens: config['maxTokens'] ?? config['max_new_tokens'],
    temperature: config['temperature'],
    topP: config['topP'] ?? config['top_p'],
    topK: config['topK'] ?? config['top_k'],
    stop: config['stopSequences'] ?? config['stop_sequences'],
  });
}

/** The `gen_ai.request.*` attributes of a Converse request (or a Nova body), and the guardrail it names. */
export function converseRequestAttributes(params: Obj, attributes: Attributes): void {
  inferenceAttributes(params['inferenceConfig'], attributes);
  // Model-specific parameters the Converse API passes through (Claude's and Nova's top_k).
  const extra = params['additionalModelRequestFields'];
  if (isObj(extra)) setNumber(attributes, A.ATTR_GEN_AI_REQUEST_TOP_K, extra['top_k'] ?? (isObj(extra['inferenceConfig']) ? extra['inferenceConfig']['topK'] : undefined));
  const guardrail = isObj(params['guardrailConfig']) ? params['guardrailConfig']['guardrailIdentifier'] : undefined;
  if (typeof guardrail === 'string') attributes[A.ATTR_AWS_BEDROCK_GUARDRAIL_ID] = guardrail;
}

// --- responses -------------------------------------------------------------------------------------

/**
 * Converse usage. Bedrock's `inputTokens` leaves out the cached part (`totalTokens` adds the cache
 * reads and writes); the conventions' input count includes them, so the three are added. Nova's
 * InvokeModel body names the cache counts `...InputTokenCount`.
 */
export function converseUsage(usage: unknown): TokenUsage | undefined {
  if (!isObj(usage)) return undefined;
  const cacheRead = definedNumber(usage['cacheReadInputTokens'] ?? usage['cacheReadInputTokenCount']);
  const cacheCreation = definedNumber(usage['cacheWriteInputTokens'] ?? usage['cacheWriteInputTokenCount']);
  return {
    input: sumCounts(definedNumber(usage['inputTokens']), cacheRead, cacheCreation),
    output: definedNumber(usage['outputTokens']),
    cacheRead,
    cacheCreation,
  };
}

interface ToolLists {
  names: string[];
  ids: string[];
}

/**
 * One output block as an OutputPart; tool arguments as `JSON.stringify` of the input, as a stream
 * gives them after normalising, so that a streamed and a whole answer hash alike.
 */
function outputPart(parts: OutputPart[], tools: ToolLists, block: unknown): void {
  if (!isObj(block)) return;
  // Adjacent text blocks are one text: Nova streams each delta as a block of its own.
  if (typeof block['text'] === 'string') appendOutputPart(parts, { type: 'text', content: block['text'] });
  else if (isObj(block['toolUse']) && typeof block['toolUse']['name'] === 'string') {
    const use = block['toolUse'];
    const id = typeof use['toolUseId'] === 'string' ? use['toolUseId'] : undefined;
    parts.push({ type: 'tool_call', id, name: use['name'] as string, arguments: JSON.stringify(use['input'] ?? {}) });
    tools.names.push(use['name'] as string);
    tools.ids.push(id ?? '');
  } else if (isObj(block['reasoningContent']) && isObj(block['reasoningContent']['reasoningText'])) {
    const text = block['reasoningContent']['reasoningText']['text'];
    if (typeof text === 'string') parts.push({ type: 'reasoning', content: text });
  }
}

/** A Converse response (or a Nova InvokeModel body). */
export function summarizeConverse(data: unknown): ResponseSummary {
  const body = isObj(data) ? data : {};
  const message = isObj(body['output']) && isObj(body['output']['message']) ? body['output']['message'] : {};
  const parts: OutputPart[] = [];
  const tools: ToolLists = { names: [], ids: [] };
  for (const block of Array.isArray(message['content']) ? message['content'] : []) outputPart(parts, tools, block);
  const stop = body['stopReason'];
  return {
    finishReasons: typeof stop === 'string' ? [stop] : [],
    usage: converseUsage(body['usage']),
    output: [withFinish({ role: typeof message['role'] === 'string' ? message['role'] : 'assistant', parts }, stop)],
    toolNames: tools.names,
    toolCallIds: tools.ids,
    guardrails: bedrockGuardrails(isObj(body['trace']) ? body['trace']['guardrail'] : undefined, stop),
  };
}

interface BlockState {
  kind: 'text' | 'tool' | 'reasoning';
  text: string;
  id?: string;
  name?: string;
}

/**
 * Folds ConverseStream events (`messageStart`, `contentBlockStart` / `Delta` / `Stop`,
 * `messageStop`, `metadata`) into the summary a whole Converse response gives; Nova's
 * InvokeModelWithResponseStream chunks carry the same events.
 */
export class ConverseStreamAccumulator implements StreamAccumulator {
  private role = 'assistant';
  private stopReason: string | undefined;
  private usage: TokenUsage | undefined;
  private trace: unknown;
  private readonly blocks: BlockState[] = [];

  onChunk(event: unknown): void {
    if (!isObj(event)) return;
    if (isObj(event['messageStart']) && typeof event['messageStart']['role'] === 'string') this.role = event['messageStart']['role'];
    const start = event['contentBlockStart'];
    if (isObj(start) && isObj(start['start']) && isObj(start['start']['toolUse'])) {
      const use = start['start']['toolUse'];
      this.blocks[indexOf(start, this.blocks)] = {
        kind: 'tool',
        text: '',
        id: typeof use['toolUseId'] === 'string' ? use['toolUseId'] : undefined,
        name: typeof use['name'] === 'string' ? use['name'] : undefined,
      };
    }
    const delta = event['contentBlockDelta'];
    if (isObj(delta) && isObj(delta['delta'])) this.onDelta(indexOf(delta, this.blocks), delta['delta']);
    if (isObj(event['messageStop']) && typeof event['messageStop']['stopReason'] === 'string') this.stopReason = event['messageStop']['stopReason'];
    const metadata = event['metadata'];
    if (isObj(metadata)) {
      if (metadata['usage'] !== undefined) this.usage = converseUsage(metadata['usage']);
      if (isObj(metadata['trace'])) this.trace = metadata['trace']['guardrail'];
    }
  }

  private onDelta(index: number, delta: Obj): void {
    if (typeof delta['text'] === 'string') {
      const state = (this.blocks[index] ??= { kind: 'text', text: '' });
      state.text += delta['text'];
    } else if (isObj(delta['toolUse']) && typeof delta['toolUse']['input'] === 'string') {
      const state = (this.blocks[index] ??= { kind: 'tool', text: '' });
      state.text += delta['toolUse']['input'];
    } else if (isObj(delta['reasoningContent']) && typeof delta['reasoningContent']['text'] === 'string') {
      const state = (this.blocks[index] ??= { kind: 'reasoning', text: '' });
      state.text += delta['reasoningContent']['text'];
    }
  }

  summary(): ResponseSummary {
    const parts: OutputPart[] = [];
    const tools: ToolLists = { names: [], ids: [] };
    for (const block of this.blocks) {
      if (block === undefined) continue;
      if (block.kind === 'text') outputPart(parts, tools, { text: block.text });
      else if (block.kind === 'reasoning') outputPart(parts, tools, { reasoningContent: { reasoningText: { text: block.text } } });
      else outputPart(parts, tools, { toolUse: { toolUseId: block.id, name: block.name, input: parseJson(block.text) } });
    }
    return {
      finishReasons: this.stopReason !== undefined ? [this.stopReason] : [],
      usage: this.usage,
      output: [withFinish({ role: this.role, parts }, this.stopReason)],
      toolNames: tools.names,
      toolCallIds: tools.ids,
      guardrails: bedrockGuardrails(this.trace, this.stopReason),
    };
  }
}

function indexOf(event: Obj, blocks: unknown[]): number {
  const index = event['contentBlockIndex'];
  return typeof index === 'number' && Number.isInteger(index) && index >= 0 ? index : blocks.length;
}

/** Streamed tool input is JSON text in fragments; parsed so that it hashes as the whole response's object does. */
function parseJson(text: string): unknown {
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return text; // an incomplete fragment (stream cut short): hash what arrived
  }
}
