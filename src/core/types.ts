import type { Attributes } from '@opentelemetry/api';
import type { RequestKind, RequestWalker } from '../audit/sanitize';
import type { ConvertOptions, GenAIInputMessage, GenAIPart } from '../audit/content';
import type { GuardrailResult } from '../guardrails';

/** `gen_ai.provider.name`. */
export type ProviderName = 'openai' | 'anthropic' | 'aws.bedrock';

/**
 * A provider folder's own request walker (src/instrumentations/<provider>/): one definition of what
 * the system prompt and the input are, used for redaction, for the hashes and for the encrypted
 * content alike. The built-in kinds (`RequestKind`) are the older providers' walkers in src/audit/.
 */
export interface ProviderRequest {
  /** Scans (in redact mode rewrites, copy-on-write) the text the provider will read. May throw for a request it cannot read. */
  sanitize: RequestWalker;
  /** The system instructions and input messages in the GenAI conventions' shapes. Never throws. */
  content(params: unknown, options?: ConvertOptions): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] };
}

/** A guardrail decision the provider itself reported in its response (Bedrock Guardrails...). */
export interface ProviderGuardrail {
  result: GuardrailResult;
  /** Provider attributes added to the event (`aws.bedrock.guardrail.id`). */
  attributes?: Attributes;
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
  /** Guardrail decisions reported by the provider: one `llm_audit.guardrail` event each. */
  guardrails?: ProviderGuardrail[];
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
  /** The request shape: a built-in kind, or the provider folder's own walker. */
  requestKind: RequestKind | ProviderRequest;
  isStream(params: P): boolean;
  /** `gen_ai.request.model` when the request does not name it in `model` (Bedrock's `modelId`). */
  requestModel?(params: P): string | undefined;
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
