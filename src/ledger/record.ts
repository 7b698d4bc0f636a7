/**
 * The audit record: one per audited LLM call, derived from its span, plus the records of
 * operations on the trail itself (OPERATION_ACTIONS). docs/ledger.md documents every field (type,
 * source attribute, meaning); keep the two in step.
 *
 * Rules: a value the span does not carry is `null` (never 0, never ""), numbers that are not finite
 * become null (they have no JSON form), and nothing from the span's raw content attributes is ever
 * copied (only the `llm_audit.*.hash` digests).
 */
import type { AttributeValue, Attributes, HrTime, SpanContext, SpanStatusCode } from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as A from '../semconv';

/**
 * SpanStatusCode.ERROR, by value: this module is on every ledger reader's path (the CLI's reports
 * and queries), which otherwise load nothing of @opentelemetry/api (47 modules).
 */
const STATUS_ERROR: SpanStatusCode = 2;

/**
 * Version of the record schema written now; bump on any change. Records of every earlier version
 * stay valid as they are (they are hashed as stored; readers treat a field a version lacks as null).
 * 2: `http_status`, the HTTP status of a failed call, a field of its own (issue 14, item 5).
 * 3: the application and environment (`service_*`, `deployment_environment`, from the span's
 *    resource), the end user's client (`client_address`, `user_agent`), `block_reason`,
 *    `sanitization` (mode and counts per kind) and, on application audit events only, `event`
 *    (issues 23 and 24).
 */
export const RECORD_VERSION = 3;
export type RecordVersion = 1 | 2 | typeof RECORD_VERSION;

export type JsonScalar = string | number | boolean | null;
export type MetadataValue = JsonScalar | JsonScalar[];

export interface LedgerRecord {
  v: RecordVersion;
  request_id: string | null;
  /** Span start, UTC ISO 8601 with millisecond precision. */
  timestamp: string;
  trace_id: string;
  span_id: string;
  user_id: string | null;
  session_id: string | null;
  tenant_id: string | null;
  provider: string | null;
  operation: string | null;
  model: { request: string | null; response: string | null };
  action: string | null;
  status: string | null;
  system_prompt_hash: string | null;
  input_hash: string | null;
  output_hash: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cache_creation_tokens: number | null;
  thinking_tokens: number | null;
  latency_ms: number | null;
  cost_usd: number | null;
  /** `error.type`: what failed (the provider's error code or the error class, per the instrumentation's rule). */
  error_type: string | null;
  /** `http.response.status_code` of the provider's answer (v2; absent in v1 records). */
  http_status?: number | null;
  error_message: string | null;
  sanitization_count: number | null;
  guardrails: Array<Record<string, MetadataValue>> | null;
  tools: string[] | null;
  rag_document_ids: string[] | null;
  metadata: Record<string, MetadataValue> | null;
  /** The encrypted content envelope (LLM_AUDIT_CONTENT=encrypted), else null. Only ciphertext. */
  content?: string | null;
  /** Where an LLM API request sent outside any audited call went (status `unaudited`); absent on other records. */
  http?: { method: string | null; host: string | null; port: number | null; path: string | null };
  // v3 (absent in v1 and v2 records; readers treat them as null):
  /** The resource's `service.name`, `service.namespace`, `service.version`, `service.instance.id`. */
  service_name?: string | null;
  service_namespace?: string | null;
  service_version?: string | null;
  service_instance_id?: string | null;
  /** The resource's `deployment.environment.name` (or the older `deployment.environment`). */
  deployment_environment?: string | null;
  /** `client.address` as LLM_AUDIT_CLIENT_ADDRESS allowed it (full, truncated or hashed). */
  client_address?: string | null;
  user_agent?: string | null;
  /** Why a guardrail blocked the call, the request's text removed and secrets masked. */
  block_reason?: string | null;
  /** Sensitive-data findings in the request: the mode and the count per kind (`EMAIL`, `CARD`...). */
  sanitization?: { mode: string | null; kinds: Record<string, number> } | null;
  /** An application audit event (recordAuditEvent): present on those records only. */
  event?: AuditEventFields;
}

/** The `event` of an application audit event record (docs/ledger.md). */
export interface AuditEventFields {
  type: string;
  outcome: string | null;
  target: string | null;
  /** PII and credentials redacted. */
  reason: string | null;
  /** Keyed hash of the reason as the application gave it. */
  reason_hash: string | null;
  details: Record<string, MetadataValue> | null;
}

