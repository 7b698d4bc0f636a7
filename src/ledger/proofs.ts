/**
 * Inclusion proofs (RFC 9162 section 2.1.3) and consistency proofs (section 2.1.4) built from a
 * ledger by streaming it (two passes at most, O(log n) memory), and their verification without
 * the ledger.
 */
import type { KeyObject } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json';
import { requireWholeLedger, type LedgerSource, type StoredEntry } from './backend';
import { initialChainState, latestTombstone, removedSegments, stateFromCheckpoint, walkChain, type AcceptedEntry, type ChainState } from './chain';
import { checkSignature, parseCheckpoint, type Checkpoint } from './checkpoint';
import { LedgerError } from './errors';
import {
  RangeHasher,
  consistencyProofRanges,
  inclusionProofRanges,
  leafHash,
  verifyConsistency,
  verifyInclusion,
  type LeafRange,
} from './merkle';

export interface InclusionProof {
  v: 1;
  type: 'inclusion';
  ledger_id: string;
  leaf_index: number;
  tree_size: number;
  leaf_hash: string;
  /** The stored entry; its canonical JSON is the leaf data. */
  entry: StoredEntry;
  path: string[];
  checkpoint: Checkpoint;
}

export interface ConsistencyProof {
  v: 1;
  type: 'consistency';
  ledger_id: string;
  old_size: number;
  new_size: number;
  path: string[];
  old_checkpoint: Checkpoint;
  new_checkpoint: Checkpoint;
}

export type Proof = InclusionProof | ConsistencyProof;

async function startState(source: LedgerSource): Promise<{ state: ChainState; skip: Set<string> }> {
  const checkpoints = await source.checkpoints();
  const tombstone = latestTombstone(checkpoints);
  let state = initialChainState();
  if (tombstone) {
    const resumed = stateFromCheckpoint(tombstone.checkpoint);
    if (!resumed) throw new LedgerError('LEDGER_TOMBSTONE_INVALID', `${tombstone.where}: the tombstone's frontier does not hash to its root`);
    state = resumed;
  }
  return { state, skip: removedSegments(checkpoints) };
}

/** The newest checkpoint (largest tree size) of the ledger. */
/** The newest checkpoint (the largest tree), or with `at` (ms) the newest written at or before that time. */
export async function newestCheckpoint(source: LedgerSource, at?: number): Promise<Checkpoint> {
  await source.open();
  await requireWholeLedger(source, 'a proof');
  const checkpoints = await source.checkpoints();
  let best: Checkpoint | undefined;
  for (const { checkpoint } of checkpoints) {
    if (at !== undefined && !(Date.parse(checkpoint.timestamp) <= at)) continue;
    if (!best || checkpoint.tree_size >= best.tree_size) best = checkpoint;
  }
  if (best) return best;
  if (at === undefined || checkpoints.length === 0) {
    throw new LedgerError('LEDGER_NOT_CHECKPOINTED', `${source.name} has no checkpoint yet (one is written every N records and when the writer closes)`);
  }
  const first = checkpoints.map((c) => c.checkpoint.timestamp).sort()[0];
  throw new LedgerError('LEDGER_NOT_CHECKPOINTED', `${source.name} has no checkpoint at or before ${new Date(at).toISOString()} (the first is of ${first})`);
}

/**
 * Streams the chain from the start state, feeding the leaves to a RangeHasher, up to `size`. With
 * `resume` (a checkpoint whose frontier hashes to its root, and that the source can start reading
 * at: it has a position, or the source seeks by seq) the walk starts there and the leaves before
 * it are its frontier: ranges that tile them are served from it unchecked, and no record before
 * it is read.
 */
async function hashRanges(source: LedgerSource, ranges: readonly LeafRange[], size: number, resume?: Checkpoint): Promise<Buffer[]> {
  const start = resume?.position ? { from: resume.position } : resume && source.seeksBySeq ? { fromSeq: resume.tree_size } : undefined;
  const resumed = start && resume ? stateFromCheckpoint(resume) : undefined;
  const { state, skip } = resumed ? { state: resumed, skip: removedSegments(await source.checkpoints()) } : await startState(source);
  if (size < state.range.size) {
    throw new LedgerError('LEDGER_PROOF_UNAVAILABLE', `tree size ${size} predates records removed by retention (now ${state.range.size} removed)`);
  }
  const hasher = new RangeHasher(ranges, state.range.clone());
  let reached = state.range.size;
  if (source.leafHashes) {
    // The leaf hashes alone (PostgreSQL's chain table): no line is read, parsed or hashed. What
    // they are worth is checked where it matters: every proof is verified against its checkpoint's
    // root before it is handed out, and verify checks each stored hash against its line.
    for await (const leaf of source.leafHashes(reached, size)) hasher.push(reached++, leaf);
  } else {
    await walkChain(source.items({ skip, leaves: true, ...(resumed ? start : {}) }), state, {
      stopAtSize: size,
      ...(source.tornAdvice ? { tornAdvice: source.tornAdvice } : {}),
      onAccepted: (accepted) => hasher.push(accepted.entry.seq, accepted.leaf),
    });
    reached = state.range.size;
  }
  if (reached < size) {
    throw new LedgerError('LEDGER_TRUNCATED', `${source.name} has only ${reached} records, the checkpoint says ${size}`);
  }
  const result = hasher.result();
  if (!result.ok) {
    throw new LedgerError(
      'LEDGER_PROOF_UNAVAILABLE',
      `the proof needs the hash of records ${result.range[0]}..${result.range[1] - 1}, which retention removed`,
    );
  }
  return result.hashes;
}

