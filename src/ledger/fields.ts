/**
 * The record's fields in one table, for everything that is derived from them rather than hashed:
 *
 * - the indexed columns of PostgreSQL's records table (what the writer inserts, what the reader
 *   selects and checks against the hashed line: postgres/rows.ts), and the column names the
 *   PostgreSQL queries and reports filter and group on ({@link sqlColumn});
 * - the columns of `llm-audit query` (query.ts RECORD_COLUMNS, DETAIL_COLUMNS, EXTRA_COLUMNS and
 *   flatRecord), in their output order, and which top-level record members they show (what JSON
 *   output need not add as unread).
 *
 * A field added to the record (record.ts, docs/ledger.md) gets one row here, and with it a query
 * column (test/ledger/fields.test.ts fails when a value of a record is shown by no column); a new
 * SQL column needs its migration too (postgres/migrations.ts; test/postgres checks that the
 * migrated table has exactly the columns named here).
 *
 * The stored line itself is never derived from this table: it is the record as written, hashed as
 * stored, so records of every version (1, 2, 3) verify byte for byte whatever this table says.
 */
import { hasContent, hasErrors } from './policy';
import { modelOf, recordKind, type LedgerRecord } from './record';

/** How a value is kept in SQL (and compared when a row is checked against its line). */
export type SqlType = 'text' | 'float8' | 'boolean' | 'timestamptz';

/**
 * Where `llm-audit query` shows a field: `table` in the default table (and JSON, CSV), `detail`
 * in JSON and CSV (the whole record), `extra` only when --columns names it.
 */
export type QueryShown = 'table' | 'detail' | 'extra';

export interface RecordField {
  /** The SQL column's name unless `sql.column` says otherwise; the query column's unless `column` does. */
  name: string;
  /** The query column's name, where it differs from `name`. */
  column?: string;
  shown: QueryShown;
  /** The value of a record (read back from storage: any field may be missing or of another type). */
  value(record: Partial<LedgerRecord>): unknown;
  /** The top-level record members the value shows (JSON output adds the others as they are). */
  reads: readonly string[];
  /** An indexed column of the records table. `required`: never null (the row's identity). */
  sql?: { type: SqlType; column?: string; required?: boolean };
}

interface FieldSpec {
  sql?: RecordField['sql'];
  column?: string;
  value?: RecordField['value'];
  /** Default: the member `name` when `value` is not given, else none. */
  reads?: readonly string[];
}

const member = (name: string) => (r: Partial<LedgerRecord>) => (r as Record<string, unknown>)[name];

function field(name: string, shown: QueryShown, spec: FieldSpec = {}): RecordField {
  return {
    name,
    shown,
    value: spec.value ?? member(name),
    reads: spec.reads ?? (spec.value ? [] : [name]),
    ...(spec.column ? { column: spec.column } : {}),
    ...(spec.sql ? { sql: spec.sql } : {}),
  };
}

const TEXT = { sql: { type: 'text' } } as const;
const NUMBER = { sql: { type: 'float8' } } as const;

/** How sanitization treated the call's content (`detect` or `redact`), when the record says (v3). */
function sanitizationMode(record: Partial<LedgerRecord>): string | null {
  const mode = record.sanitization?.mode;
  return typeof mode === 'string' ? mode : null;
}

/** Findings per kind (`EMAIL`: 2, ...) when the record holds them (v3); null when it has only the total (`sanitization_count`). */
export function sanitizationKinds(record: Partial<LedgerRecord>): Record<string, number> | null {
  const kinds = record.sanitization?.kinds;
  if (kinds === null || typeof kinds !== 'object') return null;
  // Read back from storage: only finite counts are counts.
  const out = Object.fromEntries(Object.entries(kinds).filter(([, n]) => typeof n === 'number' && Number.isFinite(n)));
  return Object.keys(out).length > 0 ? out : null;
}

/** Why a guardrail blocked the call: the record's own field (v3), else the blocking decision's reason. */
function blockReason(record: Partial<LedgerRecord>): string | null {
  if (typeof record.block_reason === 'string') return record.block_reason;
  const blocking = (record.guardrails ?? []).find((g) => isBlockAction(g.action));
  const reason = blocking?.reason ?? blocking?.reason_hash;
  return typeof reason === 'string' ? reason : null;
}

/** A guardrail decision that stopped the call (`blocked`; `block` in hand-made records). */
function isBlockAction(action: unknown): boolean {
  return action === 'blocked' || action === 'block';
}

/**
 * Every field, in query output order (the table's columns, then the details, then the extras);
 * the SQL columns are those with `sql`, in this order.
 */
