/**
 * `GenerateContentResponse` (whole, or the chunks of a stream) and `EmbedContentResponse` of
 * `@google/genai` to a ResponseSummary. A streamed answer folds into exactly the summary the same
 * answer gives whole (adjacent text and thought fragments merged), so its output hash is the same.
 */
import * as A from '../../semconv';
import type { ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { indexOf, OutputFold } from '../../core/output-fold';
import { definedNumber, sumCounts } from '../../core/values';

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

/** Adds candidates (of one response, or of one chunk, in order) to `fold`. */
function addCandidates(fold: OutputFold, candidates: unknown): void {
  if (!Array.isArray(candidates)) return;
  candidates.forEach((candidate: any, position) => {
    const index = indexOf(candidate, position);
    fold.finish(index, candidate?.finishReason);
    const parts = candidate?.content?.parts;
    for (const part of Array.isArray(parts) ? parts : []) {
      if (typeof part?.text === 'string') fold.text(index, part.thought === true ? 'reasoning' : 'text', part.text);
      else if (typeof part?.functionCall?.name === 'string') fold.toolCall(index, part.functionCall.id, part.functionCall.name, JSON.stringify(part.functionCall.args ?? {}));
    }
  });
}

export function summarizeGenerate(data: any): ResponseSummary {
  const fold = new OutputFold();
  addCandidates(fold, data?.candidates);
  return fold.summary(data?.responseId, data?.modelVersion, geminiUsage(data?.usageMetadata));
}

/**
 * Each chunk is a GenerateContentResponse with the next fragments; `usageMetadata` is cumulative
 * (the last one that came holds the counts so far), and the final chunk has the finish reason.
 */
export class GenerateStreamAccumulator implements StreamAccumulator {
  private readonly fold = new OutputFold();
  private id: unknown;
  private model: unknown;
  private usage: unknown;

  onChunk(chunk: any): void {
    this.id ??= chunk?.responseId;
    this.model ??= chunk?.modelVersion;
    if (chunk?.usageMetadata !== undefined && chunk.usageMetadata !== null) this.usage = chunk.usageMetadata;
    addCandidates(this.fold, chunk?.candidates);
  }

  summary(): ResponseSummary {
    return this.fold.summary(this.id, this.model, geminiUsage(this.usage));
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
