/**
 * The owner record of a lock file (`{pid, host, at}` written by the process that created it with
 * O_EXCL), shared by the ledger's writer lock and the content keystore's lock.
 */
import { readFileSync } from 'node:fs';

/** What every lock file records: who holds it. Each lock adds its own fields (when it was taken). */
export interface LockOwner {
  pid: number;
  host: string;
}

/** How long a lock file may stay empty (its owner between create and write) before it counts as stale. */
export const EMPTY_LOCK_GRACE_MS = 5_000;

/** Whether a process with this pid runs on this host (EPERM: it does, under another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The lock's owner, or what stands in its place: `gone` (no lock file), `empty` (created, not yet
 * written), `garbage` (unreadable content). Other read errors go through `fail`.
 */
export function readLockOwner<T extends LockOwner>(path: string, fail: (error: unknown) => Error): T | 'empty' | 'garbage' | 'gone' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw fail(error);
  }
  if (text.trim() === '') return 'empty';
  try {
    const owner = JSON.parse(text) as T;
    if (Number.isSafeInteger(owner.pid) && typeof owner.host === 'string') return owner;
  } catch {
    // not JSON: garbage
  }
  return 'garbage';
}
