/**
 * Pending journals: records kept durably in `pending/` in the ledger directory until the process
 * that holds the ledger's lock appends them. A process writes to its own journal when
 *
 * - another process (or another thread of this one) holds the lock: cluster workers, children
 *   started under NODE_OPTIONS=--require otel-llm-audit/register, worker_threads (journal mode);
 * - more records wait for the ledger than LLM_AUDIT_LEDGER_MAX_BACKLOG (memory stays bounded);
 * - the process exits (`process.exit()` runs nothing asynchronous) or shuts down with records
 *   the ledger could not take any more.
 *
 * One journal per writer: `pending/<pid>-<threadId>-<start ms>-<random>.jsonl`, so threads of one
 * process never share a file. Each line is `{"mac","n","record"}` (or `{"end":true,"mac","n"}`
 * when the writer closes it), written with one write + one fdatasync per group commit.
 *
 * Authentication: `mac` is HMAC-SHA256 over the journal's name and the line's `{n, record}` (or
 * `{n, end}`) with a key derived by HKDF from what every writing process of the ledger already
 * holds (the checkpoint signing key, else LLM_AUDIT_HASH_KEY): a journal someone without the key
 * wrote or changed fails, is moved to `pending/rejected/` and reported, and none of it is appended.
 * `n` numbers the lines from 0, so lines removed from a journal are reported. Without either key,
 * journals carry no `mac` and are appended with a warning (and `verify` says they were
 * unauthenticated); a journal with a `mac` read by a process without the key is rejected.
 *
 * The lock holder appends what the journals hold (JournalConsumer, every POLL_MS) exactly once:
 * it keeps its offset in each file, and hands what it reads to its LedgerWriter's append, whose
 * one dedup by span (trace id + span id: file/writer.ts, PostgreSQL's unique constraint) leaves out
 * what is stored already (a journal an earlier holder appended before it stopped, an exit journal
 * of appends that did complete). A journal is deleted once it is fully appended and its writer
 * closed it (end line) or is gone (dead pid).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { threadId } from 'node:worker_threads';
import { canonicalJson } from '../../audit/canonical-json';
import { parseEnvKey } from '../../audit/hashing';
import { syncDirSync } from '../../util/durable-file';
import { GroupCommit } from '../../util/group-commit';
import { pidAlive } from '../../util/lock-owner';
import { loadPrivateKey } from '../checkpoint';
import { fsError } from '../errors';
import type { Checkpoint } from '../checkpoint';
import type { AppendOptions, AppendOutcome, LedgerWriter } from '../writer';
import { DIR_MODE, FILE_MODE, PENDING_DIR, REJECTED_DIR } from './layout';
import type { LedgerRecord } from '../record';
import type { AppendInput } from '../protocol';

/** How often the lock holder looks for journal lines to append. */
export const POLL_MS = 200;

/** `<pid>-<threadId>-<ms>-<hex>.jsonl`; `<pid>-<ms>.jsonl` is the unauthenticated exit journal of versions before journals were authenticated. */
const JOURNAL = /^(\d+)-(\d+)(?:-(\d+)-([0-9a-f]+))?\.jsonl$/;

const fdatasyncAsync = promisify(fdatasync);

/** Whether the journal `name` was written by process `pid` (any of its threads) or by a process that is gone. */
export function journalOf(name: string, pid: number): boolean {
  const match = JOURNAL.exec(name);
  if (!match) return false;
  const owner = Number(match[1]);
  return owner === pid || !pidAlive(owner);
}

/**
 * The journal MAC key: HKDF-SHA256 of the checkpoint signing key (its PKCS#8 bytes) if there is
 * one, else of LLM_AUDIT_HASH_KEY; undefined (journals unauthenticated) without either.
 */
