/**
 * The reading side of the embedded file ledger: {@link FileLedgerSource} lists the segments and
 * streams their lines (no lock, never creates anything), using each segment's summary (summary.ts)
 * to leave out what a query or a windowed report cannot match; ledger.json is read here too. The
 * one writer is FileLedger (ledger.ts).
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CallCells, CheckpointEntry, ItemsOptions, LedgerItem, LedgerSource, RecordSelection, SegmentFacts, SkippedItem } from '../backend';
import { parseCheckpoint } from '../checkpoint';
import { LedgerError, fsError } from '../errors';
import { CHECKPOINTS_FILE, LEDGER_FILE, PENDING_DIR, REJECTED_DIR, REPAIRS_FILE, SEGMENTS_DIR, SEGMENT_NAME, readLines, segmentDay, segmentLabel, segmentPath } from './layout';
import { readFileNotes, type StoredNote } from './note-store';
import { valueMatches } from '../query';
import { SegmentSummary, SummaryCheck } from './summary';
import { segmentFactsInOrder, verifyWorkerCount } from './verify-pool';

/** Bytes read at once when reading a run of lines by position. */
const READ_CHUNK = 1 << 20;

function summaryStale(label: string): LedgerError {
  return new LedgerError('LEDGER_SUMMARY_MISMATCH', `${label}: its summary's line offsets do not fall on line ends; run \`llm-audit verify\``, { location: { file: label } });
}

export function repairAdvice(dir: string): string {
  return `Nothing after it was acknowledged. Run \`llm-audit repair --ledger ${dir}\` to move the torn bytes to quarantine/ (recorded in repairs.jsonl), then restart`;
}

export interface LedgerMeta {
  v: number;
  ledger_id: string;
  created: string;
  /** When `llm-audit repair` recreated a deleted ledger.json from the checkpoints. */
  restored?: string;
}

export class FileLedgerSource implements LedgerSource {
  readonly name: string;
  readonly tornAdvice: string;
  private readonly unexpected: string[] = [];

  constructor(readonly dir: string) {
    this.name = dir;
    this.tornAdvice = repairAdvice(dir);
  }

  async open(): Promise<void> {
    this.assertLedger();
  }

