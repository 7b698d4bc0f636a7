/**
 * The content keystore: per-tenant data keys (DEKs), each wrapped by a master key, in one JSON
 * lines file (default `content-keystore.jsonl` next to the master key, mode 0600), plus
 * `shredded.jsonl` in the same directory recording every shred.
 *
 * A DEK line (canonical JSON, one line, appended with a single O_APPEND write and fsynced):
 *
 *     {"created":ISO,"dek":"<24 hex>","kid":"<master key id>","nonce":"<b64 12 bytes>","tenant":"T"|null,"type":"dek","v":1,"wrapped":"<b64 32-byte key || 16-byte tag>"}
 *
 * `wrapped` is AES-256-GCM under the master key `kid`, with AAD = canonical JSON of
 * {purpose:"otel-llm-audit/content-dek/v1", tenant, dek, kid}: a wrapped key moved to another
 * tenant, id or master key does not unwrap.
 *
 * Concurrency: creating a DEK and shredding take `<keystore>.lock` (see lock.ts); under it the file
 * is re-read, so two processes asking for the same tenant's first DEK at once end up with one DEK.
 * Readers never lock; they re-read when the file's (inode, size, mtime) changes, checked at most
 * every `refreshMs`.
 *
 * Shredding a tenant, under the lock:
 * 1. every DEK line of the tenant is overwritten IN PLACE by a same-length filler line
 *    `{"dek":..,"kid":..,"tenant":..,"type":"shredded"}` + spaces, and the file is fsynced: the
 *    wrapped key bytes are gone from the file's blocks (as far as the file system overwrites in
 *    place) and every other line keeps its bytes and offset, so a crash cannot damage them;
 * 2. a record `{"at","deks","host","keystore","kids","pid","reason"?,"tenant","type":"content.shred","user","v":1}`
 *    is appended to shredded.jsonl and fsynced;
 * 3. the file is compacted: rewritten without the filler lines whose ids shredded.jsonl records,
 *    to a temp file that is fsynced and renamed over it (directory fsynced). Temp files left by an
 *    earlier crash are overwritten with zeros before they are unlinked.
 * A crash after 1 leaves filler lines (readers treat their ids as shredded) and running shred
 * again records them; a crash after 2 leaves fillers that the next shred compacts away.
 *
 * A DEK id listed in shredded.jsonl is never used again even if its line comes back (a keystore
 * restored from a backup): it stays CONTENT_KEY_SHREDDED.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { canonicalJson } from '../canonical-json';
import { ContentError, contentFsError } from './errors';
import { acquireKeystoreLock } from './lock';
import { syncDirSync } from '../../util/durable-file';
import type { MasterKey } from './master-key';

export const DEFAULT_KEYSTORE_NAME = 'content-keystore.jsonl';
export const SHRED_LOG_NAME = 'shredded.jsonl';
const WRAP_PURPOSE = 'otel-llm-audit/content-dek/v1';
const DEK_ID = /^[0-9a-f]{24}$/;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One wrapped data key as stored. Holds no usable key material without the master key. */
export interface DekEntry {
  v: 1;
  type: 'dek';
  dek: string;
  tenant: string | null;
  kid: string;
  nonce: string;
  wrapped: string;
  created: string;
}

/** What a shred did; also the line appended to shredded.jsonl. The lead records it in the ledger as action `content.shred`. */
export interface ShredResult {
  v: 1;
  type: 'content.shred';
  tenant: string;
  /** When the keys were destroyed (UTC ISO 8601). */
  at: string;
  /** Ids of the data keys destroyed (empty when the tenant had none). */
  deks: string[];
  /** Master key ids those data keys were wrapped under. */
  kids: string[];
  /** Absolute path of the keystore file. */
  keystore: string;
  host: string;
  user: string | null;
  pid: number;
  reason?: string;
}

export interface KeystoreOptions {
  /** The keystore file. */
  path: string;
  /** How often (ms) readers check the file for changes by other processes. Default 1000; 0 = every use. */
  refreshMs?: number;
  /** How long to wait for the keystore lock (ms). Default 10000. */
  lockTimeoutMs?: number;
}

interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