/** Only spans that carry `gen_ai.operation.name` or any `llm_audit.*` attribute become records. */
/** A record's identity: the span it was made from (trace id + span id). */
export function spanKey(record: Pick<LedgerRecord, 'trace_id' | 'span_id'>): string {
  return `${record.trace_id}${record.span_id}`;
}

/** Drops records whose span is in `seen` or earlier in the same batch (`keyOf`: the span key of an item that wraps a record). */
export function withoutDuplicates(records: readonly LedgerRecord[], seen: (key: string) => boolean): LedgerRecord[];
export function withoutDuplicates<T>(items: readonly T[], seen: (key: string) => boolean, keyOf: (item: T) => string): T[];
export function withoutDuplicates<T>(items: readonly T[], seen: (key: string) => boolean, keyOf?: (item: T) => string): T[] {
  const out: T[] = [];
  const batch = new Set<string>();
  for (const item of items) {
    const key = keyOf ? keyOf(item) : spanKey(item as LedgerRecord);
    if (batch.has(key) || seen(key)) continue;
    batch.add(key);
    out.push(item);
  }
  return out;
}

export function isAuditSpan(span: Pick<SpanView, 'attributes'>): boolean {
  const attributes = span.attributes;
  // The trace span of a call whose audit record is written apart (core/audit-records.ts): sampled
  // and cut by the application's tracing, so never a record; the record itself comes separately.
  if (attributes[A.ATTR_AUDIT_TRACE_COPY] === true) return false;
  if (attributes[A.ATTR_GEN_AI_OPERATION_NAME] !== undefined) return true;
  for (const key of Object.keys(attributes)) {
    if (key.startsWith('llm_audit.') && attributes[key] !== undefined) return true;
  }
  return false;
}

/**
 * What recordFromSpan reads of a span. An SDK ReadableSpan is one; so is the view of a span
 * received over OTLP (src/ingest/records.ts), which gives the same record for the same call.
 */
export interface SpanView {
  attributes: Attributes;
  startTime: HrTime;
  duration?: HrTime;
  status: { code: SpanStatusCode };
  events?: ReadonlyArray<{ name: string; attributes?: Attributes; time: HrTime }>;
  spanContext(): Pick<SpanContext, 'traceId' | 'spanId'>;
  /** The resource of the process that made the span (service, environment: record v3). */
  resource?: { attributes: Attributes };
}

/** The audit record of `span`, or undefined when the span is not an audited LLM call. */
export function recordFromSpan(span: SpanView): LedgerRecord | undefined {
  if (!isAuditSpan(span)) return undefined;
  const at = span.attributes;
  const context = span.spanContext();
  const costCurrency = str(at[A.ATTR_GEN_AI_USAGE_COST_CURRENCY]);
  const cost = num(at[A.ATTR_GEN_AI_USAGE_COST_AMOUNT]);
  const resource = span.resource?.attributes ?? {};
  return {
    v: RECORD_VERSION,
    request_id: str(at[A.ATTR_AUDIT_REQUEST_ID]),
    timestamp: isoFromHrTime(span.startTime),
    trace_id: context.traceId,
    span_id: context.spanId,
    user_id: str(at[A.ATTR_USER_ID]),
    session_id: str(at[A.ATTR_SESSION_ID]),
    tenant_id: str(at[A.ATTR_AUDIT_TENANT_ID]),
    provider: str(at[A.ATTR_GEN_AI_PROVIDER_NAME]),
    operation: str(at[A.ATTR_GEN_AI_OPERATION_NAME]),
    model: { request: str(at[A.ATTR_GEN_AI_REQUEST_MODEL]), response: str(at[A.ATTR_GEN_AI_RESPONSE_MODEL]) },
    action: str(at[A.ATTR_AUDIT_ACTION]),
    status: str(at[A.ATTR_AUDIT_STATUS]) ?? (span.status.code === STATUS_ERROR ? A.AUDIT_STATUS.error : null),
    system_prompt_hash: str(at[A.ATTR_AUDIT_SYSTEM_PROMPT_HASH]),
    input_hash: str(at[A.ATTR_AUDIT_INPUT_HASH]),
    output_hash: str(at[A.ATTR_AUDIT_OUTPUT_HASH]),
    input_tokens: num(at[A.ATTR_GEN_AI_USAGE_INPUT_TOKENS]),
    output_tokens: num(at[A.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]),
    cache_read_tokens: num(at[A.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]),
    // The new name first; spans from before the rename carry only the old one.
    cache_creation_tokens: num(at[A.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] ?? at[A.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]),
    thinking_tokens: num(at[A.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]),
    latency_ms: durationMs(span.duration),
    // An amount in another currency is not a USD cost; unknown cost stays null, never 0.
    cost_usd: costCurrency === null || costCurrency.toUpperCase() === 'USD' ? cost : null,
    error_type: str(at[A.ATTR_ERROR_TYPE]),
    http_status: num(at[A.ATTR_HTTP_RESPONSE_STATUS_CODE]),
    error_message: str(at[A.ATTR_AUDIT_ERROR_MESSAGE]),
    sanitization_count: num(at[A.ATTR_AUDIT_SANITIZATION_COUNT]),
    guardrails: guardrailsOf(span),
    tools: strings(at[A.ATTR_AUDIT_TOOL_NAMES]),
    rag_document_ids: strings(at[A.ATTR_AUDIT_RAG_DOCUMENT_IDS]),
    metadata: metadataOf(at),
    content: str(at[A.ATTR_AUDIT_CONTENT_ENCRYPTED]),
    ...unauditedRequest(at),
    service_name: str(resource[A.RESOURCE_SERVICE_NAME]),
    service_namespace: str(resource[A.RESOURCE_SERVICE_NAMESPACE]),
    service_version: str(resource[A.RESOURCE_SERVICE_VERSION]),
    service_instance_id: str(resource[A.RESOURCE_SERVICE_INSTANCE_ID]),
    deployment_environment: str(resource[A.RESOURCE_DEPLOYMENT_ENVIRONMENT] ?? resource[A.RESOURCE_DEPLOYMENT_ENVIRONMENT_OLD]),
    client_address: str(at[A.ATTR_CLIENT_ADDRESS]),
    user_agent: str(at[A.ATTR_USER_AGENT_ORIGINAL]),
    block_reason: str(at[A.ATTR_AUDIT_BLOCK_REASON]),
    sanitization: sanitizationOf(span),
    ...auditEvent(at),
  };
}

