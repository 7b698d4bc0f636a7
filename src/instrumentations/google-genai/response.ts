/**
 * `GenerateContentResponse` (whole, or the chunks of a stream) and `EmbedContentResponse` of
 * `@google/genai` to a ResponseSummary. A streamed answer folds into exactly the summary the same
 * answer gives whole (adjacent text and thought fragments merged), so its output hash is the same.
 */
import * as A from '../../semconv';
import type { OutputMessage, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { appendOutputPart, definedNumber, sumCounts, withFinish } from '../../core/values';

/**
 * Gemini's `usageMetadata`: `promptTokenCount` already includes `cachedContentTokenCount`, while
 * `candidatesTokenCount` leaves out the thinking tokens (`thoughtsTokenCount`). The conventions'
 * output count includes reasoning, so the two are added; tool-use prompt tokens are input.
 */
export function geminiUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  const reasoning = definedNumber(usage.thoughtsTokenCount);
  return {
    input: sumCounts(definedNumber(usage.promptTokenCount), definedNumber(usage.toolUsePromptTokenCount)),
    output: sumCounts(definedNumber(usage.candidatesTokenCount), reasoning),
    cacheRead: definedNumber(usage.cachedContentTokenCount),
    reasoning,
  };
}

interface CandidateState {
  parts: OutputPart[];
  finish?: string;
}

/** Folds candidates (of one response, or of each chunk in order) into output messages. */
class Candidates {
  private readonly byIndex = new Map<number, CandidateState>();
  readonly toolNames: string[] = [];
  readonly toolCallIds: string[] = [];

  add(candidates: unknown): void {
    if (!Array.isArray(candidates)) return;
    candidates.forEach((candidate: any, position) => {
      const index = typeof candidate?.index === 'number' ? candidate.index : position;
      let state = this.byIndex.get(index);
      if (state === undefined) this.byIndex.set(index, (state = { parts: [] }));
      if (typeof candidate?.finishReason === 'string') state.finish = candidate.finishReason;
      const parts = candidate?.content?.parts;
      for (const part of Array.isArray(parts) ? parts : []) {
        if (typeof part?.text === 'string') {
          if (part.text !== '') appendOutputPart(state.parts, { type: part.thought === true ? 'reasoning' : 'text', content: part.text });
        } else if (typeof part?.functionCall?.name === 'string') {
          const call = part.functionCall;
          const id = typeof call.id === 'string' ? call.id : undefined;
          state.parts.push({ type: 'tool_call', id, name: call.name, arguments: JSON.stringify(call.args ?? {}) });
          this.toolNames.push(call.name);
          this.toolCallIds.push(id ?? '');
        }
      }
    });
  }

  output(): { output: OutputMessage[]; finishReasons: string[] } {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    for (const index of [...this.byIndex.keys()].sort((a, b) => a - b)) {
      const state = this.byIndex.get(index)!;
      if (state.finish !== undefined) finishReasons.push(state.finish);
      output.push(withFinish({ role: 'assistant', parts: state.parts }, state.finish));
    }
    return { output, finishReasons };
  }
}

function summary(id: unknown, model: unknown, usage: unknown, candidates: Candidates): ResponseSummary {
  const { output, finishReasons } = candidates.output();
  return {
    id: typeof id === 'string' ? id : undefined,
    model: typeof model === 'string' ? model : undefined,
    finishReasons,
    usage: geminiUsage(usage),
    output,
    toolNames: candidates.toolNames,
    toolCallIds: candidates.toolCallIds,
  };
}

export function summarizeGenerate(data: any): ResponseSummary {
  const candidates = new Candidates();
  candidates.add(data?.candidates);
  return summary(data?.responseId, data?.modelVersion, data?.usageMetadata, candidates);
}

/**
 * Each chunk is a GenerateContentResponse with the next fragments; `usageMetadata` is cumulative
 * (the last one that came holds the counts so far), and the final chunk has the finish reason.
 */
export class GenerateStreamAccumulator implements StreamAccumulator {
  private readonly candidates = new Candidates();
  private id: unknown;
  private model: unknown;
  private usage: unknown;

  onChunk(chunk: any): void {
    this.id ??= chunk?.responseId;
    this.model ??= chunk?.modelVersion;
    if (chunk?.usageMetadata !== undefined && chunk.usageMetadata !== null) this.usage = chunk.usageMetadata;
    this.candidates.add(chunk?.candidates);
  }

  summary(): ResponseSummary {
    return summary(this.id, this.model, this.usage, this.candidates);
  }
}

/**
 * Vectors are derived data, not content anyone reads: no output hash. The Gemini API reports no
 * usage for embeddings (usage.status = missing); Vertex AI gives a token count per input.
 */
export function summarizeEmbed(data: any): ResponseSummary {
  const embeddings: any[] = Array.isArray(data?.embeddings) ? data.embeddings : [];
  const counts = embeddings.map((embedding) => definedNumber(embedding?.statistics?.tokenCount));
  const input = counts.some((count) => count !== undefined) ? sumCounts(...counts) : undefined;
  const first = embeddings[0]?.values;
  return {
    usage: input === undefined ? undefined : { input },
    attributes: Array.isArray(first) ? { [A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT]: first.length } : undefined,
  };
}
