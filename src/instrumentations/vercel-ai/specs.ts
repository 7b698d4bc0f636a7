import * as A from '../../semconv';
import type { KnownProviderName } from '../../semconv';
import type { OperationSpec, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { definedNumber, withFinish, setRequestSettings } from '../../core/values';
import { anthropicUsage } from '../anthropic';
import { contentParts } from '../../audit/content/genai-messages';
import { promptFromContent } from '../../core/request-walk';
import { canonicalJson } from '../../audit/canonical-json';
import { decisionWalker, embeddingWalker, imageWalker, languageWalker, promptForHash, rerankWalker, speechWalker, transcriptionWalker, videoWalker } from './request';

/** What the audit needs of a model object: who serves it, which model. */
export interface ModelInfo {
  /** `gen_ai.provider.name`. */
  provider: string;
  modelId: string | undefined;
}

// The first segment of a model's `provider` field ('openai.chat', 'anthropic.messages',
// 'google.generative-ai', 'amazon-bedrock') to the conventions' provider names where they differ.
const PROVIDER_NAMES: Readonly<Record<string, KnownProviderName>> = {
  azure: A.GEN_AI_PROVIDER.azureOpenai,
  google: A.GEN_AI_PROVIDER.gemini,
  'google-vertex': A.GEN_AI_PROVIDER.vertexAi,
  vertex: A.GEN_AI_PROVIDER.vertexAi,
  'amazon-bedrock': A.GEN_AI_PROVIDER.bedrock,
  bedrock: A.GEN_AI_PROVIDER.bedrock,
  mistral: A.GEN_AI_PROVIDER.mistral,
  xai: A.GEN_AI_PROVIDER.xai,
};

/** `gen_ai.provider.name` of a model from its `provider` field (`openai.responses` -> `openai`). */
export function providerName(provider: unknown): string {
  if (typeof provider !== 'string' || provider === '') return 'unknown';
  if (provider.startsWith('google.vertex')) return A.GEN_AI_PROVIDER.vertexAi;
  const first = provider.split('.')[0]!;
  return PROVIDER_NAMES[first] ?? first;
}

/**
 * The spec of one model's `doGenerate` (streaming false) or `doStream` (true), named `action`
 * (the AI SDK function the application called). The request model is the model object's
 * `modelId`: the call options carry none.
 */
export function languageSpec(model: ModelInfo, action: string, streaming: boolean): OperationSpec {
  return {
    provider: model.provider,
    operationName: 'chat',
    action,
    requestKind: languageWalker,
    requestModel: () => model.modelId,
    isStream: () => streaming,
    requestAttributes(params, attributes) {
      setRequestSettings(attributes, {
        maxTokens: params?.maxOutputTokens,
        temperature: params?.temperature,
        topP: params?.topP,
        topK: params?.topK,
        frequencyPenalty: params?.frequencyPenalty,
        presencePenalty: params?.presencePenalty,
        seed: params?.seed,
        stop: params?.stopSequences,
      });
      const format = params?.responseFormat?.type;
      if (format === 'json' || format === 'text') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = format;
    },
    prompt: promptForHash,
    summarize: summarizeGenerate,
    accumulator: () => new StreamPartAccumulator(),
  };
}

/** The spec of one embedding model's `doEmbed` (`embed`, and each chunk of `embedMany`). */
export function embeddingSpec(model: ModelInfo, action: string): OperationSpec {
  return {
    provider: model.provider,
    operationName: 'embeddings',
    action,
    requestKind: embeddingWalker,
    requestModel: () => model.modelId,
    isStream: () => false,
    requestAttributes() {},
    prompt: (params) => ({ input: params?.values }),
    summarize(data: any): ResponseSummary {
      // Vectors are derived data: no output hash, as for the openai SDK's embeddings.
      const first = Array.isArray(data?.embeddings) ? data.embeddings[0] : undefined;
      const tokens = definedNumber(data?.usage?.tokens);
      return {
        usage: tokens === undefined ? undefined : { input: tokens },
        attributes: Array.isArray(first) ? { [A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT]: first.length } : undefined,
      };
    },
    accumulator: notStreamed,
  };
}

/** The kinds of model an `ai` function takes, each with its own call method and spec. */
export type ModelKind = 'language' | 'embedding' | 'image' | 'speech' | 'transcription' | 'translation' | 'reranking' | 'video' | 'extraction' | 'decision';

const notStreamed = (): StreamAccumulator => {
  throw new Error('this model call does not stream');
};

const digests = contentParts();

/** Generated media as an output part: the SHA-256 of its bytes (base64 text or bytes), never the bytes. */
function mediaDigest(data: unknown, modality: string, mime?: string): OutputPart | undefined {
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) return undefined;
  return digests.inline(data, mime, modality) as OutputPart;
}