/** The mode and the findings per kind, summed over the `llm_audit.sanitization` events (each is one kind at one location). */
function sanitizationOf(span: SpanView): LedgerRecord['sanitization'] {
  let kinds: Record<string, number> | undefined;
  for (const event of span.events ?? []) {
    if (event.name !== A.EVENT_AUDIT_SANITIZATION) continue;
    const kind = str(event.attributes?.[A.ATTR_AUDIT_SANITIZATION_TYPE]) ?? 'unknown';
    kinds ??= {};
    kinds[kind] = (kinds[kind] ?? 0) + (num(event.attributes?.[A.ATTR_AUDIT_SANITIZATION_COUNT]) ?? 0);
  }
  const mode = str(span.attributes[A.ATTR_AUDIT_SANITIZATION_MODE]);
  return kinds === undefined && mode === null ? null : { mode, kinds: kinds ?? {} };
}

/** The `event` of an application audit event (a span with `llm_audit.event.type`); nothing on other records. */
function auditEvent(at: Attributes): Pick<LedgerRecord, 'event'> {
  const type = str(at[A.ATTR_AUDIT_EVENT_TYPE]);
  if (type === null) return {};
  let details: Record<string, MetadataValue> | null = null;
  for (const key of Object.keys(at)) {
    if (!key.startsWith(A.ATTR_AUDIT_EVENT_DETAILS_PREFIX)) continue;
    const value = jsonValue(at[key]);
    if (value !== undefined) (details ??= {})[key.slice(A.ATTR_AUDIT_EVENT_DETAILS_PREFIX.length)] = value;
  }
  return {
    event: {
      type,
      outcome: str(at[A.ATTR_AUDIT_EVENT_OUTCOME]),
      target: str(at[A.ATTR_AUDIT_EVENT_TARGET]),
      reason: str(at[A.ATTR_AUDIT_EVENT_REASON]),
      reason_hash: str(at[A.ATTR_AUDIT_EVENT_REASON_HASH]),
      details,
    },
  };
}

/** The request of an `unaudited` record: method, host, port, path (never the query string or body). */
function unauditedRequest(at: Attributes): Pick<LedgerRecord, 'http'> {
  if (at[A.ATTR_AUDIT_STATUS] !== A.AUDIT_STATUS_UNAUDITED) return {};
  const http = { method: str(at[A.ATTR_HTTP_REQUEST_METHOD]), host: str(at[A.ATTR_SERVER_ADDRESS]), port: num(at[A.ATTR_SERVER_PORT]), path: str(at[A.ATTR_URL_PATH]) };
  return { http };
}

