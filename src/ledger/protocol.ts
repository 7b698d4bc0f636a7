/**
 * The append protocol every ledger backend follows (file/ and postgres/ differ only in where the
 * bytes go and how writers are kept apart: a lock file, or a transaction advisory lock):
 *
 * 1. recover: resume the Merkle state from the newest usable checkpoint and walk the entries
 *    after it (resumePoint + chain.ts walkChain);
 * 2. mark what no signature covers: records after the newest checkpoint this writer's key signed
 *    get a `ledger.recovered` record before anything new (unsignedRange);
 * 3. chain a batch: each record becomes the canonical line `{"prev","record","seq"}` whose leaf
 *    hash is the next Merkle leaf (chainBatches);
 * 4. decide whether a checkpoint is due (checkpointDue) and build it (buildCheckpoint); the C2SP
 *    note and the witnesses follow from it (transparency.ts);
 * 5. one task at a time (SerialQueue).
 *
 * The line bytes, the checkpoint bodies and the due rule are therefore the same for both
 * backends, which is what lets verify, prove and the contract tests treat them alike.
 */
import type { KeyObject } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json';
import type { CheckpointEntry } from './backend';
import { stateFromCheckpoint, type ChainState } from './chain';
import { CHECKPOINT_VERSION, DEFAULT_CHECKPOINT_EVERY, ZERO_HASH, finishCheckpoint, type Checkpoint } from './checkpoint';
import { leafHash, type Hash } from './merkle';
import { recoveredRecord, type LedgerRecord } from './record';

/** A checkpoint after DEFAULT_CHECKPOINT_EVERY records (checkpoint.ts)... */
export { DEFAULT_CHECKPOINT_EVERY };
/** ...or when this long has passed since the newest one and records were added. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000;

/** Sequence numbers of one batch's records (lastSeq = firstSeq - 1 when none was stored). */
export interface SeqRange {
  firstSeq: number;
  lastSeq: number;
}

/**
 * A record with its canonical JSON, serialised once: `llm-audit serve` needs the size for its
 * `--max-record-bytes` check before it appends, and the stored line embeds these very bytes
 * (canonical JSON is compositional: the record member of canonicalJson({ seq, prev, record }) is
 * canonicalJson(record)), so the writer does not serialise the record a second time. The record
 * must not change afterwards: the line is built from `json`, PostgreSQL's indexed columns from
 * `record`.
 */
export class SerializedRecord {
  private constructor(
    readonly record: LedgerRecord,
    readonly json: string,
  ) {}

  static of(record: LedgerRecord): SerializedRecord {
    return new SerializedRecord(record, canonicalJson(record));
  }
}

/** What a writer's append takes: plain records (serialised by the writer) or serialised ones. */
export type AppendInput = LedgerRecord | SerializedRecord;

export function serialized(input: AppendInput): SerializedRecord {
  return input instanceof SerializedRecord ? input : SerializedRecord.of(input);
}

/**
 * Runs an append's preparation (serialising, encoding) and hands the result on; a record that
 * cannot be serialised (a non-finite number, a cycle) rejects the returned promise, as it did when
 * serialising happened inside the write, instead of throwing at the caller.
 */
export function afterPreparing<P, R>(prepare: () => P, append: (prepared: P) => Promise<R>): Promise<R> {
  let prepared: P;
  try {
    prepared = prepare();
  } catch (error) {
    return Promise.reject(error);
  }
  return append(prepared);
}

/** canonicalJson({ seq, prev, record }) from the record's canonical JSON (members prev < record < seq). */
export function entryLine(seq: number, prev: string, recordJson: string): string {
  return '{"prev":"' + prev + '","record":' + recordJson + ',"seq":' + seq + '}';
}

export interface ChainedBatches {
  /** The stored lines (no newline), in order; `leaves[i]` is the leaf hash of `lines[i]`, `prevs[i]` the hex leaf before it. */
  lines: string[];
  leaves: Hash[];
  prevs: string[];
  /** One range per batch. */
  ranges: SeqRange[];
  /** The state after the last line; `base` is left as it was (a failed write keeps it). */
  state: ChainState;
}

