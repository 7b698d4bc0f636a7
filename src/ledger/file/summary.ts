/**
 * Per-segment summaries of the file ledger: what a query or a windowed report needs to know to
 * leave a segment, or most of one, unread.
 *
 * A summary is `summaries/YYYY-MM-DD.jsonl` beside `segments/YYYY-MM-DD.jsonl`, canonical JSON
 * lines, in this order:
 *
 *   1. the header: the segment's name, byte length, line count, first and last seq, the leaf hash
 *      and byte length of its last line (what binds the summary to the segment's content: the
 *      last leaf commits, through the hash chain, to every line before it), the range of the
 *      records' own timestamps (ms since the epoch; span start, not the append day) and that range
 *      for every block of BLOCK_LINES lines;
 *   2. `{"lengths":[...]}`: the byte length of every line (newline included), so a line's offset
 *      is a prefix sum: lines are read by position, not by scanning;
 *   3. one line per indexed field (FIELD_NAMES): its distinct values, sorted, and for each the
 *      lines (0-based, delta-encoded) of the records that carry it;
 *   4. (version 2) `{"cells":{"models":[...],"users":[...]}}`: the segment's call records summed
 *      per report model (what error-rate counts) and per UTC day and user (what cost-by-user sums),
 *      as arrays in MODEL_CELL / USER_CELL order sorted by key; or `{"cells":null}` when a call
 *      record has a value the sums cannot stand for (no readable timestamp, a cost or latency that
 *      is not a number...). A report whose window holds the whole segment adds these up instead of
 *      parsing its lines (error-rate over a day at 1M records: 28,571 lines, none read).
 *
 * Version 1 summaries (no cells) are still read, checked and continued as version 1 files are;
 * readers read those segments' lines as before, and `llm-audit repair` rewrites them as version 2.
 *
 * Why exact postings and not a Bloom filter per segment: on the benchmark's data set (bench/lib/
 * dataset.mjs) every one of the 500 users and nearly every one of the 10,000 sessions appear in
 * every day's segment, so a segment-level filter, exact or not, leaves nothing out for `query
 * --user`; the postings find the 0.2 % of lines that match inside each segment (docs/ledger.md has
 * the sizes measured). Readers parse only the header, the lengths and the one field they filter on.
 *
 * The writer (ledger.ts) builds a segment's summary as it appends (SummaryBuilder) and writes it
 * when the segment closes: at the day's rollover and when the writer closes. `verify` builds it
 * again from the stored lines and compares the text byte for byte (SummaryCheck): a summary that
 * disagrees with its segment, or names another one, is LEDGER_SUMMARY_MISMATCH. A summary is a
 * derived file, not evidence: a missing one (a ledger written before summaries existed, or a
 * writer killed before it wrote one) only makes readers read that segment whole; verify notes it
 * and `llm-audit repair` writes it.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../util/durable-file';
import type { CallCells, ModelCell, RecordSelection, SelectableField, UserCell } from '../backend';
import type { AcceptedEntry } from '../chain';
import { LedgerError, fsError } from '../errors';
import { leafHash } from '../merkle';
import { isCallRecord, reportModel, type LedgerRecord } from '../record';
import { DIR_MODE, FILE_MODE, SEGMENTS_DIR, SEGMENT_NAME, SUMMARIES_DIR, readLines, segmentLabel, segmentPath } from './layout';

export const SUMMARY_VERSION = 2;
/** The versions readers and verify accept. */
const SUMMARY_VERSIONS: readonly number[] = [1, 2];
/** Lines per time block: a window inside a segment reads the blocks it overlaps. */
export const BLOCK_LINES = 1024;

/** The fields a query can select segments and lines by (QueryFilter's names). */
export type IndexedField = SelectableField;

/** The indexed fields in file order (sorted). Only string values are indexed: a filter is a string. */
const FIELD_NAMES: readonly IndexedField[] = ['action', 'env', 'model', 'service', 'session', 'tenant', 'user'];

