/**
 * The PostgreSQL ledger as a {@link LedgerSource}: the stored lines in seq order, partition by
 * partition (a partition is the database's "segment": one UTC day of appends), and the
 * checkpoints. verify, prove, query, reports and retention planning run on it unchanged.
 *
 * Each row is also checked against itself while it streams past: its leaf_hash column and the
 * chain table's must both be SHA-256(0x00 || line), and its seq, prev and indexed columns must be
 * those of its line. A row edited behind the application's back (triggers disabled) is named.
 */
import type { Pool, PoolClient } from 'pg';
import type { StoredNote } from '../file/note-store';
import type { CheckpointEntry, ItemsOptions, LedgerItem, LedgerSource } from '../backend';
import { parseCheckpoint } from '../checkpoint';
import { LedgerError, describeLocation } from '../errors';
import { leafHash } from '../merkle';
import type { LedgerRecord } from '../record';
import { createPool, pgError, redactUrl } from './connection';
import { LATEST_VERSION, SCHEMA, TENANT_READERS_VERSION, appliedMigrations, checkApplied } from './migrations';
import { PostgresReports, type Scope } from './reports';
import { ROW_SELECT, columnsDiffering, derivedColumns } from './rows';

export const PARTITION_NAME = /^records_(\d{4})(\d{2})(\d{2})$/;

/** UTC day bounds [from, to) of a partition, from its name. */
export function partitionBounds(name: string): { day: string; from: Date; to: Date } | undefined {
  const m = PARTITION_NAME.exec(name);
  if (!m) return undefined;
  const day = `${m[1]}-${m[2]}-${m[3]}`;
  const from = new Date(`${day}T00:00:00.000Z`);
  return { day, from, to: new Date(from.getTime() + 86_400_000) };
}

export function partitionLabel(name: string): string {
  return `${SCHEMA}.${name}`;
}

const PAGE = 2000;
/** Leaf hashes a statement of leafHashes() returns (2 MiB). */
const LEAF_PAGE = 65_536;

const ROW_COLUMNS = `r.seq::text AS seq, r.line, r.prev_hash, r.leaf_hash, c.leaf_hash AS chain_leaf,
  c.trace_id AS chain_trace_id, c.span_id AS chain_span_id, ${ROW_SELECT}`;

interface Row {
  seq: string;
  line: string;
  prev_hash: Buffer;
  leaf_hash: Buffer;
  chain_leaf: Buffer | null;
  chain_trace_id: string | null;
  chain_span_id: string | null;
  [column: string]: unknown;
}

export interface PostgresSourceOptions {
  /** Use this pool (not closed by close()) instead of one of the source's own. */
  pool?: Pool;
}

export class PostgresLedgerSource implements LedgerSource {
  readonly name: string;
  /** apply_retention() records the tombstone and drops the partitions in one transaction. */
  readonly atomicRetention = true;
  readonly seeksBySeq = true;
  /** The connections; a writer opened for the same command may share them (PostgresLedgerOptions.source). */
  readonly pool: Pool;
  private readonly ownPool: boolean;
  /**
   * The applied migrations once they were found current, and the role's access: each asked once
   * per source (one command), not by each step of it. A read command used to ask for the schema
   * four times and the privileges twice (bench/results/scale-pgcli-200k.md).
   */
  private current: Promise<Awaited<ReturnType<typeof appliedMigrations>>> | undefined;
  private accessOf: ReturnType<PostgresLedgerSource['readAccess']> | undefined;

  constructor(readonly url: string, options: PostgresSourceOptions = {}) {
    this.name = redactUrl(url);
    this.pool = options.pool ?? createPool(url);
    this.ownPool = options.pool === undefined;
  }

  /** Rows of one statement on the source's pool; a failure is a LedgerError saying `what` could not be done. */
  async select<T extends object>(sql: string, params: unknown[] = [], what = 'cannot read the ledger'): Promise<T[]> {
    try {
      return (await this.pool.query<T>(sql, params)).rows;
    } catch (error) {
      throw pgError(error, what, this.name);
    }
  }

