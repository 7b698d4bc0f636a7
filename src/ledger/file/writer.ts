/**
 * The file ledger as a {@link LedgerWriter}: FileLedger (the lock, group commit, segments,
 * checkpoints) plus the span index that makes `append` idempotent by span, as PostgreSQL's unique
 * (trace_id, span_id) does there.
 *
 * The index holds the key of every stored span (spanKey, about 100 bytes of memory per record);
 * it is built by one streaming pass over the ledger at the first append that needs it (a writer
 * whose callers pass `unique`, as the span exporter does for its own spans, never builds it), and
 * kept up to date by this writer, which holds the lock: nothing else appends meanwhile.
 */
import type { Checkpoint } from '../checkpoint';
import { scanRecords } from '../query';
import { spanKey, withoutDuplicates } from '../record';
import { SerialQueue, serialized, type AppendInput, type SerializedRecord } from '../protocol';
import type { AppendOptions, AppendOutcome, LedgerWriter } from '../writer';
import { FileLedger, FileLedgerSource, type FileLedgerOptions } from './ledger';

export class FileLedgerWriter implements LedgerWriter {
  readonly description: string;
  private index: Set<string> | undefined;
  /** While the index is being built: spans appended with `unique` meanwhile, which the scan may have missed. */
  private building: Set<string> | undefined;
  /** Index look-up and append, one batch at a time: two batches carrying one span cannot both find it new. */
  private readonly queue = new SerialQueue();

  private constructor(readonly ledger: FileLedger) {
    this.description = ledger.dir;
  }

  static async open(options: FileLedgerOptions): Promise<FileLedgerWriter> {
    return new FileLedgerWriter(await FileLedger.open(options));
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
    if (options.unique) return this.appendFresh(records.map(serialized), records.length);
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
    if (known) for (const { record } of fresh) known.add(spanKey(record));
    return { ...range, stored: fresh.length, duplicates: total - fresh.length };
  }

  private async spanIndex(): Promise<Set<string>> {
    if (this.index) return this.index;
    const index = new Set<string>();
    this.building = new Set<string>();
    try {
      for await (const hit of scanRecords(new FileLedgerSource(this.ledger.dir))) index.add(spanKey(hit.record));
      for (const key of this.building) index.add(key);
    } finally {
      this.building = undefined;
    }
    this.index = index;
    return index;
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
