/**
 * The indexed columns of a records row, derived from the record it stores. The writer inserts
 * them; the reader recomputes them from the hashed line and reports a row whose columns differ
 * (they are not covered by the hash chain, so a change to them alone would otherwise go unseen).
 */
import type { LedgerRecord } from '../record';
import { hasContent, hasErrors } from '../retention';

export interface DerivedColumns {
  ts: string;
  trace_id: string;
  span_id: string;
  request_id: string | null;
  user_id: string | null;
  session_id: string | null;
  tenant_id: string | null;
  provider: string | null;
  operation: string | null;
  model_request: string | null;
  model_response: string | null;
  status: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  latency_ms: number | null;
  error_type: string | null;
  http_status: number | null;
  has_content: boolean;
  has_errors: boolean;
  service_name: string | null;
  service_namespace: string | null;
  service_version: string | null;
  service_instance_id: string | null;
  deployment_environment: string | null;
}

/** Record v3: which application and environment (migration 6); null in the rows of older records. */
export const RESOURCE_COLUMNS = ['service_name', 'service_namespace', 'service_version', 'service_instance_id', 'deployment_environment'] as const;

export const TEXT_COLUMNS = [
  'trace_id',
  'span_id',
  'request_id',
  'user_id',
  'session_id',
  'tenant_id',
  'provider',
  'operation',
  'model_request',
  'model_response',
  'status',
  'error_type',
  ...RESOURCE_COLUMNS,
] as const;
export const NUMBER_COLUMNS = ['input_tokens', 'output_tokens', 'cost_usd', 'latency_ms', 'http_status'] as const;
export const BOOLEAN_COLUMNS = ['has_content', 'has_errors'] as const;

const MAYBE_CHANGED = /[\u0000\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * PostgreSQL text holds neither NUL nor lone surrogates (which a record may carry, escaped, in its
 * line): in the indexed copy they become U+FFFD. The line itself is stored exactly.
 */
export function pgText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === 'string' ? value : String(value);
  // Most text has neither (one test instead of two replacing passes: the reader runs this for
  // twelve columns of every row it checks).
  if (!MAYBE_CHANGED.test(text)) return text;
  return text.replace(LONE_SURROGATE, '\ufffd').replace(/\u0000/g, '\ufffd');
}

function pgNumber(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function derivedColumns(record: LedgerRecord): DerivedColumns {
  const r = record as Partial<LedgerRecord>;
  return {
    ts: typeof r.timestamp === 'string' ? r.timestamp : '',
    trace_id: pgText(r.trace_id) ?? '',
    span_id: pgText(r.span_id) ?? '',
    request_id: pgText(r.request_id),
    user_id: pgText(r.user_id),
    session_id: pgText(r.session_id),
    tenant_id: pgText(r.tenant_id),
    provider: pgText(r.provider),
    operation: pgText(r.operation),
    model_request: pgText(r.model?.request),
    model_response: pgText(r.model?.response),
    status: pgText(r.status),
    input_tokens: pgNumber(r.input_tokens),
    output_tokens: pgNumber(r.output_tokens),
    cost_usd: pgNumber(r.cost_usd),
    latency_ms: pgNumber(r.latency_ms),
    error_type: pgText(r.error_type),
    http_status: pgNumber(r.http_status),
    has_content: hasContent(record),
    has_errors: hasErrors(record),
    service_name: pgText(r.service_name),
    service_namespace: pgText(r.service_namespace),
    service_version: pgText(r.service_version),
    service_instance_id: pgText(r.service_instance_id),
    deployment_environment: pgText(r.deployment_environment),
  };
}

/** Names of the columns of `row` that differ from what `record` gives; [] when they agree. */
export function columnsDiffering(row: Record<string, unknown>, record: LedgerRecord): string[] {
  const expected = derivedColumns(record);
  const out: string[] = [];
  const ts = row.ts instanceof Date ? row.ts.getTime() : Date.parse(String(row.ts));
  if (ts !== Date.parse(expected.ts)) out.push('ts');
  for (const c of TEXT_COLUMNS) if ((row[c] ?? null) !== expected[c]) out.push(c);
  for (const c of NUMBER_COLUMNS) {
    const v = row[c] === null || row[c] === undefined ? null : Number(row[c]);
    if (v !== expected[c]) out.push(c);
  }
  for (const c of BOOLEAN_COLUMNS) if (row[c] !== expected[c]) out.push(c);
  return out;
}