/** Finds a record by request id (or by seq) and proves it is in the newest checkpoint. */
export async function proveInclusion(source: LedgerSource, target: { requestId?: string; seq?: number }): Promise<InclusionProof> {
  const checkpoint = await newestCheckpoint(source);
  const hit = source.seeksBySeq && (target.seq !== undefined || source.seqOfRequest) ? await seekEntry(source, target) : await walkToEntry(source, target);
  const what = target.seq !== undefined ? `seq ${target.seq}` : `request_id ${target.requestId}`;
  const found = coveredEntry(source, hit, what, checkpoint);
  return inclusionProof(checkpoint, found, await inclusionPath(source, found.entry.seq, checkpoint.tree_size));
}

/**
 * Proves several records (by seq) in the newest checkpoint with one walk of the chain for the
 * entries and one for the hashes of every path (an evidence bundle's sample): proving them one by
 * one walked the whole chain twice per record.
 */
export async function proveInclusions(source: LedgerSource, seqs: readonly number[]): Promise<InclusionProof[]> {
  if (seqs.length === 0) return [];
  const checkpoint = await newestCheckpoint(source);
  const hits = new Map<number, AcceptedEntry>();
  if (source.seeksBySeq) {
    for (const seq of seqs) {
      const hit = await seekEntry(source, { seq });
      if (hit) hits.set(seq, hit);
    }
  } else {
    const wanted = new Set(seqs);
    const { state, skip } = await startState(source);
    try {
      await walkChain(source.items({ skip, leaves: true }), state, {
        ...(source.tornAdvice ? { tornAdvice: source.tornAdvice } : {}),
        onAccepted: (accepted) => {
          if (!wanted.has(accepted.entry.seq)) return;
          hits.set(accepted.entry.seq, accepted);
          if (hits.size === wanted.size) throw FOUND;
        },
      });
    } catch (error) {
      if (error !== FOUND) throw error;
    }
  }
  const found = seqs.map((seq) => coveredEntry(source, hits.get(seq), `seq ${seq}`, checkpoint));
  const ranges = seqs.map((seq) => inclusionProofRanges(seq, checkpoint.tree_size));
  const hashes = await hashRanges(source, ranges.flat(), checkpoint.tree_size);
  let at = 0;
  return found.map((hit, i) => {
    const path = hashes.slice(at, (at += ranges[i]!.length)).map((h) => h.toString('hex'));
    return inclusionProof(checkpoint, hit, path);
  });
}

/** The entry found, checked to be one the checkpoint covers. */
function coveredEntry(source: LedgerSource, hit: AcceptedEntry | undefined, what: string, checkpoint: Checkpoint): AcceptedEntry {
  if (!hit) throw new LedgerError('LEDGER_RECORD_NOT_FOUND', `no record with ${what} in ${source.name}`);
  if (hit.entry.seq >= checkpoint.tree_size) {
    throw new LedgerError(
      'LEDGER_NOT_CHECKPOINTED',
      `the record with ${what} (seq ${hit.entry.seq}) is newer than the newest checkpoint (size ${checkpoint.tree_size}); prove it after the next checkpoint`,
    );
  }
  return hit;
}

function inclusionProof(checkpoint: Checkpoint, hit: AcceptedEntry, path: string[]): InclusionProof {
  const proof: InclusionProof = {
    v: 1,
    type: 'inclusion',
    ledger_id: checkpoint.ledger_id,
    leaf_index: hit.entry.seq,
    tree_size: checkpoint.tree_size,
    leaf_hash: hit.leaf!.toString('hex'),
    entry: hit.entry,
    path,
    checkpoint,
  };
  // Never hand out a proof that does not verify (the ledger would disagree with its checkpoint).
  verifyProof(proof);
  return proof;
}

