/**
 * The file ledger as a {@link LedgerWriter}: FileLedger (the lock, group commit, segments,
 * checkpoints) plus the span index that makes `append` idempotent by span, as PostgreSQL's unique
 * (trace_id, span_id) does there.
 *
 * The index holds the keys of the newest stored spans (spanKey, about 100 bytes of memory each),
 * at most `dedupWindow` of them (DEFAULT_DEDUP_WINDOW): memory stays bounded however large the
 * ledger grows. A re-sent span is recognised while its record is among the newest `dedupWindow`
 * records, which covers a collector's retries (seconds to minutes); a span re-sent after more
 * records than that were stored is stored again, as a second record of the same span (chained like
 * any record: verify passes, reports count it twice). PostgreSQL has no such bound (its unique
 * constraint). The index is built by one streaming pass over the ledger at the first append that
 * needs it (a writer whose callers pass `unique`, as the span exporter does for its own spans,
 * never builds it), and kept up to date by this writer, which holds the lock: nothing else appends
 * meanwhile.
 */
import type { Checkpoint } from '../checkpoint';
import { scanRecords } from '../query';
import { spanKey, withoutDuplicates } from '../record';
import { SerialQueue, afterPreparing, serialized, type AppendInput, type SerializedRecord } from '../protocol';
import type { AppendOptions, AppendOutcome, LedgerWriter } from '../writer';
import { LedgerError } from '../errors';
import { FileLedger, FileLedgerSource, type FileLedgerOptions } from './ledger';

/** Span keys the file writer remembers for idempotence: about 100 MiB at the bound. */
export const DEFAULT_DEDUP_WINDOW = 1_000_000;

export interface FileWriterOptions extends FileLedgerOptions {
  /** How many of the newest stored spans the dedup index keeps (default DEFAULT_DEDUP_WINDOW). */
  dedupWindow?: number;
}

export class FileLedgerWriter implements LedgerWriter {
  readonly description: string;
  private index: Set<string> | undefined;
  /** While the index is being built: spans appended with `unique` meanwhile, which the scan may have missed. */
  private building: Set<string> | undefined;
  /** Index look-up and append, one batch at a time: two batches carrying one span cannot both find it new. */
  private readonly queue = new SerialQueue();

  private constructor(
    readonly ledger: FileLedger,
    private readonly dedupWindow: number,
  ) {
    this.description = ledger.dir;
  }

  static async open(options: FileWriterOptions): Promise<FileLedgerWriter> {
    const { dedupWindow = DEFAULT_DEDUP_WINDOW, ...ledger } = options;
    if (!Number.isSafeInteger(dedupWindow) || dedupWindow < 1) throw new LedgerError('LEDGER_USAGE', `dedupWindow must be a positive integer, got ${String(dedupWindow)}`);
    return new FileLedgerWriter(await FileLedger.open(ledger), dedupWindow);
  }

  get size(): number {
    return this.ledger.size;
  }

  get backlog(): number {
    return this.ledger.backlog;
  }

  get notices(): readonly string[] {
    return this.ledger.notices;
  }

  append(records: readonly AppendInput[], options: AppendOptions = {}): Promise<AppendOutcome> {
    if (options.unique) return afterPreparing(() => records.map(serialized), (fresh) => this.appendFresh(fresh, records.length));
    return this.queue.run(async () => {
      const index = await this.spanIndex();
      return this.appendFresh(
        withoutDuplicates(records.map(serialized), (key) => index.has(key), (s) => spanKey(s.record)),
        records.length,
      );
    });
  }

  private async appendFresh(fresh: readonly SerializedRecord[], total: number): Promise<AppendOutcome> {
    const range = fresh.length > 0 ? await this.ledger.append(fresh) : { firstSeq: this.ledger.size, lastSeq: this.ledger.size - 1 };
    const known = this.index ?? this.building;
    if (known) for (const { record } of fresh) this.remember(known, spanKey(record));
    return { ...range, stored: fresh.length, duplicates: total - fresh.length };
  }

  private async spanIndex(): Promise<Set<string>> {
    if (this.index) return this.index;
    const index = new Set<string>();
    this.building = new Set<string>();
    try {
      for await (const hit of scanRecords(new FileLedgerSource(this.ledger.dir))) this.remember(index, spanKey(hit.record));
      for (const key of this.building) this.remember(index, key);
    } finally {
      this.building = undefined;
    }
    this.index = index;
    return index;
  }

  /** Adds a key, forgetting the oldest beyond the window (a Set iterates in insertion order). */
  private remember(keys: Set<string>, key: string): void {
    keys.add(key);
    if (keys.size > this.dedupWindow) keys.delete(keys.values().next().value!);
  }

  checkpoint(): Promise<Checkpoint | undefined> {
    return this.ledger.checkpoint();
  }

  sync(): Promise<void> {
    return this.ledger.sync();
  }

  async close(): Promise<void> {
    await this.queue.idle();
    await this.ledger.close();
  }
}
