/**
 * The indexed columns of a records row, derived from the record it stores by the field table
 * (fields.ts SQL_COLUMNS). The writer inserts them (recordsInsert); the reader selects them
 * (ROW_SELECT) and recomputes them from the hashed line, and reports a row whose columns differ
 * (they are not covered by the hash chain, so a change to them alone would otherwise go unseen).
 */
import { SQL_COLUMNS, type SqlColumn } from '../fields';
import type { SerializedRecord } from '../protocol';
import type { LedgerRecord } from '../record';
import { SCHEMA } from './migrations';

/** Column name to value, for every SQL_COLUMNS column. */
export type DerivedColumns = Record<string, string | number | boolean | null>;

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

function sqlValue(column: SqlColumn, raw: unknown): string | number | boolean | null {
  switch (column.type) {
    case 'text':
      return pgText(raw) ?? (column.required ? '' : null);
    case 'float8':
      return typeof raw === 'number' && Number.isFinite(raw) ? raw : null;
    case 'boolean':
      return raw === true;
    case 'timestamptz':
      return typeof raw === 'string' ? raw : '';
  }
}

export function derivedColumns(record: LedgerRecord): DerivedColumns {
  const out: DerivedColumns = {};
  for (const column of SQL_COLUMNS) out[column.column] = sqlValue(column, column.field.value(record as Partial<LedgerRecord>));
  return out;
}

/** Names of the columns of `row` that differ from what `record` gives; [] when they agree. */
export function columnsDiffering(row: Record<string, unknown>, record: LedgerRecord): string[] {
  const expected = derivedColumns(record);
  const out: string[] = [];
  for (const { column, type } of SQL_COLUMNS) {
    const stored = row[column];
    const want = expected[column];
    let same: boolean;
    if (type === 'timestamptz') same = (stored instanceof Date ? stored.getTime() : Date.parse(String(stored))) === Date.parse(String(want));
    else if (type === 'float8') same = (stored === null || stored === undefined ? null : Number(stored)) === want;
    else if (type === 'text') same = (stored ?? null) === want;
    else same = stored === want;
    if (!same) out.push(column);
  }
  return out;
}

/** The records columns a reader selects (alias `r`), after the row's own (seq, line, hashes). */
export const ROW_SELECT = SQL_COLUMNS.map((c) => `r.${c.column}`).join(', ');

/**
 * One INSERT for a batch of rows, parameters as arrays (unnest): $1 seqs, $2 appended_at, $3
 * lines, $4 prev hashes, $5 leaf hashes (hex), then one array per SQL_COLUMNS column.
 */
const INSERT_RECORDS = (() => {
  const names = SQL_COLUMNS.map((c) => c.column);
  // Timestamps travel as text (the record's own ISO string) and are cast in the SELECT.
  const arrays = SQL_COLUMNS.map((c, i) => `$${i + 6}::${c.type === 'timestamptz' ? 'text' : c.type}[]`);
  const selected = SQL_COLUMNS.map((c) => (c.type === 'timestamptz' ? `u.${c.column}::timestamptz` : `u.${c.column}`));
  return `INSERT INTO ${SCHEMA}.records (seq, appended_at, line, prev_hash, leaf_hash, ${names.join(', ')})
     SELECT u.seq, $2::timestamptz, u.line, decode(u.prev, 'hex'), decode(u.leaf, 'hex'), ${selected.join(', ')}
       FROM unnest($1::bigint[], $3::text[], $4::text[], $5::text[], ${arrays.join(', ')})
         AS u(seq, line, prev, leaf, ${names.join(', ')})
      ORDER BY u.seq`;
})();

/**
 * A record's share of the append statements, encoded when append() is called, outside the
 * transaction: the writer prepares the next group while the current one commits, and under the
 * append lock only the chained parts (seq, prev, leaf, the line around `json`) are left to do. The
 * values are elements of PostgreSQL array literals exactly as the pg driver writes a JS array
 * (`NULL`, or the text in double quotes with \ and " escaped), so the database receives the same
 * parameters as before, without the driver's per-element conversion under the lock.
 */
export interface PreparedRow {
  serial: SerializedRecord;
  traceId: string;
  spanId: string;
  /** The trace and span id as array elements (the chain insert). */
  traceElement: string;
  spanElement: string;
  /** The record's canonical JSON escaped for an array element, without the surrounding quotes. */
  jsonEscaped: string;
  /** One element per SQL_COLUMNS column. */
  columns: string[];
}

/** Escapes text for a quoted array element (pg's escapeElement). */
function escapeElementText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/** One element of an array literal: NULL, or the value's text quoted (pg's arrayString). */
export function arrayElement(value: string | number | boolean | null): string {
  return value === null ? 'NULL' : '"' + escapeElementText(String(value)) + '"';
}

export function arrayLiteral(elements: readonly string[]): string {
  return '{' + elements.join(',') + '}';
}

export function prepareRow(serial: SerializedRecord): PreparedRow {
  const derived = derivedColumns(serial.record);
  const traceId = String(serial.record.trace_id);
  const spanId = String(serial.record.span_id);
  return {
    serial,
    traceId,
    spanId,
    traceElement: arrayElement(derived.trace_id ?? null),
    spanElement: arrayElement(derived.span_id ?? null),
    jsonEscaped: escapeElementText(serial.json),
    columns: SQL_COLUMNS.map((c) => arrayElement(derived[c.column] ?? null)),
  };
}

/** The stored line (protocol.ts entryLine) as an array element, from the escaped record text. */
function lineElement(seq: number, prev: string, jsonEscaped: string): string {
  return '"{\\"prev\\":\\"' + prev + '\\",\\"record\\":' + jsonEscaped + ',\\"seq\\":' + seq + '}"';
}

export function recordsInsert(
  rows: { firstSeq: number; appendedAt: Date; prevs: readonly string[]; leaves: readonly string[] },
  prepared: readonly PreparedRow[],
): { text: string; values: unknown[] } {
  const seqs = prepared.map((_, i) => String(rows.firstSeq + i));
  const lines = arrayLiteral(prepared.map((row, i) => lineElement(rows.firstSeq + i, rows.prevs[i]!, row.jsonEscaped)));
  return {
    text: INSERT_RECORDS,
    values: [seqs, rows.appendedAt, lines, rows.prevs, rows.leaves, ...SQL_COLUMNS.map((_, k) => arrayLiteral(prepared.map((row) => row.columns[k]!)))],
  };
}
