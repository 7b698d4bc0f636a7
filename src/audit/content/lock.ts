/**
 * A synchronous, waiting, cross-process lock for the content keystore: a lock file created with
 * O_EXCL holding `{pid, host, at}`. Held only for the few milliseconds of creating a data key or
 * shredding, so contenders sleep (Atomics.wait, no busy loop) and retry until a timeout.
 *
 * A lock whose pid is not running on this host is stale and is taken over; a lock left empty for
 * more than 5 s (its owner died between create and write) too. A lock held by another host cannot
 * be checked and is waited for, then reported as CONTENT_KEYSTORE_LOCKED naming the owner.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { ContentError, contentFsError } from './errors';
import { ownerGone, readLock, removeStaleLock, type LockOwner } from '../../util/lock-owner';

interface Owner extends LockOwner {
  at: string;
}

export interface KeystoreLock {
  release(): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Takes the lock at `path`, waiting up to `timeoutMs`. */
export function acquireKeystoreLock(path: string, timeoutMs: number): KeystoreLock {
  const me: Owner = { pid: process.pid, host: hostname(), at: new Date().toISOString() };
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw contentFsError(error, 'cannot lock the keystore', path);
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, JSON.stringify(me) + '\n');
      } finally {
        closeSync(fd);
      }
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // Already gone (taken over as stale by someone who thought we died): nothing to do.
          }
        },
      };
    }
    const fail = (error: unknown): Error => contentFsError(error, 'cannot read the keystore lock', path);
    const seen = readLock<Owner>(path, fail);
    if (seen === 'gone') continue;
    // Of several contenders that find it stale, exactly one removes it (removeStaleLock); `busy`
    // (one of them is doing so) is waited for like a live owner.
    if (ownerGone(seen, me) && removeStaleLock(path, seen, me, fail) !== 'busy') continue;
    const owner = seen.owner;
    if (Date.now() >= deadline) {
      const who = typeof owner === 'object' ? `process ${owner.pid} on ${owner.host} since ${owner.at}` : 'an unknown process';
      throw new ContentError('CONTENT_KEYSTORE_LOCKED', `the keystore lock ${path} is held by ${who}; if that process is gone, delete the lock file`);
    }
    sleepSync(delay);
    delay = Math.min(delay * 2, 50);
  }
}
