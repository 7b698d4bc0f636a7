import { context, createContextKey, propagation, type Context } from '@opentelemetry/api';
import { ensureContextManager } from './util/context-manager';

/** Who is behind the LLM calls made inside {@link withAuditContext}. */
export interface AuditContext {
  userId?: string;
  sessionId?: string;
  tenantId?: string;
  /**
   * The end user's IP address (`client.address`), recorded as LLM_AUDIT_CLIENT_ADDRESS allows
   * (default: truncated to the /24 or /48 network; see src/audit/client-address.ts).
   */
  clientAddress?: string;
  /** The end user's User-Agent header (`user_agent.original`). */
  userAgent?: string;
  /** Becomes `llm_audit.metadata.<key>` on every LLM span made inside. */
  metadata?: Record<string, string | number | boolean>;
}

/**
 * What one withAuditContext scope puts in the OpenTelemetry context, under one key: each
 * setValue copies the context's whole map, and this runs once per request.
 */
interface AuditScope {
  audit: AuditContext;
  /** Retrievals recorded in this scope that the next LLM call made in it has not taken yet. */
  retrievals: Retrieval[];
}
const AUDIT_SCOPE_KEY = createContextKey('otel-llm-audit.audit-scope');

/** What the application retrieved for the next LLM call (RAG), see {@link recordRetrieval}. */
export interface Retrieval {
  source?: string;
  documentIds: string[];
  scores?: number[];
}
const ACTION_KEY = createContextKey('otel-llm-audit.action');

/**
 * Runs `fn` with `audit` attached to the active OpenTelemetry context, so that every LLM call made
 * inside, including in callbacks and awaited work started there, is attributed to that user,
 * session and tenant. Nested calls merge: inner fields win, metadata keys are combined.
 */
export function withAuditContext<T>(audit: AuditContext, fn: () => T): T {
  ensureContextManager();
  const active = context.active();
  const outer = (active.getValue(AUDIT_SCOPE_KEY) as AuditScope | undefined)?.audit;
  // A frozen snapshot: an application that reuses and changes its object afterwards does not
  // change who the calls already made (or still running) in this scope are attributed to.
  const merged: AuditContext = {
    userId: audit.userId ?? outer?.userId,
    sessionId: audit.sessionId ?? outer?.sessionId,
    tenantId: audit.tenantId ?? outer?.tenantId,
  };
  const clientAddress = audit.clientAddress ?? outer?.clientAddress;
  const userAgent = audit.userAgent ?? outer?.userAgent;
  if (clientAddress !== undefined) merged.clientAddress = String(clientAddress);
  if (userAgent !== undefined) merged.userAgent = String(userAgent);
  if (outer?.metadata !== undefined || audit.metadata !== undefined) {
    merged.metadata = Object.freeze({ ...outer?.metadata, ...audit.metadata });
  }
  // Each scope gets its own list of pending retrievals, so recordRetrieval() inside it reaches
  // the next LLM call made in the same scope (and not one in a concurrent request).
  const scope: AuditScope = { audit: Object.freeze(merged), retrievals: [] };
  return context.with(active.setValue(AUDIT_SCOPE_KEY, scope), fn);
}

/** The pending-retrieval list of the innermost {@link withAuditContext} scope, if any. */
export function pendingRetrievals(ctx: Context = context.active()): Retrieval[] | undefined {
  return (ctx.getValue(AUDIT_SCOPE_KEY) as AuditScope | undefined)?.retrievals;
}

/**
 * The audit context in effect: what {@link withAuditContext} set, else the W3C baggage entries
 * `user.id` / `session.id` (so that an upstream service can name the user without this package).
 */
export function getAuditContext(ctx: Context = context.active()): AuditContext | undefined {
  const explicit = (ctx.getValue(AUDIT_SCOPE_KEY) as AuditScope | undefined)?.audit;
  if (explicit?.userId !== undefined && explicit.sessionId !== undefined) return explicit;
  const baggage = propagation.getBaggage(ctx);
  if (!baggage) return explicit;
  const userId = explicit?.userId ?? baggage.getEntry('user.id')?.value;
  const sessionId = explicit?.sessionId ?? baggage.getEntry('session.id')?.value;
  if (userId === undefined && sessionId === undefined) return explicit;
  return { ...explicit, userId, sessionId };
}

/**
 * SDK helpers (`messages.stream()`, `chat.completions.parse()`, ...) are built on `create`. The
 * helper's patch records its own name here so that the one span made by the inner `create` says
 * which method the application actually called.
 */
export function withAction<T>(action: string, fn: () => T): T {
  return context.with(context.active().setValue(ACTION_KEY, action), fn);
}

export function currentAction(ctx: Context = context.active()): string | undefined {
  return ctx.getValue(ACTION_KEY) as string | undefined;
}
