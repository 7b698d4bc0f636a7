/**
 * The PostgreSQL ledger writer. Appends are grouped (group commit: those that arrive during a
 * transaction share the next one), and every group is one transaction that first takes the ledger's
 * transaction advisory lock, so any number of writers (several `llm-audit serve` instances)
 * produce one sequence of records; a writer that finds records appended by another since its last
 * append walks them (checking the chain) to bring its Merkle state up to date, then appends.
 *
 * In the same transaction: the chain rows (their unique (trace_id, span_id) constraint with
 * ON CONFLICT DO NOTHING keeps a re-sent span out), the records rows (the very lines the file
 * ledger writes, so verification is shared), and a checkpoint when one is due; with a signing key,
 * a signed checkpoint in every transaction. A failed transaction leaves nothing behind.
 *
 * With a key, rows after the newest checkpoint the key signed were not written by a signing writer
 * (the writer role without the key can insert correctly chained rows): the writer marks them with a
 * `ledger.recovered` record before its own, at open and in every transaction (unsignedMarker).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { GroupCommit } from '../../util/group-commit';
import { canonicalJson } from '../../audit/canonical-json';
import { initialChainState, walkChain, type ChainState } from '../chain';
import { checkSignature, loadPrivateKey, parseCheckpoint, vouchedSize, type Checkpoint } from '../checkpoint';
import { LedgerError } from '../errors';
import {
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  SerialQueue,
  buildCheckpoint,
  chainBatches,
  checkpointDue,
  afterPreparing,
  resumePoint,
  serialized,
  unsignedRange,
  SerializedRecord,
  type AppendInput,
  type CheckpointRule,
} from '../protocol';
import { CheckpointPublisher } from '../transparency';
import { spanKey, type LedgerRecord } from '../record';
import type { AppendOptions, AppendOutcome, LedgerWriter, WriterOptions } from '../writer';
import { createPool, pgError } from './connection';
import { APPEND_LOCK_KEY, SCHEMA } from './migrations';
import { binaryArray, prepareRow, recordsInsert, type PreparedRow } from './rows';
import { PostgresLedgerSource } from './source';

export interface PostgresLedgerOptions extends WriterOptions {
  url: string;
  /** Connections of the writer's pool (default 4). */
  poolSize?: number;
  /**
   * Work through this source's connections (of the same url) instead of a pool of its own, which
   * close() then leaves open: a CLI read records itself (audit.read) on the connection its report
   * used, whose server process has the partitions' catalog cached already (a fresh connection spent
   * ~90 ms planning its first statement over 36 partitions, measured at 200k records).
   */
  source?: PostgresLedgerSource;
  // clock: for appended_at (partition day) and checkpoint times; default the database's.
}

export type PostgresAppendResult = AppendOutcome;

export class PostgresLedger implements LedgerWriter {
  private readonly pool: Pool;
  private readonly ownPool: boolean;
  private readonly source: PostgresLedgerSource;
  private readonly key: KeyObject | undefined;
  private readonly rule: CheckpointRule;
  private readonly clock: (() => Date) | undefined;
  private readonly onWarning: (message: string) => void;
  private ledgerId = '';
  private state: ChainState = initialChainState();
  /** Size of the newest checkpoint this writer's key signed, as far as this writer knows (key only). */
  private vouched = 0;
  private readonly partitions = new Set<string>();
  private readonly openedAt = Date.now();
  private readonly queue = new SerialQueue();
  /** Nothing to report at open: rows no signing writer signed are marked by a record and a warning. */
  readonly notices: readonly string[] = [];
  private closed = false;
  readonly publisher: CheckpointPublisher;
  /** The note of a checkpoint in the open transaction: offered to witnesses once it commits. */
  private uncommittedNote: string | undefined;
  /** Size of the checkpoint written in the open transaction, and of the newest this writer committed. */
  private uncommittedSize: number | undefined;
  private committedSize = -1;

