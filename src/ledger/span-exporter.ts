/**
 * An OpenTelemetry SpanExporter that writes one audit record per audited LLM span to the file
 * ledger. `export()` calls back SUCCESS only after the records are appended (and, with the default
 * fsync policy `always`, on disk); any failure calls back FAILED with the LedgerError. Spans that
 * are not audited LLM calls are skipped.
 */
import { diag } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { LedgerError } from './errors';
import { FSYNC_POLICIES, FileLedger, type FileLedgerOptions, type FsyncPolicy } from './file-ledger';
import { appendPendingJournals, writePendingJournal } from './pending-journal';
import { recordFromSpan, type LedgerRecord } from './record';
import { atProcessExit } from '../util/exit-hook';

export interface LedgerSpanExporterOptions {
  dir: string;
  fsync?: FsyncPolicy;
  signingKeyPath?: string;
  checkpointEvery?: number;
  /** Advanced: everything else FileLedger.open accepts (clock, file opener for tests...). */
  ledger?: Omit<FileLedgerOptions, 'dir' | 'fsync' | 'signingKeyPath' | 'checkpointEvery'>;
}

export const DEFAULT_LEDGER_DIR = './llm-audit-ledger';

/** Options from the environment: LLM_AUDIT_LEDGER_DIR, LLM_AUDIT_FSYNC, LLM_AUDIT_SIGNING_KEY, LLM_AUDIT_CHECKPOINT_EVERY. */
export function ledgerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): LedgerSpanExporterOptions {
  const options: LedgerSpanExporterOptions = { dir: env.LLM_AUDIT_LEDGER_DIR?.trim() || DEFAULT_LEDGER_DIR };
  const fsync = env.LLM_AUDIT_FSYNC?.trim().toLowerCase();
  if (fsync) {
    if (!(FSYNC_POLICIES as readonly string[]).includes(fsync)) {
      throw new LedgerError('LEDGER_USAGE', `LLM_AUDIT_FSYNC must be one of ${FSYNC_POLICIES.join(', ')}, got ${JSON.stringify(env.LLM_AUDIT_FSYNC)}`);
    }
    options.fsync = fsync as FsyncPolicy;
  }
  const key = env.LLM_AUDIT_SIGNING_KEY?.trim();
  if (key) options.signingKeyPath = key;
  const every = env.LLM_AUDIT_CHECKPOINT_EVERY?.trim();
  if (every) {
    const n = Number(every);
    if (!Number.isSafeInteger(n) || n < 1) throw new LedgerError('LEDGER_USAGE', `LLM_AUDIT_CHECKPOINT_EVERY must be a positive integer, got ${JSON.stringify(every)}`);
    options.checkpointEvery = n;
  }
  return options;
}

export class LedgerSpanExporter implements SpanExporter {
  private ledger: Promise<FileLedger> | undefined;
  private pending = new Set<Promise<unknown>>();
  /** Records handed to export() whose append has not settled yet. */
  private unwritten = new Set<LedgerRecord[]>();
  private shutDown = false;

  /** process.exit() runs no flush: the records still in flight then go to the pending journal. */
  private readonly cancelExitJournal = atProcessExit(() => this.journalOnExit());

  constructor(private readonly options: LedgerSpanExporterOptions) {}

  /**
   * On the `exit` event: the records whose append is still in flight go to the pending journal,
   * synchronously, for the next writer to append (see pending-journal.ts). Never throws.
   */
  journalOnExit(): void {
    this.cancelExitJournal();
    const records = [...this.unwritten].flat();
    if (records.length === 0) return;
    try {
      writePendingJournal(this.options.dir, records);
    } catch (error) {
      diag.error(`otel-llm-audit ledger: ${records.length} records could not be kept at exit: ${(error as Error).message}`);
    }
  }

  /**
   * Opens (and locks) the ledger now rather than at the first export, so that a ledger that cannot
   * be written (locked by another process, not a directory, no permission) is reported at startup.
   */
  ready(): Promise<void> {
    return this.open().then(() => undefined);
  }

  /** The ledger, opened (and locked) on first use. */
  private open(): Promise<FileLedger> {
    if (!this.ledger) {
      const { dir, fsync, signingKeyPath, checkpointEvery, ledger } = this.options;
      this.ledger = FileLedger.open({
        onWarning: (message) => diag.warn(`otel-llm-audit ledger: ${message}`),
        ...ledger,
        dir,
        ...(fsync ? { fsync } : {}),
        ...(signingKeyPath ? { signingKeyPath } : {}),
        ...(checkpointEvery ? { checkpointEvery } : {}),
      }).then(async (opened) => {
        // What an earlier process could not append before process.exit() comes first.
        try {
          const { appended, present } = await appendPendingJournals(opened, dir);
          if (appended + present > 0) diag.info(`otel-llm-audit ledger: appended ${appended} records left pending at an earlier exit (${present} were already in)`);
        } catch (error) {
          diag.error(`otel-llm-audit ledger: the pending records of an earlier exit in ${dir}/pending could not be appended: ${(error as Error).message}`);
        }
        return opened;
      });
      this.ledger.then(
        (l) => l.notices.forEach((n) => diag.warn(`otel-llm-audit ledger ${dir}: ${n}`)),
        () => {
          // A failed open is retried by the next export (the error is reported there).
          this.ledger = undefined;
        },
      );
    }
    return this.ledger;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.shutDown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new LedgerError('LEDGER_CLOSED', 'the ledger exporter is shut down') });
      return;
    }
    const records: LedgerRecord[] = [];
    const work = (async () => {
      for (const span of spans) {
        const record = recordFromSpan(span);
        if (record) records.push(record);
      }
      if (records.length === 0) return;
      this.unwritten.add(records);
      const ledger = await this.open();
      await ledger.append(records);
    })();
    this.track(work);
    void work.finally(() => this.unwritten.delete(records)).catch(() => undefined);
    work.then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: unknown) => {
        diag.error(`otel-llm-audit ledger: ${(error as Error).message}`);
        resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
  }

  private track(work: Promise<unknown>): void {
    const settled = work.catch(() => undefined);
    this.pending.add(settled);
    settled.then(() => this.pending.delete(settled));
  }

  /** Waits for exports in flight, then makes the ledger durable (whatever the fsync policy). */
  async forceFlush(): Promise<void> {
    await (await this.settledLedger())?.sync();
  }

  /** Waits for exports in flight, writes a final checkpoint, closes the files, releases the lock. */
  async shutdown(): Promise<void> {
    if (this.shutDown) return;
    this.shutDown = true;
    await (await this.settledLedger())?.close();
    this.cancelExitJournal();
  }

  /** The open ledger once the exports in flight are done; undefined if it was never (or could not be) opened. */
  private async settledLedger(): Promise<FileLedger | undefined> {
    await Promise.all([...this.pending]);
    // A failed open was already reported to the export that triggered it.
    return this.ledger?.catch(() => undefined);
  }
}
