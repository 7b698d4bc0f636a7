/**
 * The ledger's last resort for `process.exit()`: an application that ends itself right after a
 * call leaves that call's append in flight, and exit runs nothing asynchronous. On the synchronous
 * `exit` event the exporter writes the records it has not appended yet to `pending/` in the ledger
 * directory (one JSON record per line, written under a temporary name, fsync'd, renamed); the next
 * process that opens the ledger for writing appends those that did not make it, then deletes the
 * file. A record whose append had in fact completed is recognised by its span (trace id + span id)
 * in the segments from its day on, and is not appended twice.
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { syncDirSync, writeFileAtomicSync } from '../util/durable-file';
import { FileLedgerSource, type FileLedger } from './file-ledger';
import { DIR_MODE, FILE_MODE, PENDING_DIR } from './layout';
import { scanRecords } from './query';
import { spanKey, withoutDuplicates, type LedgerRecord } from './record';

const JOURNAL = /^\d+-\d+\.jsonl$/;

/** Writes `records` to a new journal file, synchronously and durably. */
export function writePendingJournal(dir: string, records: readonly LedgerRecord[]): string {
  const pending = join(dir, PENDING_DIR);
  mkdirSync(pending, { recursive: true, mode: DIR_MODE });
  const name = `${process.pid}-${Date.now()}.jsonl`;
  writeFileAtomicSync(pending, name, records.map((record) => JSON.stringify(record)).join('\n') + '\n', FILE_MODE);
  return join(pending, name);
}

/**
 * Appends what earlier processes left in `pending/` and is not in the ledger yet; deletes each
 * journal once its records are appended. Returns how many records were appended and how many were
 * there already.
 */
export async function appendPendingJournals(ledger: FileLedger, dir: string): Promise<{ appended: number; present: number }> {
  const pending = join(dir, PENDING_DIR);
  let names: string[];
  try {
    names = readdirSync(pending).filter((name) => JOURNAL.test(name)).sort();
  } catch {
    return { appended: 0, present: 0 };
  }
  if (names.length === 0) return { appended: 0, present: 0 };
  const records = names.flatMap((name) => parseJournal(join(pending, name)));
  // A record is appended on or after the day its span started, so earlier segments need no look.
  const from = records.reduce((min, record) => Math.min(min, Date.parse(record.timestamp) || Infinity), Infinity);
  const stored = new Set<string>();
  for await (const hit of scanRecords(new FileLedgerSource(dir), Number.isFinite(from) ? { from } : {})) stored.add(spanKey(hit.record));
  const fresh = withoutDuplicates(records, (key) => stored.has(key));
  if (fresh.length > 0) await ledger.append(fresh);
  await ledger.sync();
  for (const name of names) unlinkSync(join(pending, name));
  syncDirSync(pending);
  return { appended: fresh.length, present: records.length - fresh.length };
}

function parseJournal(path: string): LedgerRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LedgerRecord);
}