  private constructor(readonly url: string, options: PostgresLedgerOptions) {
    // Idle connections do not keep the process alive: an application writing its own records
    // (LLM_AUDIT_POSTGRES_URL) must still reach beforeExit, where the exporter flushes and closes.
    this.ownPool = options.source === undefined;
    this.pool = options.source?.pool ?? createPool(url, { max: options.poolSize ?? 4, allowExitOnIdle: true });
    this.source = options.source ?? new PostgresLedgerSource(url, { pool: this.pool });
    this.key = options.signingKey ?? (options.signingKeyPath ? loadPrivateKey(options.signingKeyPath) : undefined);
    // With a key, a signed checkpoint in every append transaction: no unsigned window at all (the
    // rows and their signature commit together), and a row whose transaction recorded none was
    // not written by a signing writer, which verify checks (PostgresLedgerSource.unsignedTransactions).
    this.rule = {
      every: options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY,
      intervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
      signEveryAppend: this.key !== undefined,
    };
    this.clock = options.clock;
    this.onWarning = options.onWarning ?? (() => {});
    this.publisher = new CheckpointPublisher(
      options.transparency ?? {},
      this.key,
      {
        storeCosigned: async (note, witness, size) => {
          await this.pool.query(`INSERT INTO ${SCHEMA}.cosigned_notes (tree_size, witness, note) VALUES ($1, $2, $3)`, [size, witness, note]);
        },
        source: () => new PostgresLedgerSource(url, { pool: this.pool }),
      },
      this.onWarning,
    );
  }

  get name(): string {
    return this.source.name;
  }

  get description(): string {
    return this.source.name;
  }

  get backlog(): number {
    return this.group.backlog;
  }

  /** Every commit is durable already. */
  async sync(): Promise<void> {}

  get size(): number {
    return this.state.range.size;
  }

  static async open(options: PostgresLedgerOptions): Promise<PostgresLedger> {
    const ledger = new PostgresLedger(options.url, options);
    try {
      await ledger.source.assertCurrentSchema();
      ledger.ledgerId = (await ledger.source.ledgerId()) ?? '';
      ledger.publisher.setLedgerId(ledger.ledgerId);
      ledger.state = await ledger.recover();
      // Rows no signing writer signed are marked before anything else is appended (see unsignedMarker).
      if (ledger.key) await ledger.checkpoint();
      // The note is in the checkpoint's row, so nothing is missing after a crash: only the
      // witnesses are offered the newest one (they may have missed it).
      await ledger.publisher.resume((await ledger.source.checkpoints()).map((c) => c.checkpoint), await ledger.source.signedNotes(), async () => {});
    } catch (error) {
      await ledger.endPool();
      throw error;
    }
    return ledger;
  }

  /** Chain state from the newest usable checkpoint (or tombstone) and the entries after it. */
  private async recover(client?: PoolClient): Promise<ChainState> {
    const checkpoints = await this.source.checkpoints();
    if (this.key) this.vouched = vouchedSize(checkpoints, createPublicKey(this.key));
    const state = resumePoint(checkpoints, (c) => c.ledger_id === this.ledgerId)?.state ?? initialChainState();
    await walkChain(this.source.entriesFrom(state.range.size, client), state);
    return state;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(task);
  }

  /**
   * Appends the records whose span is not yet in the ledger, in one transaction. Resolves once
   * committed; on any failure nothing was stored.
   */
  append(records: readonly AppendInput[], _options?: AppendOptions): Promise<PostgresAppendResult> {
    // Encoded now, while an earlier group's transaction may be running (rows.ts PreparedRow).
    return afterPreparing(() => records.map((r) => prepareRow(serialized(r))), (rows) => this.group.add(rows));
  }

  /** Group commit: the appends that arrive during a transaction share the next one. */
  private readonly group = new GroupCommit<PreparedRow, PostgresAppendResult>(
    (batches) => this.transaction((client) => this.appendIn(client, batches)),
    (task) => this.enqueue(task),
  );

  /** Writes a checkpoint now if records were added since the newest one. */
  checkpoint(): Promise<Checkpoint | undefined> {
    return this.enqueue(() => this.transaction((client) => this.checkpointIn(client)));
  }