const FOUND = Symbol('found');

/** The first entry with the target's seq or request_id, walking the chain from its start (or tombstone). */
async function walkToEntry(source: LedgerSource, target: { requestId?: string; seq?: number }): Promise<AcceptedEntry | undefined> {
  const { state, skip } = await startState(source);
  let found: AcceptedEntry | undefined;
  const needle = target.requestId !== undefined ? JSON.stringify(target.requestId) : undefined;
  try {
    await walkChain(source.items({ skip, leaves: true }), state, {
      ...(source.tornAdvice ? { tornAdvice: source.tornAdvice } : {}),
      onAccepted: (accepted) => {
        const hit =
          target.seq !== undefined
            ? accepted.entry.seq === target.seq
            : accepted.raw.includes(needle!) && (accepted.entry.record as { request_id?: unknown }).request_id === target.requestId;
        if (hit) {
          found = accepted;
          throw FOUND;
        }
      },
    });
  } catch (error) {
    if (error !== FOUND) throw error;
  }
  return found;
}

/**
 * The same entry on a source that seeks by seq (PostgreSQL): its seq from the request_id index,
 * then the chain walked (and checked) from the newest checkpoint at or before it whose frontier
 * hashes to its root, so at most one checkpoint interval of records is read, not the whole chain.
 */
async function seekEntry(source: LedgerSource, target: { requestId?: string; seq?: number }): Promise<AcceptedEntry | undefined> {
  const seq = target.seq ?? (await source.seqOfRequest!(target.requestId!));
  if (seq === undefined) return undefined;
  let { state, skip } = await startState(source);
  if (seq < state.range.size) return undefined; // removed by retention
  for (const { checkpoint } of await source.checkpoints()) {
    if (checkpoint.tree_size > seq || checkpoint.tree_size <= state.range.size) continue;
    state = stateFromCheckpoint(checkpoint) ?? state;
  }
  let found: AcceptedEntry | undefined;
  await walkChain(source.items({ skip, leaves: true, fromSeq: state.range.size }), state, {
    stopAtSize: seq + 1,
    ...(source.tornAdvice ? { tornAdvice: source.tornAdvice } : {}),
    onAccepted: (accepted) => {
      if (accepted.entry.seq === seq) found = accepted;
    },
  });
  return found;
}

/** Builds the consistency proof between two checkpoints of this ledger and verifies it. */
export async function proveConsistency(source: LedgerSource, oldCp: Checkpoint, newCp: Checkpoint): Promise<ConsistencyProof> {
  await requireWholeLedger(source, 'a consistency proof');
  await source.open();
  if (oldCp.ledger_id !== newCp.ledger_id) {
    throw new LedgerError('LEDGER_CONSISTENCY_FAILED', `the two checkpoints belong to different ledgers (${oldCp.ledger_id}, ${newCp.ledger_id})`);
  }
  if (oldCp.tree_size > newCp.tree_size) {
    throw new LedgerError('LEDGER_USAGE', `the old checkpoint (size ${oldCp.tree_size}) is larger than the new one (size ${newCp.tree_size}); swap them`);
  }
  const path = await consistencyPath(source, oldCp.tree_size, newCp.tree_size);
  const proof: ConsistencyProof = {
    v: 1,
    type: 'consistency',
    ledger_id: newCp.ledger_id,
    old_size: oldCp.tree_size,
    new_size: newCp.tree_size,
    path,
    old_checkpoint: oldCp,
    new_checkpoint: newCp,
  };
  verifyProof(proof);
  return proof;
}

/**
 * The hex consistency path from tree size `oldSize` to `newSize` (empty when one is 0 or they are
 * equal). `resume`, a stored checkpoint of size `oldSize`, makes it read only the records after it
 * (the frontier there holds every hash the proof needs from before): for a recipient that checks
 * the path against its own copy of the old root (a witness), not for proving the stored records.
 */
export async function consistencyPath(source: LedgerSource, oldSize: number, newSize: number, resume?: Checkpoint): Promise<string[]> {
  if (oldSize === 0 || oldSize >= newSize) return [];
  const path = await hashRanges(source, consistencyProofRanges(oldSize, newSize), newSize, resume?.tree_size === oldSize ? resume : undefined);
  return path.map((h) => h.toString('hex'));
}

/** The hex inclusion path of record `index` in the tree of size `size`. */
export async function inclusionPath(source: LedgerSource, index: number, size: number): Promise<string[]> {
  const path = await hashRanges(source, inclusionProofRanges(index, size), size);
  return path.map((h) => h.toString('hex'));
}

