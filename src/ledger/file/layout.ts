/**
 * On-disk layout of the embedded file ledger, and streaming line reading.
 *
 *   DIR/                       0700
 *     ledger.json              {"created":..,"ledger_id":..,"v":1}
 *     ledger.lock              {"host":..,"pid":..,"started":..} while a writer holds the ledger
 *     segments/YYYY-MM-DD.jsonl   one entry per line, a new file per UTC day of appending (0600)
 *     summaries/YYYY-MM-DD.jsonl  that segment's summary, written when it closes (summary.ts)
 *     checkpoints.jsonl        checkpoints and retention tombstones, one per line (0600)
 *     quarantine/              torn tails moved aside by `llm-audit repair`
 *     repairs.jsonl            what repair did, one line per action
 *     pending/<pid>-<threadId>-<ms>-<hex>.jsonl   a writer's authenticated journal (pending-journal.ts)
 *     pending/rejected/        journals that failed authentication
 */
import { closeSync, createReadStream, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../../audit/canonical-json';
import type { ItemLocation, LedgerItem } from '../backend';
import { leafHashInPlace } from '../merkle';
import { fsError } from '../errors';

export const LEDGER_FILE = 'ledger.json';
export const LOCK_FILE = 'ledger.lock';
export const SEGMENTS_DIR = 'segments';
export const SUMMARIES_DIR = 'summaries';
export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
export const QUARANTINE_DIR = 'quarantine';
export const REPAIRS_FILE = 'repairs.jsonl';
/** Records a process could not append before `process.exit()`, for the next writer (pending-journal.ts). */
export const PENDING_DIR = 'pending';
/** Under PENDING_DIR: journals that failed authentication, moved aside (never appended). */
export const REJECTED_DIR = 'rejected';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export const SEGMENT_NAME = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;

/** Appends `value` as one canonical JSON line to `path` and fsyncs it (a tombstone, a repair record). */
export function appendJsonLineSync(path: string, value: unknown, what: string): void {
  try {
    const fd = openSync(path, 'a', FILE_MODE);
    try {
      writeSync(fd, canonicalJson(value) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw fsError(error, what, path);
  }
}

export function segmentName(day: string): string {
  return `${day}.jsonl`;
}

export function segmentDay(name: string): string | undefined {
  return SEGMENT_NAME.exec(name)?.[1];
}

/** UTC day (YYYY-MM-DD) of a date. */
export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function segmentPath(dir: string, name: string): string {
  return join(dir, SEGMENTS_DIR, name);
}

/** `segments/2026-11-22.jsonl`: how messages name a segment. */
export function segmentLabel(name: string): string {
  return `${SEGMENTS_DIR}/${name}`;
}

const NEWLINE = 0x0a;

/**
 * Streams the lines of `path` from byte `offset`: each complete line (without its newline) as an
 * entry item, and bytes after the last newline as a torn item. Memory: one read buffer plus the
 * longest line.
 */
export async function* readLines(
  path: string,
  label: string,
  offset = 0,
  firstLine = 1,
  leaves = false,
  highWaterMark = 1 << 20,
): AsyncGenerator<LedgerItem> {
  let stream;
  try {
    stream = createReadStream(path, { start: offset, highWaterMark });
  } catch (error) {
    throw fsError(error, 'cannot read', path);
  }
  let carry: Buffer | undefined;
  let position = offset;
  let line = firstLine;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let data = chunk;
      if (carry !== undefined) {
        data = Buffer.concat([carry, chunk]);
        carry = undefined;
      }
      let start = 0;
      for (;;) {
        const nl = data.indexOf(NEWLINE, start);
        if (nl === -1) break;
        const location: ItemLocation = { file: label, line, offset: position };
        const raw = data.toString('utf8', start, nl);
        // Hashed from the bytes on disk (after decoding: the hash overwrites the newline before them).
        yield leaves ? { kind: 'entry', raw, location, leaf: leafHashInPlace(data, start, nl) } : { kind: 'entry', raw, location };
        position += nl - start + 1;
        line++;
        start = nl + 1;
      }
      if (start < data.length) carry = data.subarray(start);
    }
  } catch (error) {
    throw fsError(error, 'cannot read', path);
  }
  if (carry !== undefined && carry.length > 0) {
    yield { kind: 'torn', bytes: carry.length, location: { file: label, line, offset: position } };
  }
}
