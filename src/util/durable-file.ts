/**
 * Synchronous durable-file primitives shared by the ledger, the content keystore and the OTLP
 * spool: what a crash or power loss must not undo is written through these.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * fsync of a directory, so that an entry created, renamed or removed in it survives a power loss.
 * Best effort: some platforms and file systems refuse it; the files themselves are synced.
 */
export function syncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows and some file systems cannot fsync a directory.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `bytes` as `dir/name` so that the name only ever designates the whole, durable file:
 * `.tmp-<name>` created exclusively, written, fsync'd, renamed, then the directory fsync'd. A crash
 * leaves either the whole file or a temporary one that readers ignore.
 */
export function writeFileAtomicSync(dir: string, name: string, bytes: Buffer | string, mode = 0o600): void {
  const temp = join(dir, `.tmp-${name}`);
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const fd = openSync(temp, 'wx', mode);
  try {
    for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw error;
  }
  closeSync(fd);
  renameSync(temp, join(dir, name));
  syncDirSync(dir);
}