function stampOf(path: string): FileStamp | undefined {
  try {
    const s = statSync(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw contentFsError(error, 'cannot read the keystore', path);
  }
}

function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Normalizes a tenant id: undefined, null and "" are "no tenant" (null). */
export function normalizeTenant(tenant: unknown): string | null {
  if (tenant === undefined || tenant === null || tenant === '') return null;
  if (typeof tenant !== 'string') throw new ContentError('CONTENT_USAGE', `a tenant id must be a string, got ${typeof tenant}`);
  return tenant;
}

function wrapAad(tenant: string | null, dek: string, kid: string): Buffer {
  return Buffer.from(canonicalJson({ purpose: WRAP_PURPOSE, tenant, dek, kid }), 'utf8');
}

/** Wraps 32 DEK bytes under `master` for (tenant, dek id). */
export function wrapDataKey(master: MasterKey, tenant: string | null, dek: string, keyBytes: Buffer): { nonce: string; wrapped: string } {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', master.key, nonce, { authTagLength: 16 });
  cipher.setAAD(wrapAad(tenant, dek, master.kid));
  const wrapped = Buffer.concat([cipher.update(keyBytes), cipher.final(), cipher.getAuthTag()]);
  return { nonce: nonce.toString('base64'), wrapped: wrapped.toString('base64') };
}

/** Unwraps a DEK entry with its master key. CONTENT_KEY_INVALID when the master key is the wrong one or the line was altered. */
export function unwrapDataKey(master: MasterKey, entry: DekEntry): KeyObject {
  const nonce = Buffer.from(entry.nonce, 'base64');
  const blob = Buffer.from(entry.wrapped, 'base64');
  let bytes: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.key, nonce, { authTagLength: 16 });
    decipher.setAAD(wrapAad(entry.tenant, entry.dek, entry.kid));
    decipher.setAuthTag(blob.subarray(blob.length - 16));
    bytes = Buffer.concat([decipher.update(blob.subarray(0, blob.length - 16)), decipher.final()]);
  } catch (error) {
    const where = master.path !== undefined ? ` (${master.path})` : '';
    throw new ContentError(
      'CONTENT_KEY_INVALID',
      `master key ${master.kid}${where} does not unwrap data key ${entry.dek}: it is not the key that id was created for, or the keystore line was altered`,
      { cause: error },
    );
  }
  try {
    return createSecretKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

function parseDekEntry(value: unknown): DekEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const e = value as Record<string, unknown>;
  if (e.v !== 1 || e.type !== 'dek') return undefined;
  if (typeof e.dek !== 'string' || !DEK_ID.test(e.dek)) return undefined;
  if (!(e.tenant === null || (typeof e.tenant === 'string' && e.tenant !== ''))) return undefined;
  if (typeof e.kid !== 'string' || typeof e.created !== 'string') return undefined;
  if (typeof e.nonce !== 'string' || !B64.test(e.nonce) || Buffer.from(e.nonce, 'base64').length !== 12) return undefined;
  if (typeof e.wrapped !== 'string' || !B64.test(e.wrapped) || Buffer.from(e.wrapped, 'base64').length !== 48) return undefined;
  return e as unknown as DekEntry;
}

interface Line {
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte length, without the newline. */
  length: number;
  text: string;
  /** The parsed JSON, or undefined when the line is not JSON (blank lines are skipped altogether). */
  value: unknown;
}

/** Complete lines of the file (a torn last line without newline is left out). */
function splitLines(buffer: Buffer): Line[] {
  const lines: Line[] = [];
  let start = 0;
  for (;;) {
    const nl = buffer.indexOf(0x0a, start);
    if (nl === -1) break;
    const text = buffer.toString('utf8', start, nl);
    if (text.trim() !== '') {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      lines.push({ start, length: nl - start, text, value });
    }
    start = nl + 1;
  }
  return lines;
}

function readShredLog(path: string): ShredResult[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw contentFsError(error, 'cannot read the shred log', path);
  }
  const out: ShredResult[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value = JSON.parse(line) as ShredResult;
      if (value?.type === 'content.shred' && Array.isArray(value.deks)) out.push(value);
    } catch {
      // A torn last line of an interrupted append: ignored (the filler lines still say what was shredded).
    }
  }
  return out;
}

export class ContentKeystore {
  readonly path: string;
  readonly shredLogPath: string;
  private readonly lockPath: string;
  private readonly refreshMs: number;
  private readonly lockTimeoutMs: number;