export interface SummaryHeader {
  v: number;
  segment: string;
  bytes: number;
  lines: number;
  first_seq: number | null;
  last_seq: number | null;
  last_leaf: string | null;
  last_length: number;
  /** [min, max] of the records' timestamps (ms), null when no record has a readable one. */
  time: [number, number] | null;
  block: number;
  blocks: Array<[number, number] | null>;
}

/** A summary has its segment's name (YYYY-MM-DD.jsonl), in SUMMARIES_DIR. */
export function summaryPath(dir: string, segment: string): string {
  return join(dir, SUMMARIES_DIR, segment);
}

export function summaryLabel(segment: string): string {
  return `${SUMMARIES_DIR}/${segment}`;
}

/**
 * The record members SummaryBuilder.add reads: verify's workers parse only these of each record
 * (verify-worker.ts). Keep in step with add(), addCell() and recordKind(): a member left out
 * makes the workers' summary differ, and verify then walks that segment again on one thread.
 */
export const SUMMARY_MEMBERS: ReadonlySet<string> = new Set(['action', 'cost_usd', 'deployment_environment', 'event', 'latency_ms', 'model', 'service_name', 'session_id', 'status', 'tenant_id', 'timestamp', 'user_id']);

/** Accumulates a segment's summary line by line, in order. */
export class SummaryBuilder {
  private bytes = 0;
  private lengths: number[] = [];
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private lastLeaf: Buffer | null = null;
  private time: [number, number] | null = null;
  private blocks: Array<[number, number] | null> = [];
  /** Per field (FIELD_NAMES order): value -> its lines, ascending. */
  private postings: Array<Map<string, number[]>> = FIELD_NAMES.map(() => new Map());
  /** The call cells, or null once a call record cannot be summed (then none are written). */
  private cells: CellSums | null = { users: new Map(), models: new Map() };

  constructor(readonly segment: string) {}

  get size(): number {
    return this.bytes;
  }

  get lineCount(): number {
    return this.lengths.length;
  }

  /**
   * One stored line: its byte length with the newline, its seq, leaf hash and record (of which it
   * reads only the members in SUMMARY_MEMBERS).
   */
  add(length: number, seq: number, leaf: Buffer, record: LedgerRecord): void {
    const line = this.lengths.length;
    this.lengths.push(length);
    this.bytes += length;
    this.firstSeq ??= seq;
    this.lastSeq = seq;
    this.lastLeaf = leaf;
    const ts = Date.parse(record.timestamp); // as the scan reads it (query.ts)
    const b = Math.floor(line / BLOCK_LINES);
    if (this.blocks.length <= b) this.blocks.push(null);
    if (Number.isFinite(ts)) {
      this.time = widen(this.time, ts);
      this.blocks[b] = widen(this.blocks[b]!, ts);
    }
    // Once per stored line (the writer's appends, verify's walk): no allocation but the postings.
    const p = this.postings;
    post(p[0]!, record.action, line);
    post(p[1]!, record.deployment_environment, line);
    post(p[2]!, record.model?.request, line); // --model matches the requested or the answering model
    post(p[2]!, record.model?.response, line);
    post(p[3]!, record.service_name, line);
    post(p[4]!, record.session_id, line);
    post(p[5]!, record.tenant_id, line);
    post(p[6]!, record.user_id, line);
    if (this.cells !== null && isCallRecord(record)) this.cells = addCell(this.cells, this.segment.slice(0, 10), b, record, ts);
  }

