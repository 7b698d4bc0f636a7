/**
 * The owner record of a lock file (`{pid, host, at}` written by the process that created it with
 * O_EXCL), shared by the ledger's writer lock and the content keystore's lock.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';

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
  return ownerOf<T>(text);
}

/** A lock file as one process saw it: its owner and an identity (inode, mtime, content) that a replacement does not share. */
export interface SeenLock<T extends LockOwner> {
  owner: T | 'empty' | 'garbage';
  /** Age of the file (ms since its last change). */
  ageMs: number;
  identity: string;
}

/** Reads the lock at `path` through one descriptor (content and identity of the same file), or `gone`. */
export function readLock<T extends LockOwner>(path: string, fail: (error: unknown) => Error): SeenLock<T> | 'gone' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw fail(error);
  }
  try {
    const stat = fstatSync(fd);
    const buffer = Buffer.alloc(Math.min(stat.size, 64 * 1024));
    const text = buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString('utf8');
    return { owner: ownerOf<T>(text), ageMs: Date.now() - stat.mtimeMs, identity: `${stat.ino}:${stat.mtimeMs}:${text}` };
  } catch (error) {
    throw fail(error);
  } finally {
    closeSync(fd);
  }
}

function ownerOf<T extends LockOwner>(text: string): T | 'empty' | 'garbage' {
  if (text.trim() === '') return 'empty';
  try {
    const owner = JSON.parse(text) as T;
    if (Number.isSafeInteger(owner.pid) && typeof owner.host === 'string') return owner;
  } catch {
    // not JSON: garbage
  }
  return 'garbage';
}

/** Whether the owner of a lock (or of a takeover guard) seen as `seen` is gone, judged from this host. */
export function ownerGone(seen: SeenLock<LockOwner>, me: LockOwner): boolean {
  const owner = seen.owner;
  // Empty: its owner may be between create and write. Garbage is never written by a live owner.
  if (owner === 'garbage') return true;
  if (owner === 'empty') return seen.ageMs > EMPTY_LOCK_GRACE_MS;
  return owner.host === me.host && owner.pid !== me.pid && !pidAlive(owner.pid);
}

/** How deep takeovers of takeovers go (each level needs a process to die inside the one below). */
const MAX_TAKEOVER_DEPTH = 8;

/**
 * Removes the lock at `path` that was judged stale as `seen`, such that of several processes that
 * judged the same lock stale, exactly one removes it. An unlink followed by a create is not atomic
 * as a pair: without this, a slower contender unlinked the lock a faster one had just created in its
 * place, and both held it. The removal is guarded by a file created with O_EXCL whose name is
 * derived from the stale lock's identity, so only one process can hold it for that lock; holding
 * it, the process checks that the lock is still the one it judged (not a live replacement) before
 * unlinking it. A guard whose own holder died (inside those microseconds) is taken over the same
 * way, one level down, by a guard named after both.
 *
 * Returns `removed` (the caller now creates its own lock with O_EXCL, which a fresh contender may
 * still win: ordinary contention), `changed` (the lock is not the one judged any more: look again),
 * or `busy` (a live process is taking it over right now).
 */
export function removeStaleLock(path: string, seen: SeenLock<LockOwner>, me: LockOwner, fail: (error: unknown) => Error): 'removed' | 'changed' | 'busy' {
  const chain: string[] = [seen.identity];
  const guards: Array<{ path: string; identity: string }> = [];
  for (let depth = 0; depth < MAX_TAKEOVER_DEPTH; depth++) {
    const guard = `${path}.takeover-${createHash('sha256').update(chain.join('\0')).digest('hex').slice(0, 16)}`;
    let fd: number;
    try {
      fd = openSync(guard, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(error);
      const holder = readLock<LockOwner>(guard, fail);
      if (holder === 'gone') return 'changed';
      if (!ownerGone(holder, me)) return 'busy';
      chain.push(holder.identity);
      guards.push({ path: guard, identity: holder.identity });
      continue;
    }
    try {
      try {
        writeSync(fd, JSON.stringify(me) + '\n');
      } finally {
        closeSync(fd);
      }
      const now = readLock<LockOwner>(path, fail);
      if (now === 'gone' || now.identity !== seen.identity) return 'changed';
      unlinkQuietly(path);
      // Holding this guard, no one else can hold the dead ones below it: they are ours to remove.
      for (const dead of guards) {
        const still = readLock<LockOwner>(dead.path, fail);
        if (still !== 'gone' && still.identity === dead.identity) unlinkQuietly(dead.path);
      }
      return 'removed';
    } finally {
      unlinkQuietly(guard);
    }
  }
  return 'busy';
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
