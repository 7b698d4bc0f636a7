/**
 * The spool directory on disk, and which process may send which file.
 *
 *   <root>/proc-<pid>-<startMs>/owner.json      the owning process's lock ({pid, host, started})
 *   <root>/proc-<pid>-<startMs>/<time>-<pid>-<seq>.spool   batches, oldest name first
 *   <root>/quarantine/<name>                     files that could not be read back (never deleted here)
 *
 * Why one subdirectory per process: several processes of one app often share one configuration (a
 * cluster, replicas on one host), hence one LLM_AUDIT_SPOOL_DIR. Each writes and sends only the files
 * in its own subdirectory, so no file is sent by two live processes. A subdirectory whose owner is
 * gone (crash, SIGKILL: the lock names a dead pid; clean exit: the lock was removed) is adopted by the
 * next process that looks: its files are moved, one atomic rename each, into the adopter's own
 * subdirectory, so when two processes adopt at once each file still lands in exactly one of them.
 *
 * Nothing is created until a batch has to be written (an app whose collector never fails leaves no
 * trace on disk), and the byte bound (LLM_AUDIT_SPOOL_MAX_BYTES) counts the files this process holds:
 * its own batches and the ones it adopted.
 */
import { AuditError } from '../errors';
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { EMPTY_LOCK_GRACE_MS, pidAlive, readLockOwner, type LockOwner } from '../util/lock-owner';
import { syncDirSync, writeFileAtomicSync } from '../util/durable-file';
import { FILE_MODE, SPOOL_SUFFIX, TEMP_PREFIX, writeFileAtomic } from './spool-file';

export const OWNER_FILE = 'owner.json';
export const QUARANTINE_DIR = 'quarantine';
const PROCESS_DIR_PREFIX = 'proc-';
const DIR_MODE = 0o700;

interface SpoolOwner extends LockOwner {
  started: string;
  /** Set by a clean exit that left files behind: they are free to adopt at once. */
  released?: boolean;
}

export class SpoolDirectory {
  /** This process's subdirectory once created. */
  private ownDir: string | undefined;
  private readonly me: SpoolOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  /** Names of the files waiting in ownDir, oldest first, with their sizes. */
  private readonly queue: string[] = [];
  private readonly sizes = new Map<string, number>();
  private totalBytes = 0;
  private seq = 0;

  constructor(
    readonly root: string,
    readonly maxBytes: number,
  ) {}

