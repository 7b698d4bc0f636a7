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

/** The array parameter types the append statements use, with their element type's OID. */
export type ArrayType = 'text' | 'float8' | 'bool' | 'int8';
const ELEMENT_OID: Record<ArrayType, number> = { text: 25, float8: 701, bool: 16, int8: 20 };
/** The array type of each SQL_COLUMNS type (timestamps as their text, cast in the statement). */
const ARRAY_TYPE: Record<SqlColumn['type'], ArrayType> = { text: 'text', float8: 'float8', boolean: 'bool', timestamptz: 'text' };

/**
 * One INSERT for a batch of rows, parameters as arrays (unnest): $1 seqs, $2 appended_at, $3
 * lines, $4 prev hashes, $5 leaf hashes (hex), then one array per SQL_COLUMNS column. The arrays
 * travel in PostgreSQL's binary array format (binaryArray).
 */
const INSERT_RECORDS = (() => {
  const names = SQL_COLUMNS.map((c) => c.column);
  // Timestamps travel as text (the record's own ISO string) and are cast in the SELECT.
  const arrays = SQL_COLUMNS.map((c, i) => `$${i + 6}::${ARRAY_TYPE[c.type]}[]`);
  const selected = SQL_COLUMNS.map((c) => (c.type === 'timestamptz' ? `u.${c.column}::timestamptz` : `u.${c.column}`));
  return `INSERT INTO ${SCHEMA}.records (seq, appended_at, line, prev_hash, leaf_hash, ${names.join(', ')})
     SELECT u.seq, $2::timestamptz, u.line, decode(u.prev, 'hex'), decode(u.leaf, 'hex'), ${selected.join(', ')}
       FROM unnest($1::bigint[], $3::text[], $4::text[], $5::text[], ${arrays.join(', ')})
         AS u(seq, line, prev, leaf, ${names.join(', ')})
      ORDER BY u.seq`;
})();

/**
 * A record's share of the append statements, derived when append() is called, outside the
 * transaction: the writer prepares the next group while the current one commits, and under the
 * append lock only the chained parts (seq, prev, leaf, the line around the record's JSON) are left.
 */
export interface PreparedRow {
  serial: SerializedRecord;
  traceId: string;
  spanId: string;
  /** The trace and span id as stored (the chain insert). */
  traceText: string;
  spanText: string;
  /** One value per SQL_COLUMNS column. */
  columns: ReadonlyArray<string | number | boolean | null>;
}

export function prepareRow(serial: SerializedRecord): PreparedRow {
  const derived = derivedColumns(serial.record);
  return {
    serial,
    traceId: String(serial.record.trace_id),
    spanId: String(serial.record.span_id),
    traceText: String(derived.trace_id ?? ''),
    spanText: String(derived.span_id ?? ''),
    columns: SQL_COLUMNS.map((c) => derived[c.column] ?? null),
  };
}

/**
 * A one-dimensional array in PostgreSQL's binary format (array_recv: header, then each element
 * as a 32-bit length, -1 for NULL, and its bytes), which the pg driver sends as it is (a Buffer
 * parameter goes in binary format). Unlike an array literal, the text needs no escaping and the
 * database no parsing: escaping and joining the literals of ~1 KB lines took a tenth of the
 * writer's samples, and a share of its GC.
 * Text is UTF-8, as the driver encodes a string parameter.
 */
export function binaryArray(type: ArrayType, values: ReadonlyArray<string | number | boolean | null>): Buffer {
  const fixed = type === 'float8' || type === 'int8' ? 8 : type === 'bool' ? 1 : 0;
  let size = values.length === 0 ? 12 : 20;
  let nulls = 0;
  for (const v of values) {
    if (v === null) nulls = 1;
    size += 4 + (v === null ? 0 : fixed || Buffer.byteLength(String(v)));
  }
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(values.length === 0 ? 0 : 1, 0);
  out.writeInt32BE(nulls, 4);
  out.writeInt32BE(ELEMENT_OID[type], 8);
  if (values.length === 0) return out;
  out.writeInt32BE(values.length, 12);
  out.writeInt32BE(1, 16);
  let at = 20;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, at);
      at += 4;
    } else if (type === 'text') {
      const n = out.write(String(v), at + 4, 'utf8');
      out.writeInt32BE(n, at);
      at += 4 + n;
    } else {
      out.writeInt32BE(fixed, at);
      if (type === 'float8') out.writeDoubleBE(v === 0 ? 0 : Number(v), at + 4); // -0 as the text form gave it
      else if (type === 'int8') out.writeBigInt64BE(BigInt(v), at + 4);
      else out[at + 4] = v === true ? 1 : 0;
      at += 4 + fixed;
    }
  }
  return out;
}

export function recordsInsert(
  rows: { firstSeq: number; appendedAt: Date; lines: readonly string[]; prevs: readonly string[]; leaves: readonly string[] },
  prepared: readonly PreparedRow[],
): { text: string; values: unknown[] } {
  const seqs = prepared.map((_, i) => rows.firstSeq + i);
  return {
    text: INSERT_RECORDS,
    values: [
      binaryArray('int8', seqs),
      rows.appendedAt,
      binaryArray('text', rows.lines),
      binaryArray('text', rows.prevs),
      binaryArray('text', rows.leaves),
      ...SQL_COLUMNS.map((c, k) => binaryArray(ARRAY_TYPE[c.type], prepared.map((row) => row.columns[k]!))),
    ],
  };
}