  /** A checkpoint if records were added since the newest one, after marking rows no signing writer signed. */
  private async checkpointIn(client: PoolClient): Promise<{ value: Checkpoint | undefined; state: ChainState; vouched?: number }> {
    const marked = await this.appendIn(client, []);
    if (marked.checkpoint) return { ...marked, value: marked.checkpoint };
    const last = await this.lastCheckpoint(client);
    const checkpoint = marked.state.range.size > last.size ? await this.writeCheckpoint(client, marked.state) : undefined;
    return { value: checkpoint, state: marked.state, ...(checkpoint && this.key ? { vouched: marked.state.range.size } : {}) };
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<{ value: T; state: ChainState; vouched?: number }>): Promise<T> {
    if (this.closed) throw new LedgerError('LEDGER_CLOSED', `the ledger ${this.name} is closed`);
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw pgError(error, 'cannot append to the ledger', this.name);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(${APPEND_LOCK_KEY})`);
      const { value, state, vouched } = await work(client);
      await client.query('COMMIT');
      this.state = state;
      if (vouched !== undefined) this.vouched = Math.max(this.vouched, vouched);
      this.publisher.offer(this.uncommittedNote);
      this.uncommittedNote = undefined;
      if (this.uncommittedSize !== undefined) this.committedSize = this.uncommittedSize;
      this.uncommittedSize = undefined;
      return value;
    } catch (error) {
      this.uncommittedNote = undefined;
      this.uncommittedSize = undefined;
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError as Error;
      }
      // A failed COMMIT may still have committed: the next append catches up from the database.
      throw pgError(error, 'cannot append to the ledger', this.name);
    } finally {
      client.release(broken);
    }
  }

  /** Brings the state up to what the database holds (other writers' appends), under the lock. */
  private async catchUp(client: PoolClient): Promise<ChainState> {
    const head = await client.query<{ seq: string; leaf: Buffer }>(
      `SELECT seq::text AS seq, leaf_hash AS leaf FROM ${SCHEMA}.chain c ORDER BY c.seq DESC LIMIT 1`,
    );
    const size = head.rows.length === 0 ? 0 : Number(head.rows[0]!.seq) + 1;
    const mine = this.state.range.size;
    if (size === mine && (size === 0 || head.rows[0]!.leaf.equals(this.state.lastLeaf))) return this.state;
    if (size < mine || (size === mine && size > 0)) {
      throw new LedgerError(
        'LEDGER_TRUNCATED',
        `the ledger in ${this.name} has ${size} entries but this writer already appended up to ${mine} (or the last entry differs): the database was restored or altered; run \`llm-audit verify --postgres URL\``,
      );
    }
    const state = { range: this.state.range.clone(), lastLeaf: this.state.lastLeaf };
    const first = await client.query<{ seq: string }>(`SELECT min(seq)::text AS seq FROM ${SCHEMA}.records WHERE seq >= $1`, [mine]);
    if (first.rows[0]?.seq !== null && first.rows[0]?.seq !== undefined && Number(first.rows[0].seq) > mine) {
      // Entries this writer never saw were removed by retention meanwhile: start again from the tombstone.
      return this.recover(client);
    }
    await walkChain(this.source.entriesFrom(mine, client), state);
    if (state.range.size !== size) {
      throw new LedgerError('LEDGER_RECORD_MISSING', `${this.name}: the chain has ${size} entries but only ${state.range.size} records were found`);
    }
    return state;
  }

  /** Size of the newest checkpoint (-1 when none) and its age by the database's clock. */
  private async lastCheckpoint(client: PoolClient): Promise<{ size: number; ageMs: number }> {
    const r = await client.query<{ size: string | null; age: number | null }>(
      `SELECT max(tree_size)::text AS size, (extract(epoch FROM clock_timestamp() - max(created_at)) * 1000)::float8 AS age
         FROM ${SCHEMA}.checkpoints`,
    );
    const row = r.rows[0];
    return {
      size: row?.size === null || row?.size === undefined ? -1 : Number(row.size),
      // None yet: the interval runs from this writer's start, as for the file ledger (protocol.ts).
      ageMs: row?.age === null || row?.age === undefined ? Date.now() - this.openedAt : row.age,
    };
  }

  /** One transaction for every batch of a group; one result per batch (its fresh records get consecutive seqs). */
  private async appendIn(
    client: PoolClient,
    batches: readonly (readonly PreparedRow[])[],
  ): Promise<{ value: PostgresAppendResult[]; state: ChainState; vouched?: number; checkpoint?: Checkpoint }> {
    const records = batches.flat();
    const base = await this.catchUp(client);
    const marker = await this.unsignedMarker(client, base);
    // Spans already stored, and repeats within the request, are left out.
    const traceIds = records.map((r) => r.traceId);
    const spanIds = records.map((r) => r.spanId);
    const existing = new Set<string>();
    if (records.length > 0) {
      const found = await client.query<{ t: string; s: string }>(
        `SELECT c.trace_id AS t, c.span_id AS s FROM ${SCHEMA}.chain c
           JOIN unnest($1::text[], $2::text[]) AS u(t, s) ON c.trace_id = u.t AND c.span_id = u.s`,
        [binaryArray('text', traceIds), binaryArray('text', spanIds)],
      );
      for (const row of found.rows) existing.add(spanKey({ trace_id: row.t, span_id: row.s }));
    }
    const fresh: PreparedRow[] = marker ? [prepareRow(SerializedRecord.of(marker))] : [];
    const results: PostgresAppendResult[] = [];
    for (const batch of batches) {
      const firstSeq = base.range.size + fresh.length;
      for (const record of batch) {
        const key = spanKey({ trace_id: record.traceId, span_id: record.spanId });
        if (existing.has(key)) continue;
        existing.add(key);
        fresh.push(record);
      }
      const stored = base.range.size + fresh.length - firstSeq;
      results.push({ stored, duplicates: batch.length - stored, firstSeq, lastSeq: firstSeq + stored - 1 });
    }
    if (fresh.length === 0) return { value: results, state: base };

    const headAt = await client.query<{ at: Date }>(
      `SELECT greatest(coalesce($1::timestamptz, clock_timestamp()),
                       (SELECT appended_at FROM ${SCHEMA}.chain ORDER BY seq DESC LIMIT 1)) AS at`,
      [this.clock ? this.clock().toISOString() : null],
    );
    const appendedAt = headAt.rows[0]!.at;
    const day = appendedAt.toISOString().slice(0, 10);
    if (!this.partitions.has(day)) {
      await client.query(`SELECT ${SCHEMA}.ensure_partition($1::date)`, [day]);
      this.partitions.add(day);
    }

    const chained = chainBatches(base, [fresh.map((r) => r.serial)]);
    const state = chained.state;
    const firstSeq = base.range.size;
    const { lines, prevs } = chained;
    const leaves = chained.leaves.map((leaf) => leaf.toString('hex'));
    const inserted = await client.query(
      `INSERT INTO ${SCHEMA}.chain (seq, trace_id, span_id, prev_hash, leaf_hash, appended_at)
       SELECT u.seq, u.t, u.s, decode(u.prev, 'hex'), decode(u.leaf, 'hex'), $6::timestamptz
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(seq, t, s, prev, leaf)
        ORDER BY u.seq
       ON CONFLICT (trace_id, span_id) DO NOTHING`,
      [
        binaryArray('int8', lines.map((_, i) => firstSeq + i)),
        binaryArray('text', fresh.map((r) => r.traceText)),
        binaryArray('text', fresh.map((r) => r.spanText)),
        binaryArray('text', prevs),
        binaryArray('text', leaves),
        appendedAt,
      ],
    );
    if (inserted.rowCount !== fresh.length) {
      // Cannot happen under the lock; if it does, nothing of this request is kept.
      throw new LedgerError('LEDGER_IO', `${this.name}: a span of this request was stored concurrently; the request was not stored, retry it`);
    }
    await client.query(recordsInsert({ firstSeq, appendedAt, lines, prevs, leaves }, fresh));
    // With a key the rule is "every transaction", and the newest checkpoint need not be read.
    if (this.rule.signEveryAppend || checkpointDue(this.rule, state.range.size, await this.lastCheckpoint(client))) {
      const checkpoint = await this.writeCheckpoint(client, state);
      return { value: results, state, ...(this.key ? { vouched: state.range.size, checkpoint } : {}) };
    }
    return { value: results, state };
  }

  /**
   * With a key: the `ledger.recovered` record naming the rows after the newest checkpoint this
   * key signed, when there are any. Every transaction of a signing writer signs its rows, so such
   * rows were inserted by someone else (the writer role without the key: an insider, or a writer
   * configured without it); signing over them silently would vouch for them. Checked under the
   * append lock at every transaction (cheap: only when other writers' rows were caught up with).
   */
  private async unsignedMarker(client: PoolClient, state: ChainState): Promise<LedgerRecord | undefined> {
    if (!this.key || state.range.size <= this.vouched) return undefined;
    const publicKey = createPublicKey(this.key);
    const rows = await client.query<{ id: string; line: string }>(
      `SELECT id::text AS id, line FROM ${SCHEMA}.checkpoints WHERE tree_size > $1 ORDER BY id`,
      [this.vouched],
    );
    for (const { id, line } of rows.rows) {
      let checkpoint: Checkpoint;
      try {
        checkpoint = parseCheckpoint(JSON.parse(line), `${SCHEMA}.checkpoints id ${id}`);
      } catch {
        continue; // vouches for nothing (verify names it); a malformed row must not stop the appends
      }
      if (checkpoint.ledger_id === this.ledgerId && checkSignature(checkpoint, publicKey) === 'valid') {
        this.vouched = Math.max(this.vouched, checkpoint.tree_size);
      }
    }
    const unsigned = unsignedRange(state.range.size, this.vouched, this.clock ? this.clock() : new Date());
    if (!unsigned) return undefined;
    this.onWarning(
      `${unsigned.range} ${unsigned.one ? 'was' : 'were'} found after the newest signed checkpoint (size ${this.vouched}) ` +
        `but no signing writer wrote ${unsigned.one ? 'it' : 'them'} (the writer role without the signing key?); marked as recovered at seq ${state.range.size}`,
    );
    return unsigned.record;
  }

  private async writeCheckpoint(client: PoolClient, state: ChainState): Promise<Checkpoint> {
    const size = state.range.size;
    const checkpoint = buildCheckpoint(this.ledgerId, state, null, this.clock ? this.clock() : new Date(), this.key);
    const note = this.publisher.note(checkpoint);
    await client.query(`INSERT INTO ${SCHEMA}.checkpoints (line, type, tree_size, note) VALUES ($1, 'checkpoint', $2, $3)`, [
      canonicalJson(checkpoint),
      size,
      note ?? null,
    ]);
    this.uncommittedNote = note;
    this.uncommittedSize = size;
    return checkpoint;
  }

  private async endPool(): Promise<void> {
    if (this.ownPool) await this.pool.end().catch(() => undefined);
  }

  /** A final checkpoint, then the connections are closed. Safe to call twice. */
  close(): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed) return;
      let failure: unknown;
      try {
        // Nothing to add when this writer's last transaction ended on a checkpoint of all it
        // appended (a CLI writer checkpoints in its one append: openCliWriter).
        if (this.committedSize !== this.state.range.size) await this.transaction((client) => this.checkpointIn(client));
      } catch (error) {
        failure = error;
        this.onWarning(`could not write the final checkpoint: ${(error as Error).message}`);
      }
      this.closed = true;
      // Before the pool goes: the witnesses read proofs and store cosignatures through it.
      await this.publisher.close();
      await this.endPool();
      if (failure) throw failure;
    });
  }
}
