/**
 * `openai` responses to a ResponseSummary, whole and streamed: chat completions, Responses,
 * embeddings, legacy completions, moderations, images, audio (transcriptions, translations,
 * speech), files and batches. A streamed answer folds into exactly the summary of the same answer
 * whole, so its output hash is the same.
 *
 * Generated media (images, speech) is content: the output hash covers it as `blob_digest` parts
 * (the SHA-256 of its bytes), never the bytes themselves, which are not kept anywhere.
 */
import { createHash } from 'node:crypto';
import type { Attributes } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { OutputMessage, OutputPart, ProviderGuardrail, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { indexOf, OutputFold } from '../../core/output-fold';
import { definedNumber, knownString, withFinish } from '../../core/values';
import { AzureContentFilters } from '../azure-content-filter';

// --- chat.completions ----------------------------------------------------------------------------

export function summarizeChat(data: any): ResponseSummary {
  const output: OutputMessage[] = [];
  const finishReasons: string[] = [];
  const toolNames: string[] = [];
  const toolCallIds: string[] = [];
  for (const choice of Array.isArray(data?.choices) ? data.choices : []) {
    const message = choice?.message ?? {};
    const parts: OutputPart[] = [];
    if (typeof message.content === 'string') parts.push({ type: 'text', content: message.content });
    if (typeof message.refusal === 'string') parts.push({ type: 'text', content: message.refusal });
    for (const tool of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
      const name = tool?.function?.name ?? tool?.custom?.name;
      if (typeof name !== 'string') continue;
      parts.push({ type: 'tool_call', id: tool.id, name, arguments: tool.function?.arguments ?? tool.custom?.input });
      toolNames.push(name);
      toolCallIds.push(typeof tool.id === 'string' ? tool.id : '');
    }
    if (typeof choice?.finish_reason === 'string') finishReasons.push(choice.finish_reason);
    output.push(withFinish({ role: message.role ?? 'assistant', parts }, choice?.finish_reason));
  }
  const filters = new AzureContentFilters();
  filters.addResponse(data);
  return {
    id: knownString(data?.id),
    model: knownString(data?.model),
    finishReasons,
    usage: chatUsage(data?.usage),
    output,
    toolNames,
    toolCallIds,
    attributes: openaiResponseAttributes(data),
    guardrails: filters.results(),
  };
}

export function chatUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  return {
    input: definedNumber(usage.prompt_tokens),
    output: definedNumber(usage.completion_tokens),
    cacheRead: definedNumber(usage.prompt_tokens_details?.cached_tokens),
    cacheCreation: definedNumber(usage.prompt_tokens_details?.cache_write_tokens),
    reasoning: definedNumber(usage.completion_tokens_details?.reasoning_tokens),
  };
}

interface ChoiceState {
  role: string;
  text: string;
  hasText: boolean;
  tools: { id?: string; name?: string; arguments: string }[];
  finish?: string;
}

/** Rebuilds choices from `chat.completion.chunk`s; usage comes in the last chunk, if asked for. */
export class ChatStreamAccumulator implements StreamAccumulator {
  private id: string | undefined;
  private model: string | undefined;
  private usage: TokenUsage | undefined;
  private readonly choices: ChoiceState[] = [];
  private attributes: Attributes | undefined;
  private readonly filters = new AzureContentFilters();

  onChunk(chunk: any): void {
    // The first non-empty value: Azure's first chunk (its prompt filter results) has '' for both.
    this.id ??= knownString(chunk?.id);
    this.model ??= knownString(chunk?.model);
    this.filters.addResponse(chunk);
    if (chunk?.usage) this.usage = chatUsage(chunk.usage);
    // Every chunk repeats these; read them once.
    if (this.attributes === undefined && (chunk?.service_tier || chunk?.system_fingerprint)) {
      this.attributes = openaiResponseAttributes(chunk);
    }
    if (!Array.isArray(chunk?.choices)) return;
    for (const choice of chunk.choices) {
      const index = typeof choice?.index === 'number' ? choice.index : 0;
      const state = (this.choices[index] ??= { role: 'assistant', text: '', hasText: false, tools: [] });
      const delta = choice.delta ?? {};
      if (typeof delta.role === 'string') state.role = delta.role;
      if (typeof delta.content === 'string') {
        state.text += delta.content;
        state.hasText = true;
      }
      if (typeof delta.refusal === 'string') {
        state.text += delta.refusal;
        state.hasText = true;
      }
      if (Array.isArray(delta.tool_calls)) {
        for (const tool of delta.tool_calls) {
          const slot = (state.tools[typeof tool?.index === 'number' ? tool.index : state.tools.length] ??= { arguments: '' });
          if (typeof tool?.id === 'string') slot.id = tool.id;
          if (typeof tool?.function?.name === 'string') slot.name = tool.function.name;
          if (typeof tool?.function?.arguments === 'string') slot.arguments += tool.function.arguments;
        }
      }
      if (typeof choice.finish_reason === 'string') state.finish = choice.finish_reason;
    }
  }