export function journalKey(keys: { signingKey?: KeyObject | undefined; signingKeyPath?: string | undefined; hashKey?: string | undefined }): Buffer | undefined {
  const signing = keys.signingKey ?? (keys.signingKeyPath ? loadPrivateKey(keys.signingKeyPath) : undefined);
  const ikm = signing ? signing.export({ type: 'pkcs8', format: 'der' }) : keys.hashKey ? parseEnvKey(keys.hashKey) : undefined;
  if (!ikm) return undefined;
  return Buffer.from(hkdfSync('sha256', ikm, 'otel-llm-audit', 'pending-journal-mac/v1', 32));
}

function mac(key: Buffer, name: string, body: object): string {
  return createHmac('sha256', key).update(name).update('\n').update(canonicalJson(body)).digest('hex');
}

/**
 * This process's (thread's) journal, created at its first line. Lines are written synchronously
 * (so they are in the file, in `n` order, the moment they are numbered; only the fdatasync is
 * awaited): at process exit nothing is half-way between memory and the file.
 */
export class JournalWriter {
  private current = JournalWriter.newName();
  private fd: number | undefined;
  private n = 0;
  /** Batches handed to append() (see holds()). */
  private readonly received = new WeakSet<readonly LedgerRecord[]>();
  private readonly group = new GroupCommit<LedgerRecord, void>(
    async (batches) => {
      const fd = this.write(this.lines(batches.flat()));
      if (this.durable) {
        try {
          await fdatasyncAsync(fd);
        } catch (error) {
          throw fsError(error, 'cannot fsync the pending journal', this.path);
        }
      }
      return batches.map(() => undefined);
    },
  );

  /** @param durable fdatasync each group (fsync policy `always`); otherwise only at end(). */
  constructor(
    readonly dir: string,
    private readonly key: Buffer | undefined,
    private readonly durable = true,
  ) {}

  private static newName(): string {
    return `${process.pid}-${threadId}-${Date.now()}-${randomBytes(4).toString('hex')}.jsonl`;
  }

  get name(): string {
    return this.current;
  }

  get path(): string {
    return join(this.dir, PENDING_DIR, this.current);
  }

  /** Records handed to append() and not yet written. */
  get backlog(): number {
    return this.group.backlog;
  }

  /** Group commit: resolves once the records are written (and, when durable, fdatasync'd). */
  append(records: readonly LedgerRecord[]): Promise<void> {
    this.received.add(records);
    return this.group.add(records);
  }

  /** Whether append() was handed this very batch: it is in the file, or end() writes it. */
  holds(records: readonly LedgerRecord[]): boolean {
    return this.received.has(records);
  }

  /** Writes the records now, synchronously and durably (the exit event, a full backlog). */
  appendSync(records: readonly LedgerRecord[]): void {
    if (records.length === 0) return;
    this.datasync(this.write(this.lines(records)));
  }

  /** Waits for the appends handed over so far. */
  flush(): Promise<void> {
    return this.group.idle();
  }

  /**
   * Closes the journal: what still waits for a group commit, an end line (the consumer deletes the
   * journal once it has appended it), fdatasync, close. Synchronous (it runs at process exit). A
   * later append starts a new journal.
   */
  end(): void {
    this.appendSync(this.group.takeWaiting());
    if (this.fd === undefined) return;
    const fd = this.write(canonicalJson(this.sealed({ n: this.n++, end: true })) + '\n');
    this.datasync(fd);
    closeSync(fd);
    this.fd = undefined;
    this.n = 0;
    this.current = JournalWriter.newName();
  }

  private write(text: string): number {
    const fd = this.file();
    try {
      const buffer = Buffer.from(text, 'utf8');
      for (let offset = 0; offset < buffer.length; ) offset += writeSync(fd, buffer, offset, buffer.length - offset);
    } catch (error) {
      throw fsError(error, 'cannot write the pending journal', this.path);
    }
    return fd;
  }

  private datasync(fd: number): void {
    try {
      fdatasyncSync(fd);
    } catch (error) {
      throw fsError(error, 'cannot fsync the pending journal', this.path);
    }
  }

