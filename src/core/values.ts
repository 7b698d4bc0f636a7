import type { Attributes } from '@opentelemetry/api';
import * as A from '../semconv';
import type { OutputMessage, OutputPart, ResponseSummary } from './types';

/** `value` when it is a finite number, else undefined: a missing count stays missing, never 0. */
export function definedNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function setNumber(attributes: Attributes, key: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) attributes[key] = value;
}

/** A string or an array of strings as a string array (stop sequences and the like). */
export function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string')) return value;
  return undefined;
}

/** A request's generation settings, as each provider names them, for the `gen_ai.request.*` attributes. */
export interface RequestSettings {
  maxTokens?: unknown;
  temperature?: unknown;
  topP?: unknown;
  topK?: unknown;
  frequencyPenalty?: unknown;
  presencePenalty?: unknown;
  seed?: unknown;
  /** Candidates asked for: recorded only when not 1, as the conventions ask. */
  choiceCount?: unknown;
  /** A string or a list of strings. */
  stop?: unknown;
}

/** The `gen_ai.request.*` attributes of the settings a request set; what it did not set stays absent. */
export function setRequestSettings(attributes: Attributes, s: RequestSettings): void {
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_MAX_TOKENS, s.maxTokens);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_TEMPERATURE, s.temperature);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_TOP_P, s.topP);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_TOP_K, s.topK);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY, s.frequencyPenalty);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY, s.presencePenalty);
  setNumber(attributes, A.ATTR_GEN_AI_REQUEST_SEED, s.seed);
  if (typeof s.choiceCount === 'number' && s.choiceCount !== 1) attributes[A.ATTR_GEN_AI_REQUEST_CHOICE_COUNT] = s.choiceCount;
  const stop = stringList(s.stop);
  if (stop !== undefined) attributes[A.ATTR_GEN_AI_REQUEST_STOP_SEQUENCES] = stop;
}

/** Adds two counts where either may be missing; missing only when both are. */
export function sumCounts(...values: (number | undefined)[]): number | undefined {
  let total: number | undefined;
  for (const value of values) if (value !== undefined) total = (total ?? 0) + value;
  return total;
}

/** Sets the message's `finish_reason` when the provider gave one as a string. */
export function withFinish(message: OutputMessage, finish: unknown): OutputMessage {
  if (typeof finish === 'string') message.finish_reason = finish;
  return message;
}

/**
 * `value` when it is a non-empty string, else undefined. Ids and model names pass through this: an
 * empty string is no known value (Azure OpenAI streams open with a content-filter chunk whose `id`
 * and `model` are ''), and recording it would pass an unknown for a known one.
 */
export function knownString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Appends a part, merging it into the previous one when both are text (or both reasoning): the
 * fragments of a stream and the parts of the same answer whole then give the same output (and hash).
 */
export function appendOutputPart(parts: OutputPart[], part: OutputPart): void {
  const last = parts[parts.length - 1];
  if (last !== undefined && (part.type === 'text' || part.type === 'reasoning') && last.type === part.type) {
    parts[parts.length - 1] = { type: part.type, content: last.content + part.content };
  } else {
    parts.push(part);
  }
}

/**
 * The answer of a token-counting call (`count_tokens`): the count as `llm_audit.token_count`, never
 * as `gen_ai.usage.*`, which sums what calls consumed (counting consumes nothing).
 */
export function tokenCountSummary(count: unknown): ResponseSummary {
  const value = definedNumber(count);
  return value === undefined ? {} : { attributes: { [A.ATTR_AUDIT_TOKEN_COUNT]: value } };
}