  /** Throws LEDGER_NOT_FOUND / LEDGER_UNREADABLE unless `dir` is a readable ledger directory. */
  assertLedger(): void {
    let stat;
    try {
      stat = statSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LedgerError('LEDGER_NOT_FOUND', `ledger directory ${this.dir} does not exist`);
      }
      throw fsError(error, 'cannot open the ledger', this.dir);
    }
    if (!stat.isDirectory()) throw new LedgerError('LEDGER_UNREADABLE', `${this.dir} is not a directory`);
    try {
      readdirSync(this.dir);
    } catch (error) {
      throw fsError(error, 'cannot list the ledger directory', this.dir);
    }
    const hasMeta = exists(join(this.dir, LEDGER_FILE));
    const hasSegments = exists(join(this.dir, SEGMENTS_DIR));
    if (!hasMeta && !hasSegments) {
      throw new LedgerError('LEDGER_NOT_FOUND', `${this.dir} is not an llm-audit ledger (no ${LEDGER_FILE} and no ${SEGMENTS_DIR}/)`);
    }
  }

  /** Null for a ledger that has no identity yet; throws LEDGER_METADATA_MISSING when ledger.json was deleted. */
  async ledgerId(): Promise<string | null> {
    const meta = readMeta(this.dir);
    if (meta) return meta.ledger_id;
    const named = (await this.checkpoints())[0];
    if (named) throw metadataMissing(this.dir, named.checkpoint.ledger_id);
    return null;
  }

  async checkpoints(): Promise<CheckpointEntry[]> {
    const path = join(this.dir, CHECKPOINTS_FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fsError(error, 'cannot read the checkpoints', path);
    }
    if (text === '') return [];
    const lines = text.split('\n');
    const tail = lines.pop();
    if (tail !== undefined && tail !== '') {
      throw new LedgerError(
        'LEDGER_TORN_TAIL',
        `${CHECKPOINTS_FILE}:${lines.length + 1}: incomplete checkpoint (${Buffer.byteLength(tail)} bytes with no newline): a write was interrupted. ${repairAdvice(this.dir)}`,
        { location: { file: CHECKPOINTS_FILE, line: lines.length + 1 } },
      );
    }
    return lines.map((line, i) => {
      const where = `${CHECKPOINTS_FILE}:${i + 1}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new LedgerError('LEDGER_CHECKPOINT_MALFORMED', `${where}: not valid JSON (the file was altered or corrupted)`, {
          location: { file: CHECKPOINTS_FILE, line: i + 1 },
        });
      }
      return { checkpoint: parseCheckpoint(parsed, where), where };
    });
  }

  async signedNotes(): Promise<StoredNote[]> {
    return readFileNotes(this.dir);
  }

  async segments(): Promise<string[]> {
    const path = join(this.dir, SEGMENTS_DIR);
    let names: string[];
    try {
      names = readdirSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.assertLedger();
        return [];
      }
      throw fsError(error, 'cannot list the segments', path);
    }
    this.unexpected.length = 0;
    const out: string[] = [];
    for (const name of names) {
      if (SEGMENT_NAME.test(name)) out.push(name);
      else this.unexpected.push(name);
    }
    return out.sort();
  }

  async *items(options: ItemsOptions = {}): AsyncGenerator<LedgerItem> {
    const segments = await this.segments();
    let started = options.from === undefined;
    let leading = options.fromDay !== undefined;
    for (const name of segments) {
      if (options.skip?.has(name)) continue;
      let offset = 0;
      let firstLine = 1;
      if (!started) {
        if (name < options.from!.segment) continue;
        started = true;
        if (name === options.from!.segment) {
          offset = options.from!.offset;
          firstLine = NaN; // unknown without reading from the start; see lineAt()
        }
      }
      if (leading && this.before(name, options)) continue;
      leading = false;
      if (offset > 0) {
        const size = fileSize(segmentPath(this.dir, name));
        if (size < offset) {
          throw new LedgerError(
            'LEDGER_TRUNCATED',
            `${segmentLabel(name)} has ${size} bytes but a checkpoint says its records continue at byte ${offset}: the segment was truncated`,
            { location: { file: segmentLabel(name) } },
          );
        }
        firstLine = countLines(segmentPath(this.dir, name), offset) + 1;
      }
      yield* readLines(segmentPath(this.dir, name), segmentLabel(name), offset, firstLine, options.leaves);
    }
  }

  async *selectItems(options: ItemsOptions, selection: RecordSelection): AsyncGenerator<LedgerItem | SkippedItem> {
    /** The latest record timestamp of the segments read so far (Infinity: unknown, a segment without a summary). */
    let reached = -Infinity;
    let leading = options.fromDay !== undefined;
    for (const name of await this.segments()) {
      if (options.skip?.has(name)) continue;
      if (leading && this.before(name, options)) continue;
      leading = false;
      const summary = SegmentSummary.load(this.dir, name);
      // Only a summary of the file as it is now steers the reading; without one, the whole segment.
      const described = summary?.describes(this.dir, name) === true;
      const cells = described && selection.cells === 'users' ? wholeCells(name, summary!, selection, reached) : null;
      reached = Math.max(reached, described ? (summary!.header.time?.[1] ?? -Infinity) : Infinity);
      if (cells !== null) {
        if (summary!.header.lines > 0) yield { kind: 'skipped', first: summary!.header.first_seq!, last: summary!.header.last_seq!, cells };
        continue;
      }
      const blocks = described && selection.cells === 'models' ? blockCells(summary!, selection) : null;
      if (blocks !== null) {
        // The cells first (they stand for lines anywhere in the segment), then the edges' lines and
        // the skipped runs up to the segment's end, so the scan's missing-record check sees every seq.
        if (blocks.cells.models.length > 0) yield { kind: 'skipped', first: summary!.header.first_seq!, last: summary!.header.first_seq!, cells: blocks.cells };
        yield* this.linesAt(name, summary!, blocks.lines);
        continue;
      }
      const lines = described ? summary!.candidates(selection, valueMatches) : 'all';
      if (lines === 'all') yield* readLines(segmentPath(this.dir, name), segmentLabel(name));
      else yield* this.linesAt(name, summary!, lines);
    }
  }

  /**
   * A segment of a day before `fromDay` whose summary shows no record timestamped at or after
   * `since`. Without a summary that describes the file as it is, it cannot be told: it is read.
   */
  private before(name: string, options: ItemsOptions): boolean {
    if (!(segmentDay(name)! < options.fromDay!)) return false;
    const summary = SegmentSummary.load(this.dir, name);
    if (summary?.describes(this.dir, name) !== true) return false;
    const latest = summary.header.time?.[1];
    return latest === undefined || latest < (options.since ?? Infinity);
  }

  /** The given lines of a segment (0-based, sorted), read by position; the others as skipped runs. */
  private async *linesAt(name: string, summary: SegmentSummary, lines: readonly number[]): AsyncGenerator<LedgerItem | SkippedItem> {
    const h = summary.header;
    if (h.lines === 0) return;
    const first = h.first_seq!;
    const offsets = summary.offsets();
    const path = segmentPath(this.dir, name);
    const label = segmentLabel(name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw fsError(error, 'cannot read', path);
    }
    try {
      let next = 0; // the first line not yet accounted for
      for (let i = 0; i < lines.length; ) {
        // A run of consecutive lines, read at once up to READ_CHUNK bytes.
        let end = i + 1;
        while (end < lines.length && lines[end] === lines[end - 1]! + 1 && offsets[lines[end]! + 1]! - offsets[lines[i]!]! <= READ_CHUNK) end++;
        const a = lines[i]!;
        const b = lines[end - 1]! + 1;
        if (a > next) yield { kind: 'skipped', first: first + next, last: first + a - 1 };
        const buffer = Buffer.allocUnsafe(offsets[b]! - offsets[a]!);
        if (readSync(fd, buffer, 0, buffer.length, offsets[a]!) !== buffer.length) throw summaryStale(label);
        for (let line = a; line < b; line++) {
          const start = offsets[line]! - offsets[a]!;
          const stop = offsets[line + 1]! - offsets[a]! - 1;
          if (buffer[stop] !== 0x0a) throw summaryStale(label);
          const location = { file: label, line: line + 1, offset: offsets[line]! };
          yield { kind: 'entry', raw: buffer.toString('utf8', start, stop), location, seq: first + line };
        }
        next = b;
        i = end;
      }
      if (next < h.lines) yield { kind: 'skipped', first: first + next, last: first + h.lines - 1 };
    } finally {
      closeSync(fd);
    }
  }

  /** verify's check of the segment summaries (summary.ts, SummaryCheck). */
  derivedCheck(): ReturnType<NonNullable<LedgerSource['derivedCheck']>> {
    const check = new SummaryCheck(this.dir);
    return {
      accept: (accepted) => check.accept(accepted),
      adopt: (segment, settled) => check.adopt(segment, settled),
      finish: async (skipped) => check.finish(await this.segments(), skipped),
    };
  }

  async segmentFacts(skip: ReadonlySet<string>, workers: number | undefined): Promise<{ threads: number; facts: AsyncIterable<SegmentFacts> } | undefined> {
    const segments = (await this.segments()).filter((name) => !skip.has(name));
    const threads = verifyWorkerCount(this.dir, segments, workers);
    return threads > 0 ? { threads, facts: segmentFactsInOrder(this.dir, segments, threads) } : undefined;
  }

  async notes(): Promise<string[]> {
    const out: string[] = [];
    if (this.unexpected.length > 0) {
      out.push(`${SEGMENTS_DIR}/ holds files that are not segments and were ignored: ${this.unexpected.join(', ')}`);
    }
    const list = (sub: string): string[] => {
      try {
        return readdirSync(join(this.dir, sub)).filter((name) => name.endsWith('.jsonl') && !name.startsWith('.'));
      } catch {
        return []; // no such directory
      }
    };
    const journals = list(PENDING_DIR);
    if (journals.length > 0) {
      out.push(`${PENDING_DIR}/ holds ${journals.length} journal(s) of records not appended yet (other writers', or left at an exit), not verified here: the lock holder appends them after checking their MACs (${journals.join(', ')})`);
      // A journal whose first line has no MAC (canonical JSON: "mac" comes first) was written without a key.
      const bare = journals.filter((name) => !/^\{("end":true,)?"mac":/.test(head(join(this.dir, PENDING_DIR, name))));
      if (bare.length > 0) out.push(`${bare.length} of them are UNAUTHENTICATED (written without LLM_AUDIT_SIGNING_KEY or LLM_AUDIT_HASH_KEY): ${bare.join(', ')}`);
    }
    const rejected = list(join(PENDING_DIR, REJECTED_DIR));
    if (rejected.length > 0) {
      out.push(`${PENDING_DIR}/${REJECTED_DIR}/ holds ${rejected.length} journal(s) that FAILED authentication (forged, altered, or written with another key) and were NOT appended: ${rejected.join(', ')}`);
    }
    let text = '';
    try {
      text = readFileSync(join(this.dir, REPAIRS_FILE), 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as { at: string; file: string; bytes?: number; quarantine?: string; ledger_id?: string };
        out.push(
          r.ledger_id !== undefined
            ? `repair on ${r.at}: ${r.file} was missing and was recreated with ledger id ${r.ledger_id} from the checkpoints`
            : `repair on ${r.at}: ${r.bytes} torn bytes at the end of ${r.file} were moved to ${r.quarantine}`,
        );
      } catch {
        out.push(`${REPAIRS_FILE} has an unreadable line`);
      }
    }
    return out;
  }
}

/**
 * The segment's call cells when the selection takes them, every record of the segment lies in the
 * window and no later than the segment's own day, and no segment read before it reached that day
 * (`reached`); else null. The last two make the segment's own-day sums the first of that day's
 * records the report folds, so the sums it continues from them are the ones it would have computed
 * from the lines (a report's `+=` is not associative: a partial sum added to sums already begun
 * would change the last bits; earlier days' cells hold their values, not sums, for that reason).
 */
function wholeCells(name: string, summary: SegmentSummary, selection: RecordSelection, reached: number): CallCells | null {
  const time = summary.header.time;
  if (!selection.cells || selection.where !== undefined || time === null) return null;
  if (!(time[0] >= (selection.from ?? -Infinity) && time[1] < (selection.to ?? Infinity))) return null;
  const dayStart = Date.parse(`${segmentDay(name)}T00:00:00.000Z`);
  if (!(time[1] < dayStart + 86_400_000 && reached < dayStart)) return null;
  // Every record, not only the calls: a record without a readable timestamp is in no window, and
  // the header's range leaves it out; such a record among the calls leaves the cells null.
  return summary.cells();
}

/**
 * For the model cells: the cells of the blocks whose records all lie in the window, and the lines
 * of the blocks the window only cuts; null when the summary has no cells (or a filter applies).
 */
function blockCells(summary: SegmentSummary, selection: RecordSelection): { cells: CallCells; lines: number[] } | null {
  const h = summary.header;
  if (selection.where !== undefined || h.lines === 0) return null;
  const all = summary.cells();
  if (all === null) return null;
  const from = selection.from ?? -Infinity;
  const to = selection.to ?? Infinity;
  const inside = new Set<number>();
  const lines: number[] = [];
  h.blocks.forEach((r, b) => {
    // A block without a readable timestamp (records in no window) has no calls in its cells either.
    if (r === null || r[1] < from || r[0] >= to) return;
    if (r[0] >= from && r[1] < to) inside.add(b);
    else for (let i = b * h.block; i < Math.min(h.lines, (b + 1) * h.block); i++) lines.push(i);
  });
  return { cells: { users: [], models: all.models.filter((m) => inside.has(m.block)) }, lines };
}

export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The first bytes of a file ('' when it cannot be read). */
function head(path: string, bytes = 64): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0)).toString('utf8');
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (error) {
    throw fsError(error, 'cannot read', path);
  }
}

