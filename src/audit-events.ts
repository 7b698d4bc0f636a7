/**
 * Application audit events (issue 23, section 3): logins, token issuance, configuration and
 * permission changes, consent and data-subject requests, and the application's own `app.*` events,
 * written as audit records through the very pipeline of the LLM calls (a span of the private audit
 * tracer provider, src/core/audit-records.ts), so that the ledger, the spool, a Collector, `serve`,
 * verify, query and reports all see them. The event type is the record's `action`.
 *
 * What the application hands over is treated like a prompt: the reason is kept with personal data
 * and credentials masked, plus its keyed hash (so a responder holding the original text can show it
 * is the one recorded); every `details` value is masked the same way, and one under a name that
 * says credential (`password`, `token`, `secret`...) is not recorded at all.
 */
import { diag, type Attributes, type Context } from '@opentelemetry/api';
import { getAuditContext } from './context';
import { publishedServices } from './core/audit-client';
import { startAuditSpan } from './core/audit-records';
import { auditContextAttributes } from './core/audited-call';
import { auditTrailUnavailable, LlmAuditUnavailableError, onFailurePolicy, reportAuditProblem } from './audit/failure-policy';
import { scrubFreeText, scrubText } from './audit/redact';
import { MASK } from './audit/sanitize/secrets';
import * as A from './semconv';

/** The event types this package documents (docs/ledger.md); any `app.<name>` is the application's own. */
export const AUDIT_EVENT_TYPES = [
  'auth.login',
  'auth.logout',
  'auth.token_issued',
  'auth.failed',
  'admin.config_change',
  'admin.permission_change',
  'privacy.consent',
  'privacy.data_subject_request',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number] | `app.${string}`;

export const AUDIT_EVENT_OUTCOMES = ['success', 'failure', 'unknown'] as const;
export type AuditEventOutcome = (typeof AUDIT_EVENT_OUTCOMES)[number];

export interface AuditEvent {
  type: AuditEventType;
  /** Default: withAuditContext's user (or baggage `user.id`). */
  userId?: string;
  sessionId?: string;
  tenantId?: string;
  /** Default: `failure` for `auth.failed`, else `success`. */
  outcome?: AuditEventOutcome;
  /** What the event acted on: the account, the setting, the role, the data subject's request id. */
  target?: string;
  /** Why (free text): recorded with personal data and credentials masked, and as a keyed hash. */
  reason?: string;
  /** More facts, flat: recorded masked like `reason`; a key naming a credential keeps only `[REDACTED]`. */
  details?: Record<string, string | number | boolean>;
}