/**
 * A generated video (VideoModelV3 / V4 `videos`): `{type:'base64', data}` or `{type:'binary', data}`
 * as the digest of its bytes, `{type:'url', url}` as the URL it can be fetched from.
 */
function videoPart(video: any): OutputPart | undefined {
  const mime = typeof video?.mediaType === 'string' ? video.mediaType : undefined;
  if (video?.type === 'url' && typeof video.url === 'string') return digests.url(video.url, mime, 'video') as OutputPart;
  return mediaDigest(video?.data, 'video', mime);
}

/** What an image, speech, transcription or reranking model's result shares: the model that answered. */
function responseModel(data: any): string | undefined {
  return typeof data?.response?.modelId === 'string' ? data.response.modelId : undefined;
}

/**
 * The spec of a non-language model's call (`doGenerate` of an image, speech, transcription or
 * video model, `doStart` of a video model, `doRerank` of a reranking model). Operation names as
 * the openai SDK's records use them: `generate_content` for images, speech and videos,
 * `transcription`, and `rerank` (the conventions name none of the last two).
 */
export function mediaSpec(kind: Exclude<ModelKind, 'language' | 'embedding' | 'extraction' | 'translation'>, model: ModelInfo, action: string): OperationSpec {
  const base = { provider: model.provider, action, requestModel: () => model.modelId, isStream: () => false, accumulator: notStreamed };
  switch (kind) {
    case 'image':
      return {
        ...base,
        operationName: 'generate_content',
        requestKind: imageWalker,
        requestAttributes(params, attributes) {
          setRequestSettings(attributes, { choiceCount: params?.n, seed: params?.seed });
          attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'image';
        },
        prompt: promptFromContent(imageWalker),
        summarize(data: any): ResponseSummary {
          const images: unknown[] = Array.isArray(data?.images) ? data.images : [];
          const parts = images.flatMap((image) => mediaDigest(image, 'image') ?? []);
          const usage = data?.usage === undefined ? undefined : { input: definedNumber(data.usage.inputTokens), output: definedNumber(data.usage.outputTokens) };
          return { model: responseModel(data), output: [{ role: 'assistant', parts }], usage: usage?.input === undefined && usage?.output === undefined ? undefined : usage };
        },
      };
    case 'speech':
      return {
        ...base,
        operationName: 'generate_content',
        requestKind: speechWalker,
        requestAttributes(_params, attributes) {
          attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'speech';
        },
        prompt: promptFromContent(speechWalker),
        // The voice made of the text is personal data: its digest only.
        summarize: (data: any): ResponseSummary => {
          const audio = mediaDigest(data?.audio, 'audio');
          return { model: responseModel(data), output: audio === undefined ? undefined : [{ role: 'assistant', parts: [audio] }] };
        },
      };
    case 'transcription':
      return {
        ...base,
        operationName: 'transcription',
        requestKind: transcriptionWalker,
        requestAttributes(_params, attributes) {
          attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
        },
        prompt: promptFromContent(transcriptionWalker),
        summarize: (data: any): ResponseSummary => ({
          model: responseModel(data),
          output: typeof data?.text === 'string' ? [{ role: 'assistant', parts: [{ type: 'text', content: data.text }] }] : undefined,
        }),
      };
    case 'video':
      return {
        ...base,
        operationName: 'generate_content',
        requestKind: videoWalker,
        requestAttributes(params, attributes) {
          setRequestSettings(attributes, { choiceCount: params?.n, seed: params?.seed });
          attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'video';
        },
        prompt: promptFromContent(videoWalker),
        // doGenerate answers with the videos; ai 7's doStart only with the operation to poll (no output).
        summarize(data: any): ResponseSummary {
          const videos: unknown[] = Array.isArray(data?.videos) ? data.videos : [];
          const parts = videos.flatMap((video) => videoPart(video) ?? []);
          return { model: responseModel(data), output: parts.length > 0 ? [{ role: 'assistant', parts }] : undefined };
        },
      };
    case 'decision':
      return {
        ...base,
        operationName: 'decide',
        requestKind: decisionWalker,
        requestAttributes(params, attributes) {
          setRequestSettings(attributes, { maxTokens: params?.maxOutputTokens });
        },
        prompt: promptFromContent(decisionWalker),
        // The answers (a choice, a score or a probability per question, refusals) are the model's output, hashed as JSON text.
        summarize: (data: any): ResponseSummary => ({
          model: responseModel(data),
          usage: usageOf(data?.usage),
          output: data?.answers === undefined ? undefined : [{ role: 'assistant', parts: [{ type: 'text', content: canonicalJson(data.answers) }] }],
        }),
      };
    case 'reranking':
      return {
        ...base,
        operationName: 'rerank',
        requestKind: rerankWalker,
        requestAttributes: () => undefined,
        prompt: promptFromContent(rerankWalker),
        // The ranking (document indices and scores) is derived data, as embeddings are: no output hash.
        summarize: (data: any): ResponseSummary => ({ id: typeof data?.response?.id === 'string' ? data.response.id : undefined, model: responseModel(data) }),
      };
  }
}

