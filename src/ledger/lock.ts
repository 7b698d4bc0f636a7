/**
 * One writer per ledger: an exclusive lock file (`O_CREAT | O_EXCL`) holding the owner's pid,
 * host and start time. A lock whose pid is dead on this host is stale and is taken over (the
 * takeover is reported); a live owner, or an owner on another host (whose liveness cannot be
 * checked), is refused with LEDGER_LOCKED.
 *
 * Known limit: two processes taking over the same stale lock at the same instant can both win
 * (unlink + create is not atomic as a pair). Stale locks only exist after a crash, and both
 * contenders would then be fresh starts racing within microseconds; documented in docs/ledger.md.
 */
import { closeSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { EMPTY_LOCK_GRACE_MS, pidAlive, readLockOwner, type LockOwner as SharedLockOwner } from '../util/lock-owner';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LedgerError, fsError } from './errors';
import { FILE_MODE, LOCK_FILE } from './layout';

export interface LockOwner extends SharedLockOwner {
  started: string;
}

export interface LedgerLock {
  readonly path: string;
  /** Set when a stale lock of a dead process was taken over. */
  readonly tookOverFrom: LockOwner | undefined;
  release(): void;
}

export function acquireLock(dir: string, what = 'write to'): LedgerLock {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  let tookOverFrom: LockOwner | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx', FILE_MODE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(error, `cannot lock the ledger to ${what} it`, path);
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, JSON.stringify(me) + '\n');
      } catch (error) {
        closeSync(fd);
        try {
          unlinkSync(path);
        } catch {
          // nothing more to do
        }
        throw fsError(error, 'cannot write the ledger lock', path);
      }
      closeSync(fd);
      return {
        path,
        tookOverFrom,
        release: () => {
          const owner = readLockOwner<LockOwner>(path, (error) => fsError(error, 'cannot read the ledger lock', path));
          if (typeof owner === 'object' && owner.pid === me.pid && owner.host === me.host && owner.started === me.started) {
            try {
              unlinkSync(path);
            } catch {
              // already gone
            }
          }
        },
      };
    }
    const owner = readLockOwner<LockOwner>(path, (error) => fsError(error, 'cannot read the ledger lock', path));
    if (owner === 'gone') continue;
    if (owner === 'empty' || owner === 'garbage') {
      let age = 0;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue;
      }
      if (owner === 'empty' && age < EMPTY_LOCK_GRACE_MS) {
        throw new LedgerError('LEDGER_LOCKED', `${dir} is being locked by another process right now; try again`);
      }
      unlinkStale(path);
      continue;
    }
    const local = owner.host === me.host;
    if (local && owner.pid !== process.pid && !pidAlive(owner.pid)) {
      tookOverFrom = owner;
      unlinkStale(path);
      continue;
    }
    throw new LedgerError(
      'LEDGER_LOCKED',
      `${dir} is locked by process ${owner.pid} on ${owner.host} (since ${owner.started}): only one process may ${what} a ledger at a time.` +
        (local
          ? ' Stop that process first.'
          : ` If that process is gone, delete ${path}.`),
    );
  }
  throw new LedgerError('LEDGER_LOCKED', `${dir}: could not take the lock ${path}; another process keeps creating it`);
}

function unlinkStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(error, 'cannot remove a stale ledger lock', path);
  }
}