/** Chains the records of every batch after `base`: step 3 of the protocol. */
export function chainBatches(base: ChainState, batches: readonly (readonly SerializedRecord[])[]): ChainedBatches {
  const range = base.range.clone();
  let last = base.lastLeaf;
  const out: ChainedBatches = { lines: [], leaves: [], prevs: [], ranges: [], state: { range, lastLeaf: last } };
  for (const records of batches) {
    const firstSeq = range.size;
    for (const { json } of records) {
      const prev = last.toString('hex');
      const line = entryLine(range.size, prev, json);
      const leaf = leafHash(line);
      range.append(leaf);
      last = leaf;
      out.lines.push(line);
      out.leaves.push(leaf);
      out.prevs.push(prev);
    }
    out.ranges.push({ firstSeq, lastSeq: range.size - 1 });
  }
  out.state = { range, lastLeaf: last };
  return out;
}

export interface CheckpointRule {
  every: number;
  intervalMs: number;
  /**
   * A signed checkpoint with every append (group commit, or transaction): the records no signature
   * covers are then only those being written. The file backend does so with a key and fsync
   * `always`; PostgreSQL with a key (rows and signature commit together).
   */
  signEveryAppend: boolean;
}

/** Step 4: whether the ledger at `size` needs a checkpoint, given the newest one (-1: none) and its age. */
export function checkpointDue(rule: CheckpointRule, size: number, last: { size: number; ageMs: number }): boolean {
  if (size <= last.size) return false;
  return rule.signEveryAppend || size - Math.max(last.size, 0) >= rule.every || last.ageMs >= rule.intervalMs;
}

/** The checkpoint of `state`, signed with `key` when there is one. */
export function buildCheckpoint(
  ledgerId: string,
  state: ChainState,
  position: Checkpoint['position'],
  at: Date,
  key: KeyObject | undefined,
): Checkpoint {
  const size = state.range.size;
  return finishCheckpoint(
    {
      v: CHECKPOINT_VERSION,
      type: 'checkpoint',
      ledger_id: ledgerId,
      tree_size: size,
      root: state.range.root().toString('hex'),
      last_leaf: size === 0 ? ZERO_HASH : state.lastLeaf.toString('hex'),
      frontier: state.range.frontier.map((h) => h.toString('hex')),
      position,
      timestamp: at.toISOString(),
    },
    key,
  );
}

/**
 * Step 1: the newest checkpoint (largest tree) the backend can resume from (`usable`: its segment
 * is still there, it is of this ledger...) and the state it carries; undefined: start from seq 0.
 */
export function resumePoint(
  checkpoints: readonly CheckpointEntry[],
  usable: (checkpoint: Checkpoint) => boolean,
): { checkpoint: Checkpoint; state: ChainState } | undefined {
  const ordered = [...checkpoints].sort((a, b) => b.checkpoint.tree_size - a.checkpoint.tree_size);
  for (const { checkpoint } of ordered) {
    if (!usable(checkpoint)) continue;
    const state = stateFromCheckpoint(checkpoint);
    if (state) return { checkpoint, state };
  }
  return undefined;
}

/**
 * Step 2: records seq `vouched`..`size - 1` exist but no checkpoint this writer's key signed
 * covers them. Signing over them silently would vouch for them, so the writer first appends the
 * returned `ledger.recovered` record (chained like any record: it cannot be removed later without
 * breaking the chain) and verify reports the range. Undefined when there is nothing to mark.
 */
export function unsignedRange(size: number, vouched: number, at: Date): { record: LedgerRecord; range: string; one: boolean } | undefined {
  if (size <= vouched) return undefined;
  const one = size - 1 === vouched;
  return { record: recoveredRecord(vouched, size - 1, at), range: one ? `record ${vouched}` : `records ${vouched}..${size - 1}`, one };
}

/** Runs tasks one after another; a failed task does not block later ones. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
