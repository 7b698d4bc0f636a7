/**
 * Where `llm-audit serve` puts records: the file ledger or PostgreSQL, behind one interface with
 * the two guarantees the receiver promises its clients:
 *
 * - all or nothing per request: one `append` per request; when it fails nothing of it is stored;
 * - idempotent: a span (trace id + span id) that was stored before is not stored again, so a
 *   collector that retries an export does not duplicate records.
 */
import { diag } from '@opentelemetry/api';
import { FileLedger, FileLedgerSource, type FileLedgerOptions } from '../ledger/file-ledger';
import { scanRecords } from '../ledger/query';
import { spanKey, withoutDuplicates, type LedgerRecord } from '../ledger/record';
import { PostgresLedger, type PostgresLedgerOptions } from '../ledger/postgres/writer';

export interface AppendOutcome {
  /** Records written by this append. */
  stored: number;
  /** Records left out because their span was already in the ledger (or twice in the request). */
  duplicates: number;
}

export interface IngestStore {
  /** For logs and /healthz: the directory, or the database URL without its password. */
  readonly description: string;
  /** Appends the records that are not yet stored, atomically. Throws (a LedgerError) when nothing was stored. */
  append(records: readonly LedgerRecord[]): Promise<AppendOutcome>;
  /** Writes a final checkpoint and releases the store. */
  close(): Promise<void>;
}

/**
 * The file ledger as an ingest store. The index of stored spans is rebuilt when the store opens
 * (one streaming pass over the ledger; about 100 bytes of memory per record) and kept in memory.
 */
export class FileIngestStore implements IngestStore {
  readonly description: string;
  private readonly keys = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly ledger: FileLedger) {
    this.description = ledger.dir;
  }

  static async open(options: FileLedgerOptions): Promise<FileIngestStore> {
    const ledger = await FileLedger.open({
      onWarning: (message) => diag.warn(`llm-audit serve: ${message}`),
      ...options,
    });
    const store = new FileIngestStore(ledger);
    try {
      // The writer holds the lock: nothing else appends while the index is built.
      for await (const hit of scanRecords(new FileLedgerSource(options.dir))) store.keys.add(spanKey(hit.record));
    } catch (error) {
      await ledger.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  get notices(): readonly string[] {
    return this.ledger.notices;
  }

  get size(): number {
    return this.ledger.size;
  }

  append(records: readonly LedgerRecord[]): Promise<AppendOutcome> {
    // Filtering and appending happen one request at a time, so two requests carrying the same span
    // cannot both find it new.
    const run = this.queue.then(async () => {
      const fresh = withoutDuplicates(records, (key) => this.keys.has(key));
      if (fresh.length > 0) await this.ledger.append(fresh);
      for (const record of fresh) this.keys.add(spanKey(record));
      return { stored: fresh.length, duplicates: records.length - fresh.length };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.ledger.close();
  }
}

/**
 * The PostgreSQL ledger as an ingest store: dedup is the chain table's unique (trace_id, span_id)
 * inside the append transaction, so it holds across several `serve` instances.
 */
export class PostgresIngestStore implements IngestStore {
  readonly description: string;

  private constructor(private readonly ledger: PostgresLedger) {
    this.description = ledger.name;
  }

  static async open(options: PostgresLedgerOptions): Promise<PostgresIngestStore> {
    const ledger = await PostgresLedger.open({
      onWarning: (message) => diag.warn(`llm-audit serve: ${message}`),
      ...options,
    });
    return new PostgresIngestStore(ledger);
  }

  get size(): number {
    return this.ledger.size;
  }

  async append(records: readonly LedgerRecord[]): Promise<AppendOutcome> {
    const result = await this.ledger.append(records);
    return { stored: result.stored, duplicates: result.duplicates };
  }

  close(): Promise<void> {
    return this.ledger.close();
  }
}
