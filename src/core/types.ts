import type { Attributes } from '@opentelemetry/api';
import type { RequestKind, TextWalk } from '../audit/sanitize';
import type { ContentParts, GenAIInputMessage, GenAIPart } from '../audit/content/genai-messages';

/**
 * `gen_ai.provider.name` values this package records (the GenAI conventions' names). A framework
 * over many providers (the Vercel AI SDK) names the provider of each model: any such value.
 */
export type ProviderName = 'openai' | 'anthropic' | 'gcp.gemini' | 'gcp.vertex_ai' | 'mistral_ai' | (string & {});

/**
 * A provider's request shape, defined once in its folder (src/instrumentations/<provider>/): one
 * walk over the request that the sanitizer (scan, redact) and encrypted content capture both run,
 * with a different visitor. The built-in kinds of src/audit (OpenAI, Anthropic) predate it.
 */
export interface RequestWalker {
  /** Scans the request text through `walk`; returns the params to send (copy-on-write, the same object when unchanged). */
  sanitize(walk: TextWalk, params: Record<string, unknown>): Record<string, unknown>;
  /** The request in the conventions' shapes (`gen_ai.system_instructions`, `gen_ai.input.messages`). Never throws. */
  content(params: Record<string, unknown>, parts: ContentParts): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] };
}

/** Token counts as the GenAI conventions define them: `input` includes cache reads and writes. */
export interface TokenUsage {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheCreation?: number;
  reasoning?: number;
}

/**
 * One output message in the GenAI conventions' `gen_ai.output.messages` shape. The output hash is
 * computed over an array of these, built the same way from a whole response and from a stream, so
 * that the same answer hashes the same whichever way it arrived.
 */
export interface OutputMessage {
  role: string;
  parts: OutputPart[];
  finish_reason?: string;
}
export type OutputPart =
  | { type: 'text'; content: string }
  | { type: 'reasoning'; content: string }
  | { type: 'tool_call'; id?: string; name: string; arguments?: string };

/** What a provider module extracts from a response (whole or streamed). */
export interface ResponseSummary {
  id?: string;
  model?: string;
  finishReasons?: string[];
  /** Undefined when the provider reported no usage at all. */
  usage?: TokenUsage;
  output?: OutputMessage[];
  toolNames?: string[];
  /** Call ids of those tool calls, aligned with `toolNames` ('' where the provider gave none). */
  toolCallIds?: string[];
  /** Provider-specific attributes (service tier, fingerprint, embedding dimensions...). */
  attributes?: Attributes;
}

/** Folds stream chunks (or events) into a {@link ResponseSummary}. */
export interface StreamAccumulator {
  onChunk(chunk: unknown): void;
  summary(): ResponseSummary;
}

/**
 * Everything provider-specific about one SDK method. Each provider module declares one of these
 * per method; the shared machinery in core/ does the rest, so the patches read alike.
 */
export interface OperationSpec<P = any> {
  provider: ProviderName;
  /** `gen_ai.operation.name`. */
  operationName: string;
  /** `llm_audit.action` when no helper method named itself. */
  action: string;
  /** The request shape, for the sanitizer's walk and the encrypted content: a built-in kind or the provider's walker. */
  requestKind: RequestKind | RequestWalker;
  /** `gen_ai.request.model` when the params do not carry it as `model` (the Vercel AI SDK: the model object's id). */
  requestModel?(params: P): string | undefined;
  isStream(params: P): boolean;
  /** Adds the `gen_ai.request.*` attributes that the request set. */
  requestAttributes(params: P, attributes: Attributes): void;
  /**
   * What the hashes cover: the system prompt (undefined when the request has none, and then no
   * hash is recorded) and the input (messages, prompt or embedding input), in one pass.
   */
  prompt(params: P): { system?: unknown; input?: unknown };
  summarize(data: unknown): ResponseSummary;
  accumulator(params: P): StreamAccumulator;
}
