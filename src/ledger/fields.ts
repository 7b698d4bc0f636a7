/**
 * The record's fields in one table, for everything that is derived from them rather than hashed:
 * the indexed columns of PostgreSQL's records table (what the writer inserts, what the reader
 * selects and checks against the hashed line: postgres/rows.ts). (`llm-audit query`'s columns,
 * which add values computed from several fields, are listed in query.ts.) A field added to the record (record.ts, docs/ledger.md) gets one row here;
 * a new SQL column needs its migration too (postgres/migrations.ts; test/postgres checks that the
 * migrated table has exactly the columns named here).
 *
 * The stored line itself is never derived from this table: it is the record as written, hashed as
 * stored, so records of every version (1, 2) verify byte for byte whatever this table says.
 */
import { hasContent, hasErrors } from './policy';
import { sanitizationKinds } from './query';
import { recordKind, type LedgerRecord } from './record';

/** How a value is kept in SQL (and compared when a row is checked against its line). */
export type SqlType = 'text' | 'float8' | 'boolean' | 'timestamptz';

export interface RecordField {
  /** The name in query output, and of the SQL column unless `sql.column` says otherwise. */
  name: string;
  /** The value of a record (read back from storage: any field may be missing or of another type). */
  value(record: Partial<LedgerRecord>): unknown;
  /** An indexed column of the records table. `required`: never null (the row's identity). */
  sql?: { type: SqlType; column?: string; required?: boolean };
}

const field = (name: string, sql: RecordField['sql'] | undefined, value?: RecordField['value']): RecordField => ({
  name,
  value: value ?? ((r) => (r as Record<string, unknown>)[name]),
  ...(sql ? { sql } : {}),
});

const TEXT = { type: 'text' } as const;
const NUMBER = { type: 'float8' } as const;

/** The SQL columns, in their order. */
export const RECORD_FIELDS: readonly RecordField[] = [
  field('timestamp', { type: 'timestamptz', column: 'ts', required: true }),
  field('request_id', TEXT),
  field('user_id', TEXT),
  field('session_id', TEXT),
  field('tenant_id', TEXT),
  field('provider', TEXT),
  field('operation', TEXT),
  field('model_request', TEXT, (r) => r.model?.request),
  field('model_response', TEXT, (r) => r.model?.response),
  field('status', TEXT),
  field('input_tokens', NUMBER),
  field('output_tokens', NUMBER),
  field('cost_usd', NUMBER),
  field('latency_ms', NUMBER),
  field('error_type', TEXT),
  // v2; absent in v1 records (null then).
  field('http_status', NUMBER),
  field('trace_id', { type: 'text', required: true }),
  field('span_id', { type: 'text', required: true }),
  // What retention needs to find without reading the line.
  field('has_content', { type: 'boolean' }, (r) => hasContent(r as LedgerRecord)),
  field('has_errors', { type: 'boolean' }, (r) => hasErrors(r as LedgerRecord)),
  // v3: which application and environment (the resource; migration 7); null in older records.
  field('service_name', TEXT),
  field('service_namespace', TEXT),
  field('service_version', TEXT),
  field('service_instance_id', TEXT),
  field('deployment_environment', TEXT),
  // Migration 8: what the reports filter and count on without reading the line. `kind` (call,
  // operation, event) is recomputed from the line by the database on insert; `action` for
  // `query --action`; how many sanitization findings, kinds of findings and guardrail decisions
  // the record holds.
  field('action', TEXT),
  field('kind', { type: 'text', required: true }, (r) => recordKind(r as LedgerRecord)),
  field('sanitization_count', NUMBER),
  field('guardrail_count', NUMBER, (r) => (Array.isArray(r.guardrails) ? r.guardrails.length : null)),
  // Whether the call's input is referenced by a keyed hash (evidence: EU AI Act Art. 12's input reference).
  field('has_input_hash', { type: 'boolean' }, (r) => typeof r.input_hash === 'string' && r.input_hash !== ''),
  field('sanitization_kinds', NUMBER, (r) => {
    const kinds = sanitizationKinds(r as LedgerRecord);
    return kinds === null ? null : Object.keys(kinds).length;
  }),
];

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
