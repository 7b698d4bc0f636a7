/**
 * `@mistralai/mistralai` responses (the SDK's parsed, camelCase objects) to a ResponseSummary: a
 * chat completion, the events of a chat stream (`{ data: CompletionChunk }`, usage on the last
 * chunk), an embedding response. A streamed answer folds into exactly the summary of the same
 * answer whole, so its output hash is the same.
 */
import * as A from '../../semconv';
import type { OutputMessage, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { appendOutputPart, definedNumber, withFinish } from '../../core/values';

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

interface ChoiceState {
  role: string;
  parts: OutputPart[];
  finish?: string;
}

/** Folds choices (of one response, or the deltas of each chunk in order) into output messages. */
class Choices {
  private readonly byIndex = new Map<number, ChoiceState>();
  readonly toolNames: string[] = [];
  readonly toolCallIds: string[] = [];

  add(choices: unknown, field: 'message' | 'delta'): void {
    if (!Array.isArray(choices)) return;
    choices.forEach((choice: any, position) => {
      const index = typeof choice?.index === 'number' ? choice.index : position;
      let state = this.byIndex.get(index);
      if (state === undefined) this.byIndex.set(index, (state = { role: 'assistant', parts: [] }));
      const message = choice?.[field] ?? {};
      if (typeof message.role === 'string') state.role = message.role;
      if (typeof choice?.finishReason === 'string') state.finish = choice.finishReason;
      const content = message.content;
      if (typeof content === 'string') {
        if (content !== '') appendOutputPart(state.parts, { type: 'text', content });
      } else if (Array.isArray(content)) {
        for (const chunk of content) {
          if (chunk?.type === 'text' && typeof chunk.text === 'string' && chunk.text !== '') appendOutputPart(state.parts, { type: 'text', content: chunk.text });
          else if (chunk?.type === 'thinking') {
            const text = (Array.isArray(chunk.thinking) ? chunk.thinking : []).map((t: any) => (typeof t?.text === 'string' ? t.text : '')).join('');
            if (text !== '') appendOutputPart(state.parts, { type: 'reasoning', content: text });
          }
        }
      }
      for (const call of Array.isArray(message.toolCalls) ? message.toolCalls : []) {
        const name = call?.function?.name;
        if (typeof name !== 'string') continue;
        const args = call.function.arguments;
        const id = typeof call.id === 'string' ? call.id : undefined;
        state.parts.push({ type: 'tool_call', id, name, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) });
        this.toolNames.push(name);
        this.toolCallIds.push(id ?? '');
      }
    });
  }

  output(): { output: OutputMessage[]; finishReasons: string[] } {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    for (const index of [...this.byIndex.keys()].sort((a, b) => a - b)) {
      const state = this.byIndex.get(index)!;
      if (state.finish !== undefined) finishReasons.push(state.finish);
      output.push(withFinish({ role: state.role, parts: state.parts }, state.finish));
    }
    return { output, finishReasons };
  }
}

function summary(id: unknown, model: unknown, usage: unknown, choices: Choices): ResponseSummary {
  const { output, finishReasons } = choices.output();
  return {
    id: typeof id === 'string' ? id : undefined,
    model: typeof model === 'string' ? model : undefined,
    finishReasons,
    usage: mistralUsage(usage),
    output,
    toolNames: choices.toolNames,
    toolCallIds: choices.toolCallIds,
  };
}

export function summarizeChat(data: any): ResponseSummary {
  const choices = new Choices();
  choices.add(data?.choices, 'message');
  return summary(data?.id, data?.model, data?.usage, choices);
}

/** The stream's events are `{ data: CompletionChunk }`; the last chunk carries the usage. */
export class ChatStreamAccumulator implements StreamAccumulator {
  private readonly choices = new Choices();
  private id: unknown;
  private model: unknown;
  private usage: unknown;

  onChunk(event: any): void {
    const chunk = event?.data;
    this.id ??= chunk?.id;
    this.model ??= chunk?.model;
    if (chunk?.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage;
    this.choices.add(chunk?.choices, 'delta');
  }

  summary(): ResponseSummary {
    return summary(this.id, this.model, this.usage, this.choices);
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
