/**
 * The record's fields in one table, for everything that is derived from them rather than hashed:
 * the indexed columns of PostgreSQL's records table (what the writer inserts, what the reader
 * selects and checks against the hashed line: postgres/rows.ts) and the flat columns of `llm-audit
 * query` (query.ts). A field added to the record (record.ts, docs/ledger.md) gets one row here;
 * a new SQL column needs its migration too (postgres/migrations.ts; test/postgres checks that the
 * migrated table has exactly the columns named here).
 *
 * The stored line itself is never derived from this table: it is the record as written, hashed as
 * stored, so records of every version (1, 2) verify byte for byte whatever this table says.
 */
import { hasContent, hasErrors } from './policy';
import { modelOf, type LedgerRecord } from './record';

/** How a value is kept in SQL (and compared when a row is checked against its line). */
export type SqlType = 'text' | 'float8' | 'boolean' | 'timestamptz';

export interface RecordField {
  /** The name in query output, and of the SQL column unless `sql.column` says otherwise. */
  name: string;
  /** The value of a record (read back from storage: any field may be missing or of another type). */
  value(record: Partial<LedgerRecord>): unknown;
  /** An indexed column of the records table. `required`: never null (the row's identity). */
  sql?: { type: SqlType; column?: string; required?: boolean };
  /** `table`: a default column of `llm-audit query`; `detail`: added in JSON and CSV. */
  query?: 'table' | 'detail';
}

const field = (name: string, sql: RecordField['sql'] | undefined, query: RecordField['query'] | undefined, value?: RecordField['value']): RecordField => ({
  name,
  value: value ?? ((r) => (r as Record<string, unknown>)[name]),
  ...(sql ? { sql } : {}),
  ...(query ? { query } : {}),
});

const TEXT = { type: 'text' } as const;
const NUMBER = { type: 'float8' } as const;

/** In query-output order; the SQL columns follow the same order. */
export const RECORD_FIELDS: readonly RecordField[] = [
  field('timestamp', { type: 'timestamptz', column: 'ts', required: true }, 'table'),
  field('request_id', TEXT, 'table'),
  field('user_id', TEXT, 'table'),
  field('session_id', TEXT, 'table'),
  field('tenant_id', TEXT, 'table'),
  field('provider', TEXT, 'table'),
  field('operation', TEXT, undefined),
  field('model', undefined, 'table', (r) => modelOf(r as LedgerRecord)),
  field('model_request', TEXT, undefined, (r) => r.model?.request),
  field('model_response', TEXT, undefined, (r) => r.model?.response),
  field('action', undefined, 'table'),
  field('status', TEXT, 'table'),
  field('input_tokens', NUMBER, 'table'),
  field('output_tokens', NUMBER, 'table'),
  field('cost_usd', NUMBER, 'table'),
  field('latency_ms', NUMBER, 'table'),
  field('error_type', TEXT, 'table'),
  // v2; absent in v1 records (null then).
  field('http_status', NUMBER, 'table'),
  field('trace_id', { type: 'text', required: true }, 'detail'),
  field('span_id', { type: 'text', required: true }, 'detail'),
  field('system_prompt_hash', undefined, 'detail'),
  field('input_hash', undefined, 'detail'),
  field('output_hash', undefined, 'detail'),
  // What retention needs to find without reading the line.
  field('has_content', { type: 'boolean' }, undefined, (r) => hasContent(r as LedgerRecord)),
  field('has_errors', { type: 'boolean' }, undefined, (r) => hasErrors(r as LedgerRecord)),
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

/** The default columns of `llm-audit query` (table output), after `seq`. */
export const TABLE_FIELDS: readonly string[] = RECORD_FIELDS.filter((f) => f.query === 'table').map((f) => f.name);
/** What JSON and CSV output add: the ids that tie a record to its trace, the hashes that tie it to content held elsewhere. */
export const DETAIL_FIELDS: readonly string[] = RECORD_FIELDS.filter((f) => f.query === 'detail').map((f) => f.name);