  private entries = new Map<string, DekEntry>();
  /** Ids seen as filler lines or in shredded.jsonl. */
  private shredded = new Map<string, { tenant: string | null; at?: string }>();
  private malformed = 0;
  private stamp: FileStamp | undefined;
  private logStamp: FileStamp | undefined;
  private loaded = false;
  private lastCheck = -Infinity;
  /** Bumped on every reload; caches of unwrapped keys compare it. */
  generation = 0;

  constructor(options: KeystoreOptions) {
    this.path = options.path;
    this.shredLogPath = join(dirname(options.path), SHRED_LOG_NAME);
    this.lockPath = options.path + '.lock';
    this.refreshMs = options.refreshMs ?? 1000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  }

  /** Lines that are neither DEKs nor fillers (damage, hand edits), at the last load. */
  get malformedLines(): number {
    return this.malformed;
  }

  /**
   * Re-reads the file if it changed since the last load (checked at most every refreshMs unless
   * `force`). Returns true when it reloaded.
   */
  refresh(force = false): boolean {
    const now = Date.now();
    if (!force && this.loaded && now - this.lastCheck < this.refreshMs) return false;
    this.lastCheck = now;
    const stamp = stampOf(this.path);
    const logStamp = stampOf(this.shredLogPath);
    if (this.loaded && sameStamp(stamp, this.stamp) && sameStamp(logStamp, this.logStamp)) return false;
    this.load(stamp, logStamp);
    return true;
  }

  private load(stamp: FileStamp | undefined, logStamp: FileStamp | undefined): void {
    let buffer: Buffer = Buffer.alloc(0);
    if (stamp !== undefined) {
      try {
        buffer = readFileSync(this.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw contentFsError(error, 'cannot read the keystore', this.path);
      }
    }
    const entries = new Map<string, DekEntry>();
    const shredded = new Map<string, { tenant: string | null; at?: string }>();
    let malformed = 0;
    for (const record of readShredLog(this.shredLogPath)) {
      for (const id of record.deks) if (typeof id === 'string') shredded.set(id, { tenant: record.tenant, at: record.at });
    }
    for (const line of splitLines(buffer)) {
      const v = line.value as Record<string, unknown> | undefined;
      if (v !== undefined && v !== null && typeof v === 'object' && v.type === 'shredded') {
        if (typeof v.dek === 'string' && !shredded.has(v.dek)) shredded.set(v.dek, { tenant: typeof v.tenant === 'string' ? v.tenant : null });
        continue;
      }
      const entry = parseDekEntry(v);
      if (entry === undefined) malformed++;
      else if (!shredded.has(entry.dek)) entries.set(entry.dek, entry);
    }
    this.entries = entries;
    this.shredded = shredded;
    this.malformed = malformed;
    this.stamp = stamp;
    this.logStamp = logStamp;
    this.loaded = true;
    this.generation++;
  }

  /** The live (not shredded) entry with this id, as of the last load. */
  entry(dek: string): DekEntry | undefined {
    this.refresh();
    return this.entries.get(dek);
  }

  /** Whether a DEK id was shredded, with when, as of the last load. */
  shreddedInfo(dek: string): { tenant: string | null; at?: string } | undefined {
    return this.shredded.get(dek);
  }

  hasLive(dek: string): boolean {
    return this.entries.has(dek);
  }

  /** Every live entry (metadata; the wrapped keys are useless without the master key). */
  list(): DekEntry[] {
    this.refresh();
    return [...this.entries.values()];
  }

  /** The newest live DEK of `tenant` wrapped under master key `kid`, as of the last load. */
  current(tenant: string | null, kid: string): DekEntry | undefined {
    this.refresh();
    return this.findCurrent(tenant, kid);
  }

  private findCurrent(tenant: string | null, kid: string): DekEntry | undefined {
    let found: DekEntry | undefined;
    for (const entry of this.entries.values()) if (entry.tenant === tenant && entry.kid === kid) found = entry;
    return found;
  }

  /**
   * The tenant's current DEK under `master`, creating it if there is none: under the lock, after
   * re-reading the file, so concurrent creators converge on one DEK. Returns the entry and the
   * unwrapped key.
   */
  obtain(tenant: string | null, master: MasterKey): { entry: DekEntry; key: KeyObject } {
    const existing = this.current(tenant, master.kid);
    if (existing !== undefined) return { entry: existing, key: unwrapDataKey(master, existing) };
    this.ensureDir();
    const lock = acquireKeystoreLock(this.lockPath, this.lockTimeoutMs);
    try {
      this.refresh(true);
      const again = this.findCurrent(tenant, master.kid);
      if (again !== undefined) return { entry: again, key: unwrapDataKey(master, again) };
      const keyBytes = randomBytes(32);
      try {
        const dek = randomBytes(12).toString('hex');
        const { nonce, wrapped } = wrapDataKey(master, tenant, dek, keyBytes);
        const entry: DekEntry = { v: 1, type: 'dek', dek, tenant, kid: master.kid, nonce, wrapped, created: new Date().toISOString() };
        this.appendLine(canonicalJson(entry));
        this.refresh(true);
        return { entry, key: createSecretKey(keyBytes) };
      } finally {
        keyBytes.fill(0);
      }
    } finally {
      lock.release();
    }
  }

  private ensureDir(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw contentFsError(error, 'cannot create the keystore directory', dirname(this.path));
    }
  }

