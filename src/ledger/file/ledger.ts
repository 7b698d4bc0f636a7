/**
 * The embedded file ledger (the default store): JSON Lines segments, one per UTC day, each line a
 * Merkle leaf chained to the previous one, plus signed checkpoints. See layout.ts for the files
 * and docs/ledger.md for the format and the guarantees.
 *
 * {@link FileLedgerSource} reads (no lock, never creates anything); {@link FileLedger} is the one
 * writer (exclusive lock, durable appends, checkpoints).
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { canonicalJson } from '../../audit/canonical-json';
import { syncDirSync } from '../../util/durable-file';
import { GroupCommit } from '../../util/group-commit';
import type { CheckpointEntry, ItemsOptions, LedgerItem, LedgerSource } from '../backend';
import { initialChainState, latestTombstone, removedSegments, walkChain, type ChainState } from '../chain';
import { loadPrivateKey, parseCheckpoint, vouchedSize, type Checkpoint } from '../checkpoint';
import { LedgerError, fsError } from '../errors';
import {
  CHECKPOINTS_FILE,
  DIR_MODE,
  FILE_MODE,
  LEDGER_FILE,
  PENDING_DIR,
  REJECTED_DIR,
  REPAIRS_FILE,
  SEGMENTS_DIR,
  SEGMENT_NAME,
  readLines,
  segmentDay,
  segmentLabel,
  segmentName,
  segmentPath,
  utcDay,
} from './layout';
import { acquireLock, type LedgerLock } from './lock';
import { type Hash } from '../merkle';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS, SerialQueue, buildCheckpoint, chainBatches, checkpointDue, afterPreparing, resumePoint, serialized, unsignedRange, type AppendInput, type CheckpointRule, type SeqRange, type SerializedRecord } from '../protocol';
import { appendFileNote, readFileNotes, type StoredNote } from './note-store';
import { CheckpointPublisher } from '../transparency';
import type { WriterOptions } from '../writer';

export type FsyncPolicy = 'always' | 'batch' | 'none';
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'none'];

export function repairAdvice(dir: string): string {
  return `Nothing after it was acknowledged. Run \`llm-audit repair --ledger ${dir}\` to move the torn bytes to quarantine/ (recorded in repairs.jsonl), then restart`;
}

// --- Reading -------------------------------------------------------------------------------------

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
      if (options.fromDay !== undefined && segmentDay(name)! < options.fromDay) continue;
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

function exists(path: string): boolean {
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

function fileSize(path: string): number {
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

/** Writes ledger.json (never over an existing one), durably unless `fsync` is `none`. */
export function writeMeta(dir: string, meta: LedgerMeta, fsync: FsyncPolicy): void {
  const path = join(dir, LEDGER_FILE);
  try {
    const fd = openSync(path, 'wx', FILE_MODE);
    try {
      writeSync(fd, canonicalJson(meta) + '\n');
      if (fsync !== 'none') fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (fsync !== 'none') syncDirSync(dir);
  } catch (error) {
    throw fsError(error, 'cannot create', path);
  }
}

// --- Writing -------------------------------------------------------------------------------------

/** The file operations the writer needs; node:fs/promises FileHandle satisfies it. A test seam. */
export interface WritableFile {
  write(buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}
export type FileOpener = (path: string, flags: string, mode: number) => Promise<WritableFile>;

export interface FileLedgerOptions extends WriterOptions {
  dir: string;
  /** `always` (default): fsync before an append resolves. `batch`: fsync at most every batchSyncMs. `none`: never. */
  fsync?: FsyncPolicy;
  /** fsync interval of the `batch` policy (default 200 ms). */
  batchSyncMs?: number;
  /** File opener (tests inject failures such as ENOSPC). */
  openFile?: FileOpener;
}

/** The sequence numbers of an append's records. */
export type AppendResult = SeqRange;

const defaultOpener: FileOpener = (path, flags, mode) => openFile(path, flags, mode);

export class FileLedger {
  private readonly fsync: FsyncPolicy;
  private readonly rule: CheckpointRule;
  private readonly batchSyncMs: number;
  private readonly clock: () => Date;
  private readonly opener: FileOpener;
  private readonly key: KeyObject | undefined;
  private readonly onWarning: (message: string) => void;
  readonly publisher: CheckpointPublisher;

  private lock: LedgerLock | undefined;
  private ledgerId = '';
  private state: ChainState = initialChainState();
  private segment: { name: string; size: number; handle: WritableFile | undefined } | undefined;
  private checkpointsHandle: WritableFile | undefined;
  private lastCheckpointSize = -1;
  private lastCheckpointAt = 0;
  private readonly queue = new SerialQueue();
  private failure: LedgerError | undefined;
  private closed = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  /** Messages about what open() found (a stale lock taken over...). */
  readonly notices: string[] = [];

  private constructor(readonly dir: string, options: FileLedgerOptions) {
    this.fsync = options.fsync ?? 'always';
    if (!FSYNC_POLICIES.includes(this.fsync)) {
      throw new LedgerError('LEDGER_USAGE', `fsync policy must be one of ${FSYNC_POLICIES.join(', ')}, got ${JSON.stringify(this.fsync)}`);
    }
    this.batchSyncMs = options.batchSyncMs ?? 200;
    this.clock = options.clock ?? (() => new Date());
    this.opener = options.openFile ?? defaultOpener;
    this.key = options.signingKey ?? (options.signingKeyPath ? loadPrivateKey(options.signingKeyPath) : undefined);
    this.rule = {
      every: options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY,
      intervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
      // A signed checkpoint at every group commit keeps the records no signature covers to the
      // group being written; `batch` and `none` trade that away with the fsyncs it needs.
      signEveryAppend: this.key !== undefined && this.fsync === 'always',
    };
    this.onWarning = options.onWarning ?? (() => {});
    this.publisher = new CheckpointPublisher(
      options.transparency ?? {},
      this.key,
      {
        storeCosigned: (note, witness) => appendFileNote(this.dir, note, { witness, sync: this.fsync !== 'none' }),
        source: () => new FileLedgerSource(this.dir),
      },
      this.onWarning,
    );
  }

  /** Why `dir` cannot hold a ledger (it or a parent is not a directory), checked without creating anything; undefined when it may. */
  static unusableDir(dir: string): LedgerError | undefined {
    let path = resolve(dir);
    for (;;) {
      try {
        return statSync(path).isDirectory() ? undefined : new LedgerError('LEDGER_UNREADABLE', `${path === resolve(dir) ? dir : path} is not a directory`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return fsError(error, 'cannot open the ledger', dir);
      }
      const parent = dirname(path);
      if (parent === path) return undefined;
      path = parent;
    }
  }

  /** Opens (creating if needed) the ledger in `options.dir` and takes its lock. */
  static async open(options: FileLedgerOptions): Promise<FileLedger> {
    const ledger = new FileLedger(options.dir, options);
    await ledger.init();
    return ledger;
  }

  get size(): number {
    return this.state.range.size;
  }

  get root(): Hash {
    return this.state.range.root();
  }

  get signed(): boolean {
    return this.key !== undefined;
  }

  private async init(): Promise<void> {
    const dir = this.dir;
    if (exists(dir) && !statSync(dir).isDirectory()) throw new LedgerError('LEDGER_UNREADABLE', `${dir} is not a directory`);
    try {
      mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (error) {
      throw fsError(error, 'cannot create the ledger directory', dir);
    }
    let stat;
    try {
      stat = statSync(dir);
    } catch (error) {
      throw fsError(error, 'cannot open the ledger', dir);
    }
    if (!stat.isDirectory()) throw new LedgerError('LEDGER_UNREADABLE', `${dir} is not a directory`);
    this.lock = acquireLock(dir);
    if (this.lock.tookOverFrom) {
      const o = this.lock.tookOverFrom;
      this.notices.push(`took over a stale lock of process ${o.pid} (no longer running, locked since ${o.started})`);
    }
    try {
      try {
        mkdirSync(join(dir, SEGMENTS_DIR), { recursive: true, mode: DIR_MODE });
      } catch (error) {
        throw fsError(error, 'cannot create the segments directory', join(dir, SEGMENTS_DIR));
      }
      this.ledgerId = await this.loadOrCreateMeta();
      this.publisher.setLedgerId(this.ledgerId);
      await this.recover();
    } catch (error) {
      this.lock.release();
      this.lock = undefined;
      throw error;
    }
  }

  private async loadOrCreateMeta(): Promise<string> {
    const existing = await new FileLedgerSource(this.dir).ledgerId();
    if (existing !== null) return existing;
    const created: LedgerMeta = { v: 1, ledger_id: randomUUID(), created: this.clock().toISOString() };
    writeMeta(this.dir, created, this.fsync);
    return created.ledger_id;
  }

  /** Rebuilds the chain state from the newest usable checkpoint and the entries after it. */
  private async recover(): Promise<void> {
    const source = new FileLedgerSource(this.dir);
    const checkpoints = await source.checkpoints();
    for (const { checkpoint, where } of checkpoints) {
      if (checkpoint.ledger_id !== this.ledgerId) {
        throw new LedgerError('LEDGER_CHECKPOINT_MISMATCH', `${where} belongs to ledger ${checkpoint.ledger_id}, not to ${this.ledgerId}`);
      }
    }
    const segments = await source.segments();
    const skip = removedSegments(checkpoints);
    const present = new Set(segments);
    const resumed = resumePoint(checkpoints, (c) => c.position !== null && present.has(c.position.segment));
    const state = resumed?.state ?? initialChainState();
    const from = resumed?.checkpoint.position ?? undefined;
    if (!from && latestTombstone(checkpoints)) {
      throw new LedgerError(
        'LEDGER_TOMBSTONE_INVALID',
        `${this.dir}: records were removed by retention but no usable checkpoint or tombstone describes where the remaining ones start`,
      );
    }
    await walkChain(source.items({ skip, ...(from ? { from } : {}) }), state, { tornAdvice: repairAdvice(this.dir) });
    this.state = state;
    this.lastCheckpointSize = checkpoints.length > 0 ? Math.max(...checkpoints.map((c) => c.checkpoint.tree_size)) : -1;
    this.lastCheckpointAt = Date.now();
    const last = segments.filter((s) => !skip.has(s)).pop();
    if (last !== undefined) this.segment = { name: last, size: fileSize(segmentPath(this.dir, last)), handle: undefined };

    // Records after the newest checkpoint this writer's key signed were not signed when written: a
    // crash (SIGKILL, power loss) leaves a few, and so would lines someone appended while the
    // application was stopped. Signing over them silently would vouch for them. So before anything
    // new, a record in the chain (it cannot be removed later without breaking it) names the range,
    // and verify reports it as recovered.
    const unsigned = unsignedRange(state.range.size, vouchedSize(checkpoints, this.key ? createPublicKey(this.key) : undefined), this.clock());
    if (unsigned) {
      this.notices.push(`${unsigned.range} ${unsigned.one ? 'was' : 'were'} found after the newest signed checkpoint (size ${unsigned.record.metadata!.from_seq}): a crash, or lines added while no writer ran; marked as recovered at seq ${state.range.size}`);
      await this.append([unsigned.record]);
      await this.checkpoint();
    }
    await this.publisher.resume(
      (await source.checkpoints()).map((c) => c.checkpoint),
      await source.signedNotes(),
      (note) => appendFileNote(this.dir, note, { sync: this.fsync !== 'none' }),
    );
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(task);
  }

  private usable(): void {
    if (this.closed) throw new LedgerError('LEDGER_CLOSED', `the ledger ${this.dir} is closed`);
    if (this.failure) throw this.failure;
  }

  /**
   * Appends records durably (per the fsync policy) and resolves with their sequence numbers. On
   * failure nothing of the batch stays in the segment: the file is truncated back, and if even that
   * fails the ledger refuses further appends (LEDGER_IO) rather than risk a half-written record.
   */
  append(records: readonly AppendInput[]): Promise<AppendResult> {
    return afterPreparing(() => records.map(serialized), (batch) => this.group.add(batch));
  }

  /** Records handed to append() that are not durable yet (the group being written and the next one). */
  get backlog(): number {
    return this.group.backlog;
  }

  private readonly group = new GroupCommit<SerializedRecord, AppendResult>(
    (batches) => this.appendNow(batches),
    (task) => this.enqueue(task),
  );

  /** One write (and, with fsync `always`, one fdatasync) for every batch of a group commit. */
  private async appendNow(batches: readonly (readonly SerializedRecord[])[]): Promise<AppendResult[]> {
    this.usable();
    const chained = chainBatches(this.state, batches);
    const results: AppendResult[] = chained.ranges;
    const text = chained.lines.map((line) => line + '\n').join('');
    if (text === '') return results;
    const segment = await this.currentSegment();
    const buffer = Buffer.from(text, 'utf8');
    const path = segmentPath(this.dir, segment.name);
    try {
      await writeAll(segment.handle!, buffer);
      if (this.fsync === 'always') await segment.handle!.datasync();
    } catch (error) {
      await this.rollback(segment.handle!, segment.size, path);
      throw fsError(error, 'cannot append to the ledger', path);
    }
    segment.size += buffer.length;
    this.state = chained.state;
    if (this.fsync === 'batch') this.scheduleSync();
    else if (this.fsync === 'none') this.dirty = true;
    if (checkpointDue(this.rule, this.state.range.size, { size: this.lastCheckpointSize, ageMs: Date.now() - this.lastCheckpointAt })) {
      try {
        await this.checkpointNow();
      } catch (error) {
        this.onWarning(`could not write a checkpoint: ${(error as Error).message}`);
      }
    }
    return results;
  }

  private async rollback(handle: WritableFile, size: number, path: string): Promise<void> {
    try {
      await handle.truncate(size);
    } catch (error) {
      this.failure = new LedgerError(
        'LEDGER_IO',
        `the ledger stopped accepting records: a failed write to ${path} could not be rolled back (${(error as Error).message}). Run \`llm-audit verify --ledger ${this.dir}\` and \`llm-audit repair\` once the disk is fixed`,
        { cause: error },
      );
    }
  }

  private async currentSegment(): Promise<{ name: string; size: number; handle: WritableFile | undefined }> {
    const name = segmentName(utcDay(this.clock()));
    // Segments only move forward: if the clock goes back, appending continues in the newest one.
    if (this.segment === undefined || name > this.segment.name) {
      if (this.segment?.handle) {
        if (this.fsync !== 'none') await this.segment.handle.datasync();
        await this.segment.handle.close();
      }
      const path = segmentPath(this.dir, name);
      const handle = await this.openForAppend(path);
      this.segment = { name, size: (await handle.stat()).size, handle };
      if (this.fsync !== 'none') syncDirSync(join(this.dir, SEGMENTS_DIR));
    } else if (this.segment.handle === undefined) {
      this.segment.handle = await this.openForAppend(segmentPath(this.dir, this.segment.name));
      this.segment.size = (await this.segment.handle.stat()).size;
    }
    return this.segment;
  }

  private async openForAppend(path: string): Promise<WritableFile> {
    try {
      return await this.opener(path, 'a', FILE_MODE);
    } catch (error) {
      throw fsError(error, 'cannot open for appending', path);
    }
  }

  private scheduleSync(): void {
    this.dirty = true;
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.enqueue(() => this.syncNow()).catch((error) => this.onWarning(`fsync failed: ${(error as Error).message}`));
    }, this.batchSyncMs);
    this.syncTimer.unref?.();
  }

  private async syncNow(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    if (this.segment?.handle) {
      try {
        await this.segment.handle.datasync();
      } catch (error) {
        throw fsError(error, 'cannot fsync', segmentPath(this.dir, this.segment.name));
      }
    }
  }

  /** Flushes to disk whatever the fsync policy left in the OS cache. */
  sync(): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      this.dirty = true;
      await this.syncNow();
    });
  }

  /** Writes a checkpoint now (when records were added since the last one); resolves with it. */
  checkpoint(): Promise<Checkpoint | undefined> {
    return this.enqueue(async () => {
      this.usable();
      return this.checkpointNow();
    });
  }

  private async checkpointNow(): Promise<Checkpoint | undefined> {
    const size = this.state.range.size;
    this.lastCheckpointAt = Date.now();
    if (size === this.lastCheckpointSize) return undefined;
    // The records a checkpoint covers reach the disk before the checkpoint does.
    if (this.fsync !== 'none' && this.segment?.handle) await this.segment.handle.datasync();
    this.dirty = false;
    const position = this.segment ? { segment: this.segment.name, offset: this.segment.size } : null;
    const checkpoint = buildCheckpoint(this.ledgerId, this.state, position, this.clock(), this.key);
    await this.appendCheckpointLine(canonicalJson(checkpoint));
    this.lastCheckpointSize = size;
    await this.publishNote(checkpoint);
    return checkpoint;
  }

  /**
   * The checkpoint as a C2SP note beside it, then to the witnesses (transparency.ts). Not fsynced:
   * the note follows from the checkpoint (Ed25519 is deterministic) and the writer's start writes
   * the newest one again when a crash lost it, so a second fsync per group commit buys nothing.
   */
  private async publishNote(checkpoint: Checkpoint): Promise<void> {
    const note = this.publisher.note(checkpoint);
    if (!note) return;
    await appendFileNote(this.dir, note, { sync: false });
    this.publisher.offer(note);
  }

  private async appendCheckpointLine(line: string): Promise<void> {
    const path = join(this.dir, CHECKPOINTS_FILE);
    if (!this.checkpointsHandle) this.checkpointsHandle = await this.openForAppend(path);
    const handle = this.checkpointsHandle;
    const size = (await handle.stat()).size;
    try {
      await writeAll(handle, Buffer.from(line + '\n', 'utf8'));
      if (this.fsync !== 'none') await handle.datasync();
    } catch (error) {
      await this.rollback(handle, size, path);
      throw fsError(error, 'cannot write a checkpoint to', path);
    }
  }

  /** Final checkpoint, fsync, close files, release the lock. Safe to call twice. */
  close(): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      if (this.syncTimer) clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      let firstError: unknown;
      if (!this.failure) {
        try {
          await this.checkpointNow();
        } catch (error) {
          firstError = error;
        }
      }
      for (const handle of [this.segment?.handle, this.checkpointsHandle]) {
        if (!handle) continue;
        try {
          if (this.fsync !== 'none' && !this.failure) await handle.datasync();
          await handle.close();
        } catch (error) {
          firstError ??= error;
        }
      }
      if (this.segment) this.segment.handle = undefined;
      this.checkpointsHandle = undefined;
      this.closed = true;
      // Before the lock goes: a cosignature arriving now is stored by this writer.
      await this.publisher.close();
      this.lock?.release();
      this.lock = undefined;
      if (firstError) throw fsError(firstError, 'cannot close the ledger', this.dir);
    });
  }
}

async function writeAll(handle: WritableFile, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset, null);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    offset += bytesWritten;
  }
}
