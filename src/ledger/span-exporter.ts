/**
 * An OpenTelemetry SpanExporter that writes one audit record per audited LLM span to the ledger
 * (file or PostgreSQL). `export()` calls back SUCCESS only once the records are durable (with the
 * default fsync policy `always`, on disk): appended to the ledger, or kept in this process's pending
 * journal for the ledger's holder to append (pending-journal.ts). Spans that are not audited LLM
 * calls are skipped.
 *
 * The exporter holds one LedgerWriter for both backends, from openLedgerWriter (writer.ts) with
 * `shared`: a SharedLedgerWriter (file/shared-writer.ts) that opens the ledger at the first record
 * and hides which process holds it (the file lock, journal mode while another writer holds it or
 * the database is unreachable, the retry every LOCK_RETRY_MS, takeover of a stale lock, worker
 * threads that never hold it, journals appended by the holder). What the exporter still decides is
 * what its own process owes the trail: a full backlog, process exit and spans after shutdown go to
 * its journal synchronously.
 *
 * Memory stays bounded: past `maxBacklog` records waiting for the disk, records go synchronously
 * to the journal (the app waits for the disk instead of the queue growing). Records that cannot be
 * written anywhere are reported by failure-policy.ts (stderr, metric, LLM_AUDIT_ON_FAILURE) and,
 * once the ledger works again, recorded in it as a `ledger.gap` record.
 */
import { diag } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { hostname } from 'node:os';
import { auditTrailRestored, onFailureFromEnv, reportAuditFailure, reportAuditProblem, reportRefusedRecord, setOnFailurePolicy, type OnFailurePolicy } from '../audit/failure-policy';
import { LedgerError } from './errors';
import { FileLedger, type FileLedgerOptions, type FsyncPolicy } from './file/ledger';
import type { PostgresLedgerOptions } from './postgres/writer';
import { redactUrl } from './postgres/url';
import { DEFAULT_LEDGER_DIR, fsyncPolicy, ledgerConfigFromEnv, openLedgerWriter, positiveInt, type AppendOutcome, type LedgerWriter } from './writer';
import { JournalWriter, journalKey, journalOf, type JournalOptions } from './file/pending-journal';
import { LOCK_RETRY_MS, type SharedOptions } from './file/shared-writer';
import { GAP_ACTION, claimedOperation, operationRecord, recordFromSpan, type LedgerRecord } from './record';
import { atProcessExit } from '../util/exit-hook';

export interface LedgerSpanExporterOptions {
  /** The file ledger's directory; with `postgresUrl`, where the journals (pending/) are kept. */
  dir: string;
  /** LLM_AUDIT_POSTGRES_URL: append to this PostgreSQL ledger instead of the file ledger in `dir`. */
  postgresUrl?: string;
  /** The file ledger's fsync policy, and the journals'. */
  fsync?: FsyncPolicy;
  signingKeyPath?: string;
  checkpointEvery?: number;
  /** LLM_AUDIT_HASH_KEY: the journal MAC key is derived from it when there is no signing key. */
  hashKey?: string;
  /** Records waiting for the disk past which new ones go synchronously to the journal (default 10000). */
  maxBacklog?: number;
  /** LLM_AUDIT_ON_FAILURE (default continue). */
  onFailure?: OnFailurePolicy;
  /** Advanced: everything else the writer accepts (clock, file opener for tests, pool size...). */
  ledger?: Omit<FileLedgerOptions, 'dir' | 'fsync' | 'signingKeyPath' | 'checkpointEvery'> & Pick<PostgresLedgerOptions, 'poolSize'>;
}

export { DEFAULT_LEDGER_DIR };
export const DEFAULT_MAX_BACKLOG = 10_000;

/**
 * Options from the environment: the ledger as ledgerConfigFromEnv (writer.ts) chooses it
 * (LLM_AUDIT_POSTGRES_URL, LLM_AUDIT_LEDGER_DIR, LLM_AUDIT_FSYNC, LLM_AUDIT_SIGNING_KEY,
 * LLM_AUDIT_CHECKPOINT_EVERY, LLM_AUDIT_LOG_ORIGIN, LLM_AUDIT_WITNESSES), plus LLM_AUDIT_HASH_KEY,
 * LLM_AUDIT_LEDGER_MAX_BACKLOG, LLM_AUDIT_ON_FAILURE.
 */
