/**
 * The streaming core of verification: walks stored entries in order, recomputing every leaf hash
 * and the hash chain, and names the first bad record precisely. Used by `verify`, by the writer
 * when it reopens a ledger, by proofs, and by retention planning. O(log n) memory: the Merkle
 * frontier, the last accepted entry and a two-entry lookahead (used only to tell, once something is
 * wrong, which of two neighbouring records is the bad one).
 *
 * Stored line (the leaf data): canonicalJson({ seq, prev, record })
 * Leaf hash:                   SHA-256(0x00 || line)                       (RFC 6962 section 2.1)
 */
import { canonicalValueEnd, isCanonicalJson } from '../audit/canonical-json';
import type { CheckpointEntry, ItemLocation, LedgerItem, StoredEntry } from './backend';
import { ZERO_HASH, type Checkpoint } from './checkpoint';
import { LedgerError, describeLocation, type LedgerErrorCode } from './errors';
import { CompactRange, leafHash, type Hash } from './merkle';

const HEX64 = /^[0-9a-f]{64}$/;

/** An item with what parsing could learn about it. */
interface Parsed {
  item: LedgerItem;
  entry?: StoredEntry;
  /** Why the line is not a valid entry (JSON or shape), if it is not. */
  problem?: string;
  canonical?: boolean;
  leaf?: Hash;
}

// A canonical stored line, member by member (prev < record < seq in canonical order):
//   {"prev":"<64 lowercase hex>","record":{...},"seq":<integer>}
const PREV_AT = '{"prev":"'.length;
const RECORD_AT = PREV_AT + 64 + '","record":'.length;
const SEQ_KEY = ',"seq":';
const DIGITS = /^(0|[1-9][0-9]*)$/;

/**
 * A stored entry whose record is parsed only when first read: verify needs seq and prev of every
 * line, the record of few (a gap or recovered marker, found by `recordActionIs`). `record` is an
 * own enumerable property (a getter), so the entry spreads, serialises and compares as a plain one.
 */
function lazyEntry(seq: number, prev: string, raw: string): StoredEntry {
  let record: unknown;
  // An accessor in the literal (own and enumerable like defineProperty's, several times cheaper).
  return {
    seq,
    prev,
    get record() {
      return (record ??= (JSON.parse(raw) as StoredEntry).record);
    },
  };
}

/**
 * The entry of a line in the writer's exact form, decided in one pass over the text without
 * JSON.parse; undefined when the line is anything else (then parseItem's full path names the problem).
 * `onRecordMember` sees the record's own members on the way (canonicalValueEnd's onMember).
 */
export function canonicalEntry(raw: string, onRecordMember?: (nameStart: number, nameEnd: number, valueEnd: number) => void): StoredEntry | undefined {
  if (!raw.startsWith('{"prev":"') || raw.charCodeAt(RECORD_AT) !== 0x7b /* { */ || !raw.startsWith('","record":', PREV_AT + 64)) return undefined;
  const prev = raw.slice(PREV_AT, PREV_AT + 64);
  if (!HEX64.test(prev)) return undefined;
  let end: number;
  try {
    end = canonicalValueEnd(raw, RECORD_AT, onRecordMember);
  } catch {
    return undefined; // nesting deeper than the stack
  }
  if (end < 0 || !raw.startsWith(SEQ_KEY, end) || raw.charCodeAt(raw.length - 1) !== 0x7d) return undefined;
  const digits = raw.slice(end + SEQ_KEY.length, raw.length - 1);
  const seq = Number(digits);
  if (!DIGITS.test(digits) || !Number.isSafeInteger(seq)) return undefined;
  return lazyEntry(seq, prev, raw);
}

/**
 * Whether the record of an accepted (so canonical) line has this action: the record's members are
 * sorted, so `action`, when present, is its first.
 */
