/**
 * Merkle tree hashing of the ledger, exactly as Certificate Transparency defines it:
 * RFC 6962 section 2.1 (kept unchanged as RFC 9162 section 2.1), SHA-256.
 *
 *   MTH({})       = SHA-256()
 *   MTH({d0})     = SHA-256(0x00 || d0)                         leaf hash
 *   MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node hash, k = largest power of 2 < n
 *
 * Everything here is a small pure function over Buffers, except {@link CompactRange} (the
 * O(log n) state needed to append leaves one at a time and compute the root at any size) and
 * {@link RangeHasher} (computes the subtree hashes a proof needs while leaves stream past once).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

export type Hash = Buffer;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** RFC 6962 section 2.1: MTH of the empty list. */
export function emptyRoot(): Hash {
  return createHash('sha256').digest();
}

/**
 * One-shot SHA-256 (Node >= 20.12): a third of the cost of createHash/update/digest for inputs of a
 * ledger line's size, which verify pays for every record. Older Node 20 releases use createHash.
 */
const sha256: (data: Buffer | string) => Hash =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'buffer') : (data) => createHash('sha256').update(data).digest();

/** RFC 6962 section 2.1: leaf hash, SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array | string): Hash {
  // U+0000 is the byte 0x00 in UTF-8: one string, hashed as the stored line's bytes with the prefix.
  if (typeof data === 'string') return sha256('\u0000' + data);
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/**
 * leafHash of the bytes `buffer[start, end)`, hashed where they lie: the byte before them, which
 * the caller has consumed (a line's preceding newline), is overwritten with the 0x00 prefix. No
 * copy and no string: verify hashes every line it reads this way.
 */
export function leafHashInPlace(buffer: Buffer, start: number, end: number): Hash {
  if (start === 0) return leafHash(buffer.subarray(0, end));
  buffer[start - 1] = 0x00;
  return sha256(buffer.subarray(start - 1, end));
}