export const RECORD_FIELDS: readonly RecordField[] = [
  field('timestamp', 'table', { sql: { type: 'timestamptz', column: 'ts', required: true } }),
  field('request_id', 'table', TEXT),
  field('user_id', 'table', TEXT),
  field('session_id', 'table', TEXT),
  field('tenant_id', 'table', TEXT),
  field('provider', 'table', TEXT),
  // Both models, so a model's failures (which have no answering model) and its successes read as one model.
  field('model_request', 'table', { ...TEXT, column: 'model_requested', value: (r) => r.model?.request, reads: ['model'] }),
  field('model_response', 'table', { ...TEXT, value: (r) => r.model?.response, reads: ['model'] }),
  // Indexed (migration 8) for `query --action` and the reports' event and operation records.
  field('action', 'table', TEXT),
  field('status', 'table', TEXT),
  field('input_tokens', 'table', NUMBER),
  field('output_tokens', 'table', NUMBER),
  field('cost_usd', 'table', NUMBER),
  field('latency_ms', 'table', NUMBER),
  field('error_type', 'table', TEXT),
  // v2; absent in v1 records (null then).
  field('http_status', 'table', NUMBER),
  // The ids that tie a record to its trace in a tracing backend.
  field('trace_id', 'detail', { sql: { type: 'text', required: true } }),
  field('span_id', 'detail', { sql: { type: 'text', required: true } }),
  field('operation', 'detail', TEXT),
  field('cache_read_tokens', 'detail'),
  field('cache_creation_tokens', 'detail'),
  field('thinking_tokens', 'detail', { column: 'reasoning_tokens' }),
  field('error_message', 'detail'),
  // The keyed hashes that tie the record to content held elsewhere.
  field('system_prompt_hash', 'detail'),
  field('input_hash', 'detail'),
  field('output_hash', 'detail'),
  field('sanitization_count', 'detail', NUMBER),
  field('sanitization_mode', 'detail', { value: sanitizationMode, reads: ['sanitization'] }),
  field('sanitization_kinds', 'detail', { value: sanitizationKinds, reads: ['sanitization'] }),
  field('guardrails', 'detail'),
  field('block_reason', 'detail', { value: blockReason, reads: ['block_reason'] }),
  field('tools', 'detail'),
  field('rag_document_ids', 'detail'),
  field('metadata', 'detail'),
  // The envelope is ciphertext and long; `llm-audit decrypt` shows it to a key holder.
  field('content_encrypted', 'detail', { value: (r) => typeof r.content === 'string', reads: ['content'] }),
  field('http_request', 'detail', { value: (r) => r.http, reads: ['http'] }),
  // v3: which application and environment (the resource; migration 7); null in older records.
  field('service_name', 'detail', TEXT),
  field('service_namespace', 'detail', TEXT),
  field('service_version', 'detail', TEXT),
  field('service_instance_id', 'detail', TEXT),
  field('deployment_environment', 'detail', TEXT),
  field('client_address', 'detail'),
  field('user_agent', 'detail'),
  // An application audit event's members (its type is the record's action).
  field('event_outcome', 'detail', { value: (r) => r.event?.outcome, reads: ['event'] }),
  field('event_target', 'detail', { value: (r) => r.event?.target }),
  field('event_reason', 'detail', { value: (r) => r.event?.reason }),
  field('event_reason_hash', 'detail', { value: (r) => r.event?.reason_hash }),
  field('event_details', 'detail', { value: (r) => r.event?.details }),
  // What retention needs to find without reading the line.
  field('has_content', 'detail', { sql: { type: 'boolean' }, value: (r) => hasContent(r as LedgerRecord) }),
  field('has_errors', 'detail', { sql: { type: 'boolean' }, value: (r) => hasErrors(r as LedgerRecord) }),
  field('record_version', 'detail', { value: (r) => r.v, reads: ['v'] }),
  // `model` is the answering model, else the requested one (what reports used to group by).
  field('model', 'extra', { value: (r) => modelOf(r as LedgerRecord) }),
  // Migration 8: what the reports filter and count on without reading the line. `kind` (call,
  // operation, event) is recomputed from the line by the database on insert; how many guardrail
  // decisions and kinds of sanitization findings the record holds; whether the call's input is
  // referenced by a keyed hash (evidence: EU AI Act Art. 12's input reference).
  field('kind', 'extra', { sql: { type: 'text', required: true }, value: (r) => recordKind(r as LedgerRecord) }),
  field('guardrail_count', 'extra', { ...NUMBER, value: (r) => (Array.isArray(r.guardrails) ? r.guardrails.length : null) }),
  field('has_input_hash', 'extra', { sql: { type: 'boolean' }, value: (r) => typeof r.input_hash === 'string' && r.input_hash !== '' }),
  field('sanitization_kind_count', 'extra', {
    sql: { type: 'float8', column: 'sanitization_kinds' },
    value: (r) => {
      const kinds = sanitizationKinds(r);
      return kinds === null ? null : Object.keys(kinds).length;
    },
  }),
];

/** A field's query column name. */
export const columnOf = (f: RecordField): string => f.column ?? f.name;

export interface SqlColumn {
  column: string;
  type: SqlType;
  required: boolean;
  field: RecordField;
}

/** The indexed columns of the records table, in order. */
export const SQL_COLUMNS: readonly SqlColumn[] = RECORD_FIELDS.flatMap((f) =>
  f.sql ? [{ column: f.sql.column ?? f.name, type: f.sql.type, required: f.sql.required === true, field: f }] : [],
);

/**
 * `r.<column>` (alias `r`) of each named field's records-table column, for the SQL the PostgreSQL
 * reader writes by hand: `{ user_id: 'r.user_id', timestamp: 'r.ts', ... }`. Throws when the
 * module using it loads if a field has no SQL column: no statement names a column the migrations
 * did not make, and a column renamed here is renamed there.
 */
export function sqlColumns<K extends string>(names: readonly K[]): Record<K, string> {
  return Object.fromEntries(
    names.map((name) => {
      const c = SQL_COLUMNS.find((s) => s.field.name === name);
      if (!c) throw new Error(`fields.ts: the field ${name} has no SQL column`);
      return [name, `r.${c.column}`];
    }),
  ) as Record<K, string>;
}