/** `finishReason`: a string from LanguageModelV2, `{unified, raw}` from V3/V4 (the unified one is kept). */
function finishReason(value: any): string | undefined {
  if (typeof value === 'string') return value;
  return typeof value?.unified === 'string' ? value.unified : undefined;
}

/**
 * Usage as the conventions count it. V3/V4 nest it (`inputTokens.total` includes the cache reads
 * and writes, as the conventions' input count does); V2 has flat numbers (see flatUsage). Undefined when the
 * provider reported no count at all, so that the record says `missing`, not 0.
 */
export function usageOf(usage: any, metadata?: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  const nested = typeof usage.inputTokens === 'object' || typeof usage.outputTokens === 'object';
  const counts: TokenUsage = nested
    ? {
        input: definedNumber(usage.inputTokens?.total),
        output: definedNumber(usage.outputTokens?.total),
        cacheRead: definedNumber(usage.inputTokens?.cacheRead),
        cacheCreation: definedNumber(usage.inputTokens?.cacheWrite),
        reasoning: definedNumber(usage.outputTokens?.reasoning),
      }
    : flatUsage(usage, metadata);
  return Object.values(counts).some((count) => count !== undefined) ? counts : undefined;
}

/**
 * LanguageModelV2 usage (ai 5 providers): flat numbers, and `inputTokens` means what the provider
 * means by it. @ai-sdk/anthropic 2 passes Anthropic's `input_tokens`, which leave out the cache
 * reads and writes; it also hands on Anthropic's own usage object (`providerMetadata.anthropic.usage`),
 * which is read as the Anthropic SDK's is, so that input counts the same whichever way the call was made.
 */