/** Newlines in the first `limit` bytes of a file (line numbers for messages when resuming mid-file). */
function countLines(path: string, limit: number): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw fsError(error, 'cannot read', path);
  }
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    let count = 0;
    let position = 0;
    while (position < limit) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, limit - position), position);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) if (buffer[i] === 0x0a) count++;
      position += n;
    }
    return count;
  } finally {
    closeSync(fd);
  }
}

export function readMeta(dir: string): LedgerMeta | undefined {
  const path = join(dir, LEDGER_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(error, 'cannot read', path);
  }
  try {
    const meta = JSON.parse(text) as LedgerMeta;
    if (typeof meta.ledger_id === 'string') return meta;
  } catch {
    // fall through
  }
  throw new LedgerError('LEDGER_METADATA_CORRUPT', `${path} is corrupt (expected {"ledger_id": ...}); restore it from a backup`);
}

/**
 * ledger.json holds the id every checkpoint is bound to. Deleted, a writer would start a new
 * identity that none of the checkpoints match; so verify and the writer both stop, and say how to
 * get it back.
 */
function metadataMissing(dir: string, ledgerId: string): LedgerError {
  return new LedgerError(
    'LEDGER_METADATA_MISSING',
    `${join(dir, LEDGER_FILE)} is missing (deleted?), but the checkpoints belong to ledger ${ledgerId}. To recover: ` +
      `1. restore ${LEDGER_FILE} from a backup, or run \`llm-audit repair --ledger ${dir}\`, which recreates it from the id the checkpoints carry (recorded in ${REPAIRS_FILE}); ` +
      `2. run \`llm-audit verify --ledger ${dir}\`; 3. restart the application`,
  );
}

