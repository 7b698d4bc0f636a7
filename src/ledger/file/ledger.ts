/**
 * The embedded file ledger (the default store): JSON Lines segments, one per UTC day, each line a
 * Merkle leaf chained to the previous one, plus signed checkpoints. See layout.ts for the files
 * and docs/ledger.md for the format and the guarantees.
 *
 * {@link FileLedgerSource} (source.ts) reads: no lock, never creates anything. {@link FileLedger}
 * is the one writer: exclusive lock, durable appends, checkpoints, and each segment's summary
 * (summary.ts), written when the segment closes.
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { canonicalJson } from '../../audit/canonical-json';
import { syncDirSync } from '../../util/durable-file';
import { GroupCommit } from '../../util/group-commit';
import { initialChainState, latestTombstone, removedSegments, walkChain, type ChainState } from '../chain';
import { loadPrivateKey, vouchedSize, type Checkpoint } from '../checkpoint';
import { LedgerError, fsError } from '../errors';
import { CHECKPOINTS_FILE, DIR_MODE, FILE_MODE, LEDGER_FILE, SEGMENTS_DIR, segmentName, segmentPath, utcDay } from './layout';
import { acquireLock, type LedgerLock } from './lock';
import { type Hash } from '../merkle';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS, SerialQueue, buildCheckpoint, chainBatches, checkpointDue, afterPreparing, resumePoint, serialized, unsignedRange, type AppendInput, type CheckpointRule, type SeqRange, type SerializedRecord } from '../protocol';
import { appendFileNote } from './note-store';
import { CheckpointPublisher } from '../transparency';
import type { WriterOptions } from '../writer';
import { FileLedgerSource, exists, fileSize, repairAdvice, type LedgerMeta } from './source';
import { SUMMARY_VERSION, SegmentSummary, SummaryBuilder, summarizeSegmentFile, writeSummary } from './summary';

// The reading side, under the names it always had here.
export { FileLedgerSource, readMeta, repairAdvice, type LedgerMeta } from './source';

export type FsyncPolicy = 'always' | 'batch' | 'none';
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'batch', 'none'];

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
  /**
   * The current segment's summary (summary.ts), kept up to date with every append and written when
   * the segment closes (rollover, close). Undefined when it could not be built (a damaged segment):
   * that segment then has none, and readers read it whole.
   */
  private summary: { builder: SummaryBuilder; unwritten: boolean } | undefined;
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
    // The chain goes on from the bytes on disk (ItemsOptions.leaves), as verify reads them.
    await walkChain(source.items({ skip, leaves: true, ...(from ? { from } : {}) }), state, { tornAdvice: repairAdvice(this.dir) });
    this.state = state;
    this.lastCheckpointSize = checkpoints.length > 0 ? Math.max(...checkpoints.map((c) => c.checkpoint.tree_size)) : -1;
    this.lastCheckpointAt = Date.now();
    const last = segments.filter((s) => !skip.has(s)).pop();
    if (last !== undefined) {
      this.segment = { name: last, size: fileSize(segmentPath(this.dir, last)), handle: undefined };
      await this.resumeSummary(last);
    }

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

  /**
   * The newest segment's summary so far: the stored one when it still describes the file (the
   * previous writer closed it), else built by reading the segment (a writer killed mid-segment, or
   * a ledger from before summaries: one pass over one day's file).
   */
  private async resumeSummary(name: string): Promise<void> {
    const stored = SegmentSummary.load(this.dir, name);
    // An older version's summary (no cells) is rebuilt: continuing it would leave the segment without cells.
    if (stored?.header.v === SUMMARY_VERSION && stored.describes(this.dir, name)) {
      this.summary = { builder: SummaryBuilder.from(stored), unwritten: false };
      return;
    }
    try {
      this.summary = { builder: await summarizeSegmentFile(this.dir, name), unwritten: true };
    } catch (error) {
      this.summary = undefined;
      this.onWarning(`no summary for ${name}: ${(error as Error).message}; queries read it whole`);
    }
  }

  /** Writes the current segment's summary if it has lines it does not cover yet; a failure is a warning (the summary only speeds reads up). */
  private storeSummary(): void {
    const s = this.summary;
    if (!s?.unwritten) return;
    try {
      writeSummary(this.dir, s.builder, this.fsync !== 'none');
      s.unwritten = false;
    } catch (error) {
      this.onWarning(`could not write the summary of ${s.builder.segment}: ${(error as Error).message}; queries read it whole`);
    }
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
    if (this.summary?.builder.segment === segment.name) {
      const builder = this.summary.builder;
      const firstSeq = chained.state.range.size - chained.lines.length;
      let i = 0;
      for (const { record } of batches.flat()) {
        builder.add(Buffer.byteLength(chained.lines[i]!) + 1, firstSeq + i, chained.leaves[i]!, record);
        i++;
      }
      this.summary.unwritten = true;
    }
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
      // The day's segment is closed: its summary is final.
      this.storeSummary();
      const path = segmentPath(this.dir, name);
      const handle = await this.openForAppend(path);
      this.segment = { name, size: (await handle.stat()).size, handle };
      this.summary = { builder: new SummaryBuilder(name), unwritten: true };
      if (this.segment.size > 0) await this.resumeSummary(name);
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
        this.storeSummary();
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
