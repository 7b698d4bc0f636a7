/**
 * The file backend's store of C2SP checkpoint notes: `checkpoint-notes.jsonl` beside
 * `checkpoints.jsonl`, one canonical JSON line per note, `{"note":..}` for the log's own note of a
 * checkpoint and `{"note":..,"witness":<name>}` for a copy a witness cosigned (appended when its
 * answer arrives). Readers merge the signature lines of every copy of a tree head (note.ts).
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../audit/canonical-json';
import { LedgerError, fsError } from '../errors';
import { FILE_MODE } from './layout';

export const NOTES_FILE = 'checkpoint-notes.jsonl';

export interface StoredNote {
  text: string;
  where: string;
  /** Set on a witness's cosigned copy. */
  witness?: string;
}

/** Every stored note of the file ledger in `dir`, in write order (none when the file does not exist). */
export function readFileNotes(dir: string): StoredNote[] {
  const path = join(dir, NOTES_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fsError(error, 'cannot read the checkpoint notes', path);
  }
  const lines = text.split('\n');
  // A last line without its newline is an append a crash interrupted: the note of a checkpoint can
  // be signed again (writers do so at startup), and a cosignature asked for again.
  lines.pop();
  const out: StoredNote[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${NOTES_FILE}:${i + 1}`;
    let value: { note?: unknown; witness?: unknown };
    try {
      value = JSON.parse(line) as typeof value;
    } catch {
      throw new LedgerError('LEDGER_NOTE_INVALID', `${where}: not valid JSON (the file was altered or corrupted)`);
    }
    if (typeof value.note !== 'string') throw new LedgerError('LEDGER_NOTE_INVALID', `${where}: no "note" string`);
    out.push({ text: value.note, where, ...(typeof value.witness === 'string' ? { witness: value.witness } : {}) });
  });
  return out;
}

/**
 * Appends one note line. A torn last line (an append a crash interrupted) is cut off first: it is
 * a note that can be made again, and left in place it would turn into a malformed line.
 */
export async function appendFileNote(dir: string, note: string, options: { witness?: string; sync: boolean }): Promise<void> {
  const path = join(dir, NOTES_FILE);
  const line = canonicalJson({ note, ...(options.witness ? { witness: options.witness } : {}) }) + '\n';
  let handle;
  try {
    handle = await open(path, 'a+', FILE_MODE);
    const { size } = await handle.stat();
    if (size > 0) {
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      await handle.read(tail, 0, tail.length, size - tail.length);
      if (tail[tail.length - 1] !== 0x0a) await handle.truncate(size - tail.length + tail.lastIndexOf(0x0a) + 1);
    }
    await handle.appendFile(line, 'utf8');
    if (options.sync) await handle.datasync();
  } catch (error) {
    throw fsError(error, 'cannot write a checkpoint note to', path);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
