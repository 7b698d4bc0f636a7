/**
 * The storage seam. Verification, proofs, queries, reports and retention planning only ever see a
 * {@link LedgerSource}: an ordered stream of stored entry lines plus the checkpoints. The embedded
 * file ledger (file/) is one implementation; a database backend (issue 4) provides the
 * same two things (rows in `seq` order, and the checkpoint rows) and reuses everything else.
 */
import type { AcceptedEntry } from './chain';
import type { Checkpoint } from './checkpoint';
import { LedgerError } from './errors';
import type { StoredNote } from './file/note-store';
import type { ReportBackend } from './reports';

/** Where a stored entry lives: `file` is relative to the ledger (a segment, or a table name), `line` 1-based. */
export interface ItemLocation {
  file: string;
  line: number;
  /** Byte offset of the line's first byte in `file` (file backend), else the row position. */
  offset: number;
}

export type LedgerItem =
  /** One stored entry line, without its newline: canonical JSON `{"prev":..,"record":..,"seq":..}`. */
  | {
      kind: 'entry';
      raw: string;
      location: ItemLocation;
      /** SHA-256(0x00 || raw), when the source already computed it (from the bytes it read, or to check its own copy with it). */
      leaf?: Buffer;
      /** The seq this line must hold, when the source found it by position (a segment summary): the scan checks it. */
      seq?: number;
    }
  /** Bytes after the last newline of a file: a write that was interrupted (torn tail). */
  | { kind: 'torn'; bytes: number; location: ItemLocation };

export interface CheckpointEntry {
  checkpoint: Checkpoint;
  /** `checkpoints.jsonl:3`, or the external file's name. */
  where: string;
}

export interface ItemsOptions {
  /** Segments (by name) to leave out: those a tombstone says were removed. */
  skip?: ReadonlySet<string>;
  /** Start reading at this segment and byte offset (a checkpoint's `position`). */
  from?: { segment: string; offset: number };
  /** Start reading at the entry with this seq: only for a source that `seeksBySeq`. */
  fromSeq?: number;
  /**
   * With `since`: a window starts at `since` (ms), on this UTC day (YYYY-MM-DD). The segments of
   * earlier days that come first may be left out, but only those that hold no record timestamped
   * at or after `since`: a segment holds what was appended on its day, and a record's own time
   * (its app's clock) can be later than that (an app whose clock runs ahead of the writer's).
   * Left out is always a leading run, so the seqs read stay contiguous.
   */
  fromDay?: string;
  since?: number;
  /**
   * Give each entry its leaf hash, computed from the bytes read (SHA-256(0x00 || line bytes)): for
   * readers that check the chain and would hash every line anyway (every walkChain: verify, proofs,
   * retention, a writer resuming). The leaf is then that of the bytes on disk, which a decoded line
   * need not show (an invalid UTF-8 byte decodes to U+FFFD). A backend that checks rows itself
   * gives it regardless.
   */
  leaves?: boolean;
}

/** Fields a reader can select records by (QueryFilter's names); `action` may hold `*` wildcards. */
export type SelectableField = 'user' | 'session' | 'tenant' | 'model' | 'service' | 'env' | 'action';

/** What a query or a windowed report reads: records with timestamps in [from, to) and these field values. */
export interface RecordSelection {
  from?: number;
  to?: number;
  where?: Partial<Record<SelectableField, string>>;
  /**
   * The reader can use call cells: a segment whose records all lie in [from, to) may be given as
   * its summary's cells (a SkippedItem with `cells`) instead of its lines. Only without `where`.
   */
  cells?: 'users' | 'models';
}

/**
 * A segment's call records with the same UTC day (of the timestamp) and user, as cost-by-user folds
 * them (reports.ts costGroups). On the segment's own day, `cost` and `latency` are sums in line
 * order (the same `+=` in the same order: the same bits); on another day (calls appended after
 * midnight), the values themselves in line order, to be added to sums that earlier segments began
 * (float addition is not associative: adding a partial sum would change the last bits).
 */
export interface UserCell {
  day: string;
  user: string | null;
  requests: number;
  cost: number | number[];
  priced: number;
  unpriced: number;
  latency: number | number[];
  timed: number;
}

/**
 * The call records of one block of a segment's lines (BLOCK_LINES) with the same report model
 * (requested, else response), counted as error-rate counts them: per block, so a window that cuts
 * a segment reads the lines of the blocks at its edges only.
 */
export interface ModelCell {
  block: number;
  model: string | null;
  requests: number;
  errors: number;
  blocked: number;
  /** The response models seen, sorted. */
  responses: string[];
}

export interface CallCells {
  users: UserCell[];
  models: ModelCell[];
}

/** Records seq first..last, present but left unread: the source's summaries show none can be selected. */
export interface SkippedItem {
  kind: 'skipped';
  first: number;
  last: number;
  /** When the selection asked for cells: the call cells of these records (all of them lie in the window). */
  cells?: CallCells;
}