  summary(): ResponseSummary {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    const toolNames: string[] = [];
    const toolCallIds: string[] = [];
    for (const state of this.choices) {
      if (state === undefined) continue;
      const parts: OutputPart[] = [];
      if (state.hasText) parts.push({ type: 'text', content: state.text });
      for (const tool of state.tools) {
        if (tool === undefined || tool.name === undefined) continue;
        parts.push({ type: 'tool_call', id: tool.id, name: tool.name, arguments: tool.arguments });
        toolNames.push(tool.name);
        toolCallIds.push(tool.id ?? '');
      }
      if (state.finish !== undefined) finishReasons.push(state.finish);
      output.push(withFinish({ role: state.role, parts }, state.finish));
    }
    return {
      id: this.id,
      model: this.model,
      usage: this.usage,
      output,
      finishReasons,
      toolNames,
      toolCallIds,
      attributes: this.attributes,
      guardrails: this.filters.results(),
    };
  }
}

// --- responses -----------------------------------------------------------------------------------

export function summarizeResponse(data: any): ResponseSummary {
  const parts: OutputPart[] = [];
  const toolNames: string[] = [];
  const toolCallIds: string[] = [];
  for (const item of Array.isArray(data?.output) ? data.output : []) {
    if (item?.type === 'message') {
      for (const content of Array.isArray(item.content) ? item.content : []) {
        if (content?.type === 'output_text') parts.push({ type: 'text', content: content.text });
        else if (content?.type === 'refusal') parts.push({ type: 'text', content: content.refusal });
      }
    } else if (item?.type === 'function_call' || item?.type === 'custom_tool_call') {
      parts.push({ type: 'tool_call', id: item.call_id, name: item.name, arguments: item.arguments ?? item.input });
      toolNames.push(item.name);
      toolCallIds.push(typeof item.call_id === 'string' ? item.call_id : '');
    }
  }
  const finish = data?.incomplete_details?.reason ?? data?.status;
  const usage = data?.usage;
  return {
    id: knownString(data?.id),
    model: knownString(data?.model),
    finishReasons: typeof finish === 'string' ? [finish] : [],
    usage:
      usage === undefined || usage === null
        ? undefined
        : {
            input: definedNumber(usage.input_tokens),
            output: definedNumber(usage.output_tokens),
            cacheRead: definedNumber(usage.input_tokens_details?.cached_tokens),
            cacheCreation: definedNumber(usage.input_tokens_details?.cache_write_tokens),
            reasoning: definedNumber(usage.output_tokens_details?.reasoning_tokens),
          },
    output: [withFinish({ role: 'assistant', parts }, finish)],
    toolNames,
    toolCallIds,
    attributes: openaiResponseAttributes(data),
  };
}

/**
 * Responses streams are typed events; the terminal one (`response.completed`, `.incomplete` or
 * `.failed`) carries the whole response with usage. Text deltas are kept only for a stream that
 * ends before it.
 */
export class ResponsesStreamAccumulator implements StreamAccumulator {
  private final: ResponseSummary | undefined;
  private id: string | undefined;
  private model: string | undefined;
  private text = '';

  onChunk(event: any): void {
    switch (event?.type) {
      case 'response.created':
        this.id = knownString(event.response?.id);
        this.model = knownString(event.response?.model);
        break;
      case 'response.output_text.delta':
        if (typeof event.delta === 'string') this.text += event.delta;
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        this.final = summarizeResponse(event.response);
        break;
    }
  }

  summary(): ResponseSummary {
    if (this.final !== undefined) return this.final;
    const parts: OutputPart[] = this.text !== '' ? [{ type: 'text', content: this.text }] : [];
    return { id: this.id, model: this.model, output: [{ role: 'assistant', parts }] };
  }
}

