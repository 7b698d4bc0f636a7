import { randomUUID } from 'node:crypto';
import {
  diag,
  SpanStatusCode,
  type Attributes,
  type Context,
  type Histogram,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { context, createContextKey } from '@opentelemetry/api';
import { getAuditContext, pendingRetrievals, type AuditContext, type Retrieval } from '../context';
import {
  guardrailAttributes,
  LlmRequestBlockedError,
  withCurrentCall,
  type AuditRequest,
  type GuardrailResult,
  type GuardrailTarget,
  type LlmAuditHooks,
} from '../guardrails';
import { retrievalAttributes } from '../retrieval';
import type { SanitizeResult, Sanitizer } from '../audit/sanitize';
import { contentPayload, type ContentCipher } from '../audit/content';
import { auditErrorMessage, errorType, loggableError, scrubText } from '../audit/redact';
import type { ContentHasher } from '../audit/hashing';
import { recordedClientAddress, type ClientAddressMode } from '../audit/client-address';
import type { CostCalculator } from '../audit/cost';
import * as A from '../semconv';
import { startCallSpans } from './audit-records';
import { providerOf, type ProviderHostMap } from '../instrumentations/provider-hosts';
import type { OperationSpec, ResponseSummary, StreamAccumulator, TokenUsage } from './types';
import { setNumber } from './values';
import { batchHashAttributes, batchHashes, recordBatchResult, rememberBatchRequests, type BatchRequestHash } from './batches';

/** What every call needs from the instrumentation: built once, shared by all calls. */
export interface AuditServices {
  tracer: Tracer;
  hasher: ContentHasher;
  cost: CostCalculator;
  durationHistogram: Histogram;
  tokenHistogram: Histogram;
  /** False while the histograms are the API's no-op ones (no meter provider registered). */
  metricsEnabled: boolean;
  /** Calls whose span is still open; the shutdown path ends them so that none is lost. */
  openCalls: Set<AuditedCall>;
  hooks: LlmAuditHooks | undefined;
  /** The operator's host-to-provider map (LLM_AUDIT_PROVIDER_HOSTS); undefined when none is set. */
  providerHosts: ProviderHostMap | undefined;
  /** Sanitization of the request text; undefined when off. */
  sanitize: { mode: 'detect' | 'redact'; sanitizer: Sanitizer } | undefined;
  /** Encrypted content capture; undefined when off. */
  content: ContentCipher | undefined;
  /** How much of the end user's IP address is recorded (LLM_AUDIT_CLIENT_ADDRESS). */
  clientAddress: ClientAddressMode;
}

/** Where a call goes, as its SDK client tells (src/instrumentations/provider-hosts.ts). */
export interface ServerInfo {
  address?: string;
  port?: number;
  /** The recipient when the client or host says (Azure, Bedrock, Groq...); else the SDK's provider. */
  provider?: string;
  /** Azure OpenAI: the deployment the request goes to, recorded as the request model. */
  deployment?: string;
  /** Request attributes of the endpoint (the Azure OpenAI api-version). */
  attributes?: Attributes;
}

/**
 * Set in the context the SDK method of an audited call runs in. A call made inside another one is
 * the same model call seen from below (a Vercel AI SDK model built on the `openai` SDK): it is
 * recorded once, by the outer call, which saw the request the application made.
 */
export const IN_AUDITED_CALL = createContextKey('otel-llm-audit.in-audited-call');
/**
 * Set while a hook runs: an LLM call the hook makes (a moderation check) is audited as a call of
 * its own, but does not run the hooks again, which would call themselves without end.
 */
export const IN_HOOK = createContextKey('otel-llm-audit.in-hook');

const requestIds = new WeakMap<object, string>();

/**
 * The `llm_audit.request_id` of the call that produced `value` (a completion, message, stream or
 * raw Response returned by an instrumented SDK method), for correlating application logs with the
 * audit trail. Undefined for anything else.
 */
export function getAuditRequestId(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? requestIds.get(value) : undefined;
}

/**
 * The life of one audited LLM call: one span, started before the request and ended exactly once,
 * whichever way the call ends (response parsed, raw response taken, stream finished, abandoned,
 * aborted, failed, collected unconsumed, or process shutdown).
 */
export class AuditedCall implements GuardrailTarget {
  /** Where the call is recorded: its audit record (and its trace span while that one records). */
  readonly span: Span;
  /** The span that is active while the SDK runs: the application's tracing decides about it. */
  readonly traceSpan: Span;
  readonly requestId = randomUUID();
  private readonly startMs = performance.now();
  private firstChunkMs: number | undefined;
  /** Set when the call's end is being recorded: nothing else may end it. */
  private ended = false;
  /** Set once the span has ended: nothing more can be recorded on it. */
  private closed = false;
  private accumulator: StreamAccumulator | undefined;
  private readonly metricAttributes: Attributes | undefined;
  private readonly requestModel: string | undefined;
  /** `gen_ai.provider.name`: who received the call (see provider-hosts.ts), which prices it too. */
  private readonly provider: string;
  private readonly action: string;
  private readonly audit: AuditContext | undefined;
  /** Made by a hook (see IN_HOOK): the hooks do not run for it. */
  private readonly inHook: boolean;
  private ragDocumentIds: string[] | undefined;
  /** The request as sent, kept only when content is captured (encrypted at the end) or the spec settles later (reads it then). */
  private readonly sentParams: unknown;
  /**
   * The request as sent, until the call ends: a failure's message is scrubbed of its text (see
   * auditErrorMessage), and a whole response's summary may read what the answer does not repeat
   * (OperationSpec.summarize). Only a reference.
   */
  private quotable: unknown;
  /** Batch result lines still to record (see recordBatchResults): records them all at once. */
  private pendingResults: (() => void) | undefined;
  /** The request's AbortSignal, where the spec can tell it (see OperationSpec.signal). */
  readonly signal: AbortSignal | undefined;

  constructor(
    readonly services: AuditServices,
    private readonly spec: OperationSpec,
    params: any,
    action: string,
    private readonly server: ServerInfo,
    private readonly parent: Context,
  ) {
    // An Azure deployment is what the request addresses, whatever `model` the body carries
    // (Bedrock: the command's modelId).
    const named = spec.requestModel !== undefined ? spec.requestModel(params) : params?.model;
    const model = (spec.byDeployment ? server.deployment : undefined) ?? (typeof named === 'string' ? named : undefined);
    this.requestModel = model;
    // The operator's map, then what the client says (its class, Gemini API or Vertex AI) and the
    // host (provider-hosts.ts), else the SDK's own name.
    this.provider = providerOf(server, services.providerHosts, spec.provider);
    this.action = action;
    this.sentParams = services.content !== undefined || spec.settle !== undefined ? params : undefined;
    this.quotable = params;
    // One object, filled in a fixed order: every call's attribute set then shares one hidden class.
    const attributes: Attributes = {};
    attributes[A.ATTR_GEN_AI_OPERATION_NAME] = spec.operationName;
    attributes[A.ATTR_GEN_AI_PROVIDER_NAME] = this.provider;
    if (model !== undefined) attributes[A.ATTR_GEN_AI_REQUEST_MODEL] = model;
    if (server.address !== undefined) attributes[A.ATTR_SERVER_ADDRESS] = server.address;
    if (server.port !== undefined) attributes[A.ATTR_SERVER_PORT] = server.port;
    // The low-cardinality attributes the metrics share with the span, copied only when metrics
    // are recorded.
    this.metricAttributes = services.metricsEnabled ? { ...attributes } : undefined;
    attributes[A.ATTR_AUDIT_REQUEST_ID] = this.requestId;
    attributes[A.ATTR_AUDIT_ACTION] = action;

    const streaming = spec.isStream(params);
    if (streaming) {
      attributes[A.ATTR_GEN_AI_REQUEST_STREAM] = true;
      this.accumulator = spec.accumulator(params, this);
    }
    this.signal = streaming ? spec.signal?.(params) : undefined;
    spec.requestAttributes(params, attributes);
    if (server.attributes !== undefined) Object.assign(attributes, server.attributes);
    this.audit = getAuditContext(parent);
    this.inHook = parent.getValue(IN_HOOK) === true;
    if (this.audit !== undefined) Object.assign(attributes, auditContextAttributes(this.audit, services));
    const { hasher } = services;
    const { system, input } = spec.prompt(params);
    if (system !== undefined) attributes[A.ATTR_AUDIT_SYSTEM_PROMPT_HASH] = hasher.hashRepeated(system);
    if (input !== undefined) attributes[A.ATTR_AUDIT_INPUT_HASH] = hasher.hashMessages(input);

    // The conventions name the span `{operation} {model}`.
    const name = model !== undefined ? `${spec.operationName} ${model}` : spec.operationName;
    const spans = startCallSpans(services.tracer, name, attributes, parent);
    this.span = spans.record;
    this.traceSpan = spans.trace;
    services.openCalls.add(this);
    // Retrievals recorded in this scope since the previous call belong to this one.
    const pending = pendingRetrievals(parent);
    if (pending !== undefined && pending.length > 0) for (const retrieval of pending.splice(0)) this.addRetrieval(retrieval);
  }

  /** What a beforeRequest hook sees. */
  request(params: unknown): AuditRequest {
    return {
      requestId: this.requestId,
      provider: this.provider,
      operation: this.spec.operationName,
      action: this.action,
      model: this.requestModel,
      params,
      audit: this.audit,
    };
  }

  /** Runs a hook so that recordGuardrail/recordRetrieval inside it (even after an await) land on this call. */
  runHook<T>(hook: () => T): T {
    // A hook's own LLM call (a moderation check) is a call of its own, audited as one.
    return context.with(withCurrentCall(context.active().deleteValue(IN_AUDITED_CALL).setValue(IN_HOOK, true), this), hook);
  }

  /** One `llm_audit.sanitization` event per finding type and location (never the value), and the total. */
  recordSanitization(mode: 'detect' | 'redact', result: SanitizeResult): void {
    this.span.setAttribute(A.ATTR_AUDIT_SANITIZATION_MODE, mode);
    this.span.setAttribute(A.ATTR_AUDIT_SANITIZATION_COUNT, result.total);
    for (const finding of result.findings) {
      this.span.addEvent(A.EVENT_AUDIT_SANITIZATION, {
        [A.ATTR_AUDIT_SANITIZATION_TYPE]: finding.type,
        [A.ATTR_AUDIT_SANITIZATION_COUNT]: finding.count,
        [A.ATTR_AUDIT_SANITIZATION_LOCATION]: finding.location,
        [A.ATTR_AUDIT_SANITIZATION_MODE]: mode,
      });
    }
  }

  /** One `llm_audit.guardrail` event; `attributes`: what the provider adds to its own decisions (`aws.bedrock.guardrail.id`). */
  addGuardrail(result: GuardrailResult, attributes?: Attributes): void {
    if (this.closed) return;
    const event = guardrailAttributes(result, this.quotable);
    this.span.addEvent(A.EVENT_AUDIT_GUARDRAIL, attributes === undefined ? event : { ...event, ...attributes });
  }

  addRetrieval(retrieval: Retrieval): void {
    if (this.closed) return;
    this.ragDocumentIds = [...(this.ragDocumentIds ?? []), ...retrieval.documentIds.map(String)];
    this.span.setAttribute(A.ATTR_AUDIT_RAG_DOCUMENT_IDS, this.ragDocumentIds);
    this.span.addEvent(A.EVENT_AUDIT_RETRIEVAL, retrievalAttributes(retrieval));
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** True until the span has ended (afterResponse hooks may still add guardrail events). */
  get acceptsEvents(): boolean {
    return !this.closed;
  }

  /** Remembers which returned object belongs to this call (see {@link getAuditRequestId}). */
  tag(value: unknown): void {
    if (typeof value === 'object' && value !== null) requestIds.set(value, this.requestId);
  }

  /** A whole (non-streamed) response was parsed by the SDK. */
  completeWith(data: unknown): void {
    if (this.ended) return;
    const later = this.spec.settle?.(data, this.sentParams);
    if (later === undefined) {
      this.finish(this.spec.summarize(data, this.quotable));
      return;
    }
    later.then(
      (summary) => {
        if (!this.ended) this.finish(summary);
      },
      (error: unknown) => {
        // The call succeeded; only reading its body again for the record failed (a connection
        // dropped mid-body): recorded as the response said, without what the body would add.
        diag.error(`otel-llm-audit: could not read the response body of request ${this.requestId} for its record`, error);
        if (!this.ended) this.finish(this.spec.summarize(data, this.quotable));
      },
    );
  }

  /** A stream chunk reached the application. */
  onChunk(chunk: unknown): void {
    if (this.ended) return;
    if (this.firstChunkMs === undefined) this.firstChunkMs = performance.now();
    this.accumulator?.onChunk(chunk);
  }

  /**
   * The stream ended without an error: `completed` when the provider finished it, otherwise how
   * the application left it. What arrived so far is still recorded.
   */
  endStream(outcome: (typeof A.STREAM_OUTCOME)[keyof typeof A.STREAM_OUTCOME]): void {
    this.pendingResults?.();
    if (this.ended) return;
    this.span.setAttribute(A.ATTR_AUDIT_STREAM_OUTCOME, outcome);
    this.finish(this.accumulator?.summary() ?? {});
  }

  /**
   * The process is ending while the call still runs: recorded now, as `interrupted`, with what
   * arrived so far (a stream's chunks), rather than lost or passed off as a success.
   */
  interrupt(): void {
    this.pendingResults?.();
    if (this.ended) return;
    if (this.accumulator !== undefined) {
      this.span.setAttribute(A.ATTR_AUDIT_STREAM_OUTCOME, this.firstChunkMs === undefined ? A.STREAM_OUTCOME.notConsumed : A.STREAM_OUTCOME.abandoned);
    }
    this.finish(this.accumulator?.summary() ?? {}, undefined, A.AUDIT_STATUS.interrupted);
  }

  /**
   * The response arrived but nobody asked the SDK to parse it (`asResponse()`, or the promise was
   * never awaited): record what the HTTP layer tells and close, so the span is not left open.
   */
  endUnparsed(response: { status?: number; headers?: { get(name: string): string | null } } | undefined): void {
    if (this.ended) return;
    if (response?.status !== undefined) this.span.setAttribute(A.ATTR_HTTP_RESPONSE_STATUS_CODE, response.status);
    this.finish({});
  }

  /** The call failed: request error, API error status, parse failure or an error mid-stream. */
  fail(error: unknown, outcome?: (typeof A.STREAM_OUTCOME)[keyof typeof A.STREAM_OUTCOME]): void {
    if (this.ended) return;
    if (error instanceof LlmRequestBlockedError) {
      // A reason may quote the prompt (a hook's "found 'xyz' in …", a sanitizer's failure).
      this.span.setAttribute(A.ATTR_AUDIT_BLOCK_REASON, scrubText(error.reason, this.quotable));
      this.span.setAttribute(A.ATTR_ERROR_TYPE, error.name);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: `blocked by guardrail ${error.guardrail.name}` });
      // Blocked once it ran (a Realtime response the server started): what arrived is recorded.
      this.finish((this.firstChunkMs !== undefined ? this.accumulator?.summary() : undefined) ?? {}, error.name, A.AUDIT_STATUS.blocked);
      return;
    }
    const type = errorType(error, this.quotable);
    for (const guardrail of this.spec.errorGuardrails?.(error) ?? []) this.addGuardrail(guardrail.result, guardrail.attributes);
    // Provider error bodies quote the prompt: its text is removed before anything is recorded.
    const message = auditErrorMessage(error, this.quotable);
    this.span.setAttribute(A.ATTR_ERROR_TYPE, type);
    this.span.setAttribute(A.ATTR_AUDIT_ERROR_MESSAGE, message);
    if (outcome !== undefined) this.span.setAttribute(A.ATTR_AUDIT_STREAM_OUTCOME, outcome);
    // `status` (Stainless SDKs, @google/genai) or `statusCode` (Speakeasy SDKs: Mistral).
    const failed = error as { status?: unknown; statusCode?: unknown } | null;
    const status = typeof failed?.status === 'number' ? failed.status : failed?.statusCode;
    if (typeof status === 'number') this.span.setAttribute(A.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // The status description is exported too, so it carries the masked message, never the raw one.
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    this.finish(this.accumulator?.summary() ?? {}, type);
  }

  private finish(summary: ResponseSummary, failedWith?: string, status?: A.AuditStatus): void {
    this.ended = true;
    const quotable = this.quotable;
    this.quotable = undefined;
    const auditStatus = status ?? (failedWith === undefined ? A.AUDIT_STATUS.success : A.AUDIT_STATUS.error);
    try {
      this.recordSummary(summary, failedWith, auditStatus);
    } catch (error) {
      diag.error(`otel-llm-audit: could not record the response on the audit span: ${loggableError(error, { request: quotable, output: summary.output })}`);
    }
    const afterResponse = this.inHook ? undefined : this.services.hooks?.afterResponse;
    if (afterResponse !== undefined) {
      try {
        this.runHook(() =>
          afterResponse({
            ...this.request(undefined),
            responseModel: summary.model,
            status: auditStatus,
            output: summary.output,
            usage: summary.usage,
          }),
        );
      } catch (error) {
        // The hook saw the request and the output: its message may quote either.
        diag.error(`otel-llm-audit: the afterResponse hook threw: ${loggableError(error, { request: quotable, output: summary.output })}`);
      }
    }
    // Closed only now, so that the hook's recordGuardrail() still lands on this span.
    this.closed = true;
    this.services.openCalls.delete(this);
    this.span.end();
    if (summary.batchResults !== undefined) this.recordBatchResults(summary.batchResults);
  }

  /**
   * The result lines this call retrieved, each a record of its own after this one (core/batches.ts).
   * A results file holds up to 50,000 lines, and a record costs about 0.1-1 ms (measured: 5,000
   * lines blocked the event loop 3.4 s in one go), so they are recorded RESULTS_PER_TURN at a time,
   * the application's work running in between. Until the last one is recorded the call stays
   * among the open ones: a shutdown waits for them, and records what is left at once
   * (pendingResults) rather than losing it.
   */
  private recordBatchResults(results: NonNullable<ResponseSummary['batchResults']>): void {
    const specOf = this.spec.batchResults;
    if (specOf === undefined || results.lines.length === 0) return;
    const { lines, link } = results;
    let next = 0;
    const record = (upTo: number): void => {
      for (; next < upTo; next++) {
        const line = lines[next]!;
        const start = (request: BatchRequestHash | undefined) => {
          const spec = specOf(line);
          return new AuditedCall(this.services, spec, request, spec.action, this.server, this.parent);
        };
        recordBatchResult(start, line, link);
      }
      if (next < lines.length) return;
      this.pendingResults = undefined;
      this.services.openCalls.delete(this);
    };
    const turn = (): void => {
      if (this.pendingResults === undefined) return;
      record(Math.min(lines.length, next + RESULTS_PER_TURN));
      if (this.pendingResults !== undefined) setImmediate(turn);
    };
    this.pendingResults = () => record(lines.length);
    this.services.openCalls.add(this);
    turn();
  }

  private recordSummary(summary: ResponseSummary, failedWith: string | undefined, status: A.AuditStatus): void {
    const span = this.span;
    const attributes: Attributes = {};
    attributes[A.ATTR_AUDIT_STATUS] = status;
    if (summary.id !== undefined) attributes[A.ATTR_GEN_AI_RESPONSE_ID] = summary.id;
    if (summary.model !== undefined) attributes[A.ATTR_GEN_AI_RESPONSE_MODEL] = summary.model;
    if (summary.finishReasons?.length) attributes[A.ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = summary.finishReasons;
    if (summary.toolNames?.length) attributes[A.ATTR_AUDIT_TOOL_NAMES] = summary.toolNames;
    if (summary.toolCallIds?.length) attributes[A.ATTR_AUDIT_TOOL_CALL_IDS] = summary.toolCallIds;
    if (summary.output !== undefined) attributes[A.ATTR_AUDIT_OUTPUT_HASH] = this.services.hasher.hash(summary.output);
    for (const [key, hashed] of Object.entries(summary.hashes ?? {})) {
      attributes[key] = 'each' in hashed ? hashed.each.map((value) => this.services.hasher.hash(value)) : this.services.hasher.hash(hashed.value);
    }
    if (summary.batch !== undefined) {
      const requests = batchHashes(this.services.hasher, summary.batch.items);
      Object.assign(attributes, batchHashAttributes(requests));
      if (summary.batch.key !== undefined) rememberBatchRequests(summary.batch.key, requests);
    }
    if (this.firstChunkMs !== undefined) {
      attributes[A.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (this.firstChunkMs - this.startMs) / 1000;
    }
    const usage = summary.usage;
    if (usage !== undefined) {
      attributes[A.ATTR_AUDIT_USAGE_STATUS] = A.USAGE_STATUS.reported;
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_INPUT_TOKENS, usage.input);
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, usage.output);
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cacheRead);
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, usage.cacheCreation);
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cacheCreation);
      setNumber(attributes, A.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning);
      const modalities = usage.modalities;
      if (modalities !== undefined) {
        setNumber(attributes, A.ATTR_AUDIT_USAGE_INPUT_AUDIO_TOKENS, modalities.inputAudio);
        setNumber(attributes, A.ATTR_AUDIT_USAGE_CACHE_READ_AUDIO_TOKENS, modalities.cacheReadAudio);
        setNumber(attributes, A.ATTR_AUDIT_USAGE_OUTPUT_AUDIO_TOKENS, modalities.outputAudio);
        setNumber(attributes, A.ATTR_AUDIT_USAGE_INPUT_IMAGE_TOKENS, modalities.inputImage);
        setNumber(attributes, A.ATTR_AUDIT_USAGE_CACHE_READ_IMAGE_TOKENS, modalities.cacheReadImage);
      }
    } else {
      attributes[A.ATTR_AUDIT_USAGE_STATUS] = A.USAGE_STATUS.missing;
    }
    this.recordCost(attributes, summary.model, usage);
    if (this.services.content !== undefined) this.recordContent(attributes, summary);
    if (summary.attributes !== undefined) Object.assign(attributes, summary.attributes);
    span.setAttributes(attributes);
    for (const guardrail of summary.guardrails ?? []) this.addGuardrail(guardrail.result, guardrail.attributes);
    this.recordMetrics(summary, usage, failedWith);
  }

  /**
   * Seals what was said into an envelope: nothing of it in plaintext leaves the process. A failure
   * to seal (keystore unwritable...) leaves the attribute out and is reported through diag.
   */
  private recordContent(attributes: Attributes, summary: ResponseSummary): void {
    try {
      const payload = contentPayload(this.spec.requestKind, this.sentParams, summary.output);
      attributes[A.ATTR_AUDIT_CONTENT_ENCRYPTED] = this.services.content!.seal(payload, {
        requestId: this.requestId,
        tenantId: this.audit?.tenantId,
      });
    } catch (error) {
      diag.error(`otel-llm-audit: could not encrypt the content of request ${this.requestId}`, error);
    }
  }

  private recordCost(attributes: Attributes, responseModel: string | undefined, usage: TokenUsage | undefined): void {
    const model = responseModel ?? this.requestModel;
    const pricing = this.spec.pricing;
    if (pricing === 'free') {
      setCost(attributes, 0);
      return;
    }
    if (pricing !== undefined) {
      attributes[A.ATTR_AUDIT_COST_STATUS] = A.COST_STATUS.unpriced;
      diag.debug(`otel-llm-audit: no cost for ${this.action}: ${pricing.unpriced}`);
      return;
    }
    if (model === undefined) {
      attributes[A.ATTR_AUDIT_COST_STATUS] = A.COST_STATUS.unpriced;
      return;
    }
    const result = this.services.cost.price(
      this.provider,
      model,
      usage && {
        inputTokens: usage.input,
        outputTokens: usage.output,
        cacheReadTokens: usage.cacheRead,
        cacheCreationTokens: usage.cacheCreation,
        reasoningTokens: usage.reasoning,
        modalities: usage.modalities,
      },
    );
    if (result.status !== 'priced') {
      attributes[A.ATTR_AUDIT_COST_STATUS] = result.status;
      diag.debug(`otel-llm-audit: no cost for ${this.provider}/${model}: ${result.reason}`);
    } else {
      setCost(attributes, result.amountUsd);
    }
  }

  private recordMetrics(summary: ResponseSummary, usage: TokenUsage | undefined, failedWith: string | undefined): void {
    // No meter provider: skip building the attribute sets nobody would aggregate.
    if (this.metricAttributes === undefined) return;
    const attributes: Attributes = { ...this.metricAttributes };
    if (summary.model !== undefined) attributes[A.ATTR_GEN_AI_RESPONSE_MODEL] = summary.model;
    if (failedWith !== undefined) attributes[A.ATTR_ERROR_TYPE] = failedWith;
    this.services.durationHistogram.record((performance.now() - this.startMs) / 1000, attributes);
    if (usage?.input !== undefined) {
      this.services.tokenHistogram.record(usage.input, { ...attributes, [A.ATTR_GEN_AI_TOKEN_TYPE]: 'input' });
    }
    if (usage?.output !== undefined) {
      this.services.tokenHistogram.record(usage.output, { ...attributes, [A.ATTR_GEN_AI_TOKEN_TYPE]: 'output' });
    }
  }
}