const APP_TYPE = /^app\.[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
/** A details key whose value is a credential whatever it looks like. */
const CREDENTIAL_KEY = /pass(word|wd|phrase)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key|pwd/i;
/** The status the reports and `query --status` know an event by. */
const STATUS_OF: Record<AuditEventOutcome, string | undefined> = { success: A.AUDIT_STATUS.success, failure: A.AUDIT_STATUS.error, unknown: undefined };

/** Types the package writes itself (register's `audit.start`); recordAuditEvent refuses them. */
export const PACKAGE_EVENT_TYPES: ReadonlySet<string> = new Set(['audit.start']);

/**
 * Records one application audit event. Never throws into the application: a wrong event is
 * reported on stderr and through diag, and not recorded. Under LLM_AUDIT_ON_FAILURE=block it
 * throws instead (a TypeError for a wrong event, LlmAuditUnavailableError while the trail cannot
 * be written), so that an action that must be audited is not taken unaudited.
 */
export function recordAuditEvent(event: AuditEvent): void {
  const problem = eventProblem(event);
  if (problem !== undefined) {
    if (onFailurePolicy() === 'block') throw new TypeError(`otel-llm-audit: recordAuditEvent: ${problem}`);
    reportAuditProblem(`recordAuditEvent: ${problem}; the event is NOT recorded`);
    return;
  }
  if (onFailurePolicy() === 'block') {
    const why = auditTrailUnavailable();
    if (why !== undefined) throw new LlmAuditUnavailableError(`otel-llm-audit: audit event ${event.type} refused (LLM_AUDIT_ON_FAILURE=block): the audit trail cannot be written: ${why}`);
  }
  try {
    writeEvent(event.type, eventAttributes(event));
  } catch (error) {
    diag.error(`otel-llm-audit: recordAuditEvent ${event.type} failed`, error);
  }
}

/** Writes an event record of `type` (an application's, or the package's own such as `audit.start`, under `parent`). */
export function writeEvent(type: string, attributes: Attributes, parent?: Context, options: { traced?: boolean } = {}): void {
  const span = startAuditSpan(type, { ...attributes, [A.ATTR_AUDIT_ACTION]: type, [A.ATTR_AUDIT_EVENT_TYPE]: type }, parent);
  // A record about the process rather than a request (audit.start) is no span of any trace: the
  // Collector keeps it out of the tracing backend.
  if (options.traced === false) span.setAttribute(A.ATTR_AUDIT_TRACE_FORWARD, false);
  span.end();
}

function eventProblem(event: AuditEvent): string | undefined {
  if (typeof event !== 'object' || event === null) return 'the event must be an object';
  const type = event.type as unknown;
  if (typeof type !== 'string' || !((AUDIT_EVENT_TYPES as readonly string[]).includes(type) || APP_TYPE.test(type))) {
    return `unknown event type ${JSON.stringify(type)}: use one of ${AUDIT_EVENT_TYPES.join(', ')}, or app.<name> for the application's own`;
  }
  if (event.outcome !== undefined && !(AUDIT_EVENT_OUTCOMES as readonly string[]).includes(event.outcome)) {
    return `outcome must be one of ${AUDIT_EVENT_OUTCOMES.join(', ')}, got ${JSON.stringify(event.outcome)}`;
  }
  if (event.details !== undefined && (typeof event.details !== 'object' || event.details === null || Array.isArray(event.details))) {
    return 'details must be an object of strings, numbers and booleans';
  }
  return undefined;
}

function eventAttributes(event: AuditEvent): Attributes {
  const services = publishedServices();
  const audit = getAuditContext();
  const attributes: Attributes = audit === undefined ? {} : { ...auditContextAttributes(audit, services) };
  if (event.userId !== undefined) attributes[A.ATTR_USER_ID] = String(event.userId);
  if (event.sessionId !== undefined) attributes[A.ATTR_SESSION_ID] = String(event.sessionId);
  if (event.tenantId !== undefined) attributes[A.ATTR_AUDIT_TENANT_ID] = String(event.tenantId);
  const outcome = event.outcome ?? (event.type === 'auth.failed' ? 'failure' : 'success');
  attributes[A.ATTR_AUDIT_EVENT_OUTCOME] = outcome;
  const status = STATUS_OF[outcome];
  if (status !== undefined) attributes[A.ATTR_AUDIT_STATUS] = status;
  // An identifier like user_id (an account, a role): only credentials are masked.
  if (event.target !== undefined) attributes[A.ATTR_AUDIT_EVENT_TARGET] = scrubText(String(event.target));
  if (event.reason !== undefined) {
    const reason = String(event.reason);
    attributes[A.ATTR_AUDIT_EVENT_REASON] = scrubFreeText(reason);
    if (services !== undefined) attributes[A.ATTR_AUDIT_EVENT_REASON_HASH] = services.hasher.hash(reason);
  }
  for (const [key, value] of Object.entries(event.details ?? {})) {
    const name = A.ATTR_AUDIT_EVENT_DETAILS_PREFIX + key;
    if (CREDENTIAL_KEY.test(key)) attributes[name] = MASK;
    else if (typeof value === 'number' || typeof value === 'boolean') attributes[name] = value;
    else attributes[name] = scrubFreeText(typeof value === 'string' ? value : JSON.stringify(value) ?? String(value));
  }
  return attributes;
}