  /** One O_APPEND write of one line (after a newline if an earlier append was torn), fsynced. Caller holds the lock. */
  private appendLine(line: string): void {
    let fd: number;
    let created = false;
    try {
      try {
        fd = openSync(this.path, 'ax', 0o600);
        created = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        fd = openSync(this.path, 'a', 0o600);
      }
    } catch (error) {
      throw contentFsError(error, 'cannot open the keystore for writing', this.path);
    }
    try {
      let prefix = '';
      const size = fstatSync(fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        const rfd = openSync(this.path, 'r');
        try {
          readSync(rfd, last, 0, 1, size - 1);
        } finally {
          closeSync(rfd);
        }
        if (last[0] !== 0x0a) prefix = '\n';
      }
      writeSync(fd, prefix + line + '\n');
      fsyncSync(fd);
    } catch (error) {
      throw contentFsError(error, 'cannot write the keystore', this.path);
    } finally {
      closeSync(fd);
    }
    if (created) syncDirSync(dirname(this.path));
  }

  /**
   * Destroys every DEK of `tenant` (see the file comment for the steps) and records it in
   * shredded.jsonl. Envelopes sealed with those keys then fail with CONTENT_KEY_SHREDDED, and the
   * next seal for the tenant creates a new DEK. Idempotent: shredding again records an empty
   * `deks` list (or finishes an interrupted shred).
   */
  shred(tenant: string, options: { reason?: string; now?: Date } = {}): ShredResult {
    if (typeof tenant !== 'string' || tenant === '') throw new ContentError('CONTENT_USAGE', 'shred needs a non-empty tenant id');
    this.ensureDir();
    const lock = acquireKeystoreLock(this.lockPath, this.lockTimeoutMs);
    try {
      const destroyed = this.overwriteTenantLines(tenant);
      const result: ShredResult = {
        v: 1,
        type: 'content.shred',
        tenant,
        at: (options.now ?? new Date()).toISOString(),
        deks: [...destroyed.keys()],
        kids: [...new Set([...destroyed.values()].filter((k): k is string => k !== undefined))].sort(),
        keystore: this.absolutePath(),
        host: hostname(),
        user: currentUser(),
        pid: process.pid,
      };
      if (options.reason !== undefined) result.reason = options.reason;
      this.appendShredRecord(result);
      this.compact();
      this.refresh(true);
      return result;
    } finally {
      lock.release();
    }
  }

  private absolutePath(): string {
    return resolve(this.path);
  }

