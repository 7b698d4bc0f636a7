/**
 * `@mistralai/mistralai` responses (the SDK's parsed, camelCase objects) to a ResponseSummary: a
 * chat completion, the events of a chat stream (`{ data: CompletionChunk }`, usage on the last
 * chunk), an embedding response. A streamed answer folds into exactly the summary of the same
 * answer whole, so its output hash is the same.
 */
import * as A from '../../semconv';
import type { ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { indexOf, OutputFold } from '../../core/output-fold';
import { definedNumber } from '../../core/values';

/** Mistral's usage (the SDK fills a missing count with 0; a missing `usage` stays missing). */
export function mistralUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  return {
    input: definedNumber(usage.promptTokens),
    output: definedNumber(usage.completionTokens),
    // Not in the SDK's schema: kept under the wire name when the API sends it.
    cacheRead: definedNumber(usage.promptTokensDetails?.cachedTokens ?? usage.prompt_tokens_details?.cached_tokens),
  };
}

/** Adds choices (of one response, or the deltas of one chunk, in order) to `fold`. */
function addChoices(fold: OutputFold, choices: unknown, field: 'message' | 'delta'): void {
  if (!Array.isArray(choices)) return;
  choices.forEach((choice: any, position) => {
    const index = indexOf(choice, position);
    const message = choice?.[field] ?? {};
    fold.role(index, message.role);
    fold.finish(index, choice?.finishReason);
    const content = message.content;
    if (typeof content === 'string') fold.text(index, 'text', content);
    for (const chunk of Array.isArray(content) ? content : []) {
      if (chunk?.type === 'text') fold.text(index, 'text', chunk.text);
      else if (chunk?.type === 'thinking' && Array.isArray(chunk.thinking)) {
        fold.text(index, 'reasoning', chunk.thinking.map((t: any) => (typeof t?.text === 'string' ? t.text : '')).join(''));
      }
    }
    for (const call of Array.isArray(message.toolCalls) ? message.toolCalls : []) {
      const name = call?.function?.name;
      if (typeof name !== 'string') continue;
      const args = call.function.arguments;
      fold.toolCall(index, call.id, name, typeof args === 'string' ? args : JSON.stringify(args ?? {}));
    }
  });
}

export function summarizeChat(data: any): ResponseSummary {
  const fold = new OutputFold();
  addChoices(fold, data?.choices, 'message');
  return fold.summary(data?.id, data?.model, mistralUsage(data?.usage));
}

/** The stream's events are `{ data: CompletionChunk }`; the last chunk carries the usage. */
export class ChatStreamAccumulator implements StreamAccumulator {
  private readonly fold = new OutputFold();
  private id: unknown;
  private model: unknown;
  private usage: unknown;

  onChunk(event: any): void {
    const chunk = event?.data;
    this.id ??= chunk?.id;
    this.model ??= chunk?.model;
    if (chunk?.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage;
    addChoices(this.fold, chunk?.choices, 'delta');
  }

  summary(): ResponseSummary {
    return this.fold.summary(this.id, this.model, mistralUsage(this.usage));
  }
}

/** Vectors are derived data, not content anyone reads: no output hash. */
export function summarizeEmbed(data: any): ResponseSummary {
  const first = Array.isArray(data?.data) ? data.data[0]?.embedding : undefined;
  const usage = data?.usage;
  return {
    id: typeof data?.id === 'string' ? data.id : undefined,
    model: typeof data?.model === 'string' ? data.model : undefined,
    usage: usage === undefined || usage === null ? undefined : { input: definedNumber(usage.promptTokens) },
    attributes: Array.isArray(first) ? { [A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT]: first.length } : undefined,
  };
}
