/**
 * The ledger as the span exporter writes it: one {@link LedgerWriter} for every process (and
 * thread) of an application, whichever of them holds the ledger. It hides who does:
 *
 * - The backend's writer is opened at the first append, not before: a process that makes no LLM
 *   call (npm itself, a parent that only spawns workers) takes no lock and creates nothing.
 * - The first process to open it holds the file ledger's lock and appends; its writer appends the
 *   pending journals too (JournalingWriter, pending-journal.ts). Every other one (cluster workers,
 *   children under NODE_OPTIONS) finds the lock held (LEDGER_LOCKED) and writes to its own
 *   journal (journal mode), which the holder appends within POLL_MS, and tries the lock every
 *   LOCK_RETRY_MS: when the holder is gone, it takes a stale lock over and appends itself. A lock
 *   held by another writer is never an error.
 * - PostgreSQL has no lock (every process is a writer); a database that cannot be reached
 *   (LEDGER_IO) is journal mode too, loudly (reported through failure-policy.ts), retried every
 *   LOCK_RETRY_MS, and reported restored once the journaled records are appended.
 * - A worker thread never holds the lock: a thread that ends (or is terminated) while its process
 *   lives would leave a lock that no one can tell is stale. It journals; its main thread appends.
 * - A main thread that makes no call still appends what its worker threads (or processes it
 *   started) journal, once there is something (watch): it takes the lock only then, if nobody
 *   holds it; and at close, the last writer to stop appends what the others journaled.
 * - An append the holder's writer fails (disk full...) goes to the journal synchronously, for a
 *   later pass, and the failure is reported: `journaled` in the outcome says where records went.
 */
import { diag } from '@opentelemetry/api';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { auditTrailRestored, reportAuditFailure } from '../../audit/failure-policy';
import type { Checkpoint } from '../checkpoint';
import { LedgerError } from '../errors';
import type { LedgerRecord } from '../record';
import type { AppendInput } from '../protocol';
import type { AppendOptions, AppendOutcome, LedgerWriter } from '../writer';
import { PENDING_DIR } from './layout';
import type { JournalWriter } from './pending-journal';

/** How often a writer in journal mode tries to take the ledger's lock (or reach the database). */
export const LOCK_RETRY_MS = 1_000;

/** What a shared writer needs beside the backend's configuration (writer.ts LedgerConfig `shared`). */
export interface SharedOptions {
  /** This process's (thread's) journal: journal mode, and a failed append. */
  journal: JournalWriter;
  /** Where pending/ is (the file ledger's directory; with PostgreSQL, LLM_AUDIT_LEDGER_DIR). */
  dir: string;
  /** The trail in messages and metrics: the directory, or the database URL without its password. */
  trail: string;
  /** PostgreSQL: an unreachable database is journal mode (the file ledger has LEDGER_LOCKED). */
  postgres: boolean;
  /** Look for journals to append from the start, before any append (the exporter found its directory usable). */
  watch?: boolean;
}

export class SharedLedgerWriter implements LedgerWriter {
  /** Set while this process holds the ledger (its writer appends the journals too). */
  private holder: LedgerWriter | undefined;
  private opening: Promise<void> | undefined;
  /** Another writer holds the lock (or the database is unreachable): records go to the journal. */
  private journalMode = false;
  /** Retries the lock (journal mode), or looks for journals to take the lock for (watch). */
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** @param open opens the backend's writer (openLedgerWriter with `journals`); LEDGER_LOCKED when another process holds it. */
  constructor(
    private readonly open: () => Promise<LedgerWriter>,
    private readonly options: SharedOptions,
  ) {
    if (options.watch && isMainThread) this.every(() => void (this.journalsWaiting() && this.takeLock()));
  }

  get description(): string {
    return this.options.trail;
  }
  get size(): number {
    return this.holder?.size ?? 0;
  }
  /** Records waiting for the disk: the holder's, or in journal mode the journal's. */
  get backlog(): number {
    return this.holder ? this.holder.backlog : this.options.journal.backlog;
  }
  get notices(): readonly string[] {
    return this.holder?.notices ?? [];
  }

  append(records: readonly AppendInput[], options?: AppendOptions): Promise<AppendOutcome> {
    // Handed on in the same turn once the ledger is open: the holder's backlog grows at once, so
    // callers that look at `backlog` before appending (the exporter's bound) see every append.
    if (this.holder || this.journalMode || this.closed) return this.appendNow(records, options);
    return this.connect().then(() => this.appendNow(records, options));
  }