/**
 * Action of the record a writer appends when it starts and finds records after the newest
 * checkpoint it signed (a crash, or lines someone else added): metadata `from_seq`..`to_seq` were
 * not signed when written. It is chained like any record, so it cannot be removed afterwards, and
 * verify reports the range (docs/ledger.md).
 */
export const RECOVERED_ACTION = 'ledger.recovered';

/**
 * The operation record of a change of the retention policy in force (src/cli/retention.ts): the
 * policy, where it was declared, who ran the command. Written before the first retention run under
 * a policy that differs from the one recorded last, so the ledger says which rules applied when.
 */
export const RETENTION_POLICY_ACTION = 'retention.policy';

/** The operation record of audit records that could not be written (see span-exporter.ts). */
export const GAP_ACTION = 'ledger.gap';

/**
 * The operation record of a read of the trail (src/cli/audit-read.ts): who read which records, with
 * which command and why. `decrypt` cannot show content without one; query, reports and evidence
 * write one when they run with a writer's access.
 */
export const READ_ACTION = 'audit.read';

/**
 * Actions of records that are not LLM calls but operations on the audit trail itself (a tenant's
 * content erased by crypto-shredding; `ledger.gap`: audit records a writer could not write, with
 * how many and why; `audit.read`: a read of the trail; `retention.policy`: the retention policy in
 * force from then on). They go into the same chain, so they are as tamper-evident as the calls,
 * and are left out of the call reports.
 */
export const OPERATION_ACTIONS: ReadonlySet<string> = new Set(['content.shred', RECOVERED_ACTION, GAP_ACTION, READ_ACTION, RETENTION_POLICY_ACTION]);

/**
 * Why a record made from a span is refused, or undefined: it claims an operation's action.
 * Operation records are written by the tool that performs the operation, into the chain it holds
 * open (src/cli/shred.ts, the writers); from a span (over OTLP, or made by the application) it
 * would be a claim nobody performed, and reports leave operation records out, so a forged one
 * would hide its cost. Ingest and the in-process exporter both refuse them.
 */
export function claimedOperation(record: Pick<LedgerRecord, 'action'>): string | undefined {
  if (record.action === null || !OPERATION_ACTIONS.has(record.action)) return undefined;
  return `llm_audit.action=${record.action} is an operation record; only the llm-audit tool that performs the operation writes it`;
}

/**
 * What a record is: `operation` (one of OPERATION_ACTIONS), `event` (an application audit event,
 * with `event`), else `call`. PostgreSQL keeps it in an indexed column (fields.ts) that the database
 * recomputes from the line on insert (migration 8's llm_audit.record_kind, which decides in the
 * same order), so reports count calls without reading the lines.
 */
export type RecordKind = 'call' | 'operation' | 'event';
export function recordKind(record: Pick<LedgerRecord, 'action' | 'event'>): RecordKind {
  if (typeof record.action === 'string' && OPERATION_ACTIONS.has(record.action)) return 'operation';
  if (record.event !== undefined && record.event !== null) return 'event';
  return 'call';
}

/** False for the records of OPERATION_ACTIONS and for application audit events (`event`): the call reports leave them out. */
export function isCallRecord(record: Pick<LedgerRecord, 'action' | 'event'>): boolean {
  return recordKind(record) === 'call';
}

/**
 * The model every report groups by: the requested one (the response model only when no request
 * model was recorded). A failed call has no response model; grouping by it would put a model's
 * failures in a row of their own beside its successes, each row showing a wrong error rate.
 * (Here rather than in reports.ts: the writer's segment summaries group by it too.)
 */
export function reportModel(record: Pick<LedgerRecord, 'model'>): string | null {
  return record.model?.request ?? record.model?.response ?? null;
}

/**
 * The record of an operation on the trail (one of OPERATION_ACTIONS): no span behind it, so its
 * identity is a fresh random trace and span id; every LLM-call field is null.
 */
export function operationRecord(fields: {
  action: string;
  timestamp: string;
  tenantId: string | null;
  status: string;
  metadata: Record<string, MetadataValue>;
}): LedgerRecord {
  if (!OPERATION_ACTIONS.has(fields.action)) throw new Error(`${fields.action} is not an operation on the audit trail`);
  return {
    v: RECORD_VERSION,
    request_id: null,
    timestamp: new Date(fields.timestamp).toISOString(),
    trace_id: randomBytes(16).toString('hex'),
    span_id: randomBytes(8).toString('hex'),
    user_id: null,
    session_id: null,
    tenant_id: fields.tenantId,
    provider: null,
    operation: null,
    model: { request: null, response: null },
    action: fields.action,
    status: fields.status,
    system_prompt_hash: null,
    input_hash: null,
    output_hash: null,
    input_tokens: null,
    output_tokens: null,
    cache_read_tokens: null,
    cache_creation_tokens: null,
    thinking_tokens: null,
    latency_ms: null,
    cost_usd: null,
    error_type: null,
    http_status: null,
    error_message: null,
    sanitization_count: null,
    guardrails: null,
    tools: null,
    rag_document_ids: null,
    metadata: fields.metadata,
    content: null,
    ...NO_V3_FIELDS,
  };
}

