/**
 * `llm-audit repair`: the only tool that changes existing ledger bytes, and only torn tails.
 *
 * A torn tail is what an interrupted append leaves: bytes after the last newline of a segment or of
 * checkpoints.jsonl. The writer resolves an append only after the whole line (newline included)
 * was written, so these bytes were never acknowledged. Repair moves them, unchanged, to
 * quarantine/<file>.<time>.torn, truncates the file at its last newline, and appends what it did
 * (file, offset, byte count, SHA-256 of the bytes, quarantine file) to repairs.jsonl, which
 * `verify` shows. Anything else (a bad line in the middle, a broken chain) is evidence, and repair
 * refuses to touch it.
 *
 * One more thing it restores: a deleted ledger.json, recreated with the ledger id every checkpoint
 * carries (only when they all name the same one), also recorded in repairs.jsonl.
 *
 * And it writes the segment summaries that are missing or stale (repairSummaries): derived files,
 * not evidence, so not recorded in repairs.jsonl.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LedgerError, fsError } from '../errors';
import { FileLedgerSource, readMeta, writeMeta } from './ledger';
import { syncDirSync } from '../../util/durable-file';
import { CHECKPOINTS_FILE, DIR_MODE, FILE_MODE, LEDGER_FILE, QUARANTINE_DIR, REPAIRS_FILE, appendJsonLineSync, segmentLabel, segmentPath } from './layout';
import { acquireLock } from './lock';
import { removedSegments } from '../chain';
import { SUMMARY_VERSION, SegmentSummary, summarizeSegmentFile, writeSummary } from './summary';

export interface TornTailRepair {
  at: string;
  file: string;
  offset: number;
  bytes: number;
  sha256: string;
  quarantine: string;
}

/** ledger.json recreated from the checkpoints. */
export interface MetadataRepair {
  at: string;
  file: typeof LEDGER_FILE;
  ledger_id: string;
  restored_from: typeof CHECKPOINTS_FILE;
}

export type RepairAction = TornTailRepair | MetadataRepair;

export async function repairLedger(dir: string, options: { now?: Date } = {}): Promise<RepairAction[]> {
  const source = new FileLedgerSource(dir);
  source.assertLedger();
  const lock = acquireLock(dir, 'repair');
  try {
    const targets: Array<{ label: string; path: string }> = [{ label: CHECKPOINTS_FILE, path: join(dir, CHECKPOINTS_FILE) }];
    for (const name of await source.segments()) targets.push({ label: segmentLabel(name), path: segmentPath(dir, name) });
    const actions: RepairAction[] = [];
    for (const target of targets) {
      const action = repairFile(dir, target.label, target.path, options.now ?? new Date());
      if (action) actions.push(action);
    }
    const restored = await restoreMeta(dir, source, options.now ?? new Date());
    if (restored) actions.push(restored);
    return actions;
  } finally {
    lock.release();
  }
}

/**
 * Writes the summary of every segment that has none describing it as it is (a ledger written
 * before summaries existed, a writer killed mid-segment), under the writer's lock, so no writer
 * appends meanwhile. A segment that cannot be summarised (a torn tail, a damaged line) is left
 * without one: `verify` names the problem. Returns the segments summarised.
 */
export async function repairSummaries(dir: string): Promise<string[]> {
  const source = new FileLedgerSource(dir);
  source.assertLedger();
  const lock = acquireLock(dir, 'repair');
  try {
    const removed = removedSegments(await source.checkpoints());
    const written: string[] = [];
    for (const name of await source.segments()) {
      // A summary of an older version is rewritten too (version 2 adds the call cells).
      const stored = SegmentSummary.load(dir, name);
      if (removed.has(name) || (stored?.header.v === SUMMARY_VERSION && stored.describes(dir, name))) continue;
      let builder;
      try {
        builder = await summarizeSegmentFile(dir, name);
      } catch {
        continue;
      }
      writeSummary(dir, builder, true);
      written.push(name);
    }
    return written;
  } finally {
    lock.release();
  }
}

async function restoreMeta(dir: string, source: FileLedgerSource, now: Date): Promise<MetadataRepair | undefined> {
  if (readMeta(dir)) return undefined;
  const checkpoints = await source.checkpoints();
  if (checkpoints.length === 0) return undefined; // the next writer starts a new identity; nothing is bound to one yet
  const ids = new Set(checkpoints.map((c) => c.checkpoint.ledger_id));
  if (ids.size > 1) {
    throw new LedgerError('LEDGER_CHECKPOINT_MISMATCH', `${LEDGER_FILE} is missing and ${CHECKPOINTS_FILE} names several ledgers (${[...ids].join(', ')}): restore ${LEDGER_FILE} from a backup`);
  }
  const ledgerId = [...ids][0]!;
  writeMeta(dir, { v: 1, ledger_id: ledgerId, created: checkpoints[0]!.checkpoint.timestamp, restored: now.toISOString() }, 'always');
  const action: MetadataRepair = { at: now.toISOString(), file: LEDGER_FILE, ledger_id: ledgerId, restored_from: CHECKPOINTS_FILE };
  logRepair(dir, action);
  return action;
}

function logRepair(dir: string, action: RepairAction): void {
  appendJsonLineSync(join(dir, REPAIRS_FILE), action, 'cannot record the repair in');
}

function repairFile(dir: string, label: string, path: string, now: Date): TornTailRepair | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(error, 'cannot open for repair', path);
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return undefined;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    // Find the last newline, reading backwards.
    let end = size;
    let tornStart = 0;
    search: while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      for (let i = n - 1; i >= 0; i--) {
        if (chunk[i] === 0x0a) {
          tornStart = start + i + 1;
          break search;
        }
      }
      end = start;
    }
    if (tornStart === size) return undefined;
    const torn = Buffer.allocUnsafe(size - tornStart);
    readSync(fd, torn, 0, torn.length, tornStart);
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const quarantineDir = join(dir, QUARANTINE_DIR);
    mkdirSync(quarantineDir, { recursive: true, mode: DIR_MODE });
    const quarantineName = `${basename(path)}.${stamp}.torn`;
    const qfd = openSync(join(quarantineDir, quarantineName), 'wx', FILE_MODE);
    try {
      writeSync(qfd, torn);
      fsyncSync(qfd);
    } finally {
      closeSync(qfd);
    }
    syncDirSync(quarantineDir);
    ftruncateSync(fd, tornStart);
    fsyncSync(fd);
    const action: TornTailRepair = {
      at: now.toISOString(),
      file: label,
      offset: tornStart,
      bytes: torn.length,
      sha256: createHash('sha256').update(torn).digest('hex'),
      quarantine: `${QUARANTINE_DIR}/${quarantineName}`,
    };
    logRepair(dir, action);
    return action;
  } catch (error) {
    throw fsError(error, 'cannot repair', path);
  } finally {
    closeSync(fd);
  }
}