/** RFC 6962 section 2.1: interior node hash, SHA-256(0x01 || left || right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return sha256(Buffer.concat([NODE_PREFIX, left, right], 65));
}

/** RFC 6962 section 2.1: "k is the largest power of two smaller than n" (n > 1). */
export function largestPowerOfTwoBelow(n: number): number {
  if (!(n > 1)) throw new RangeError(`no power of two below ${n}`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Sizes of the perfect subtrees that make up a tree of `size` leaves, largest (leftmost) first. */
export function compactRangeSizes(size: number): number[] {
  const sizes: number[] = [];
  let bit = 1;
  while (bit * 2 <= size) bit *= 2;
  let rest = size;
  for (; bit >= 1; bit /= 2) {
    if (rest >= bit) {
      sizes.push(bit);
      rest -= bit;
    }
  }
  return sizes;
}

/**
 * The roots of the perfect subtrees covering leaves [0, size) (a "compact range" or frontier),
 * enough to append further leaves and to compute MTH at every later size. Appending is O(log n)
 * amortised O(1); memory is O(log n). Sizes are plain numbers (exact up to 2^53).
 */
export class CompactRange {
  private constructor(
    private count: number,
    private readonly nodes: Hash[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Rebuilds a range from its size and node hashes (as stored in a checkpoint or tombstone). */
  static from(size: number, nodes: readonly Hash[]): CompactRange {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad tree size ${size}`);
    if (nodes.length !== compactRangeSizes(size).length) {
      throw new RangeError(`a tree of ${size} leaves has ${compactRangeSizes(size).length} frontier nodes, got ${nodes.length}`);
    }
    for (const node of nodes) {
      if (node.length !== 32) throw new RangeError('frontier nodes must be 32-byte hashes');
    }
    return new CompactRange(size, nodes.map((n) => Buffer.from(n)));
  }

  get size(): number {
    return this.count;
  }

  /** Copies of the frontier node hashes, leftmost first. */
  get frontier(): Hash[] {
    return this.nodes.map((n) => Buffer.from(n));
  }

  clone(): CompactRange {
    return new CompactRange(this.count, this.nodes.slice());
  }

  /** Adds one leaf (its leaf hash, already computed with {@link leafHash}). */
  append(leaf: Hash): void {
    let hash = leaf;
    let n = this.count;
    // Each trailing 1 bit of the old size is a perfect subtree of the same size as the one being
    // carried: merge them, exactly like binary addition.
    while (n % 2 === 1) {
      hash = nodeHash(this.nodes.pop()!, hash);
      n = Math.floor(n / 2);
    }
    this.nodes.push(hash);
    this.count += 1;
  }

  /** MTH(D[0:size]): folds the frontier from the right (RFC 6962's split is always at its first node). */
  root(): Hash {
    if (this.count === 0) return emptyRoot();
    let acc = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) acc = nodeHash(this.nodes[i]!, acc);
    return acc;
  }
}

/** A half-open leaf range [start, end): one node of a proof. */
export type LeafRange = readonly [start: number, end: number];

/**
 * RFC 6962 section 2.1.1 (RFC 9162 section 2.1.3.1): PATH(m, D[n]), as the leaf ranges whose
 * MTH make up the audit path of leaf `index` in a tree of `size` leaves, deepest first.
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  }
  const out: LeafRange[] = [];
  // Walk down from the root, collecting siblings, then reverse (the path lists the leaf end first).
  let lo = 0;
  let hi = size;
  let m = index;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (m < k) {
      out.push([lo + k, hi]);
      hi = lo + k;
    } else {
      out.push([lo, lo + k]);
      lo += k;
      m -= k;
    }
  }
  return out.reverse();
}

/**
 * RFC 6962 section 2.1.2 (RFC 9162 section 2.1.4.1): PROOF(m, D[n]) = SUBPROOF(m, D[n], true),
 * as leaf ranges. An empty proof for m == n.
 */
export function consistencyProofRanges(oldSize: number, newSize: number): LeafRange[] {
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && oldSize > 0 && oldSize <= newSize)) {
    throw new RangeError(`no consistency proof from size ${oldSize} to size ${newSize}`);
  }
  const out: LeafRange[] = [];
  subproof(oldSize, 0, newSize, true, out);
  return out;
}

function subproof(m: number, lo: number, hi: number, complete: boolean, out: LeafRange[]): void {
  const n = hi - lo;
  if (m === n) {
    if (!complete) out.push([lo, hi]);
    return;
  }
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) {
    subproof(m, lo, lo + k, complete, out);
    out.push([lo + k, hi]);
  } else {
    subproof(m - k, lo + k, hi, false, out);
    out.push([lo, lo + k]);
  }
}

/**
 * RFC 9162 section 2.1.3.2: recomputes the root from a leaf hash and its inclusion proof, or
 * returns undefined when the proof has the wrong shape for (index, size).
 */
export function rootFromInclusionProof(index: number, size: number, leaf: Hash, proof: readonly Hash[]): Hash | undefined {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size)) || index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

/** RFC 9162 section 2.1.3.2: true when `proof` proves leaf `index` with hash `leaf` is in the tree `root`. */
export function verifyInclusion(index: number, size: number, leaf: Hash, proof: readonly Hash[], root: Hash): boolean {
  const computed = rootFromInclusionProof(index, size, leaf, proof);
  return computed !== undefined && computed.equals(root);
}

/**
 * RFC 9162 section 2.1.4.2: true when `proof` proves that the tree of `oldSize` leaves with root
 * `oldRoot` is a prefix of the tree of `newSize` leaves with root `newRoot`. Equal sizes need an
 * empty proof and equal roots; an empty old tree is consistent with everything.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Hash,
  newRoot: Hash,
  proof: readonly Hash[],
): boolean {
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize)) || oldSize < 0 || oldSize > newSize) return false;
  if (oldSize === 0) return proof.length === 0;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  if (proof.length === 0) return false;
  // Step 2: if first is an exact power of 2, prepend first_hash to the path.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof.slice();
  // Steps 3-4.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // Step 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // Step 7.
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * Computes MTH(D[start:end]) for a fixed set of leaf ranges while every leaf hash streams past
 * once, in order, in O(#ranges × log n) memory: how proofs are built without loading the ledger.
 *
 * `base` is the compact range of leaves that are no longer stored (removed by retention): a range
 * that starts inside it can still be hashed when its start is a boundary of the base's frontier
 * (the frontier nodes then are exactly its first subtrees); otherwise {@link result} says which
 * range is unavailable.
 */
export class RangeHasher {
  private readonly accumulators: Array<{ start: number; end: number; range: CompactRange; unavailable: boolean }>;

  constructor(
    ranges: readonly LeafRange[],
    private readonly base: CompactRange = CompactRange.empty(),
  ) {
    const baseSize = base.size;
    const baseSizes = compactRangeSizes(baseSize);
    const baseNodes = base.frontier;
    this.accumulators = ranges.map(([start, end]) => {
      if (start >= baseSize) return { start, end, range: CompactRange.empty(), unavailable: false };
      // Seed with the base frontier nodes that tile [start, min(end, baseSize)).
      const stop = Math.min(end, baseSize);
      const seed: Hash[] = [];
      let offset = 0;
      let ok = false;
      for (let i = 0; i < baseSizes.length; i++) {
        const nodeStart = offset;
        const nodeEnd = offset + baseSizes[i]!;
        offset = nodeEnd;
        if (nodeEnd <= start) continue;
        if (nodeStart < start) break; // start falls inside a node: its parts are gone
        if (nodeEnd > stop) break; // the range ends inside a node
        seed.push(baseNodes[i]!);
        if (nodeEnd === stop) {
          ok = true;
          break;
        }
      }
      if (!ok) return { start, end, range: CompactRange.empty(), unavailable: true };
      return { start, end, range: CompactRange.from(stop - start, seed), unavailable: false };
    });
  }

  /** Feeds leaf `index` (which must be base.size, base.size + 1, ... in order). */
  push(index: number, leaf: Hash): void {
    for (const acc of this.accumulators) {
      if (index >= acc.start && index < acc.end && index >= this.base.size) acc.range.append(leaf);
    }
  }

  /** The hash of every range, or the first range that could not be computed. */
  result(): { ok: true; hashes: Hash[] } | { ok: false; range: LeafRange } {
    const hashes: Hash[] = [];
    for (const acc of this.accumulators) {
      if (acc.unavailable || acc.range.size !== acc.end - acc.start) return { ok: false, range: [acc.start, acc.end] };
      hashes.push(acc.range.root());
    }
    return { ok: true, hashes };
  }
}