  private lines(records: readonly LedgerRecord[]): string {
    let text = '';
    for (const record of records) text += canonicalJson(this.sealed({ n: this.n++, record })) + '\n';
    return text;
  }

  private sealed(body: { n: number; record?: LedgerRecord; end?: true }): object {
    return this.key ? { ...body, mac: mac(this.key, this.current, body) } : body;
  }

  private file(): number {
    if (this.fd === undefined) {
      const pending = join(this.dir, PENDING_DIR);
      try {
        mkdirSync(pending, { recursive: true, mode: DIR_MODE });
        this.fd = openSync(this.path, 'a', FILE_MODE);
        syncDirSync(pending);
      } catch (error) {
        throw fsError(error, 'cannot create the pending journal', this.path);
      }
    }
    return this.fd;
  }
}

/** Writes `records` to a new, closed journal, synchronously and durably; returns its path. */
export function writePendingJournal(dir: string, records: readonly LedgerRecord[], key?: Buffer): string {
  const writer = new JournalWriter(dir, key);
  const path = writer.path;
  writer.appendSync(records);
  writer.end();
  return path;
}

export interface ConsumeResult {
  appended: number;
  /** Journaled records that were in the ledger already. */
  present: number;
  /** Journals moved to pending/rejected/. */
  rejected: number;
}

interface FileState {
  offset: number;
  seen: Set<number>;
  /** Highest line number seen. */
  max: number;
  ended: boolean;
}

class JournalRejected extends Error {}

/** What the consumer appends to: a LedgerWriter, which leaves out the spans it has already. */
export type JournalTarget = Pick<LedgerWriter, 'append' | 'sync'>;

/**
 * Appends the journals of `pending/` to the ledger (the lock holder runs this every POLL_MS and
 * at open and close). `report` gets what an operator must see: rejected journals, removed lines,
 * unauthenticated journals appended.
 */
export class JournalConsumer {
  private readonly files = new Map<string, FileState>();
  private running: Promise<ConsumeResult> | undefined;

  /**
   * @param options.mine which journals this consumer appends: several PostgreSQL writers share no
   *   lock, so each appends its own process's journals and those of writers that are gone.
   */
  constructor(
    private readonly ledger: JournalTarget,
    private readonly dir: string,
    private readonly key: Buffer | undefined,
    private readonly report: (message: string, level: 'error' | 'warn') => void,
    private readonly options: { mine?: (name: string) => boolean } = {},
  ) {}