export function recordActionIs(raw: string, action: string): boolean {
  let prefix = actionPrefixes.get(action);
  if (prefix === undefined) actionPrefixes.set(action, (prefix = `{"action":${JSON.stringify(action)}`));
  if (!raw.startsWith(prefix, RECORD_AT)) return false;
  const after = raw.charCodeAt(RECORD_AT + prefix.length);
  return after === 0x2c /* , */ || after === 0x7d /* } */;
}
const actionPrefixes = new Map<string, string>();

function parseItem(item: LedgerItem): Parsed {
  if (item.kind === 'torn') return { item };
  const raw = item.raw;
  const leaf = item.leaf ?? leafHash(raw);
  const fast = canonicalEntry(raw);
  if (fast) return { item, entry: fast, leaf, canonical: true };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { item, leaf, problem: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { item, leaf, problem: 'not a JSON object' };
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v);
  if (keys.length !== 3 || !('seq' in v) || !('prev' in v) || !('record' in v)) {
    return { item, leaf, problem: 'an entry has exactly the members seq, prev and record' };
  }
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return { item, leaf, problem: 'seq is not a non-negative integer' };
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev)) return { item, leaf, problem: 'prev is not 64 lowercase hex digits' };
  if (typeof v.record !== 'object' || v.record === null || Array.isArray(v.record)) {
    return { item, leaf, problem: 'record is not an object' };
  }
  const entry = value as StoredEntry;
  // Equivalent to canonicalJson(entry) === raw (test/audit/canonical-check.test.ts), without
  // serialising the entry a second time: that was a third of verify's time.
  let canonical = false;
  try {
    canonical = isCanonicalJson(raw);
  } catch {
    canonical = false; // nesting deeper than the stack: not a line the writer produced
  }
  return { item, entry, leaf, canonical };
}

/** Where the chain stands: the next seq is `range.size`, whose `prev` must be `lastLeaf`. */
export interface ChainState {
  range: CompactRange;
  lastLeaf: Hash;
}

export function initialChainState(): ChainState {
  return { range: CompactRange.empty(), lastLeaf: Buffer.from(ZERO_HASH, 'hex') };
}

export interface AcceptedEntry {
  entry: StoredEntry;
  leaf: Hash;
  raw: string;
  location: ItemLocation;
}

export interface ChainHooks {
  /** Called for each entry after it joined the tree (state.range.size already counts it). */
  onAccepted?(accepted: AcceptedEntry, state: ChainState): void | Promise<void>;
  /** Text for a torn-tail message: what the operator should do. */
  tornAdvice?: string;
  /**
   * The largest tree size a checkpoint claims, and which one (verify). A torn line where such a
   * checkpoint says a whole record stood is no interrupted write: the record had been written in
   * full before the checkpoint was, so bytes were cut off since. That is reported as truncation,
   * without the repair advice (repair would only move the evidence aside).
   */
  covered?: { size: number; by: string };
  /** Stop once the tree has this many leaves (proofs need nothing after their tree size). */
  stopAtSize?: number;
}

function fail(code: LedgerErrorCode, location: ItemLocation, seq: number | undefined, message: string): never {
  const where = { file: location.file, line: location.line, ...(seq !== undefined ? { seq } : {}) };
  throw new LedgerError(code, `${describeLocation(where)}: ${message}`, { location: where });
}

/**
 * Consumes `items` starting from `state` (mutated in place). Throws a LedgerError for the first
 * bad record; returns the last accepted entry's location (undefined when none).
 */
