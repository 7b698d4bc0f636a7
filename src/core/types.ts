import type { Attributes } from '@opentelemetry/api';
import type { TextWalk } from '../audit/sanitize';
import type { ContentParts, GenAIInputMessage, GenAIPart } from '../audit/content/genai-messages';
import type { GuardrailResult } from '../guardrails';
import type { KnownProviderName } from '../semconv';
import type { BatchItem, BatchResultLine } from './batches';
import type { ModalityTokens } from '../audit/cost';
import type { AuditedCall } from './audited-call';

/**
 * `gen_ai.provider.name`: one of the table in semconv.ts (GEN_AI_PROVIDER), or, for a framework
 * over many providers (the Vercel AI SDK) or the operator's host map, any name it gives.
 */
export type ProviderName = KnownProviderName | (string & {});

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
  /** The audio and image parts of those counts, where the provider reports them (OpenAI Realtime): priced at their own rates. */
  modalities?: ModalityTokens;
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
  | { type: 'tool_call'; id?: string; name: string; arguments?: string }
  /** Generated media (images, speech): the SHA-256 of its bytes, never the bytes. */
  | { type: 'blob_digest'; modality: string; mime_type?: string; sha256: string; bytes: number }
  | { type: 'uri'; modality: string; uri: string };

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
  /** Guardrail decisions the provider reported (Azure OpenAI's content filters, Bedrock Guardrails): one `llm_audit.guardrail` event each. */
  guardrails?: ProviderGuardrail[];
  /** Attributes whose value is a keyed hash like the others: of `value`, or one of each item of `each` (the files a call uploaded). */
  hashes?: Record<string, { value: unknown } | { each: readonly unknown[] }>;
  /**
   * The model requests this call sent as a batch (core/batches.ts): hashed and recorded as the
   * aligned `llm_audit.batch.request.*` arrays, and remembered under `key` (the batch or file id)
   * so that the batch's later records link to them.
   */
  batch?: { items: readonly BatchItem[]; key?: string };
  /**
   * The result lines of a batch this call retrieved (an OpenAI batch output file): each becomes a
   * record of its own, made with the spec's `batchResults`, linked as core/batches.ts recordBatchResult says.
   */
  batchResults?: { lines: readonly BatchResultLine[]; link: { batchId?: string; key?: string; attributes?: Attributes } };
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
  /**
   * Azure OpenAI sends this operation to `/deployments/<name>/...`: the deployment, not the body's
   * `model`, is what the request addresses (chat completions, embeddings; not the Responses API).
   */
  byDeployment?: boolean;
  /** The request shape, for the sanitizer's walk and the encrypted content: the provider's walker. */
  requestKind: RequestWalker;
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
  /** The response's summary; `params`: the request as sent, for what the answer does not repeat (ApplyGuardrail's guardrail id). */
  summarize(data: unknown, params?: P): ResponseSummary;
  /**
   * Optional: for a response whose summary needs its body read first (binary responses: speech
   * audio, an uploaded file), a promise of the summary; undefined to use `summarize`. The call
   * ends when it settles; what the application got is not touched.
   */
  settle?(data: unknown, params: P): Promise<ResponseSummary> | undefined;
  /**
   * The fold of a stream's chunks. `call`: the call it folds for, still being constructed (its span
   * does not exist yet), for an accumulator that also follows the request as it is sent (a
   * bidirectional stream's input) and records on the call later.
   */
  accumulator(params: P, call?: AuditedCall): StreamAccumulator;
  /** Guardrail decisions the provider reported with an error (Azure's refused prompt), if any. */
  errorGuardrails?(error: unknown): ProviderGuardrail[] | undefined;
  /**
   * Optional, for an operation the price data cannot price per token: `free` (the provider does
   * not charge for it: token counting) records a cost of 0, `{ unpriced }` records
   * `llm_audit.cost.status` = `unpriced` with that reason (batch results, guardrail checks).
   */
  pricing?: 'free' | { unpriced: string };
  /** Optional: the spec of the record of each result line a response of this operation carries (ResponseSummary.batchResults; core/batches.ts batchResultSpec). */
  batchResults?(line: BatchResultLine): OperationSpec;
  /**
   * Optional: the AbortSignal the request carries, for SDKs whose stream has no controller of its
   * own (the generic adapter then ends a stream aborted while nobody reads it as `aborted`).
   */
  signal?(params: P): AbortSignal | undefined;
}