function flatUsage(usage: any, metadata: any): TokenUsage {
  const raw = metadata?.anthropic?.usage;
  if (typeof raw === 'object' && raw !== null) return anthropicUsage(raw) ?? {};
  return {
    input: definedNumber(usage.inputTokens),
    output: definedNumber(usage.outputTokens),
    cacheRead: definedNumber(usage.cachedInputTokens),
    reasoning: definedNumber(usage.reasoningTokens),
  };
}

interface ToolLists {
  names: string[];
  ids: string[];
}

function toolCall(parts: OutputPart[], tools: ToolLists, part: any): void {
  if (typeof part?.toolName !== 'string') return;
  const args = typeof part.input === 'string' ? part.input : JSON.stringify(part.input ?? {});
  parts.push({ type: 'tool_call', id: part.toolCallId, name: part.toolName, arguments: args });
  tools.names.push(part.toolName);
  tools.ids.push(typeof part.toolCallId === 'string' ? part.toolCallId : '');
}

function summary(parts: OutputPart[], tools: ToolLists, finish: string | undefined, id: unknown, model: unknown, usage: unknown, metadata: unknown): ResponseSummary {
  return {
    id: typeof id === 'string' ? id : undefined,
    model: typeof model === 'string' ? model : undefined,
    finishReasons: finish !== undefined ? [finish] : [],
    usage: usageOf(usage, metadata),
    output: [withFinish({ role: 'assistant', parts }, finish)],
    toolNames: tools.names,
    toolCallIds: tools.ids,
  };
}

/** A `doGenerate` result: `content` parts in order, `finishReason`, `usage`, `response.{id, modelId}`. */
function summarizeGenerate(data: any): ResponseSummary {
  const parts: OutputPart[] = [];
  const tools: ToolLists = { names: [], ids: [] };
  for (const part of Array.isArray(data?.content) ? data.content : []) {
    if (part?.type === 'text' && typeof part.text === 'string') parts.push({ type: 'text', content: part.text });
    else if (part?.type === 'reasoning' && typeof part.text === 'string') parts.push({ type: 'reasoning', content: part.text });
    else if (part?.type === 'tool-call') toolCall(parts, tools, part);
  }
  return summary(parts, tools, finishReason(data?.finishReason), data?.response?.id, data?.response?.modelId, data?.usage, data?.providerMetadata);
}

/**
 * Folds `doStream` parts into the summary a whole result gives: text and reasoning deltas joined
 * per block id (in the order the blocks began), tool calls whole (`tool-call`; the `tool-input-*`
 * deltas before it are previews), `response-metadata`, and the `finish` part's usage and reason.
 */
class StreamPartAccumulator implements StreamAccumulator {
  private readonly parts: OutputPart[] = [];
  private readonly open = new Map<string, { type: 'text' | 'reasoning'; content: string }>();
  private readonly tools: ToolLists = { names: [], ids: [] };
  private id: unknown;
  private model: unknown;
  private usage: unknown;
  private metadata: unknown;
  private finish: string | undefined;

  onChunk(part: any): void {
    switch (part?.type) {
      case 'text-delta':
      case 'reasoning-delta': {
        const type = part.type === 'text-delta' ? 'text' : 'reasoning';
        const key = `${type}:${String(part.id)}`;
        let block = this.open.get(key);
        if (block === undefined) {
          block = { type, content: '' };
          this.open.set(key, block);
          this.parts.push(block);
        }
        // ai 5+ names it `delta`; `textDelta` is the V1 name.
        const delta = part.delta ?? part.textDelta;
        if (typeof delta === 'string') block.content += delta;
        break;
      }
      case 'tool-call':
        toolCall(this.parts, this.tools, part);
        break;
      case 'response-metadata':
        this.id ??= part.id;
        this.model ??= part.modelId;
        break;
      case 'finish':
        this.usage = part.usage;
        this.metadata = part.providerMetadata;
        this.finish = finishReason(part.finishReason);
        break;
    }
  }

  summary(): ResponseSummary {
    return summary(this.parts, this.tools, this.finish, this.id, this.model, this.usage, this.metadata);
  }
}