// --- embeddings ----------------------------------------------------------------------------------

/** Vectors are derived data, not content anyone reads: no output hash (see docs/attributes.md). */
export function summarizeEmbeddings(data: any): ResponseSummary {
  const first = Array.isArray(data?.data) ? data.data[0]?.embedding : undefined;
  const usage = data?.usage;
  return {
    model: knownString(data?.model),
    usage: usage === undefined || usage === null ? undefined : { input: definedNumber(usage.prompt_tokens) },
    attributes: Array.isArray(first) ? { [A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT]: first.length } : undefined,
  };
}

// --- completions (legacy) --------------------------------------------------------------------------

/** Adds the choices of a `text_completion` (whole, or the deltas of one chunk) to `fold`. */
function addCompletionChoices(fold: OutputFold, choices: unknown): void {
  if (!Array.isArray(choices)) return;
  choices.forEach((choice: any, position) => {
    const index = indexOf(choice, position);
    fold.role(index, 'assistant');
    fold.text(index, 'text', choice?.text);
    fold.finish(index, choice?.finish_reason);
  });
}

function completionSummary(fold: OutputFold, data: any, usage: unknown): ResponseSummary {
  return { ...fold.summary(knownString(data?.id), knownString(data?.model), chatUsage(usage)), attributes: openaiResponseAttributes(data) };
}

export function summarizeCompletion(data: any): ResponseSummary {
  const fold = new OutputFold();
  addCompletionChoices(fold, data?.choices);
  return completionSummary(fold, data, data?.usage);
}

/** Legacy completion chunks: text deltas per choice; usage in a last chunk with no choices, if asked for. */
export class CompletionStreamAccumulator implements StreamAccumulator {
  private readonly fold = new OutputFold();
  private first: unknown;
  private usage: unknown;

  onChunk(chunk: any): void {
    this.first ??= chunk;
    if (chunk?.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage;
    addCompletionChoices(this.fold, chunk?.choices);
  }

  summary(): ResponseSummary {
    return completionSummary(this.fold, this.first, this.usage);
  }
}

// --- moderations -------------------------------------------------------------------------------

/**
 * A moderation's verdict is what the application acts on: each flagged category of each input is
 * an `llm_audit.guardrail` event (`openai.moderation`, action `flagged`, its score), and the
 * output hash covers the verdicts (flag and categories per input, no scores: they are floats the
 * API may round differently from one call to the next).
 */
export function summarizeModeration(data: any): ResponseSummary {
  const guardrails: ProviderGuardrail[] = [];
  const parts: OutputPart[] = [];
  for (const result of Array.isArray(data?.results) ? data.results : []) {
    const categories = result?.categories ?? {};
    const flagged = Object.keys(categories).filter((name) => categories[name] === true);
    for (const category of flagged) {
      const score = result?.category_scores?.[category];
      guardrails.push({ result: { name: 'openai.moderation', action: 'flagged', category, ...(typeof score === 'number' ? { score } : {}) } });
    }
    parts.push({ type: 'text', content: JSON.stringify({ flagged: result?.flagged === true, categories: flagged }) });
  }
  return {
    id: knownString(data?.id),
    model: knownString(data?.model),
    output: [{ role: 'assistant', parts }],
    guardrails,
  };
}

// --- images --------------------------------------------------------------------------------------

/** Image and transcription token usage (`input_tokens` include the image / audio tokens). */
function tokenUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null || usage.type === 'duration') return undefined;
  return { input: definedNumber(usage.input_tokens), output: definedNumber(usage.output_tokens) };
}

/** The SHA-256 and size of base64 data, as the envelope's `blob_digest` parts: the bytes are not kept. */
export function blobDigest(bytes: Uint8Array, modality: string, mime: string | undefined): OutputPart {
  return {
    type: 'blob_digest',
    modality,
    ...(mime !== undefined ? { mime_type: mime } : {}),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.byteLength,
  };
}