export async function walkChain(
  items: AsyncIterable<LedgerItem>,
  state: ChainState,
  hooks: ChainHooks = {},
): Promise<{ last: AcceptedEntry | undefined; count: number }> {
  const iterator = items[Symbol.asyncIterator]();
  const ahead: Parsed[] = [];
  let exhausted = false;
  const peek = async (k: number): Promise<Parsed | undefined> => {
    while (ahead.length <= k && !exhausted) {
      const next = await iterator.next();
      if (next.done) exhausted = true;
      else ahead.push(parseItem(next.value));
    }
    return ahead[k];
  };

  let last: AcceptedEntry | undefined;
  let count = 0;
  let lastHexOf: Hash | undefined;
  let lastHex = '';
  for (;;) {
    if (hooks.stopAtSize !== undefined && state.range.size >= hooks.stopAtSize) break;
    const cur = await peek(0);
    if (cur === undefined) break;
    ahead.shift();
    const { item } = cur;
    const loc = item.location;
    if (item.kind === 'torn') {
      const later = (await peek(0)) !== undefined;
      const seq = state.range.size;
      if (hooks.covered && seq < hooks.covered.size) {
        fail(
          'LEDGER_TRUNCATED',
          loc,
          seq,
          `incomplete record (${item.bytes} bytes with no newline) where ${hooks.covered.by} (tree size ${hooks.covered.size}) says a whole record ` +
            `was: bytes were cut from a record already checkpointed. This is an integrity failure, not an interrupted write: do not repair; ` +
            `keep the files as evidence and compare with a backup or a copy of the checkpoint`,
        );
      }
      fail(
        'LEDGER_TORN_TAIL',
        loc,
        undefined,
        `incomplete record (${item.bytes} bytes with no newline)` +
          (later ? ' in the middle of the ledger' : ' at the end: a write was interrupted (crash or kill)') +
          (hooks.tornAdvice ? `. ${hooks.tornAdvice}` : ''),
      );
    }
    if (cur.problem !== undefined || cur.entry === undefined) {
      fail('LEDGER_RECORD_MALFORMED', loc, undefined, `${cur.problem ?? 'not an entry'} (the line was altered or corrupted)`);
    }
    const entry = cur.entry;
    const seq = entry.seq;
    if (!cur.canonical) {
      fail('LEDGER_RECORD_NOT_CANONICAL', loc, seq, 'the line is not the canonical JSON the writer produced (bytes were altered)');
    }
    const expected = state.range.size;
    // The previous line's leaf in hex is this line's expected prev: kept, not converted again.
    if (lastHexOf !== state.lastLeaf) {
      lastHexOf = state.lastLeaf;
      lastHex = state.lastLeaf.toString('hex');
    }
    const prevHex = lastHex;
    const leafHex = cur.leaf!.toString('hex');

    if (seq === expected && entry.prev !== prevHex) {
      const next = await peek(0);
      const nextConfirmsCur = next?.entry !== undefined && next.entry.seq === seq + 1 && next.entry.prev === leafHex;
      if (last !== undefined && (nextConfirmsCur || next === undefined)) {
        fail(
          'LEDGER_RECORD_HASH_MISMATCH',
          last.location,
          last.entry.seq,
          `the record does not hash to the value the next record (${loc.file}:${loc.line}) commits to: it was altered` +
            (next === undefined ? ` (or the next record's prev was)` : ''),
        );
      }
      fail(
        'LEDGER_CHAIN_BROKEN',
        loc,
        seq,
        last === undefined
          ? `prev ${entry.prev.slice(0, 16)}... does not continue the ledger (expected ${prevHex.slice(0, 16)}...)`
          : `prev does not match the hash of the previous record (${last.location.file}:${last.location.line}): this record was altered`,
      );
    }
    if (seq > expected) {
      const next = await peek(0);
      if (next?.entry !== undefined && next.entry.seq === expected) {
        const after = await peek(1);
        if (after?.entry !== undefined && after.entry.seq === seq) {
          fail('LEDGER_RECORD_INSERTED', loc, seq, `a record claiming seq ${seq} was inserted before seq ${expected}`);
        }
        fail('LEDGER_RECORD_REORDERED', loc, seq, `records are out of order: seq ${seq} comes before seq ${expected}`);
      }
      const missing = seq - expected;
      fail(
        'LEDGER_RECORD_MISSING',
        loc,
        seq,
        `expected seq ${expected} here: ${missing} record${missing === 1 ? '' : 's'} (seq ${expected}` +
          (missing > 1 ? `..${seq - 1}` : '') +
          `) missing before this line (deleted)`,
      );
    }
    if (seq < expected) {
      if (last !== undefined && seq === last.entry.seq) {
        if (item.raw === last.raw) {
          fail('LEDGER_RECORD_DUPLICATE', loc, seq, `an exact copy of the previous line (${last.location.file}:${last.location.line})`);
        }
        const next = await peek(0);
        if (next?.entry !== undefined && next.entry.prev === leafHex) {
          fail(
            'LEDGER_RECORD_INSERTED',
            last.location,
            seq,
            `a forged record claiming seq ${seq} was inserted here: the genuine one follows at ${loc.file}:${loc.line}`,
          );
        }
        fail('LEDGER_RECORD_INSERTED', loc, seq, `a second record claims seq ${seq} (inserted)`);
      }
      fail('LEDGER_RECORD_DUPLICATE', loc, seq, `seq ${seq} appears again after seq ${expected - 1} (duplicated or moved)`);
    }

    // seq === expected and prev matches. Before accepting, make sure the next line does not claim
    // the same place (a duplicate or a forged insertion): only then can the right line be named.
    const next = await peek(0);
    if (next?.entry !== undefined && next.entry.seq === seq && next.item.kind === 'entry') {
      const nextLoc = next.item.location;
      if (next.item.raw === item.raw) {
        fail('LEDGER_RECORD_DUPLICATE', nextLoc, seq, `an exact copy of the previous line (${loc.file}:${loc.line})`);
      }
      const after = await peek(1);
      if (after?.entry !== undefined && after.entry.prev === next.leaf!.toString('hex')) {
        fail(
          'LEDGER_RECORD_INSERTED',
          loc,
          seq,
          `a forged record claiming seq ${seq} was inserted here: the genuine one follows at ${nextLoc.file}:${nextLoc.line}`,
        );
      }
      fail('LEDGER_RECORD_INSERTED', nextLoc, seq, `a second record claims seq ${seq} (inserted after ${loc.file}:${loc.line})`);
    }
    // Accept.
    state.range.append(cur.leaf!);
    state.lastLeaf = cur.leaf!;
    lastHexOf = cur.leaf!;
    lastHex = leafHex;
    last = { entry, leaf: cur.leaf!, raw: item.raw, location: loc };
    count++;
    if (hooks.onAccepted) await hooks.onAccepted(last, state);
  }
  return { last, count };
}