  /**
   * The migrations applied to the database, checked against the package's. Kept once at the
   * newest version: no later migration can follow that this package would accept, so asking again
   * could only find the same (an older schema is asked again: `migrate` may bring it up).
   */
  private checkedMigrations(): Promise<Awaited<ReturnType<typeof appliedMigrations>>> {
    if (this.current) return this.current;
    const asked = this.askMigrations();
    this.current = asked;
    asked.then(
      (applied) => {
        if (applied.at(-1)?.version !== LATEST_VERSION && this.current === asked) this.current = undefined;
      },
      () => {
        if (this.current === asked) this.current = undefined;
      },
    );
    return asked;
  }

  /** One pooled connection. */
  private async askMigrations(): Promise<Awaited<ReturnType<typeof appliedMigrations>>> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw pgError(error, 'cannot open the ledger', this.name);
    }
    try {
      const applied = await appliedMigrations(client);
      checkApplied(applied);
      return applied;
    } catch (error) {
      throw pgError(error, 'cannot open the ledger', this.name);
    } finally {
      client.release();
    }
  }

  async open(): Promise<void> {
    const applied = await this.checkedMigrations();
    if (applied.length === 0) {
      throw new LedgerError('LEDGER_NOT_FOUND', `${this.name} holds no llm-audit ledger (run \`llm-audit migrate --postgres URL\` as the schema owner)`);
    }
  }

  /** The schema version in the database (0 when there is none). */
  async schemaVersion(): Promise<number> {
    const applied = await this.checkedMigrations();
    return applied.length === 0 ? 0 : applied[applied.length - 1]!.version;
  }

  async assertCurrentSchema(): Promise<void> {
    const version = await this.schemaVersion();
    if (version !== LATEST_VERSION) {
      throw new LedgerError(
        'LEDGER_SCHEMA_MISMATCH',
        version === 0
          ? `${this.name} holds no llm-audit ledger: run \`llm-audit migrate --postgres URL\` as the schema owner first`
          : `the ledger schema in ${this.name} is at version ${version}, this llm-audit needs ${LATEST_VERSION}: run \`llm-audit migrate --postgres URL\` as the schema owner`,
      );
    }
  }

  /**
   * The connected role, whether it may append (a writer's INSERT privileges on the chain, records
   * and checkpoints), and the tenants it is limited to when it reads through a tenant reader role
   * (`llm-audit grant-reader`; null when it reads every row).
   */
  access(): Promise<{ role: string; canAppend: boolean; tenants: string[] | null }> {
    // Asked once per source, as the schema is: a command's probe and its report share the answer.
    const asked = (this.accessOf ??= this.readAccess());
    asked.catch(() => {
      if (this.accessOf === asked) this.accessOf = undefined;
    });
    return asked;
  }

  private async readAccess(): Promise<{ role: string; canAppend: boolean; tenants: string[] | null }> {
    const version = await this.schemaVersion();
    const rows = await this.select<{ role: string; append: boolean; full: boolean }>(
      `SELECT current_user::text AS role,
        has_table_privilege('${SCHEMA}.chain', 'INSERT') AND has_table_privilege('${SCHEMA}.records', 'INSERT')
          AND has_table_privilege('${SCHEMA}.checkpoints', 'INSERT') AS append,
        has_table_privilege('${SCHEMA}.checkpoints', 'SELECT') AS full`,
    );
    const { role, append, full } = rows[0]!;
    if (full || version < TENANT_READERS_VERSION) return { role, canAppend: append, tenants: null };
    const tenants = await this.select<{ t: string }>(`SELECT DISTINCT t FROM ${SCHEMA}.reader_tenants() AS t ORDER BY t`);
    return { role, canAppend: append, tenants: tenants.map((r) => r.t) };
  }

  /** Set for a tenant reader: it sees only its tenants' records, never the whole chain or the checkpoints. */
  async partialView(): Promise<string | undefined> {
    const access = await this.access();
    if (access.tenants === null) return undefined;
    const which = access.tenants.length === 0 ? 'no tenant' : access.tenants.map((t) => JSON.stringify(t)).join(', ');
    return `the role ${access.role} is a tenant reader: row-level security shows it only the records of ${which}, not the whole chain or the checkpoints`;
  }

  async ledgerId(): Promise<string | null> {
    const rows = await this.select<{ id: string }>(`SELECT ledger_id::text AS id FROM ${SCHEMA}.ledger_meta`);
    return rows[0]?.id ?? null;
  }

  async checkpoints(): Promise<CheckpointEntry[]> {
    const rows = await this.select<{ id: string; line: string }>(`SELECT k.id::text AS id, k.line FROM ${SCHEMA}.checkpoints k ORDER BY k.id`);
    return rows.map(({ id, line }) => {
      const where = `${SCHEMA}.checkpoints id ${id}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new LedgerError('LEDGER_CHECKPOINT_MALFORMED', `${where}: not valid JSON (the row was altered)`, { location: { file: `${SCHEMA}.checkpoints`, line: Number(id) } });
      }
      return { checkpoint: parseCheckpoint(parsed, where), where };
    });
  }

  /** Partitions of the records table, oldest first. */
  async segments(): Promise<string[]> {
    const rows = await this.select<{ name: string }>(
      `SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '${SCHEMA}.records'::regclass ORDER BY c.relname`,
    );
    return rows.map((r) => r.name);
  }

  /**
   * Whether a partition holds a record timestamped at or after `since` (ItemsOptions.fromDay): its
   * day is when the rows were appended, and an app's clock can run ahead of the writer's.
   */
  private async holdsSince(bounds: { from: Date; to: Date }, since: number | undefined): Promise<boolean> {
    if (since === undefined) return true;
    const [row] = await this.select<{ latest: Date | null }>(
      `SELECT max(ts) AS latest FROM ${SCHEMA}.records WHERE appended_at >= $1 AND appended_at < $2`,
      [bounds.from, bounds.to],
    );
    return row?.latest != null && row.latest.getTime() >= since;
  }

  async *items(options: ItemsOptions = {}): AsyncGenerator<LedgerItem> {
    // From a seq (a proof resuming at a checkpoint's frontier): the seq index, across partitions.
    if (options.fromSeq !== undefined) return yield* this.entriesFrom(options.fromSeq);
    let leading = options.fromDay !== undefined;
    for (const name of await this.segments()) {
      if (options.skip?.has(name)) continue;
      const bounds = partitionBounds(name);
      if (!bounds) {
        throw new LedgerError('LEDGER_SEGMENT_UNEXPECTED', `${partitionLabel(name)} is a partition of ${SCHEMA}.records that llm-audit did not create`);
      }
      if (leading && bounds.day < options.fromDay! && !(await this.holdsSince(bounds, options.since))) continue;
      leading = false;
      const page = (after: string): Promise<Row[]> =>
        this.select<Row>(
          `SELECT ${ROW_COLUMNS} FROM ${SCHEMA}.records r LEFT JOIN ${SCHEMA}.chain c ON c.seq = r.seq
            WHERE r.appended_at >= $1 AND r.appended_at < $2 AND r.seq > $3::bigint ORDER BY r.seq LIMIT ${PAGE}`,
          [bounds.from, bounds.to, after],
        );
      let line = 0;
      let next: Promise<Row[]> | undefined = page('-1');
      while (next) {
        const rows: Row[] = await next;
        // The next page is read while this one is checked (verify was waiting on the database a
        // fifth of its time). A page left unread when the caller stops early is only discarded.
        next = rows.length < PAGE ? undefined : page(rows[rows.length - 1]!.seq);
        next?.catch(() => undefined);
        for (const row of rows) {
          line++;
          const location = { file: partitionLabel(name), line, offset: Number(row.seq) };
          yield { kind: 'entry', raw: row.line, location, leaf: checkRow(row, location) };
        }
      }
    }
  }

  /**
   * Leaf hashes from the chain table alone, LEAF_PAGE rows a statement joined into one bytea by the
   * database (one value to decode, not a row object per leaf): what a proof hashes. Each is the
   * hash of its line (the records trigger compares them at insert; verify reads both).
   */
  async *leafHashes(from: number, to: number): AsyncGenerator<Buffer> {
    for (let start = from; start < to; start += LEAF_PAGE) {
      const end = Math.min(to, start + LEAF_PAGE);
      const [row] = await this.select<{ hashes: Buffer | null; last: string | null }>(
        `SELECT string_agg(leaf_hash, ''::bytea ORDER BY seq) AS hashes, max(seq)::text AS last
           FROM ${SCHEMA}.chain WHERE seq >= $1::bigint AND seq < $2::bigint`,
        [start, end],
      );
      const hashes = row?.hashes ?? Buffer.alloc(0);
      // The chain's insert trigger keeps it continuous; rows removed behind its back would shift
      // every later leaf to the wrong seq.
      if (row?.last != null && hashes.length !== (Number(row.last) - start + 1) * 32) {
        throw new LedgerError('LEDGER_RECORD_MISSING', `${SCHEMA}.chain lacks entries between seq ${start} and ${row.last} (rows were removed behind the ledger's back)`);
      }
      for (let offset = 0; offset + 32 <= hashes.length; offset += 32) yield hashes.subarray(offset, offset + 32);
      if (hashes.length < (end - start) * 32) return;
    }
  }

  async seqOfRequest(requestId: string): Promise<number | undefined> {
    const [row] = await this.select<{ seq: string }>(`SELECT seq::text AS seq FROM ${SCHEMA}.records WHERE request_id = $1 ORDER BY seq LIMIT 1`, [requestId]);
    return row ? Number(row.seq) : undefined;
  }

  /**
   * Entries with seq >= `from` in seq order across partitions (the writer catching up with
   * others, and reopening after its newest checkpoint).
   */
  async *entriesFrom(from: number, client?: PoolClient): AsyncGenerator<LedgerItem> {
    let last = String(from - 1);
    for (;;) {
      const sql = `SELECT ${ROW_COLUMNS}, p.relname::text AS partition FROM ${SCHEMA}.records r
          JOIN pg_class p ON p.oid = r.tableoid LEFT JOIN ${SCHEMA}.chain c ON c.seq = r.seq
          WHERE r.seq > $1::bigint ORDER BY r.seq LIMIT ${PAGE}`;
      let rows: Array<Row & { partition: string }>;
      try {
        rows = (await (client ?? this.pool).query<Row & { partition: string }>(sql, [last])).rows;
      } catch (error) {
        throw pgError(error, 'cannot read the ledger', this.name);
      }
      for (const row of rows) {
        const location = { file: partitionLabel(row.partition), line: 0, offset: Number(row.seq) };
        yield { kind: 'entry', raw: row.line, location, leaf: checkRow(row, location) };
      }
      if (rows.length < PAGE) break;
      last = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Ranges of records (seq from..to, merged when adjacent) whose append transaction recorded no
   * signed checkpoint ending at them. A signing writer signs one in every append transaction, so
   * these were written by the writer role without the key. Rows stamped before schema version 3
   * carry no transaction and are not checked. Whether the signatures are valid is verify's part.
   */
  async unsignedTransactions(): Promise<Array<{ from: number; to: number }>> {
    const rows = await this.select<{ from_seq: string; to_seq: string }>(
      `SELECT min(c.seq)::text AS from_seq, max(c.seq)::text AS to_seq FROM ${SCHEMA}.chain c WHERE c.txid IS NOT NULL GROUP BY c.txid
       HAVING NOT EXISTS (SELECT 1 FROM ${SCHEMA}.checkpoints k WHERE k.txid = c.txid AND k.tree_size = max(c.seq) + 1
                            AND k.type = 'checkpoint' AND (k.line::jsonb)->>'signature' IS NOT NULL)
       ORDER BY min(c.seq)`,
    );
    const out: Array<{ from: number; to: number }> = [];
    for (const row of rows) {
      const from = Number(row.from_seq);
      const to = Number(row.to_seq);
      const last = out.at(-1);
      if (last && last.to + 1 === from) last.to = to;
      else out.push({ from, to });
    }
    return out;
  }

  async signedNotes(): Promise<StoredNote[]> {
    // Schema version 5 added them; an older database simply has none.
    if ((await this.schemaVersion()) < 5) return [];
    const own = await this.select<{ id: string; note: string }>(
      `SELECT id::text AS id, note FROM ${SCHEMA}.checkpoints WHERE note IS NOT NULL ORDER BY id`,
    );
    const cosigned = await this.select<{ id: string; note: string; witness: string }>(
      `SELECT id::text AS id, note, witness FROM ${SCHEMA}.cosigned_notes ORDER BY id`,
    );
    return [
      ...own.map((r) => ({ text: r.note, where: `${SCHEMA}.checkpoints id ${r.id} (note)` })),
      ...cosigned.map((r) => ({ text: r.note, where: `${SCHEMA}.cosigned_notes id ${r.id}`, witness: r.witness })),
    ];
  }

  async notes(): Promise<string[]> {
    const rows = await this.select<{ at: Date; by_role: string; partitions: string[]; records: string; tree_size: string }>(
      `SELECT at, by_role, partitions, records::text AS records, tree_size::text AS tree_size FROM ${SCHEMA}.retention_log ORDER BY id`,
    );
    return rows.map(
      (r) =>
        `retention on ${r.at.toISOString()} by ${r.by_role}: dropped ${r.partitions.join(', ')} (${r.records} records, seq < ${r.tree_size})`,
    );
  }

  /** Queries and reports computed in SQL (./reports.ts). */
  reports(scope: Scope = {}): PostgresReports {
    return new PostgresReports(this, scope);
  }

  async close(): Promise<void> {
    if (this.ownPool) await this.pool.end().catch(() => undefined);
  }
}

/** Throws LEDGER_ROW_MISMATCH when a row's hashes or columns do not follow from its line; returns the line's leaf hash. */
function checkRow(row: Row, location: { file: string; line: number; offset: number }): Buffer {
  const seq = Number(row.seq);
  const where = { file: location.file, ...(location.line > 0 ? { line: location.line } : {}), seq };
  const fail = (why: string): never => {
    throw new LedgerError('LEDGER_ROW_MISMATCH', `${describeLocation(where)}: ${why}: the row was changed after it was written`, { location: where });
  };
  const leaf = leafHash(row.line);
  if (!leaf.equals(row.leaf_hash)) fail('the line does not hash to the row\'s leaf_hash column');
  if (row.chain_leaf === null) fail(`there is no ${SCHEMA}.chain entry for this seq`);
  if (!leaf.equals(row.chain_leaf!)) fail(`the line does not hash to the leaf_hash of its ${SCHEMA}.chain entry`);
  let entry: { seq?: unknown; prev?: unknown; record?: unknown };
  try {
    entry = JSON.parse(row.line) as typeof entry;
  } catch {
    return leaf; // the chain walk reports a line that is not an entry, with its location
  }
  if (typeof entry !== 'object' || entry === null) return leaf;
  if (entry.seq !== seq) fail(`the seq column (${seq}) is not the line's seq (${String(entry.seq)})`);
  if (entry.prev !== row.prev_hash.toString('hex')) fail('the prev_hash column is not the line\'s prev');
  if (typeof entry.record === 'object' && entry.record !== null) {
    const record = entry.record as LedgerRecord;
    // The chain row's ids are the dedup key of re-sent spans: changed, the same span could be stored twice.
    const ids = derivedColumns(record);
    if (row.chain_trace_id !== ids.trace_id || row.chain_span_id !== ids.span_id) {
      fail(`its ${SCHEMA}.chain entry has trace_id ${row.chain_trace_id} span_id ${row.chain_span_id}, not the record's ${ids.trace_id} ${ids.span_id}`);
    }
    const differing = columnsDiffering(row, record);
    if (differing.length > 0) fail(`column${differing.length === 1 ? '' : 's'} ${differing.join(', ')} ${differing.length === 1 ? 'does' : 'do'} not match the record in the line`);
  }
  return leaf;
}
