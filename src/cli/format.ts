/**
 * Table, CSV (RFC 4180) and JSON output of rows. CSV is written to be opened in a spreadsheet by
 * people who did not write the data: see csvCell (formula injection) and CsvOptions.
 */
import type { CliIo } from './io';

/** A cell: a scalar, or a list/object (guardrail decisions, metadata) that JSON keeps as it is and CSV and tables show as JSON text. */
export type Cell = string | number | boolean | null | undefined | object;
export type Row = Record<string, Cell>;
export const FORMATS = ['table', 'json', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

function text(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return typeof cell === 'object' ? JSON.stringify(cell) : String(cell);
}

/**
 * What a spreadsheet would run as a formula (OWASP "CSV Injection"): a cell that begins with =, +,
 * -, @, a tab or a carriage return. User, session and tenant ids, error messages and metadata come
 * from the application, so `=HYPERLINK(...)` as a user id must reach the reader as text.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
/** An instant as the ledger writes it; --excel rewrites it as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), which spreadsheets read as a date. */
const ISO_INSTANT = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z$/;

/**
 * One CSV cell. A text cell that a spreadsheet would take for a formula gets a leading single quote
 * (OWASP's advice: shown as text, and visibly changed); numbers are numbers, never formulas, and
 * stay as they are. Then RFC 4180 quoting.
 */
export function csvCell(cell: Cell, excel = false): string {
  let s = text(cell);
  if (typeof cell === 'string' || typeof cell === 'object') {
    if (FORMULA_START.test(s)) s = `'${s}`;
    else if (excel) s = s.replace(ISO_INSTANT, '$1 $2');
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface CsvOptions {
  /** `--excel`: a byte order mark (so Excel reads UTF-8) and instants as dates it recognises. */
  excel?: boolean;
  /**
   * The first line, `# ...`: what the file is (command, filter, period), so a CSV passed on stays
   * self-describing. Omitted when undefined.
   */
  comment?: string;
}

/**
 * Up to this much text is gathered before it is written: one write per row cost a `report
 * cost-by-user` of 15,000 rows ~0.1 s of CPU in write calls (measured at 200k records).
 */
const FLUSH_AT = 64 * 1024;

/**
 * Streams rows in the chosen format, in chunks of up to FLUSH_AT characters (end() and flush()
 * write what is left). Tables need every row for column widths, so they buffer.
 */
export class RowWriter {
  private count = 0;
  private readonly table: Row[] = [];
  private pending = '';

  constructor(
    private readonly io: CliIo,
    private readonly format: Format,
    private readonly columns: readonly string[],
    private readonly csv: CsvOptions = {},
  ) {}

  async start(): Promise<void> {
    if (this.format === 'csv') {
      const comment = this.csv.comment === undefined ? '' : csvCell(`# ${this.csv.comment.replace(/[\r\n]+/g, ' ')}`) + '\r\n';
      await this.io.out((this.csv.excel ? '\uFEFF' : '') + comment + this.columns.map((c) => csvCell(c)).join(',') + '\r\n');
    }
    if (this.format === 'json') await this.io.out('[');
  }

  async row(row: Row): Promise<void> {
    if (this.format === 'csv') this.pending += this.columns.map((c) => csvCell(row[c], this.csv.excel)).join(',') + '\r\n';
    else if (this.format === 'json') this.pending += (this.count > 0 ? ',\n' : '\n') + JSON.stringify(row);
    else this.table.push(row);
    this.count++;
    if (this.pending.length >= FLUSH_AT) await this.flush();
  }

  /** Writes the rows gathered so far (before an error ends the output, so what was found is shown). */
  async flush(): Promise<void> {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    await this.io.out(text);
  }

  async end(): Promise<void> {
    if (this.format === 'json') this.pending += this.count > 0 ? '\n]\n' : ']\n';
    if (this.format === 'table') this.pending += renderTable(this.columns, this.table);
    await this.flush();
  }
}

export function renderTable(columns: readonly string[], rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const numeric = columns.map((c) => rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  let out = line(columns.slice());
  out += line(widths.map((w) => '-'.repeat(w)));
  for (const row of rows) out += line(columns.map((c) => text(row[c])));
  return out;
}

export async function writeRows(io: CliIo, format: Format, columns: readonly string[], rows: Iterable<Row> | AsyncIterable<Row>, csv: CsvOptions = {}): Promise<number> {
  const writer = new RowWriter(io, format, columns, csv);
  await writer.start();
  let n = 0;
  try {
    for await (const row of rows) {
      await writer.row(row);
      n++;
    }
  } catch (error) {
    await writer.flush();
    throw error;
  }
  await writer.end();
  return n;
}

/** The options every command with CSV output takes. */
export const CSV_OPTION = { excel: { type: 'boolean' } } as const;

/**
 * The command line for a CSV's first line: where the ledger is (a directory, a database URL that
 * may hold a password) and --out are left out; the rest says what was asked.
 */
export function commandLine(command: string, argv: readonly string[]): string {
  const shown: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = /^--(ledger|postgres|out)(=|$)/.exec(arg);
    if (name) {
      if (name[2] === '') i++;
      continue;
    }
    shown.push(/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  }
  return ['llm-audit', command, ...shown].join(' ');
}

/** The first line of a CSV: the command, then what it selected and over which period (`about`). */
export function csvComment(command: string, argv: readonly string[], about: readonly string[]): string {
  return [commandLine(command, argv), ...about, 'times UTC'].join(' | ');
}