function imageParts(image: any, format: unknown): OutputPart[] {
  const parts: OutputPart[] = [];
  const mime = typeof format === 'string' ? `image/${format}` : undefined;
  if (typeof image?.b64_json === 'string') parts.push(blobDigest(Buffer.from(image.b64_json, 'base64'), 'image', mime ?? 'image/png'));
  else if (typeof image?.url === 'string') parts.push({ type: 'uri', modality: 'image', uri: image.url });
  // DALL-E 3 rewrites the prompt it was given: the model's own text.
  if (typeof image?.revised_prompt === 'string') parts.push({ type: 'text', content: image.revised_prompt });
  return parts;
}

/** `images.generate` / `images.edit`: one output message per image. */
export function summarizeImages(data: any): ResponseSummary {
  const output: OutputMessage[] = (Array.isArray(data?.data) ? data.data : []).map((image: any) => ({
    role: 'assistant',
    parts: imageParts(image, data?.output_format),
  }));
  return { output, usage: tokenUsage(data?.usage), attributes: openaiResponseAttributes(data) };
}

/**
 * Image streams (`stream: true`, gpt-image-1): partial images, then `image_generation.completed` /
 * `image_edit.completed` with the final image and the usage. Partial images are previews of the
 * final one and are not output of their own.
 */
export class ImageStreamAccumulator implements StreamAccumulator {
  private readonly output: OutputMessage[] = [];
  private usage: TokenUsage | undefined;

  onChunk(event: any): void {
    if (event?.type !== 'image_generation.completed' && event?.type !== 'image_edit.completed') return;
    this.output.push({ role: 'assistant', parts: imageParts(event, event.output_format) });
    this.usage = tokenUsage(event.usage) ?? this.usage;
  }

  summary(): ResponseSummary {
    return { output: this.output, usage: this.usage };
  }
}

// --- audio -----------------------------------------------------------------------------------------

/** Transcriptions and translations: the text heard (JSON, verbose JSON, or text / SRT / VTT as a string). */
export function summarizeTranscript(data: any): ResponseSummary {
  const text = typeof data === 'string' ? data : data?.text;
  const attributes: Attributes = {};
  if (typeof data?.language === 'string') attributes[A.ATTR_AUDIT_AUDIO_LANGUAGE] = data.language;
  const seconds = typeof data?.duration === 'number' ? data.duration : data?.usage?.type === 'duration' ? data.usage.seconds : undefined;
  if (typeof seconds === 'number') attributes[A.ATTR_AUDIT_AUDIO_DURATION] = seconds;
  return {
    output: [{ role: 'assistant', parts: typeof text === 'string' ? [{ type: 'text', content: text }] : [] }],
    usage: tokenUsage(data?.usage),
    attributes,
  };
}

/** Transcription streams: `transcript.text.delta` events, then `transcript.text.done` with the whole text and the usage. */
export class TranscriptStreamAccumulator implements StreamAccumulator {
  private text = '';
  private done: ResponseSummary | undefined;

  onChunk(event: any): void {
    if (event?.type === 'transcript.text.delta' && typeof event.delta === 'string') this.text += event.delta;
    else if (event?.type === 'transcript.text.done') this.done = summarizeTranscript(event);
  }

  summary(): ResponseSummary {
    return this.done ?? { output: [{ role: 'assistant', parts: this.text !== '' ? [{ type: 'text', content: this.text }] : [] }] };
  }
}

/**
 * `audio.speech.create` returns the HTTP response itself (its body is the audio). The audio is
 * read from a clone, so the application's response is untouched and can be read as before; its
 * bytes are digested for the output hash and dropped. Undefined when `data` is no response.
 */
export function settleSpeech(data: any): Promise<ResponseSummary> | undefined {
  if (typeof data?.clone !== 'function') return undefined;
  const copy = data.clone() as Response;
  const mime = copy.headers?.get('content-type') ?? undefined;
  return copy.arrayBuffer().then((body) => ({ output: [{ role: 'assistant', parts: [blobDigest(new Uint8Array(body), 'audio', mime)] }] }));
}

// --- shared ------------------------------------------------------------------------------------

export function openaiResponseAttributes(data: any): Attributes | undefined {
  let attributes: Attributes | undefined;
  if (typeof data?.service_tier === 'string') {
    (attributes ??= {})[A.ATTR_GEN_AI_OPENAI_RESPONSE_SERVICE_TIER] = data.service_tier;
  }
  if (typeof data?.system_fingerprint === 'string') {
    (attributes ??= {})[A.ATTR_GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = data.system_fingerprint;
  }
  return attributes;
}