/** The v3 fields of a record made by the llm-audit tool itself (no span, no resource, no client). */
const NO_V3_FIELDS = {
  service_name: null,
  service_namespace: null,
  service_version: null,
  service_instance_id: null,
  deployment_environment: null,
  client_address: null,
  user_agent: null,
  block_reason: null,
  sanitization: null,
} as const satisfies Partial<LedgerRecord>;

/** The record of RECOVERED_ACTION: seq `from`..`to` were found at startup, not signed when written. */
export function recoveredRecord(from: number, to: number, at: Date): LedgerRecord {
  return operationRecord({
    action: RECOVERED_ACTION,
    timestamp: at.toISOString(),
    tenantId: null,
    status: 'success',
    metadata: { from_seq: from, to_seq: to, host: hostname(), pid: process.pid },
  });
}

/** UTC ISO 8601 (millisecond precision) of an OpenTelemetry HrTime. */
export function isoFromHrTime(time: HrTime): string {
  const ms = time[0] * 1000 + Math.floor(time[1] / 1e6);
  return new Date(ms).toISOString();
}

function durationMs(duration: HrTime | undefined): number | null {
  if (!duration) return null;
  const ms = duration[0] * 1000 + duration[1] / 1e6;
  if (!Number.isFinite(ms) || ms < 0) return null;
  // Microsecond precision is plenty and keeps the canonical number short.
  return Math.round(ms * 1000) / 1000;
}

function str(value: AttributeValue | undefined): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return null;
}

function num(value: AttributeValue | undefined): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : null;
  }
  return null;
}

function strings(value: AttributeValue | undefined): string[] | null {
  if (value === undefined || value === null) return null;
  const list = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const item of list) {
    const s = str(item as AttributeValue);
    if (s !== null) out.push(s);
  }
  return out.length > 0 ? out : null;
}

function jsonValue(value: AttributeValue | undefined): MetadataValue | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) {
    return (value as unknown[]).map((item) =>
      typeof item === 'number' ? (Number.isFinite(item) ? item : null) : item === undefined ? null : (item as JsonScalar),
    );
  }
  return undefined;
}

function metadataOf(attributes: Attributes): Record<string, MetadataValue> | null {
  let out: Record<string, MetadataValue> | null = null;
  for (const key of Object.keys(attributes)) {
    if (!key.startsWith(A.ATTR_AUDIT_METADATA_PREFIX)) continue;
    const value = jsonValue(attributes[key]);
    if (value === undefined) continue;
    out ??= {};
    out[key.slice(A.ATTR_AUDIT_METADATA_PREFIX.length)] = value;
  }
  return out;
}

function guardrailsOf(span: SpanView): Array<Record<string, MetadataValue>> | null {
  let out: Array<Record<string, MetadataValue>> | null = null;
  for (const event of span.events ?? []) {
    if (event.name !== A.EVENT_AUDIT_GUARDRAIL) continue;
    const entry: Record<string, MetadataValue> = {};
    for (const [key, raw] of Object.entries(event.attributes ?? {})) {
      const value = jsonValue(raw);
      if (value === undefined) continue;
      const name = key.startsWith(A.ATTR_AUDIT_GUARDRAIL_PREFIX) ? key.slice(A.ATTR_AUDIT_GUARDRAIL_PREFIX.length) : key;
      entry[name] = value;
    }
    entry.time = isoFromHrTime(event.time);
    (out ??= []).push(entry);
  }
  return out;
}

/** Light structural check of a record read back from storage (the hash chain covers the bytes). */
export function recordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'record is not an object';
  const r = value as Record<string, unknown>;
  if (typeof r.timestamp !== 'string' || Number.isNaN(Date.parse(r.timestamp))) return 'record has no valid timestamp';
  if (typeof r.model !== 'object' || r.model === null) return 'record has no model object';
  return undefined;
}

/** The model a report groups by: the response model when known, else the requested one. */
export function modelOf(record: LedgerRecord): string | null {
  return record.model?.response ?? record.model?.request ?? null;
}
