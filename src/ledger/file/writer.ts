/**
 * The file ledger as a {@link LedgerWriter}: FileLedger (the lock, group commit, segments,
 * checkpoints) plus the one dedup by span (spanKey) that makes `append` idempotent, as PostgreSQL's
 * unique (trace_id, span_id) does there. Everything that appends to a file ledger goes through it:
 * `serve`, the span exporter, and the exporter's journal consumer (pending-journal.ts), which
 * hands it whatever the journals hold and counts what it leaves out.
 *
 * The dedup in bounded memory. The span index maps the key of stored spans to their timestamp, for
 * every stored span whose timestamp is at or after `horizon` (this writer holds the lock: nothing
 * else appends meanwhile, and it adds what it appends). It is built at the first append that
 * needs it, by one streaming pass over the records from the batch's oldest timestamp on (a writer
 * whose callers pass `unique`, as the span exporter does for its own spans, never builds it).
 * Past `spanIndexLimit` spans (default {@link SPAN_INDEX_LIMIT}, about 15 MB), the older half by
 * timestamp is dropped and `horizon` moves up. A record older than the horizon (a journal left by
 * a process that died days ago, a collector's late retry) is looked up by a streaming pass over
 * the records from its timestamp on that keeps only the batch's keys: memory is bounded by the
 * limit and the batch, whatever the ledger's size. That pass relies on what every read of the
 * ledger by time relies on (query.ts scanRecords): a record is appended on or after the UTC day of
 * its timestamp.
 */
import type { Checkpoint } from '../checkpoint';
import { scanRecords } from '../query';
import { spanKey, withoutDuplicates, type LedgerRecord } from '../record';
import { SerialQueue, afterPreparing, serialized, type AppendInput, type SerializedRecord } from '../protocol';
import type { AppendOptions, AppendOutcome, LedgerWriter } from '../writer';
import { FileLedger, FileLedgerSource, type FileLedgerOptions } from './ledger';

/** Spans the dedup index holds at most (each about 150 bytes: key, timestamp, map entry). */
export const SPAN_INDEX_LIMIT = 100_000;

export interface FileLedgerWriterOptions extends FileLedgerOptions {
  /** The dedup index's size limit (default SPAN_INDEX_LIMIT). */
  spanIndexLimit?: number;
}

/** A record's timestamp in ms; -Infinity when it has none that parses (it is then looked up from the start). */
function timeOf(record: LedgerRecord): number {
  const t = Date.parse(record.timestamp);
  return Number.isFinite(t) ? t : -Infinity;
}

export class FileLedgerWriter implements LedgerWriter {
  readonly description: string;
  /** Key -> timestamp of every stored span with timestamp >= horizon (see the module comment). */
  private readonly index = new Map<string, number>();
  /** Undefined until the index is first built (nothing indexed then). */
  private horizon: number | undefined;
  /** Index look-up and append, one batch at a time: two batches carrying one span cannot both find it new. */
  private readonly queue = new SerialQueue();
  private readonly limit: number;

  private constructor(
    readonly ledger: FileLedger,
    limit: number | undefined,
  ) {
    this.description = ledger.dir;
    this.limit = Math.max(2, limit ?? SPAN_INDEX_LIMIT);
  }

  static async open(options: FileLedgerWriterOptions): Promise<FileLedgerWriter> {
    const { spanIndexLimit, ...ledger } = options;
    return new FileLedgerWriter(await FileLedger.open(ledger), spanIndexLimit);
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

  /** Spans in the dedup index now (tests: it stays within the limit). */
  get indexedSpans(): number {
    return this.index.size;
  }

  append(records: readonly AppendInput[], options: AppendOptions = {}): Promise<AppendOutcome> {
    return afterPreparing(
      () => records.map(serialized),
      (batch) => {
        if (options.unique) return this.appendFresh(batch, batch.length);
        return this.queue.run(async () => {
          const stored = await this.storedOf(batch.map((s) => s.record));
          return this.appendFresh(
            withoutDuplicates(batch, (key) => stored.has(key), (s) => spanKey(s.record)),
            batch.length,
          );
        });
      },
    );
  }

  private async appendFresh(fresh: readonly SerializedRecord[], total: number): Promise<AppendOutcome> {
    const range = fresh.length > 0 ? await this.ledger.append(fresh) : { firstSeq: this.ledger.size, lastSeq: this.ledger.size - 1 };
    for (const { record } of fresh) this.remember(spanKey(record), timeOf(record));
    return { ...range, stored: fresh.length, duplicates: total - fresh.length };
  }

  /** The keys among `records` whose span is stored already. */
  private async storedOf(records: readonly LedgerRecord[]): Promise<Set<string>> {
    const stored = new Set<string>();
    if (records.length === 0) return stored;
    let oldest = Infinity;
    for (const record of records) oldest = Math.min(oldest, timeOf(record));
    if (this.horizon === undefined) await this.build(oldest);
    // Keys older than the horizon: looked up by a pass that keeps only them.
    const older = new Map<string, number>();
    for (const record of records) {
      const key = spanKey(record);
      const t = timeOf(record);
      if (t >= this.horizon!) {
        if (this.index.has(key)) stored.add(key);
      } else older.set(key, t);
    }
    if (older.size > 0) {
      let from = Infinity;
      for (const t of older.values()) from = Math.min(from, t);
      for await (const hit of scanRecords(new FileLedgerSource(this.ledger.dir), Number.isFinite(from) ? { from } : {})) {
        const key = spanKey(hit.record);
        if (older.has(key)) stored.add(key);
      }
    }
    return stored;
  }

  /** Indexes every stored span with timestamp >= `from` (appends meanwhile are indexed by appendFresh). */
  private async build(from: number): Promise<void> {
    this.horizon = from;
    for await (const hit of scanRecords(new FileLedgerSource(this.ledger.dir), Number.isFinite(from) ? { from } : {})) {
      this.remember(spanKey(hit.record), timeOf(hit.record));
    }
  }

  private remember(key: string, time: number): void {
    if (this.horizon === undefined || time < this.horizon) return;
    this.index.set(key, time);
    if (this.index.size > this.limit) this.dropOlderHalf();
  }

  /** Moves the horizon up to the median timestamp (past it when many share it) and forgets what is below. */
  private dropOlderHalf(): void {
    const times = [...this.index.values()].sort((a, b) => a - b);
    const median = times[times.length >> 1]!;
    // Many sharing the lowest time: past them (all of them, if they are all alike).
    this.horizon = median > times[0]! ? median : (times.find((t) => t > median) ?? Infinity);
    for (const [key, time] of this.index) if (time < this.horizon) this.index.delete(key);
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