/** How many batch result lines are recorded before the application gets a turn (recordBatchResults). */
const RESULTS_PER_TURN = 100;

/** A cost computed here (`local`), in USD. */
function setCost(attributes: Attributes, amountUsd: number): void {
  attributes[A.ATTR_AUDIT_COST_STATUS] = A.COST_STATUS.priced;
  attributes[A.ATTR_GEN_AI_USAGE_COST_AMOUNT] = amountUsd;
  attributes[A.ATTR_GEN_AI_USAGE_COST_CURRENCY] = 'USD';
  attributes[A.ATTR_GEN_AI_USAGE_COST_SOURCE] = 'local';
}

// An application names its user once per request and makes one or more calls inside: the span
// attributes of an audit context are built once, at its first call, not at every call.
const contextAttributes = new WeakMap<AuditContext, Attributes>();
// And a server that opens a scope per request for the same user, session and tenant (each scope
// a new frozen AuditContext) gets the previous scope's attributes when every field is the same.
let lastContext: { audit: AuditContext; services: object; attributes: Attributes } | undefined;

export function auditContextAttributes(audit: AuditContext, services: Pick<AuditServices, 'clientAddress' | 'hasher'> | undefined): Attributes {
  const last = lastContext;
  if (last !== undefined && last.services === services && sameAuditContext(audit, last.audit)) return last.attributes;
  let attributes = contextAttributes.get(audit);
  if (attributes !== undefined) return attributes;
  attributes = {};
  if (audit.userId !== undefined) attributes[A.ATTR_USER_ID] = audit.userId;
  if (audit.sessionId !== undefined) attributes[A.ATTR_SESSION_ID] = audit.sessionId;
  if (audit.tenantId !== undefined) attributes[A.ATTR_AUDIT_TENANT_ID] = audit.tenantId;
  // Without an instrumentation (so without its address policy and key) no address is recorded.
  const address = audit.clientAddress === undefined || services === undefined ? undefined : recordedClientAddress(audit.clientAddress, services.clientAddress, services.hasher);
  if (address !== undefined) attributes[A.ATTR_CLIENT_ADDRESS] = address;
  if (audit.userAgent !== undefined) attributes[A.ATTR_USER_AGENT_ORIGINAL] = audit.userAgent;
  if (audit.metadata !== undefined) {
    for (const key of Object.keys(audit.metadata)) {
      attributes[A.ATTR_AUDIT_METADATA_PREFIX + key] = audit.metadata[key];
    }
  }
  if (services !== undefined) {
    contextAttributes.set(audit, attributes);
    // A copy: what the attributes were built from, whatever later happens to `audit`.
    lastContext = { audit: { ...audit, metadata: audit.metadata && { ...audit.metadata } }, services, attributes };
  }
  return attributes;
}

/** Whether two audit contexts make the same attributes: every field equal, metadata keys in the same order. */
function sameAuditContext(a: AuditContext, b: AuditContext): boolean {
  if (a.userId !== b.userId || a.sessionId !== b.sessionId || a.tenantId !== b.tenantId || a.clientAddress !== b.clientAddress || a.userAgent !== b.userAgent) return false;
  const m = a.metadata;
  const n = b.metadata;
  if (m === n) return true;
  if (m === undefined || n === undefined) return false;
  const keys = Object.keys(m);
  const others = Object.keys(n);
  if (keys.length !== others.length) return false;
  for (let i = 0; i < keys.length; i++) if (keys[i] !== others[i] || m[keys[i]!] !== n[keys[i]!]) return false;
  return true;
}