  /**
   * The summary file's text, canonical JSON lines (verify compares it byte for byte). Written with
   * JSON.stringify over members in sorted order: for integers, strings and null that is RFC 8785's
   * form, and several times faster than the general serialiser on arrays this long.
   */
  text(version = SUMMARY_VERSION): string {
    const header: SummaryHeader = {
      block: BLOCK_LINES,
      blocks: this.blocks,
      bytes: this.bytes,
      first_seq: this.firstSeq,
      last_leaf: this.lastLeaf?.toString('hex') ?? null,
      last_length: this.lengths[this.lengths.length - 1] ?? 0,
      last_seq: this.lastSeq,
      lines: this.lengths.length,
      segment: this.segment,
      time: this.time,
      v: version,
    };
    const out = [JSON.stringify(header), JSON.stringify({ lengths: this.lengths })];
    FIELD_NAMES.forEach((field, i) => {
      const postings = this.postings[i]!;
      const values = [...postings.keys()].sort();
      out.push(JSON.stringify({ field, rows: values.map((v) => deltas(postings.get(v)!)), values }));
    });
    if (version >= 2) out.push(cellsText(this.cells));
    return out.join('\n') + '\n';
  }

  /** A builder that continues from a stored summary (the writer reopening its newest segment). */
  static from(summary: SegmentSummary): SummaryBuilder {
    const b = new SummaryBuilder(summary.header.segment);
    const h = summary.header;
    b.lengths = summary.lengths().slice();
    b.bytes = h.bytes;
    b.firstSeq = h.first_seq;
    b.lastSeq = h.last_seq;
    b.lastLeaf = h.last_leaf === null ? null : Buffer.from(h.last_leaf, 'hex');
    b.time = h.time ? [h.time[0], h.time[1]] : null;
    b.blocks = h.blocks.map((x) => (x ? [x[0], x[1]] : null));
    b.postings = FIELD_NAMES.map((field) => {
      const { values, rows } = summary.field(field);
      return new Map(values.map((v, i) => [v, undelta(rows[i]!)]));
    });
    b.cells = cellsOf(summary.cells());
    return b;
  }
}

/** Bytes read for a summary's header (about 30 per block of BLOCK_LINES lines, so 30 MB segments fit many times over). */
const HEAD_BYTES = 64 * 1024;

function parseHeader(line: string, label: string): SummaryHeader {
  let header: SummaryHeader;
  try {
    header = JSON.parse(line) as SummaryHeader;
  } catch {
    throw notASummary(label, 'its header is not JSON');
  }
  if (header === null || !SUMMARY_VERSIONS.includes(header.v) || typeof header.segment !== 'string' || !Number.isSafeInteger(header.bytes) || !Number.isSafeInteger(header.lines) || !Array.isArray(header.blocks)) {
    throw notASummary(label, 'not a summary header of this version');
  }
  return header;
}

/** The cells being summed: per (day, user) and per report model, the response models as a set. */
interface CellSums {
  users: Map<string, UserCell>;
  /** Keyed by JSON [block, model]. */
  models: Map<string, Omit<ModelCell, 'responses'> & { responses: Set<string> }>;
}

/** Each cell's members in the order the file stores them (arrays: a third of the bytes of objects). */
const USER_CELL: ReadonlyArray<keyof UserCell> = ['day', 'user', 'requests', 'cost', 'priced', 'unpriced', 'latency', 'timed'];
const MODEL_CELL: ReadonlyArray<keyof ModelCell> = ['block', 'model', 'requests', 'errors', 'blocked', 'responses'];

const userKey = (day: string, user: string | null): string => JSON.stringify([day, user]);
const modelKey = (block: number, model: string | null): string => JSON.stringify([block, model]);
const byKey = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

function cellsText(c: CellSums | null): string {
  if (c === null) return JSON.stringify({ cells: null });
  const users = [...c.users].sort(byKey).map(([, u]) => USER_CELL.map((k) => u[k]));
  const models = [...c.models]
    .map(([key, x]): [string, unknown[]] => [key, MODEL_CELL.map((k) => (k === 'responses' ? [...x.responses].sort() : x[k]))])
    .sort(byKey)
    .map(([, row]) => row);
  return JSON.stringify({ cells: { models, users } });
}

function cellsOf(stored: CallCells | null): CellSums | null {
  if (stored === null) return null;
  return {
    users: new Map(stored.users.map((u) => [userKey(u.day, u.user), { ...u, cost: copy(u.cost), latency: copy(u.latency) }])),
    models: new Map(stored.models.map((m) => [modelKey(m.block, m.model), { ...m, responses: new Set(m.responses) }])),
  };
}