  private async appendNow(records: readonly AppendInput[], options?: AppendOptions): Promise<AppendOutcome> {
    const ledger = this.holder;
    const journaled = (): AppendOutcome => ({ firstSeq: this.size, lastSeq: this.size - 1, stored: 0, duplicates: 0, journaled: records.length });
    const plain = records as readonly LedgerRecord[];
    if (!ledger) {
      await this.options.journal.append(plain);
      return journaled();
    }
    try {
      return await ledger.append(records, options);
    } catch (error) {
      // The ledger failed (disk full...): the journal keeps the records for a later pass.
      try {
        this.options.journal.appendSync(plain);
      } catch (journalError) {
        const code = error instanceof LedgerError ? error.code : 'LEDGER_IO';
        throw new LedgerError(code, `${(error as Error).message}; and ${(journalError as Error).message}`, { cause: journalError });
      }
      reportAuditFailure(this.options.trail, 0, error);
      return journaled();
    }
  }

  checkpoint(): Promise<Checkpoint | undefined> {
    return this.holder?.checkpoint() ?? Promise.resolve(undefined);
  }

  async sync(): Promise<void> {
    await this.holder?.sync();
  }

  /**
   * The last writer to stop appends what the others journaled (it takes the lock if it is free);
   * the holder appends every journal (this process's, closed by the caller first), writes a final
   * checkpoint and releases the lock.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stopTimer();
    if (!this.holder && this.journalsWaiting()) await this.takeLock();
    this.closed = true;
    this.stopTimer();
    const ledger = this.holder;
    this.holder = undefined;
    await ledger?.close();
  }

  /** Whether pending/ holds journals (nothing is created to find out). */
  private journalsWaiting(): boolean {
    try {
      return readdirSync(join(this.options.dir, PENDING_DIR)).some((name) => name.endsWith('.jsonl'));
    } catch {
      return false;
    }
  }

  /** Takes the lock at the first record; LEDGER_LOCKED switches to journal mode. */
  private connect(): Promise<void> {
    if (this.holder || this.journalMode || this.closed) return Promise.resolve();
    if (!isMainThread) {
      this.journalMode = true;
      return Promise.resolve();
    }
    this.opening ??= this.tryLock().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async tryLock(): Promise<void> {
    const { dir, postgres, trail } = this.options;
    let ledger: LedgerWriter;
    try {
      ledger = await this.open();
    } catch (error) {
      const locked = error instanceof LedgerError && error.code === 'LEDGER_LOCKED';
      // PostgreSQL not reachable: the records wait in this process's journal (durably, as for a
      // lock held by another writer) and the writer is opened again every LOCK_RETRY_MS. Loud,
      // since nothing reaches the ledger meanwhile; nothing is lost either.
      const unreachable = postgres && error instanceof LedgerError && error.code === 'LEDGER_IO';
      if (!locked && !unreachable) throw error;
      if (unreachable) reportAuditFailure(trail, 0, error);
      if (!this.journalMode) {
        this.journalMode = true;
        diag.info(`otel-llm-audit ledger ${dir}: ${error.message}; this process writes to its journal ${this.options.journal.name}, which the lock holder appends`);
        this.every(() => void this.takeLock());
      }
      return;
    }
    ledger.notices.forEach((n) => diag.warn(`otel-llm-audit ledger ${dir}: ${n}`));
    this.holder = ledger;
    if (this.journalMode && postgres) auditTrailRestored(trail, 'the records journaled meanwhile were appended');
    this.journalMode = false;
    // No more lock retries: the writer polls the journals itself.
    this.stopTimer();
  }

  /** Journal mode (and a main thread at close or with journals waiting): try the lock (its holder may be gone). */
  private async takeLock(): Promise<void> {
    if (this.opening || this.holder || this.closed || !isMainThread) return;
    this.opening = this.tryLock().finally(() => {
      this.opening = undefined;
    });
    try {
      await this.opening;
    } catch (error) {
      diag.warn(`otel-llm-audit ledger ${this.options.dir}: cannot take over the ledger: ${(error as Error).message}`);
    }
  }

  private every(task: () => void): void {
    this.stopTimer();
    this.timer = setInterval(task, LOCK_RETRY_MS);
    this.timer.unref?.();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