/** The tombstone of the newest retention run (the largest removed prefix). */
export function latestTombstone(entries: readonly CheckpointEntry[]): CheckpointEntry | undefined {
  let best: CheckpointEntry | undefined;
  for (const e of entries) {
    if (e.checkpoint.type === 'tombstone' && (!best || e.checkpoint.tree_size > best.checkpoint.tree_size)) best = e;
  }
  return best;
}

/** Names of every segment some tombstone says was removed. */
export function removedSegments(entries: readonly CheckpointEntry[]): Set<string> {
  const out = new Set<string>();
  for (const e of entries) {
    if (e.checkpoint.type !== 'tombstone') continue;
    for (const s of e.checkpoint.tombstone?.removed_segments ?? []) out.add(s.name);
  }
  return out;
}

/** The chain state a checkpoint or tombstone describes; undefined if its frontier does not match its root. */
export function stateFromCheckpoint(checkpoint: Checkpoint): ChainState | undefined {
  let range: CompactRange;
  try {
    range = CompactRange.from(
      checkpoint.tree_size,
      checkpoint.frontier.map((h) => Buffer.from(h, 'hex')),
    );
  } catch {
    return undefined;
  }
  if (range.root().toString('hex') !== checkpoint.root) return undefined;
  return { range, lastLeaf: Buffer.from(checkpoint.last_leaf, 'hex') };
}