  /**
   * Checks that the root can be a spool (an existing non-directory is a configuration error,
   * thrown) and adopts what dead processes left. Synchronous: runs once at startup.
   */
  open(): void {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(this.root).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new AuditError('CONFIG_INVALID', `LLM_AUDIT_SPOOL_DIR=${this.root} cannot be used: ${(error as Error).message}`);
    }
    if (isDir === false) throw new AuditError('CONFIG_INVALID', `LLM_AUDIT_SPOOL_DIR=${this.root} exists and is not a directory`);
    // Found now rather than during an outage, when the spans that need the spool would be dropped.
    const writable = isDir ? this.root : nearestExisting(this.root);
    try {
      accessSync(writable, constants.W_OK | constants.X_OK);
    } catch {
      throw new AuditError('CONFIG_INVALID', `LLM_AUDIT_SPOOL_DIR=${this.root} cannot be written (no write permission on ${writable})`);
    }
    this.adoptOrphans();
  }

  get files(): number {
    return this.queue.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The directory files are written to, for messages (undefined until the first write). */
  get directory(): string | undefined {
    return this.ownDir;
  }

  /** The oldest waiting file's path, or undefined when the spool is empty. */
  oldest(): { name: string; path: string } | undefined {
    const name = this.queue[0];
    return name === undefined ? undefined : { name, path: join(this.ownDir!, name) };
  }

  /**
   * A name for the next batch, taken when the batch is cut (not when it is written): batches that
   * reach the disk out of order (a failed direct export is written after later spilled batches)
   * still sort, and are sent, in the order they were cut.
   */
  reserveName(): string {
    this.seq += 1;
    return `${String(Date.now()).padStart(15, '0')}-${process.pid}-${String(this.seq).padStart(10, '0')}${SPOOL_SUFFIX}`;
  }

  hasRoomFor(bytes: number): boolean {
    return this.totalBytes + bytes <= this.maxBytes;
  }

  /** Writes a batch durably under a reserved name and queues it. */
  async write(name: string, bytes: Buffer): Promise<void> {
    const dir = this.ensureOwnDir();
    await writeFileAtomic(dir, name, bytes);
    this.enqueue(name, bytes.length);
  }

  /** write() on the calling thread, for the process's `exit` event. */
  writeSync(name: string, bytes: Buffer): void {
    writeFileAtomicSync(this.ensureOwnDir(), name, bytes);
    this.enqueue(name, bytes.length);
  }

  /** True when a file of that name is already durable in this process's subdirectory. */
  holds(name: string): boolean {
    if (this.ownDir === undefined) return false;
    try {
      statSync(join(this.ownDir, name));
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes a file once its spans were sent. */
  async remove(name: string): Promise<void> {
    await unlink(join(this.ownDir!, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    this.dequeue(name);
  }

  /** Moves an unreadable file aside (root/quarantine), out of the queue; returns where it went. */
  async quarantine(name: string): Promise<string> {
    const dir = join(this.root, QUARANTINE_DIR);
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    const target = join(dir, `${Date.now()}-${name}`);
    await rename(join(this.ownDir!, name), target);
    this.dequeue(name);
    return target;
  }

  /**
   * Moves the files of subdirectories whose owner is gone into this process's own, oldest first,
   * as long as they fit under the byte bound (the rest waits for a later call). Returns how many.
   */
  adoptOrphans(): number {
    let entries: string[];
    try {
      entries = readdirSync(this.root);
    } catch {
      return 0; // no root yet: nothing was ever spooled here
    }
    let adopted = 0;
    for (const entry of entries.sort()) {
      if (!entry.startsWith(PROCESS_DIR_PREFIX)) continue;
      const dir = join(this.root, entry);
      if (dir === this.ownDir || !this.ownerGone(dir)) continue;
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue; // adopted and removed by another process meanwhile
      }
      let left = 0;
      for (const name of names.sort()) {
        const path = join(dir, name);
        if (name.startsWith(TEMP_PREFIX)) {
          // An interrupted write of a dead process: never a complete batch.
          tryUnlink(path);
          continue;
        }
        if (!name.endsWith(SPOOL_SUFFIX)) continue;
        let size: number;
        try {
          size = lstatSync(path).size;
        } catch {
          continue; // another adopter took it
        }
        if (!this.hasRoomFor(size)) {
          left += 1;
          continue;
        }
        try {
          renameSync(path, join(this.ensureOwnDir(), name));
        } catch {
          continue; // another adopter won the rename
        }
        this.enqueue(name, size);
        adopted += 1;
      }
      if (left === 0) {
        tryUnlink(join(dir, OWNER_FILE));
        try {
          rmdirSync(dir);
        } catch {
          // not empty (a file this version does not know) or already removed: leave it
        }
      }
    }
    if (adopted > 0) syncDirSync(this.ownDir!);
    return adopted;
  }

  /**
   * Releases this process's subdirectory: removed when empty; otherwise the lock is marked
   * released, so the next process to start adopts the files at once (rather than waiting for this
   * pid to be seen dead, which pid reuse could delay indefinitely).
   */
  close(): void {
    const dir = this.ownDir;
    if (!dir) return;
    this.ownDir = undefined;
    const lock = join(dir, OWNER_FILE);
    if (this.queue.length === 0) {
      tryUnlink(lock);
      try {
        rmdirSync(dir);
        return;
      } catch {
        // a leftover temporary file: mark the directory released below; the next adopter cleans it
      }
    }
    try {
      // Replaced by a rename, so a reader sees the old lock or the released one, never half of it.
      const temp = join(dir, `${TEMP_PREFIX}${OWNER_FILE}`);
      const fd = openSync(temp, 'w', FILE_MODE);
      try {
        writeSync(fd, JSON.stringify({ ...this.me, released: true }) + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, lock);
      syncDirSync(dir);
    } catch {
      // Cannot mark it: the files are still adopted once this pid is seen dead.
    }
  }

  private ensureOwnDir(): string {
    if (this.ownDir) return this.ownDir;
    mkdirSync(this.root, { recursive: true, mode: DIR_MODE });
    const dir = join(this.root, `${PROCESS_DIR_PREFIX}${process.pid}-${Date.now()}`);
    mkdirSync(dir, { mode: DIR_MODE });
    const fd = openSync(join(dir, OWNER_FILE), 'wx', FILE_MODE);
    try {
      writeSync(fd, JSON.stringify(this.me) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    syncDirSync(this.root);
    this.ownDir = dir;
    return dir;
  }

  /** Whether nobody owns a process subdirectory any more (so its files may be adopted). */
  private ownerGone(dir: string): boolean {
    const owner = readLockOwner<SpoolOwner>(join(dir, OWNER_FILE), (error) => error as Error);
    if (typeof owner === 'object') {
      if (owner.released === true) return true;
      // Another host's process (a shared volume) cannot be checked: never take its files.
      return owner.host === this.me.host && owner.pid !== process.pid && !pidAlive(owner.pid);
    }
    // No lock, or one not yet written: a directory being created right now looks like this, so
    // only an old one counts as abandoned.
    try {
      return Date.now() - statSync(dir).mtimeMs > EMPTY_LOCK_GRACE_MS;
    } catch {
      return false;
    }
  }

  private enqueue(name: string, size: number): void {
    if (this.sizes.has(name)) return;
    this.sizes.set(name, size);
    this.totalBytes += size;
    const last = this.queue[this.queue.length - 1];
    this.queue.push(name);
    if (last !== undefined && last > name) this.queue.sort();
  }

  private dequeue(name: string): void {
    const size = this.sizes.get(name);
    if (size === undefined) return;
    this.sizes.delete(name);
    this.totalBytes -= size;
    const index = this.queue.indexOf(name);
    if (index >= 0) this.queue.splice(index, 1);
  }
}

/** The closest ancestor of `path` that exists (where mkdir -p would start creating). */
function nearestExisting(path: string): string {
  let dir = dirname(path);
  for (;;) {
    try {
      statSync(dir);
      return dir;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return dir;
      dir = parent;
    }
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