const copy = (x: number | number[]): number | number[] => (typeof x === 'number' ? x : x.slice());
const isNumberOrNone = (v: unknown): boolean => v === null || v === undefined || (typeof v === 'number' && Number.isFinite(v));
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

/**
 * Adds a call record to its cells, folded exactly as reports.ts folds a record's line (costGroups,
 * errorGroups: the same `+=` in the same line order, so a day's sums are the same bits); null when
 * the record holds a value the cells could not stand for as the fold of its line would (the
 * segment then has no cells and is read line by line).
 */
function addCell(cells: CellSums, own: string, block: number, r: LedgerRecord, ts: number): CellSums | null {
  const model = reportModel(r);
  const response = r.model?.response;
  if (!Number.isFinite(ts) || typeof r.timestamp !== 'string' || !isStringOrNull(r.user_id) || !isStringOrNull(model) || !(response === undefined || isStringOrNull(response))) return null;
  if (!isNumberOrNone(r.cost_usd) || !isNumberOrNone(r.latency_ms)) return null;
  const day = r.timestamp.slice(0, 10);
  const key = userKey(day, r.user_id);
  let u = cells.users.get(key);
  if (!u) cells.users.set(key, (u = { day, user: r.user_id, requests: 0, cost: day === own ? 0 : [], priced: 0, unpriced: 0, latency: day === own ? 0 : [], timed: 0 }));
  u.requests++;
  if (r.cost_usd !== null && r.cost_usd !== undefined) {
    if (typeof u.cost === 'number') u.cost += r.cost_usd;
    else u.cost.push(r.cost_usd);
    u.priced++;
  } else if (r.status === 'success') u.unpriced++;
  if (r.latency_ms !== null && r.latency_ms !== undefined) {
    if (typeof u.latency === 'number') u.latency += r.latency_ms;
    else u.latency.push(r.latency_ms);
    u.timed++;
  }
  const at = modelKey(block, model);
  let m = cells.models.get(at);
  if (!m) cells.models.set(at, (m = { block, model, requests: 0, errors: 0, blocked: 0, responses: new Set() }));
  m.requests++;
  if (r.status === 'error') m.errors++;
  else if (r.status === 'blocked') m.blocked++;
  if (response) m.responses.add(response);
  return cells;
}

function notASummary(label: string, why: string): LedgerError {
  return new LedgerError('LEDGER_SUMMARY_MISMATCH', `${label} is not a readable segment summary (${why}): run \`llm-audit verify\``, { location: { file: label } });
}

function post(values: Map<string, number[]>, value: unknown, line: number): void {
  if (typeof value !== 'string') return;
  const rows = values.get(value);
  if (rows === undefined) values.set(value, [line]);
  else if (rows[rows.length - 1] !== line) rows.push(line);
}

function widen(range: [number, number] | null, t: number): [number, number] {
  if (range === null) return [t, t];
  if (t < range[0]) range[0] = t;
  if (t > range[1]) range[1] = t;
  return range;
}

function deltas(rows: readonly number[]): number[] {
  return rows.map((r, i) => (i === 0 ? r : r - rows[i - 1]!));
}

function undelta(d: readonly number[]): number[] {
  const out = new Array<number>(d.length);
  let at = 0;
  for (let i = 0; i < d.length; i++) out[i] = at = i === 0 ? d[0]! : at + d[i]!;
  return out;
}