export interface ProofCheck {
  type: Proof['type'];
  signatures: 'verified' | 'unchecked' | 'unsigned';
  warnings: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

function hashes(value: unknown, what: string): Buffer[] {
  if (!Array.isArray(value) || !value.every((h) => typeof h === 'string' && HEX64.test(h))) {
    throw new LedgerError('LEDGER_PROOF_INVALID', `${what} must be a list of 64-hex-digit hashes`);
  }
  return value.map((h: string) => Buffer.from(h, 'hex'));
}

/**
 * Verifies a proof on its own (no ledger needed). With `publicKey`, the checkpoint(s) must carry
 * a valid signature by it. Throws LEDGER_PROOF_INVALID / LEDGER_SIGNATURE_INVALID.
 */
export function verifyProof(value: unknown, publicKey?: KeyObject): ProofCheck {
  if (typeof value !== 'object' || value === null) throw new LedgerError('LEDGER_PROOF_INVALID', 'the proof is not a JSON object');
  const p = value as Record<string, unknown>;
  const warnings: string[] = [];
  let checkpoints: Checkpoint[];
  if (p.type === 'inclusion') {
    const checkpoint = parseCheckpoint(p.checkpoint, 'the proof checkpoint');
    checkpoints = [checkpoint];
    const entry = p.entry as StoredEntry | undefined;
    if (typeof entry !== 'object' || entry === null) throw new LedgerError('LEDGER_PROOF_INVALID', 'the proof has no entry');
    const leaf = leafHash(canonicalJson(entry));
    if (typeof p.leaf_hash === 'string' && p.leaf_hash !== leaf.toString('hex')) {
      throw new LedgerError('LEDGER_PROOF_INVALID', 'the entry does not hash to leaf_hash: the record in the proof was altered');
    }
    if (entry.seq !== p.leaf_index) throw new LedgerError('LEDGER_PROOF_INVALID', `the entry's seq (${entry.seq}) is not leaf_index (${String(p.leaf_index)})`);
    if (p.tree_size !== checkpoint.tree_size) throw new LedgerError('LEDGER_PROOF_INVALID', `tree_size does not match the checkpoint's`);
    const path = hashes(p.path, 'path');
    if (!verifyInclusion(entry.seq, checkpoint.tree_size, leaf, path, Buffer.from(checkpoint.root, 'hex'))) {
      throw new LedgerError(
        'LEDGER_PROOF_INVALID',
        `the inclusion proof of seq ${entry.seq} does not lead to the checkpoint root (tree size ${checkpoint.tree_size})`,
      );
    }
  } else if (p.type === 'consistency') {
    const oldCp = parseCheckpoint(p.old_checkpoint, 'the old checkpoint');
    const newCp = parseCheckpoint(p.new_checkpoint, 'the new checkpoint');
    checkpoints = [oldCp, newCp];
    const path = hashes(p.path, 'path');
    if (p.old_size !== oldCp.tree_size || p.new_size !== newCp.tree_size) {
      throw new LedgerError('LEDGER_PROOF_INVALID', 'old_size/new_size do not match the checkpoints');
    }
    if (!verifyConsistency(oldCp.tree_size, newCp.tree_size, Buffer.from(oldCp.root, 'hex'), Buffer.from(newCp.root, 'hex'), path)) {
      throw new LedgerError(
        'LEDGER_CONSISTENCY_FAILED',
        `the ledger at size ${newCp.tree_size} does not extend the ledger at size ${oldCp.tree_size}: the old records were changed, or the checkpoints are from different histories`,
      );
    }
  } else {
    throw new LedgerError('LEDGER_PROOF_INVALID', 'unknown proof type (expected "inclusion" or "consistency")');
  }
  let signatures: ProofCheck['signatures'] = 'unchecked';
  if (publicKey) {
    for (const checkpoint of checkpoints) {
      const state = checkSignature(checkpoint, publicKey);
      if (state === 'unsigned') {
        throw new LedgerError('LEDGER_CHECKPOINT_UNSIGNED', `the checkpoint of size ${checkpoint.tree_size} is not signed, but --public-key was given`);
      }
      if (state !== 'valid') {
        throw new LedgerError('LEDGER_SIGNATURE_INVALID', `the checkpoint of size ${checkpoint.tree_size} is not validly signed by that key`);
      }
    }
    signatures = 'verified';
  } else if (checkpoints.some((c) => c.signature === null)) {
    signatures = 'unsigned';
    warnings.push('the checkpoint is not signed: the proof shows inclusion in a tree, not who vouched for that tree');
  } else {
    warnings.push('the checkpoint is signed but no --public-key was given: the signature was not checked');
  }
  return { type: p.type, signatures, warnings };
}
