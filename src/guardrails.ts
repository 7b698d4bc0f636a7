import { context, createContextKey, diag, type Attributes, type Context } from '@opentelemetry/api';
import { startAuditSpan } from './core/audit-records';
import type { AuditContext, Retrieval } from './context';
import type { OutputMessage, TokenUsage } from './core/types';
import { scrubFreeText } from './audit/redact';
import * as A from './semconv';

export type GuardrailAction = 'allowed' | 'flagged' | 'modified' | 'blocked';

/** One guardrail decision, as the application's own guardrail (or a moderation API) made it. */
export interface GuardrailResult {
  name: string;
  policyId?: string;
  action: GuardrailAction;
  category?: string;
  score?: number;
  severity?: string;
  /**
   * Why the guardrail decided so. It may quote the prompt: the record keeps it with the request's
   * text removed, secrets and personal data masked (src/audit/redact.ts, scrubFreeText).
   */
  reason?: string;
}

/** What a `beforeRequest` hook sees of the call about to be made. */
export interface AuditRequest {
  requestId: string;
  provider: string;
  operation: string;
  action: string;
  model: string | undefined;
  /** The request parameters as they will be sent (after redaction, when sanitization redacts). Do not modify. */
  params: unknown;
  audit: AuditContext | undefined;
}

/** What an `afterResponse` hook sees of a finished call. */
export interface AuditResponse {
  requestId: string;
  provider: string;
  operation: string;
  action: string;
  model: string | undefined;
  responseModel: string | undefined;
  status: A.AuditStatus;
  /** The answer in the GenAI conventions' output message shape; undefined when none was read. */
  output: OutputMessage[] | undefined;
  usage: TokenUsage | undefined;
}

/**
 * Guardrail hooks, run in the application's process around every audited call. Their data never
 * leaves the process; what they decide is recorded on the span through {@link recordGuardrail}.
 */
export interface LlmAuditHooks {
  /**
   * Before the request is sent. Call {@link blockRequest} to stop it. May return a promise (an
   * asynchronous check such as a moderation API call): the SDK then sends the request only once it
   * resolves, while the application still gets the SDK's own promise object at once.
   */
  beforeRequest?(request: AuditRequest): void | Promise<void>;
  /** After the response was read (or the call failed). Cannot change what the application got. */
  afterResponse?(response: AuditResponse): void;
}

/** The error an application gets for a call that a guardrail blocked. The provider never saw it. */
export class LlmRequestBlockedError extends Error {
  override readonly name = 'LlmRequestBlockedError';
  constructor(
    readonly reason: string,
    readonly requestId: string | undefined,
    readonly guardrail: GuardrailResult,
  ) {
    super(`LLM request blocked by guardrail ${guardrail.name}: ${reason}`);
  }
}

/** Thrown by blockRequest, caught by the call that ran the hook. */
export class BlockSignal {
  constructor(
    readonly reason: string,
    readonly guardrail: GuardrailResult,
  ) {}
}

/**
 * Stops the current call before it reaches the provider. Only meaningful inside a `beforeRequest`
 * hook: the application gets an {@link LlmRequestBlockedError}, and the call is audited with
 * `llm_audit.status` = `blocked` and a `blocked` guardrail event.
 */
export function blockRequest(reason: string, guardrail: Partial<Omit<GuardrailResult, 'action'>> = {}): never {
  throw new BlockSignal(reason, { name: 'beforeRequest', ...guardrail, action: 'blocked' });
}

/** Where a guardrail event or retrieval goes: an open audited call. */
export interface GuardrailTarget {
  readonly acceptsEvents: boolean;
  addGuardrail(result: GuardrailResult): void;
  addRetrieval(retrieval: Retrieval): void;
}

const CURRENT_CALL = createContextKey('otel-llm-audit.current-call');

/** A context in which {@link recordGuardrail} records on `call` (used while hooks run). */
export function withCurrentCall(ctx: Context, call: GuardrailTarget): Context {
  return ctx.setValue(CURRENT_CALL, call);
}

/** The open call whose hook is running in the active context, if any. */
export function currentCall(): GuardrailTarget | undefined {
  const call = context.active().getValue(CURRENT_CALL) as GuardrailTarget | undefined;
  return call !== undefined && call.acceptsEvents ? call : undefined;
}

/**
 * The attributes of a `llm_audit.guardrail` event (see docs/attributes.md for the mapping to the
 * proposed GenAI security conventions). `request`: the call's params, whose text is removed from the reason.
 */
export function guardrailAttributes(result: GuardrailResult, request?: unknown): Attributes {
  const attributes: Attributes = {
    [A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'name']: String(result.name),
    [A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'action']: String(result.action),
  };
  if (result.policyId !== undefined) attributes[A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'policy_id'] = String(result.policyId);
  if (result.category !== undefined) attributes[A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'category'] = String(result.category);
  if (typeof result.score === 'number' && Number.isFinite(result.score)) attributes[A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'score'] = result.score;
  if (result.severity !== undefined) attributes[A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'severity'] = String(result.severity);
  if (result.reason !== undefined) attributes[A.ATTR_AUDIT_GUARDRAIL_PREFIX + 'reason'] = scrubFreeText(String(result.reason), request);
  return attributes;
}

const ACTIONS: readonly GuardrailAction[] = ['allowed', 'flagged', 'modified', 'blocked'];

/**
 * Records a guardrail decision: on the LLM call whose hook is running, else as a span of its own
 * (`guardrail {name}`, an audit span that reaches the ledger), so that no decision goes unrecorded.
 */
export function recordGuardrail(result: GuardrailResult): void {
  try {
    if (typeof result?.name !== 'string' || !ACTIONS.includes(result.action)) {
      diag.warn(`otel-llm-audit: recordGuardrail needs a name and an action among ${ACTIONS.join(', ')}; got ${JSON.stringify(result)}`);
      return;
    }
    const call = currentCall();
    if (call !== undefined) {
      call.addGuardrail(result);
      return;
    }
    const span = startAuditSpan(`guardrail ${result.name}`, {
      [A.ATTR_AUDIT_ACTION]: 'guardrail',
      [A.ATTR_AUDIT_STATUS]: result.action === 'blocked' ? A.AUDIT_STATUS.blocked : A.AUDIT_STATUS.success,
    });
    span.addEvent(A.EVENT_AUDIT_GUARDRAIL, guardrailAttributes(result));
    span.end();
  } catch (error) {
    diag.error('otel-llm-audit: recordGuardrail failed', error);
  }
}