/** Writes a segment's summary atomically (temp file + rename), fsync'd unless `sync` is false. */
export function writeSummary(dir: string, builder: SummaryBuilder, sync: boolean): void {
  const sub = join(dir, SUMMARIES_DIR);
  try {
    mkdirSync(sub, { recursive: true, mode: DIR_MODE });
    const name = builder.segment;
    if (sync) {
      writeFileAtomicSync(sub, name, builder.text(), FILE_MODE);
    } else {
      // The rename without the fsyncs (fsync `none`): a crash may lose the summary, never tear it.
      const temp = join(sub, `.tmp-${name}`);
      writeFileSync(temp, builder.text(), { mode: FILE_MODE });
      renameSync(temp, join(sub, name));
    }
  } catch (error) {
    throw fsError(error, 'cannot write the segment summary', summaryPath(dir, builder.segment));
  }
}

/** Removes a segment's summary with the segment (retention); a summary left behind is only noted by verify. */
export function removeSummary(dir: string, segment: string): void {
  try {
    unlinkSync(summaryPath(dir, segment));
  } catch {
    // none, or already gone
  }
}

/** A stored summary, parsed lazily: the header at once, the lengths and each field when first asked. */
export class SegmentSummary {
  private lengthsCache: number[] | undefined;
  private offsetsCache: number[] | undefined;
  private readonly fields = new Map<IndexedField, { values: string[]; rows: number[][] }>();
  private cellsCache: CallCells | null | undefined;

  private constructor(
    readonly header: SummaryHeader,
    private readonly headerLine: string,
    private readonly label: string,
    /** The file, when only its header was read (load): the rest is read when first needed. */
    private readonly path: string | undefined,
    private body: { lines: string[]; text: string } | undefined,
  ) {}

  /** Parses a summary's text; throws when it is not one (verify reports that as a mismatch). */
  static parse(text: string, label: string): SegmentSummary {
    const lines = text.split('\n');
    const summary = new SegmentSummary(parseHeader(lines[0]!, label), lines[0]!, label, undefined, { lines, text });
    summary.checkBody(lines);
    return summary;
  }