  /** Step 1: in-place overwrite of the tenant's lines; returns dek id -> kid of everything destroyed (including fillers of an interrupted shred). */
  private overwriteTenantLines(tenant: string): Map<string, string | undefined> {
    const destroyed = new Map<string, string | undefined>();
    let buffer: Buffer;
    try {
      buffer = readFileSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return destroyed;
      throw contentFsError(error, 'cannot read the keystore', this.path);
    }
    const recorded = new Set(readShredLog(this.shredLogPath).flatMap((r) => r.deks));
    const tenantJson = '"tenant":' + JSON.stringify(tenant);
    const writes: Array<{ start: number; bytes: Buffer }> = [];
    for (const line of splitLines(buffer)) {
      const v = line.value as Record<string, unknown> | undefined;
      if (v !== undefined && v !== null && typeof v === 'object' && v.type === 'shredded') {
        // A filler of an interrupted shred of this tenant that was never recorded.
        if (v.tenant === tenant && typeof v.dek === 'string' && !recorded.has(v.dek)) destroyed.set(v.dek, typeof v.kid === 'string' ? v.kid : undefined);
        continue;
      }
      const entry = parseDekEntry(v);
      let filler: string;
      if (entry !== undefined) {
        if (entry.tenant !== tenant) continue;
        destroyed.set(entry.dek, entry.kid);
        filler = canonicalJson({ dek: entry.dek, kid: entry.kid, tenant, type: 'shredded' });
      } else if (line.text.includes(tenantJson)) {
        // A damaged line that names the tenant may still hold its key material: destroy it too.
        filler = canonicalJson({ tenant, type: 'shredded' });
      } else {
        continue;
      }
      const bytes = Buffer.alloc(line.length, 0x20);
      if (Buffer.byteLength(filler) <= line.length) bytes.write(filler, 0, 'utf8');
      writes.push({ start: line.start, bytes });
    }
    if (writes.length === 0) return destroyed;
    let fd: number;
    try {
      fd = openSync(this.path, 'r+');
    } catch (error) {
      throw contentFsError(error, 'cannot open the keystore to shred', this.path);
    }
    try {
      for (const w of writes) writeSync(fd, w.bytes, 0, w.bytes.length, w.start);
      fsyncSync(fd);
    } catch (error) {
      throw contentFsError(error, 'cannot overwrite the keystore', this.path);
    } finally {
      closeSync(fd);
    }
    return destroyed;
  }

  private appendShredRecord(result: ShredResult): void {
    let fd: number;
    try {
      fd = openSync(this.shredLogPath, 'a', 0o600);
    } catch (error) {
      throw contentFsError(error, 'cannot open the shred log', this.shredLogPath);
    }
    try {
      writeSync(fd, canonicalJson(result) + '\n');
      fsyncSync(fd);
    } catch (error) {
      throw contentFsError(error, 'cannot write the shred log', this.shredLogPath);
    } finally {
      closeSync(fd);
    }
    syncDirSync(dirname(this.shredLogPath));
  }

  /** Step 3: rewrite without recorded fillers (temp + fsync + rename + dir fsync). */
  private compact(): void {
    const dir = dirname(this.path);
    const base = basename(this.path);
    // Temp copies of an earlier compaction that crashed: overwrite, then unlink.
    for (const name of safeReaddir(dir)) {
      if (name.startsWith(base + '.compact-')) destroyFile(join(dir, name));
    }
    let buffer: Buffer;
    try {
      buffer = readFileSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw contentFsError(error, 'cannot read the keystore', this.path);
    }
    const recorded = new Set(readShredLog(this.shredLogPath).flatMap((r) => r.deks));
    let out = '';
    let dropped = 0;
    for (const line of splitLines(buffer)) {
      const v = line.value as Record<string, unknown> | undefined;
      if (v !== undefined && v !== null && typeof v === 'object' && v.type === 'shredded' && (typeof v.dek !== 'string' || recorded.has(v.dek))) {
        dropped++;
        continue;
      }
      out += line.text + '\n';
    }
    if (dropped === 0) return;
    const temp = join(dir, `${base}.compact-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const fd = openSync(temp, 'wx', 0o600);
      try {
        writeSync(fd, out);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, this.path);
    } catch (error) {
      destroyFile(temp);
      throw contentFsError(error, 'cannot compact the keystore', this.path);
    }
    syncDirSync(dir);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Overwrites a file with zeros (fsynced), then unlinks it. Best effort. */
function destroyFile(path: string): void {
  try {
    const fd = openSync(path, 'r+');
    try {
      const size = fstatSync(fd).size;
      const zeros = Buffer.alloc(Math.min(size, 1 << 20));
      for (let off = 0; off < size; off += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - off), off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Nothing to overwrite (already gone) or not writable: still try to unlink.
  }
  try {
    unlinkSync(path);
  } catch {
    // gone
  }
}

export function currentUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

/** Shreds `tenant` in the keystore at `path` (no master key needed). */
export function shredTenant(path: string, tenant: string, options: { reason?: string; now?: Date; lockTimeoutMs?: number } = {}): ShredResult {
  const store = new ContentKeystore({ path, ...(options.lockTimeoutMs !== undefined ? { lockTimeoutMs: options.lockTimeoutMs } : {}) });
  return store.shred(tenant, options);
}