export function ledgerOptionsFromEnv(env: NodeJS.ProcessEnv): LedgerSpanExporterOptions {
  const config = ledgerConfigFromEnv(env);
  const options: LedgerSpanExporterOptions = { dir: config.backend === 'file' ? config.dir : env.LLM_AUDIT_LEDGER_DIR?.trim() || DEFAULT_LEDGER_DIR };
  if (config.backend === 'postgres') options.postgresUrl = config.url;
  const fsync = config.backend === 'file' ? config.fsync : fsyncPolicy('LLM_AUDIT_FSYNC', env.LLM_AUDIT_FSYNC);
  if (fsync) options.fsync = fsync;
  if (config.signingKeyPath) options.signingKeyPath = config.signingKeyPath;
  if (config.checkpointEvery) options.checkpointEvery = config.checkpointEvery;
  if (env.LLM_AUDIT_HASH_KEY) options.hashKey = env.LLM_AUDIT_HASH_KEY;
  const backlog = positiveInt('LLM_AUDIT_LEDGER_MAX_BACKLOG', env.LLM_AUDIT_LEDGER_MAX_BACKLOG);
  if (backlog) options.maxBacklog = backlog;
  if (config.transparency) options.ledger = { ...options.ledger, transparency: config.transparency };
  if (env.LLM_AUDIT_ON_FAILURE?.trim()) {
    try {
      options.onFailure = onFailureFromEnv(env);
    } catch (error) {
      throw new LedgerError('LEDGER_USAGE', (error as Error).message);
    }
  }
  return options;
}

export class LedgerSpanExporter implements SpanExporter {
  private readonly key: Buffer | undefined;
  /** This process's (thread's) journal: journal mode, a full backlog, exit, spans after shutdown. */
  private readonly journal: JournalWriter;
  private readonly maxBacklog: number;
  /**
   * The ledger, for both backends: a shared writer (file/shared-writer.ts) that opens it at the
   * first append and hides the lock, journal mode, retries and takeover. Made by ready() (which
   * lets it look for journals to append before any call) or at the first record.
   */
  private writer: Promise<LedgerWriter> | undefined;
  /** Looks at an unusable ledger directory again (ready()). */
  private dirTimer: NodeJS.Timeout | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  private gapping: Promise<void> | undefined;
  private pending = new Set<Promise<unknown>>();
  /** Records handed to write() that are neither appended nor in the journal yet (journaled at exit). */
  private unwritten = new Set<LedgerRecord[]>();
  /** Records that could not be written anywhere since the ledger last worked (for the gap record). */
  private lost: { count: number; first: string; last: string; error: string } | undefined;
  private shutDown = false;

  /** The trail in messages and metrics: the directory, or the database URL without its password. */
  private readonly trail: string;

  /** process.exit() runs no flush: what is still in memory goes to the journal then. */
  private readonly cancelExitJournal = atProcessExit(() => this.journalOnExit());

  constructor(private readonly options: LedgerSpanExporterOptions) {
    this.key = journalKey({ signingKey: options.ledger?.signingKey, signingKeyPath: options.signingKeyPath, hashKey: options.hashKey });
    this.journal = new JournalWriter(options.dir, this.key, options.fsync !== 'none');
    this.maxBacklog = options.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.trail = options.postgresUrl !== undefined ? redactUrl(options.postgresUrl) : options.dir;
    if (options.onFailure) setOnFailurePolicy(options.onFailure);
  }

  /**
   * On the `exit` event: the records waiting for the ledger to be opened, those whose append is
   * still in flight, and those waiting for a journal group commit, go to the journal
   * synchronously, and the journal is closed (the lock holder, or the next writer, appends it).
   * Never throws.
   */
  journalOnExit(): void {
    this.cancelExitJournal();
    // Batches the journal was handed already are in its file, or end() writes them.
    const records = [...this.unwritten].filter((batch) => !this.journal.holds(batch)).flat();
    // The record of a loss not yet in the ledger goes too: it would otherwise leave with the process.
    const lost = this.lost;
    if (lost) records.push(gapRecord(lost));
    try {
      this.journal.appendSync(records);
      this.journal.end();
    } catch (error) {
      reportAuditFailure(this.trail, records.length, error);
    }
  }