  /**
   * The summary of `segment`, or undefined when there is none (or its header cannot be read). Only
   * the header is read here (a window needs nothing else); the rest when first asked for.
   */
  static load(dir: string, segment: string): SegmentSummary | undefined {
    const path = summaryPath(dir, segment);
    let head: string;
    try {
      const fd = openSync(path, 'r');
      try {
        const buffer = Buffer.allocUnsafe(HEAD_BYTES);
        head = buffer.toString('utf8', 0, readSync(fd, buffer, 0, HEAD_BYTES, 0));
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
    const nl = head.indexOf('\n');
    try {
      if (nl >= 0) return new SegmentSummary(parseHeader(head.slice(0, nl), summaryLabel(segment)), head.slice(0, nl), summaryLabel(segment), path, undefined);
      return SegmentSummary.parse(readFileSync(path, 'utf8'), summaryLabel(segment));
    } catch {
      return undefined;
    }
  }

  /** The file's whole text, for verify's byte-for-byte comparison. */
  get text(): string {
    return this.all().text;
  }

  private all(): { lines: string[]; text: string } {
    if (this.body) return this.body;
    let text: string;
    try {
      text = readFileSync(this.path!, 'utf8');
    } catch (error) {
      throw fsError(error, 'cannot read', this.path!);
    }
    const lines = text.split('\n');
    if (lines[0] !== this.headerLine) throw notASummary(this.label, 'it changed while it was read');
    this.checkBody(lines);
    return (this.body = { lines, text });
  }

  private checkBody(lines: readonly string[]): void {
    if (lines.length !== FIELD_NAMES.length + (this.header.v >= 2 ? 4 : 3) || lines[lines.length - 1] !== '') throw notASummary(this.label, 'not the lines of a summary');
  }

  lengths(): number[] {
    if (this.lengthsCache) return this.lengthsCache;
    const parsed = JSON.parse(this.all().lines[1]!) as { lengths: number[] };
    return (this.lengthsCache = parsed.lengths);
  }

  /** Byte offset of each line, and of the end (length lines + 1). */
  offsets(): number[] {
    if (this.offsetsCache) return this.offsetsCache;
    const lengths = this.lengths();
    const out = new Array<number>(lengths.length + 1);
    out[0] = 0;
    for (let i = 0; i < lengths.length; i++) out[i + 1] = out[i]! + lengths[i]!;
    return (this.offsetsCache = out);
  }

  field(name: IndexedField): { values: string[]; rows: number[][] } {
    let f = this.fields.get(name);
    if (f) return f;
    const line = this.all().lines[2 + FIELD_NAMES.indexOf(name)]!;
    const parsed = JSON.parse(line) as { field: string; values: string[]; rows: number[][] };
    if (parsed.field !== name) throw new LedgerError('LEDGER_SUMMARY_MISMATCH', `${summaryLabel(this.header.segment)}: field ${name} is not where it belongs`);
    this.fields.set(name, (f = { values: parsed.values, rows: parsed.rows }));
    return f;
  }

  /** The call cells (version 2), or null (version 1, or a segment whose calls could not be summed). */
  cells(): CallCells | null {
    if (this.cellsCache !== undefined) return this.cellsCache;
    if (this.header.v < 2) return (this.cellsCache = null);
    const parsed = JSON.parse(this.all().lines[2 + FIELD_NAMES.length]!) as { cells: { users: unknown[][]; models: unknown[][] } | null };
    const objects = <T>(keys: ReadonlyArray<keyof T>, rows: unknown[][]): T[] => rows.map((row) => Object.fromEntries(keys.map((k, i) => [k, row[i]])) as T);
    return (this.cellsCache = parsed.cells === null ? null : { users: objects(USER_CELL, parsed.cells.users), models: objects(MODEL_CELL, parsed.cells.models) });
  }

  /**
   * Whether this summary describes the segment file as it is now: the same name and size, and a
   * last line with the same leaf hash and seq. A reader uses only such a summary; any other (the
   * writer appended since, or the file was replaced) means reading the segment whole. The check
   * costs one small read; the summary's other contents are what `verify` checks.
   */
  describes(dir: string, segment: string): boolean {
    const h = this.header;
    if (h.segment !== segment) return false;
    let fd: number;
    try {
      fd = openSync(segmentPath(dir, segment), 'r');
    } catch {
      return false;
    }
    try {
      if (fstatSync(fd).size !== h.bytes) return false;
      if (h.lines === 0) return h.bytes === 0;
      if (!(h.last_length > 0 && h.last_length <= h.bytes)) return false;
      const last = Buffer.allocUnsafe(h.last_length);
      if (readSync(fd, last, 0, h.last_length, h.bytes - h.last_length) !== h.last_length) return false;
      if (last[last.length - 1] !== 0x0a) return false;
      if (h.bytes > h.last_length) {
        const before = Buffer.allocUnsafe(1);
        if (readSync(fd, before, 0, 1, h.bytes - h.last_length - 1) !== 1 || before[0] !== 0x0a) return false;
      }
      const raw = last.toString('utf8', 0, last.length - 1);
      return leafHash(raw).toString('hex') === h.last_leaf && raw.endsWith(`,"seq":${h.last_seq}}`);
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The lines (sorted, 0-based) that can hold a record of `selection`, or `all` when the summary
   * cannot narrow it. Time: the blocks whose range overlaps [from, to); a record without a
   * readable timestamp is in no window (as in the scan). Fields: the union of a field's matching
   * values' postings, intersected across fields.
   */
  candidates(selection: RecordSelection, matchesValue: (field: IndexedField, pattern: string, value: string) => boolean): number[] | 'all' {
    const h = this.header;
    let lines: number[] | 'all' = 'all';
    const windowed = selection.from !== undefined || selection.to !== undefined;
    if (windowed) {
      const from = selection.from ?? -Infinity;
      const to = selection.to ?? Infinity;
      const overlaps = (r: [number, number] | null): boolean => r !== null && r[1] >= from && r[0] < to;
      if (!overlaps(h.time)) return [];
      if (!h.blocks.every(overlaps)) {
        lines = [];
        for (let b = 0; b < h.blocks.length; b++) {
          if (!overlaps(h.blocks[b]!)) continue;
          for (let i = b * h.block; i < Math.min(h.lines, (b + 1) * h.block); i++) lines.push(i);
        }
      }
    }
    for (const [name, pattern] of Object.entries(selection.where ?? {}) as Array<[IndexedField, string | undefined]>) {
      if (pattern === undefined) continue;
      const { values, rows } = this.field(name);
      const hit = new Set<number>();
      let found: number[] = [];
      values.forEach((value, i) => {
        if (!matchesValue(name, pattern, value)) return;
        for (const line of undelta(rows[i]!)) {
          if (!hit.has(line)) {
            hit.add(line);
            found.push(line);
          }
        }
      });
      found.sort((a, b) => a - b);
      if (lines !== 'all') {
        const keep = new Set(lines);
        found = found.filter((line) => keep.has(line));
      }
      lines = found;
    }
    return lines;
  }
}

/** The segments that have a summary file (names), for verify's orphan check. */
export function summarizedSegments(dir: string): string[] {
  try {
    return readdirSync(join(dir, SUMMARIES_DIR)).filter((name) => SEGMENT_NAME.test(name)).sort();
  } catch {
    return [];
  }
}

/**
 * verify's side: rebuilds each segment's summary from the lines the chain walk accepted and
 * compares it with the stored one when the walk reaches the byte length the stored one covers.
 */
export class SummaryCheck {
  private current: { segment: string; builder: SummaryBuilder; stored: SegmentSummary | undefined; checked: boolean } | undefined;
  private readonly seen = new Set<string>();
  private readonly missing: string[] = [];
  private readonly partial: string[] = [];

  constructor(private readonly dir: string) {}

  /** The first summary found wrong: thrown by finish(), so a damaged chain (which the walk reports) is named first. */
  private failure: unknown;

  accept(accepted: AcceptedEntry): void {
    if (this.failure) return;
    try {
      this.add(accepted);
    } catch (error) {
      this.failure ??= error;
      this.current = undefined;
    }
  }

  private add(accepted: AcceptedEntry): void {
    const segment = accepted.location.file.slice(SEGMENTS_DIR.length + 1);
    if (this.current?.segment !== segment) {
      this.close();
      this.current = { segment, builder: new SummaryBuilder(segment), stored: this.stored(segment), checked: false };
      this.seen.add(segment);
    }
    const c = this.current;
    c.builder.add(Buffer.byteLength(accepted.raw) + 1, accepted.entry.seq, accepted.leaf, accepted.entry.record as LedgerRecord);
    if (c.stored && !c.checked && c.builder.size === c.stored.header.bytes) this.compare(c.builder, c.stored);
  }

  private stored(segment: string): SegmentSummary | undefined {
    let text: string;
    try {
      text = readFileSync(summaryPath(this.dir, segment), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.missing.push(segment);
        return undefined;
      }
      throw fsError(error, 'cannot read', summaryPath(this.dir, segment));
    }
    return SegmentSummary.parse(text, summaryLabel(segment));
  }

  private compare(builder: SummaryBuilder, stored: SegmentSummary): void {
    this.current!.checked = true;
    const label = summaryLabel(builder.segment);
    if (stored.header.segment !== builder.segment) {
      throw mismatch(label, `it describes ${segmentLabel(stored.header.segment)}, not ${segmentLabel(builder.segment)} (copied or renamed)`);
    }
    // A version 1 summary is checked as version 1 (it has no cells): still a full check of what it says.
    if (builder.text(stored.header.v) !== stored.text) {
      throw mismatch(label, `it does not follow from the first ${builder.lineCount} line(s) of ${segmentLabel(builder.segment)} (changed by hand?)`);
    }
    if (builder.size < fileSize(segmentPath(this.dir, builder.segment))) this.partial.push(builder.segment);
  }

  private close(): void {
    const c = this.current;
    if (c?.stored && !c.checked) {
      throw mismatch(summaryLabel(c.segment), `it says ${segmentLabel(c.stored.header.segment)} has ${c.stored.header.bytes} bytes in ${c.stored.header.lines} lines, which does not match the segment (${c.builder.size} bytes in ${c.builder.lineCount} lines)`);
    }
    this.current = undefined;
  }

  /**
   * Ends the check of the one segment this instance was fed (a verify worker, verify-worker.ts):
   * throws the first mismatch; says whether its summary is missing or covers only part of it.
   */
  settle(segment: string): { missing: boolean; partial: boolean } {
    if (this.failure) throw this.failure;
    this.close();
    return { missing: this.missing.includes(segment), partial: this.partial.includes(segment) };
  }

  /** Takes in a segment a worker checked whole (settle()), as if its lines had been accepted here. */
  adopt(segment: string, settled: { missing: boolean; partial: boolean }): void {
    this.seen.add(segment);
    if (settled.missing) this.missing.push(segment);
    if (settled.partial) this.partial.push(segment);
  }

  /**
   * After the walk: checks the last segment, the summaries of segments with no lines, and returns
   * notes about summaries that are missing or cover only part of their segment.
   */
  finish(segments: readonly string[], skipped: ReadonlySet<string>): string[] {
    if (this.failure) throw this.failure;
    this.close();
    const present = new Set(segments);
    for (const segment of segments) {
      if (this.seen.has(segment) || skipped.has(segment)) continue;
      const stored = this.stored(segment);
      if (stored) {
        this.current = { segment, builder: new SummaryBuilder(segment), stored, checked: false };
        if (stored.header.bytes === 0) this.compare(this.current.builder, stored);
        this.close();
      }
    }
    const notes: string[] = [];
    const orphans = summarizedSegments(this.dir).filter((s) => !present.has(s));
    if (this.missing.length > 0) {
      notes.push(
        `${this.missing.length} segment(s) have no summary (written before summaries existed, or by a writer that stopped before closing them): queries and reports read them whole; \`llm-audit repair\` writes them (${this.missing.join(', ')})`,
      );
    }
    if (this.partial.length > 0) {
      notes.push(`the summary of ${this.partial.join(', ')} covers only the lines written before a writer reopened it (checked as far as it goes; readers read the segment whole until the writer closes it)`);
    }
    if (orphans.length > 0) notes.push(`${SUMMARIES_DIR}/ holds summaries of segments that are not present (removed by retention?): ${orphans.join(', ')}`);
    return notes;
  }
}

function mismatch(label: string, why: string): LedgerError {
  return new LedgerError('LEDGER_SUMMARY_MISMATCH', `${label}: ${why}. A summary only steers which lines queries read: rebuild it with \`llm-audit repair\` once the cause is known`, {
    location: { file: label },
  });
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (error) {
    throw fsError(error, 'cannot read', path);
  }
}

/**
 * Summarises a segment from its file, every complete line (the writer reopening a segment that has
 * no summary for its current length; repair). A line that is not an entry stops it: that is
 * verify's to report, and no summary is better than one of a damaged segment.
 */
export async function summarizeSegmentFile(dir: string, segment: string): Promise<SummaryBuilder> {
  const builder = new SummaryBuilder(segment);
  for await (const item of readLines(segmentPath(dir, segment), segmentLabel(segment))) {
    if (item.kind !== 'entry') throw new LedgerError('LEDGER_TORN_TAIL', `${segmentLabel(segment)} ends in a torn line: not summarised`, { location: item.location });
    let entry: { seq: number; record: LedgerRecord };
    try {
      entry = JSON.parse(item.raw) as { seq: number; record: LedgerRecord };
    } catch {
      throw new LedgerError('LEDGER_RECORD_MALFORMED', `${segmentLabel(segment)}:${item.location.line}: not valid JSON: not summarised; run \`llm-audit verify\``, { location: item.location });
    }
    builder.add(Buffer.byteLength(item.raw) + 1, entry.seq, leafHash(item.raw), entry.record);
  }
  return builder;
}