  /** One pass over pending/; passes never overlap (a call during one waits for it). */
  consume(): Promise<ConsumeResult> {
    if (this.running) return this.running.then(() => this.consume());
    const run = this.pass().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async pass(): Promise<ConsumeResult> {
    const pending = join(this.dir, PENDING_DIR);
    const result: ConsumeResult = { appended: 0, present: 0, rejected: 0 };
    let names: string[];
    try {
      names = readdirSync(pending)
        .filter((name) => JOURNAL.test(name) && (this.options.mine?.(name) ?? true))
        .sort();
    } catch {
      return result;
    }
    const batches: ({ name: string; state: FileState } & ReturnType<JournalConsumer['read']>)[] = [];
    for (const name of names) {
      const state = this.files.get(name) ?? { offset: 0, seen: new Set<number>(), max: -1, ended: false };
      this.files.set(name, state);
      try {
        batches.push({ name, state, ...this.read(name, state) });
      } catch (error) {
        if (error instanceof JournalRejected) {
          this.reject(name, error.message);
          result.rejected++;
        } else {
          this.report(`cannot read the pending journal ${name}: ${(error as Error).message}`, 'error');
        }
      }
    }
    // The writer leaves out what is stored already (an earlier holder that stopped before deleting
    // a journal, an exit journal of appends that did complete) and what the batch repeats.
    const all = batches.flatMap((b) => b.records);
    if (all.length > 0) result.appended = (await this.ledger.append(all)).stored;
    result.present = all.length - result.appended;
    for (const b of batches) {
      b.state.offset = b.offset;
      for (const n of b.seen) {
        b.state.seen.add(n);
        if (n > b.state.max) b.state.max = n;
      }
      b.state.ended ||= b.ended;
      // A writer found dead may have added lines after they were read (during the append above)
      // and then died: the journal goes only once it is read to its end after the writer died.
      if (!b.state.ended && (!this.writerGone(b.name) || this.grown(b.name, b.size))) continue;
      if (b.torn) this.report(`the pending journal ${b.name} ends in an incomplete line (its writer died while writing it); that line was not appended`, 'warn');
      if (b.state.seen.size !== b.state.max + 1) {
        this.report(`the pending journal ${b.name} is missing ${b.state.max + 1 - b.state.seen.size} of its lines (removed after they were written)`, 'error');
      }
      try {
        unlinkSync(join(pending, b.name));
      } catch (error) {
        this.report(`cannot delete the appended pending journal ${b.name}: ${(error as Error).message}`, 'warn');
      }
      this.files.delete(b.name);
    }
    if (batches.some((b) => !this.files.has(b.name))) await this.ledger.sync().then(() => syncDirSync(pending));
    return result;
  }

  /** The complete lines after the state's offset, authenticated. */
  private read(name: string, state: FileState): { records: LedgerRecord[]; seen: Set<number>; offset: number; size: number; ended: boolean; torn: boolean } {
    const path = join(this.dir, PENDING_DIR, name);
    const size = statSync(path).size;
    const buffer = Buffer.alloc(size - state.offset);
    if (buffer.length > 0) {
      const fd = openSync(path, 'r');
      try {
        for (let got = 0; got < buffer.length; ) {
          const n = readSync(fd, buffer, got, buffer.length - got, state.offset + got);
          if (n <= 0) break;
          got += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    const complete = buffer.lastIndexOf(0x0a) + 1;
    const legacy = JOURNAL.exec(name)![3] === undefined;
    const records: LedgerRecord[] = [];
    // Line numbers read now: they join the state only once the records are appended (a failed
    // append reads them again).
    const seen = new Set<number>();
    let ended = legacy;
    const text = buffer.subarray(0, complete).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: { n?: unknown; record?: LedgerRecord; end?: unknown; mac?: unknown };
      try {
        entry = JSON.parse(line);
      } catch {
        throw new JournalRejected('a line is not JSON');
      }
      if (legacy) {
        if (this.key) throw new JournalRejected('it is an unauthenticated journal (written without a key, or by an older version) and this ledger has a key');
        records.push(entry as LedgerRecord);
        continue;
      }
      if (typeof entry.n !== 'number' || state.seen.has(entry.n) || seen.has(entry.n)) throw new JournalRejected('its lines are repeated or out of place');
      const body = entry.end === true ? { n: entry.n, end: true } : { n: entry.n, record: entry.record };
      if (this.key) {
        const expected = Buffer.from(mac(this.key, name, body), 'hex');
        const given = typeof entry.mac === 'string' ? Buffer.from(entry.mac, 'hex') : Buffer.alloc(0);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          throw new JournalRejected(entry.mac === undefined ? 'a line carries no MAC (written without the key)' : 'a line fails authentication (written or changed without the key)');
        }
      } else if (entry.mac !== undefined) {
        throw new JournalRejected('it is authenticated with a key this process does not have (set the same LLM_AUDIT_SIGNING_KEY / LLM_AUDIT_HASH_KEY in every writer)');
      }
      seen.add(entry.n);
      if (entry.end === true) ended = true;
      else if (entry.record && typeof entry.record === 'object') records.push(entry.record);
      else throw new JournalRejected('a line holds no record');
    }
    if (!this.key && records.length > 0) {
      this.report(`appending ${records.length} records of the unauthenticated pending journal ${name}: without LLM_AUDIT_SIGNING_KEY or LLM_AUDIT_HASH_KEY journals cannot be checked`, 'warn');
    }
    return { records, seen, offset: state.offset + complete, size, ended, torn: complete < buffer.length };
  }

  /** Whether the journal no longer has the `size` it had when read (or cannot be looked at: it is kept then). */
  private grown(name: string, size: number): boolean {
    try {
      return statSync(join(this.dir, PENDING_DIR, name)).size !== size;
    } catch {
      return true;
    }
  }

  private writerGone(name: string): boolean {
    const pid = Number(JOURNAL.exec(name)![1]);
    return pid !== process.pid && !pidAlive(pid);
  }

  private reject(name: string, why: string): void {
    const pending = join(this.dir, PENDING_DIR);
    const rejected = join(pending, REJECTED_DIR);
    this.files.delete(name);
    try {
      mkdirSync(rejected, { recursive: true, mode: DIR_MODE });
      renameSync(join(pending, name), join(rejected, name));
      syncDirSync(pending);
    } catch (error) {
      this.report(`the pending journal ${name} failed authentication (${why}) and could not be moved aside: ${(error as Error).message}`, 'error');
      return;
    }
    this.report(`REJECTED the pending journal ${name}: ${why}. None of its records were appended; it was moved to ${PENDING_DIR}/${REJECTED_DIR}/ for inspection`, 'error');
  }
}

/** What a writer does with the pending journals (the span exporter's writers: writer.ts JournalOptions). */
export interface JournalOptions {
  /** The directory whose pending/ holds them (the file ledger's; with PostgreSQL, LLM_AUDIT_LEDGER_DIR). */
  dir: string;
  key: Buffer | undefined;
  /** What an operator must see (rejected journals, removed lines, unauthenticated journals). */
  report: (message: string, level: 'error' | 'warn') => void;
  /** A pass that failed: its records stay in their journals for the next pass. */
  onFailure: (error: unknown) => void;
  /** Which journals this writer appends (default all: the file ledger's lock holder is the only writer). */
  mine?: (name: string) => boolean;
}

/**
 * A LedgerWriter that also appends the pending journals, as part of its own lifecycle: once when
 * it opens (what other writers, or earlier processes, journaled comes first), every POLL_MS while
 * it is open, and once more when it closes, before its final checkpoint. The journals' records
 * go through the writer's append and its one dedup by span.
 */
export class JournalingWriter implements LedgerWriter {
  private readonly consumer: JournalConsumer;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly writer: LedgerWriter,
    private readonly options: JournalOptions,
  ) {
    this.consumer = new JournalConsumer(writer, options.dir, options.key, options.report, options.mine ? { mine: options.mine } : {});
    this.timer = setInterval(() => void this.pass(), POLL_MS);
    this.timer.unref?.();
  }

  static async start(writer: LedgerWriter, options: JournalOptions): Promise<JournalingWriter> {
    const journaling = new JournalingWriter(writer, options);
    await journaling.pass();
    return journaling;
  }

  private async pass(): Promise<void> {
    try {
      await this.consumer.consume();
    } catch (error) {
      this.options.onFailure(error);
    }
  }

  get description(): string {
    return this.writer.description;
  }
  get size(): number {
    return this.writer.size;
  }
  get backlog(): number {
    return this.writer.backlog;
  }
  get notices(): readonly string[] {
    return this.writer.notices;
  }
  append(records: readonly AppendInput[], options?: AppendOptions): Promise<AppendOutcome> {
    return this.writer.append(records, options);
  }
  checkpoint(): Promise<Checkpoint | undefined> {
    return this.writer.checkpoint();
  }
  sync(): Promise<void> {
    return this.writer.sync();
  }
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.pass();
    await this.writer.close();
  }
}

/** One pass of a JournalConsumer (what a writer does when it opens the ledger). */
export async function appendPendingJournals(
  ledger: JournalTarget,
  dir: string,
  key?: Buffer,
  report: (message: string, level: 'error' | 'warn') => void = () => {},
): Promise<ConsumeResult> {
  return new JournalConsumer(ledger, dir, key, report).consume();
}