  /**
   * Opens nothing (the ledger is opened at the first record). A ledger directory that cannot be
   * used (its path is a file...) is reported now, loudly, through failure-policy.ts (under
   * LLM_AUDIT_ON_FAILURE=block calls are refused until it is fixed); never rejects.
   */
  async ready(): Promise<void> {
    const problem = FileLedger.unusableDir(this.options.dir);
    if (!problem) {
      // A main thread that makes no call still appends what its worker threads (or processes it
      // started) journal, once there is something: the shared writer watches for it.
      this.ledger(true);
      return;
    }
    reportAuditFailure(this.options.dir, 0, problem, true);
    // Looked at again every second: under LLM_AUDIT_ON_FAILURE=block no call comes to find it fixed.
    this.dirTimer = setInterval(() => {
      if (FileLedger.unusableDir(this.options.dir) || this.lost) return;
      this.stopDirTimer();
      auditTrailRestored(this.options.dir, 'its directory can be used now');
    }, LOCK_RETRY_MS);
    this.dirTimer.unref?.();
  }

  private stopDirTimer(): void {
    if (this.dirTimer) clearInterval(this.dirTimer);
    this.dirTimer = undefined;
  }

  /** The shared writer (made once; it opens the ledger at its first append). */
  private ledger(watch = false): Promise<LedgerWriter> {
    if (this.writer) return this.writer;
    const { dir, postgresUrl, fsync, signingKeyPath, checkpointEvery, ledger: advanced } = this.options;
    const common = {
      onWarning: (message: string) => diag.warn(`otel-llm-audit ledger: ${message}`),
      ...advanced,
      ...(signingKeyPath ? { signingKeyPath } : {}),
      ...(checkpointEvery ? { checkpointEvery } : {}),
    };
    // The writer appends the journals in pending/ (other writers', this process's own) when it
    // opens, every POLL_MS and when it closes (JournalingWriter): what was journaled comes first.
    const journals: JournalOptions = {
      dir,
      key: this.key,
      report: (message, level) => (level === 'error' ? reportAuditProblem(`ledger ${dir}: ${message}`) : diag.warn(`otel-llm-audit ledger ${dir}: ${message}`)),
      // The records stay in their journals for the next pass.
      onFailure: (error) => reportAuditFailure(this.trail, 0, error),
      // PostgreSQL: no lock, so every process is a writer; each appends its own journals (its
      // worker threads', its exit journal of an earlier run is a dead pid's) and the database
      // leaves out a span already stored.
      ...(postgresUrl !== undefined ? { mine: (name: string) => journalOf(name, process.pid) } : {}),
    };
    const shared: SharedOptions = { journal: this.journal, dir, trail: this.trail, postgres: postgresUrl !== undefined, watch };
    this.writer = openLedgerWriter(
      postgresUrl !== undefined
        ? { backend: 'postgres', url: postgresUrl, ...common, journals, shared }
        : { backend: 'file', dir, ...(fsync ? { fsync } : {}), ...common, journals, shared },
    );
    return this.writer;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const records: LedgerRecord[] = [];
    for (const span of spans) {
      const record = recordFromSpan(span);
      if (!record) continue;
      const claimed = claimedOperation(record);
      if (claimed) reportRefusedRecord(this.trail, claimed);
      else records.push(record);
    }
    if (records.length === 0) {
      resultCallback({ code: ExportResultCode.SUCCESS });
      return;
    }
    const work = this.write(records).catch((error: unknown) => {
      this.recordLoss(records.length, error);
      throw error;
    });
    this.track(work);
    work.then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) }),
    );
  }

  /** Durably: to the ledger (group commit), or to the journal (another holder, a full backlog, after shutdown). */
  private async write(records: LedgerRecord[]): Promise<void> {
    // Spans that end during or after shutdown (calls still finishing) are journaled, not dropped.
    if (this.shutDown) return this.journal.appendSync(records);
    // In `unwritten` from now on, not only once the ledger has them: the first record of a process
    // waits here while the ledger is opened (the lock taken, a stale one taken over, the journals
    // appended: many turns of the event loop), and a process.exit() meanwhile must journal it.
    // Before, it was in no list and no file then, and was lost without a word.
    this.unwritten.add(records);
    let outcome: AppendOutcome;
    try {
      const ledger = await this.ledger();
      // Past the backlog (the ledger's, or in journal mode the journal's), the app waits for the disk.
      if (ledger.backlog + records.length > this.maxBacklog) return this.journal.appendSync(records);
      outcome = await ledger.append(records, { unique: true });
    } finally {
      this.unwritten.delete(records);
    }
    // In the journal (another process holds the ledger, or it failed, which was reported).
    if (outcome.journaled) return;
    if (this.lost) await this.appendGap();
    else auditTrailRestored(this.trail, 'no record was lost');
  }

  /** Records that could not be written anywhere: reported now, recorded as a gap once the ledger works. */
  private recordLoss(count: number, error: unknown): void {
    const now = new Date().toISOString();
    const message = error instanceof Error ? error.message : String(error);
    this.lost = { count: (this.lost?.count ?? 0) + count, first: this.lost?.first ?? now, last: now, error: message };
    reportAuditFailure(this.trail, count, error);
    if (this.gapTimer) return;
    // Retried until it works: under LLM_AUDIT_ON_FAILURE=block no call comes to do it.
    this.gapTimer = setInterval(() => void this.appendGap(), LOCK_RETRY_MS);
    this.gapTimer.unref?.();
  }

  /** Writes the `ledger.gap` record of the records lost so far (to the ledger, or the journal); one at a time. */
  private appendGap(): Promise<void> {
    this.gapping ??= this.writeGap().finally(() => {
      this.gapping = undefined;
    });
    return this.gapping;
  }

  private async writeGap(): Promise<void> {
    const lost = this.lost;
    if (!lost) return;
    const gap = gapRecord(lost);
    try {
      // In journal mode the shared writer journals it (durably, as any record).
      await (await this.ledger()).append([gap], { unique: true });
    } catch {
      // Another writer holds the lock, or the ledger still fails: the journal keeps it durably, as
      // any record (a process that dies before the ledger works again no longer takes it along).
      try {
        this.journal.appendSync([gap]);
      } catch {
        return; // still failing (already reported); the timer tries again
      }
    }
    // Records lost while the gap record was being written are left for the next one.
    this.lost = this.lost === lost ? undefined : { ...this.lost!, count: this.lost!.count - lost.count, first: lost.last };
    if (!this.lost && this.gapTimer) {
      clearInterval(this.gapTimer);
      this.gapTimer = undefined;
    }
    auditTrailRestored(this.trail, `${lost.count} record(s) lost since ${lost.first} are recorded in it as a ${GAP_ACTION} record`);
  }

  private track(work: Promise<unknown>): void {
    const settled = work.catch(() => undefined);
    this.pending.add(settled);
    settled.then(() => this.pending.delete(settled));
  }

  /** Waits for exports in flight, then makes the ledger and the journal durable (whatever the fsync policy). */
  async forceFlush(): Promise<void> {
    await Promise.all([...this.pending]);
    await this.journal.flush();
    await (await this.writer)?.sync();
  }

  /**
   * Waits for exports in flight and closes this process's journal; the shared writer then appends
   * every journal if it holds the ledger (or can take it now), writes a final checkpoint and
   * releases the lock. Spans that end afterwards are journaled (see write()).
   */
  async shutdown(): Promise<void> {
    if (this.shutDown) return;
    await Promise.all([...this.pending]);
    // A loss not recorded yet is recorded now (ledger or journal), not left to a timer that stops here.
    if (this.lost) await this.appendGap();
    this.shutDown = true;
    this.stopDirTimer();
    if (this.gapTimer) clearInterval(this.gapTimer);
    this.gapTimer = undefined;
    await this.journal.flush();
    this.journal.end();
    // The holder appends every journal (this process's, closed above, included), then the final
    // checkpoint; the last writer to stop appends what the others journaled (the lock taken if free).
    await (await this.ledger()).close();
  }
}

/** The `ledger.gap` operation record of the records lost since the ledger last worked. */
function gapRecord(lost: { count: number; first: string; last: string; error: string }): LedgerRecord {
  return operationRecord({
    action: GAP_ACTION,
    timestamp: lost.first,
    tenantId: null,
    status: 'error',
    metadata: { lost_records: lost.count, first_failure: lost.first, last_failure: lost.last, error: lost.error, pid: process.pid, host: hostname() },
  });
}