export interface LedgerSource {
  /** Human name for messages: the directory, or a connection string without secrets. */
  readonly name: string;
  /** What to tell the operator about a torn tail (how to repair it), if the backend can have one. */
  readonly tornAdvice?: string;
  /**
   * True when retention records its tombstone and removes the segments in one transaction, so a
   * segment a tombstone lists can never legitimately still be there (PostgreSQL). Otherwise an
   * interrupted run may leave some (the file ledger), and verify only warns.
   */
  readonly atomicRetention?: boolean;
  /**
   * True when items() can start at any seq (`fromSeq`; PostgreSQL, whose rows are indexed by seq):
   * a proof then resumes from any checkpoint's frontier, not only from one with a `position`.
   */
  readonly seeksBySeq?: boolean;
  /** Throws LEDGER_NOT_FOUND / LEDGER_UNREADABLE when the ledger is not there or cannot be read. */
  open(): Promise<void>;
  /** The ledger's identity (bound into every checkpoint), or null when it has none yet. */
  ledgerId(): Promise<string | null>;
  /** Every checkpoint and tombstone, in the order they were written. */
  checkpoints(): Promise<CheckpointEntry[]>;
  /** Stored entries in order. */
  items(options?: ItemsOptions): AsyncIterable<LedgerItem>;
  /**
   * The leaf hashes of seq [from, to) in seq order, read where the source keeps them beside the
   * lines (PostgreSQL: its chain table, 32 bytes a row), without reading a record; fewer when the
   * ledger ends before `to`. Proofs then hash only these (proofs.ts); absent, they walk items().
   * Only for a source that `seeksBySeq` (a proof finds its entry by walking from a checkpoint).
   */
  leafHashes?(from: number, to: number): AsyncIterable<Buffer>;
  /** The seq of the first record (in seq order) with this request_id, from an index; absent: proofs walk items() to find it. */
  seqOfRequest?(requestId: string): Promise<number | undefined>;
  /**
   * items() (honouring `skip` and `fromDay`), leaving out the lines that cannot hold a record of
   * `selection` where the source knows which (the file ledger's segment summaries). What it leaves
   * out it names as SkippedItems, so the scan still tells records missing from records not read;
   * an entry found by position carries the seq it must hold. Absent: the scan reads items().
   */
  selectItems?(options: ItemsOptions, selection: RecordSelection): AsyncIterable<LedgerItem | SkippedItem>;
  /**
   * What verify checks beside the chain, where the source keeps files derived from the lines (the
   * file ledger's segment summaries): fed every accepted entry in order, it throws on the first
   * derived file that disagrees; `finish` returns notes (derived files missing, left over).
   */
  derivedCheck?(): {
    accept(accepted: AcceptedEntry): void;
    /** Takes in a segment checked whole elsewhere (segmentFacts' `summary`). */
    adopt?(segment: string, settled: { missing: boolean; partial: boolean }): void;
    finish(skipped: ReadonlySet<string>): Promise<string[]>;
  };
  /**
   * verify's parallel walk (the file ledger's worker threads, verify-pool.ts): the facts of every
   * segment not in `skip`, in order, from `threads` threads; undefined when no threads are to be
   * used (`workers` 0, a small ledger in auto mode, the worker script not built).
   */
  segmentFacts?(skip: ReadonlySet<string>, workers: number | undefined): Promise<{ threads: number; facts: AsyncIterable<SegmentFacts> } | undefined>;
  /** Names of the segments present, in order. */
  segments(): Promise<string[]>;
  /** Operator-facing notes (e.g. repairs that were made); shown by verify. */
  notes(): Promise<string[]>;
  /**
   * Ranges of records (seq from..to) whose append transaction recorded no signed checkpoint ending
   * at them, where the backend knows the transactions (PostgreSQL); verify --public-key reports them.
   */
  unsignedTransactions?(): Promise<Array<{ from: number; to: number }>>;
  /** The checkpoints as C2SP signed notes and their witness-cosigned copies, in write order (file/note-store.ts). */
  signedNotes(): Promise<StoredNote[]>;
  /**
   * Computes queries and reports itself (PostgreSQL: in SQL, with its indexes); absent when they
   * fold the scanned records in JavaScript (reports.ts, scanBackend).
   */
  reports?(scope?: { service?: string; env?: string }): ReportBackend;
  /**
   * Why this source shows only part of the ledger (a PostgreSQL tenant reader, whom row-level
   * security shows only its tenants' records), or undefined when it shows all of it. Queries and
   * reports then read what is visible without calling the rest missing; verify and proofs, which
   * need the whole chain, refuse with LEDGER_PARTIAL_VIEW rather than report tampering.
   */
  partialView?(): Promise<string | undefined>;
  /** Releases what the source holds (a database connection pool); absent when there is nothing to release. */
  close?(): Promise<void>;
}

/** The shape of one stored line. The leaf hash covers exactly canonicalJson(this object). */
export interface StoredEntry<R = unknown> {
  seq: number;
  /** Hex leaf hash of entry seq - 1; 64 zeros for seq 0. */
  prev: string;
  record: R;
}

/**
 * Throws LEDGER_PARTIAL_VIEW when `source` shows only part of the ledger (see partialView): `what`
 * (verify, a proof, an evidence bundle) needs every record's hash, and a partial view would look
 * like records missing, which is not what happened.
 */
export async function requireWholeLedger(source: LedgerSource, what: string): Promise<void> {
  const partial = await source.partialView?.();
  if (partial === undefined) return;
  throw new LedgerError(
    'LEDGER_PARTIAL_VIEW',
    `${what} needs the whole chain, and ${partial}; this says nothing about the ledger's integrity: run it as a member of llm_audit_auditor`,
  );
}

/**
 * What a verify worker learned of one whole segment (file/verify-worker.ts). `clean: false` when
 * anything in it is unusual: verify then walks on one thread, which names the problem.
 */
export type SegmentFacts =
  | {
      clean: true;
      segment: string;
      /** The segment as locations name it (segments/NAME). */
      file: string;
      lines: number;
      firstSeq: number;
      firstPrev: string;
      /** The lines' leaf hashes, 32 bytes each, in order. */
      leaves: Uint8Array;
      /** Lines (0-based) whose record is a recovered or gap marker, with their text: verify reads those records. */
      markers: Array<{ index: number; offset: number; raw: string }>;
      /** The smallest and largest record `timestamp` (strings, as verify reports the period). */
      period: [string, string] | null;
      summary: { missing: boolean; partial: boolean };
    }
  | { clean: false; segment: string; why: string };
