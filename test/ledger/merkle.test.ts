import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  RangeHasher,
  consistencyProofRanges,
  emptyRoot,
  inclusionProofRanges,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger/merkle';

// An independent, deliberately naive transcription of RFC 6962 section 2.1 (recursive MTH, PATH,
// PROOF/SUBPROOF) to check the incremental implementation against.
const H = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
const k = (n: number): number => {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
};
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return H();
  if (d.length === 1) return H(Buffer.from([0]), d[0]!);
  const s = k(d.length);
  return H(Buffer.from([1]), mth(d.slice(0, s)), mth(d.slice(s)));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const s = k(n);
  return m <= s ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))] : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

const data = Array.from({ length: 64 }, (_, i) => Buffer.from(`leaf ${i} ${'x'.repeat(i % 7)}`));
const leaves = data.map((d) => leafHash(d));

function rangeHashes(ranges: ReadonlyArray<readonly [number, number]>, size: number, baseSize = 0): Buffer[] {
  const base = CompactRange.empty();
  for (let i = 0; i < baseSize; i++) base.append(leaves[i]!);
  const hasher = new RangeHasher(ranges, base);
  for (let i = baseSize; i < size; i++) hasher.push(i, leaves[i]!);
  const result = hasher.result();
  if (!result.ok) throw new Error(`unavailable ${result.range}`);
  return result.hashes;
}

function flip(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c[0]! ^= 1;
  return c;
}

describe('merkle (RFC 6962 / RFC 9162 section 2.1)', () => {
  it('matches the published Certificate Transparency test vectors', () => {
    const vectors = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) =>
      Buffer.from(h, 'hex'),
    );
    const roots = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ];
    const range = CompactRange.empty();
    expect(range.root().toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(emptyRoot().equals(mth([]))).toBe(true);
    vectors.forEach((v, i) => {
      range.append(leafHash(v));
      expect(range.root().toString('hex')).toBe(roots[i]);
    });
  });

  it('incremental root equals the recursive MTH for every size 1..64', () => {
    const range = CompactRange.empty();
    for (let n = 1; n <= 64; n++) {
      range.append(leaves[n - 1]!);
      expect(range.root().equals(mth(data.slice(0, n)))).toBe(true);
      // A range rebuilt from its stored frontier continues identically.
      const copy = CompactRange.from(range.size, range.frontier);
      expect(copy.root().equals(range.root())).toBe(true);
    }
  });

  it('every inclusion proof for sizes 1..64 equals PATH and verifies; tampered ones fail', () => {
    for (let n = 1; n <= 64; n++) {
      const root = mth(data.slice(0, n));
      for (let m = 0; m < n; m++) {
        const proof = rangeHashes(inclusionProofRanges(m, n), n);
        const expected = path(m, data.slice(0, n));
        expect(proof.map((h) => h.toString('hex'))).toEqual(expected.map((h) => h.toString('hex')));
        expect(verifyInclusion(m, n, leaves[m]!, proof, root)).toBe(true);
        // Wrong leaf, wrong index, wrong size, altered or shortened path, extra element: all fail.
        expect(verifyInclusion(m, n, leaves[(m + 1) % 64]!, proof, root)).toBe(false);
        if (n > 1) expect(verifyInclusion((m + 1) % n, n, leaves[m]!, proof, root)).toBe(false);
        // (A different tree size may share the proof's shape; the signed checkpoint binds the size.)
        expect(verifyInclusion(m, m, leaves[m]!, proof, root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(m, n, leaves[m]!, [flip(proof[0]!), ...proof.slice(1)], root)).toBe(false);
          expect(verifyInclusion(m, n, leaves[m]!, proof.slice(0, -1), root)).toBe(false);
        }
        expect(verifyInclusion(m, n, leaves[m]!, [...proof, leaves[0]!], root)).toBe(false);
        expect(verifyInclusion(m, n, leaves[m]!, proof, flip(root))).toBe(false);
      }
    }
  });

  it('every consistency proof for 1 <= m <= n <= 64 equals PROOF and verifies; tampered ones fail', () => {
    for (let n = 1; n <= 64; n++) {
      const newRoot = mth(data.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const oldRoot = mth(data.slice(0, m));
        const proof = m === n ? [] : rangeHashes(consistencyProofRanges(m, n), n);
        const expected = m === n ? [] : subproof(m, data.slice(0, n), true);
        expect(proof.map((h) => h.toString('hex'))).toEqual(expected.map((h) => h.toString('hex')));
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
        expect(verifyConsistency(m, n, flip(oldRoot), newRoot, proof)).toBe(false);
        expect(verifyConsistency(m, n, oldRoot, flip(newRoot), proof)).toBe(false);
        for (let i = 0; i < proof.length; i++) {
          const bad = proof.slice();
          bad[i] = flip(bad[i]!);
          expect(verifyConsistency(m, n, oldRoot, newRoot, bad)).toBe(false);
        }
        if (proof.length > 0) expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1))).toBe(false);
        if (m < n) expect(verifyConsistency(m + 1, n, oldRoot, newRoot, proof)).toBe(false);
      }
    }
    expect(verifyConsistency(0, 5, emptyRoot(), mth(data.slice(0, 5)), [])).toBe(true);
    expect(verifyConsistency(5, 4, mth(data.slice(0, 5)), mth(data.slice(0, 4)), [])).toBe(false);
  });

  it('proofs of leaves after a removed prefix are computed from the prefix frontier alone', () => {
    for (const removed of [1, 3, 8, 13, 32]) {
      for (const n of [removed + 1, 40, 64]) {
        const root = mth(data.slice(0, n));
        for (let m = removed; m < n; m++) {
          const proof = rangeHashes(inclusionProofRanges(m, n), n, removed);
          expect(verifyInclusion(m, n, leaves[m]!, proof, root)).toBe(true);
        }
      }
    }
  });

  it('says when a proof needs hashes inside a removed prefix', () => {
    const base = CompactRange.empty();
    for (let i = 0; i < 4; i++) base.append(leaves[i]!);
    // Consistency 3 -> 8 needs leaf 2 and leaf 3 separately, but only MTH(0..4) survives.
    const hasher = new RangeHasher(consistencyProofRanges(3, 8), base);
    for (let i = 4; i < 8; i++) hasher.push(i, leaves[i]!);
    expect(hasher.result().ok).toBe(false);
  });

  it('rejects malformed frontiers', () => {
    expect(() => CompactRange.from(3, [leaves[0]!])).toThrow(RangeError);
    expect(() => inclusionProofRanges(5, 5)).toThrow(RangeError);
    expect(() => consistencyProofRanges(0, 5)).toThrow(RangeError);
  });
});
