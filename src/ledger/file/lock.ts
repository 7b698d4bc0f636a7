/**
 * One writer per ledger: an exclusive lock file (`O_CREAT | O_EXCL`) holding the owner's pid,
 * host and start time. A lock whose pid is dead on this host is stale and is taken over (the
 * takeover is reported); a live owner, or an owner on another host (whose liveness cannot be
 * checked), is refused with LEDGER_LOCKED.
 *
 * Two processes that find the same stale lock do not both take it over: see removeStaleLock().
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { ownerGone, readLock, readLockOwner, removeStaleLock, type LockOwner as SharedLockOwner } from '../../util/lock-owner';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LedgerError, fsError } from '../errors';
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
  for (let attempt = 0; attempt < 4; attempt++) {
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
    const fail = (error: unknown): Error => fsError(error, 'cannot read the ledger lock', path);
    const seen = readLock<LockOwner>(path, fail);
    if (seen === 'gone') continue;
    const owner = seen.owner;
    const local = typeof owner === 'object' && owner.host === me.host;
    if (ownerGone(seen, me)) {
      const outcome = removeStaleLock(path, seen, me, fail);
      if (outcome === 'removed' && typeof owner === 'object') tookOverFrom = owner;
      if (outcome !== 'busy') continue;
      throw new LedgerError('LEDGER_LOCKED', `${dir}: another process is taking over a stale lock right now; try again`);
    }
    if (typeof owner !== 'object') {
      throw new LedgerError('LEDGER_LOCKED', `${dir} is being locked by another process right now; try again`);
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
