/** Table, CSV (RFC 4180) and JSON output of rows. */
import type { CliIo } from './io';

export type Cell = string | number | boolean | null | undefined;
export type Row = Record<string, Cell>;
export const FORMATS = ['table', 'json', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

function text(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return String(cell);
}

export function csvCell(cell: Cell): string {
  const s = text(cell);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Streams rows in the chosen format. Tables need every row for column widths, so they buffer. */
export class RowWriter {
  private count = 0;
  private readonly table: Row[] = [];

  constructor(
    private readonly io: CliIo,
    private readonly format: Format,
    private readonly columns: readonly string[],
  ) {}

  async start(): Promise<void> {
    if (this.format === 'csv') await this.io.out(this.columns.map(csvCell).join(',') + '\r\n');
    if (this.format === 'json') await this.io.out('[');
  }

  async row(row: Row): Promise<void> {
    if (this.format === 'csv') await this.io.out(this.columns.map((c) => csvCell(row[c])).join(',') + '\r\n');
    else if (this.format === 'json') await this.io.out((this.count > 0 ? ',\n' : '\n') + JSON.stringify(row));
    else this.table.push(row);
    this.count++;
  }

  async end(): Promise<void> {
    if (this.format === 'json') await this.io.out(this.count > 0 ? '\n]\n' : ']\n');
    if (this.format === 'table') await this.io.out(renderTable(this.columns, this.table));
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

export async function writeRows(io: CliIo, format: Format, columns: readonly string[], rows: Iterable<Row> | AsyncIterable<Row>): Promise<number> {
  const writer = new RowWriter(io, format, columns);
  await writer.start();
  let n = 0;
  for await (const row of rows) {
    await writer.row(row);
    n++;
  }
  await writer.end();
  return n;
}
