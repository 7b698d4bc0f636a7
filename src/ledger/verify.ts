/**
 * `llm-audit verify`: recomputes every leaf hash, the hash chain and the Merkle root while
 * streaming the ledger once, checks each checkpoint (the ledger's own, and external ones kept
 * elsewhere) against the root at its size, checks signatures, and continues correctly after
 * retention from the newest tombstone. Throws a LedgerError naming the first bad record.
 */
import { gapOf, gapWarning, type Gap } from './gap';
import type { KeyObject } from 'node:crypto';
import { requireWholeLedger, type CheckpointEntry, type LedgerSource, type SegmentFacts, type StoredEntry } from './backend';
import { initialChainState, latestTombstone, recordActionIs, removedSegments, stateFromCheckpoint, walkChain, type AcceptedEntry, type ChainState } from './chain';
import { checkSignature, keyIdOf, type Checkpoint } from './checkpoint';
import { LedgerError, describeLocation } from './errors';
import { CompactRange, emptyRoot } from './merkle';
import { GAP_ACTION, RECOVERED_ACTION, type LedgerRecord } from './record';
import { checkTombstoneDates } from './tombstone';

export interface VerifyOptions {
  /** Ed25519 public key: every signed checkpoint must verify with it; every tombstone, the newest checkpoint and every external one must be signed. */
  publicKey?: KeyObject;
  /** Checkpoints kept outside the ledger (`--checkpoint FILE`): they catch a truncated tail. */
  external?: CheckpointEntry[];
  /** Fail (LEDGER_RECORDS_RECOVERED) when a writer recovered records at startup, instead of reporting them. */
  strict?: boolean;
  /** Sees every verified entry (retention planning folds over them in the same pass); verify then uses no worker threads. */
  onEntry?: (accepted: AcceptedEntry) => void;
  /**
   * Worker threads for the per-line work, where the source has them (the file ledger, whole
   * segments per thread): 0 for none; default: the cores, at most 4, for ledgers of 16 MiB or more.
   */
  workers?: number;
}

export interface VerifyResult {
  /** Entries present and verified. */
  records: number;
  /** Tree size reached (records removed by retention included). */
  treeSize: number;
  root: string;
  /** Records removed by retention (size of the newest tombstone). */
  removed: number;
  /** Checkpoints whose root was recomputed and matched. */
  checkpointsMatched: number;
  /** Checkpoints whose signature verified with the given public key. */
  signaturesVerified: number;
  newestCheckpointSize: number | null;
  /** The smallest and largest record `timestamp` among the verified records (span start times, so not in seq order). */
  period: { first: string | null; last: string | null };
  /**
   * Ranges a writer found after the newest checkpoint it had signed when it started (a crash, or
   * lines someone else added) and marked with a `ledger.recovered` record at `marker_seq`: they were
   * not signed when written; a later signature over them only says the writer found them.
   */
  recovered: RecoveredRange[];
  warnings: string[];
  notes: string[];
  /** Worker threads that did the per-line work (0: the walk ran on the main thread). */
  threads: number;
}

export interface RecoveredRange {
  from_seq: number;
  to_seq: number;
  marker_seq: number;
  /** When the writer found them (the marker record's timestamp). */
  at: string;
}

interface Expectation {
  size: number;
  root: string;
  lastLeaf?: string;
  where: string;
  when: string;
}

export async function verifyLedger(source: LedgerSource, options: VerifyOptions = {}): Promise<VerifyResult> {
  await source.open();
  await requireWholeLedger(source, 'verify');
  const warnings: string[] = [];
  const ledgerId = await source.ledgerId();
  const own = await source.checkpoints();
  const external = options.external ?? [];
  const all = [...own, ...external];

  for (const { checkpoint, where } of all) {
    if (ledgerId !== null && checkpoint.ledger_id !== ledgerId) {
      throw new LedgerError(
        'LEDGER_CHECKPOINT_MISMATCH',
        `${where} belongs to ledger ${checkpoint.ledger_id}, not to this ledger (${ledgerId})`,
      );
    }
  }

  const signaturesVerified = checkSignatures(own, external, options.publicKey, warnings);

  // Where verification starts: after the newest tombstone, or at the beginning.
  const tombstone = latestTombstone(own);
  let state = initialChainState();
  if (tombstone) {
    const resumed = stateFromCheckpoint(tombstone.checkpoint);
    if (!resumed) {
      throw new LedgerError(
        'LEDGER_TOMBSTONE_INVALID',
        `${tombstone.where}: the tombstone's frontier does not hash to its root; it was altered`,
      );
    }
    state = resumed;
  }
  const startSize = state.range.size;
  const skip = removedSegments(own);
  const segments = await source.segments();
  const lingering = segments.filter((s) => skip.has(s));
  if (lingering.length > 0 && source.atomicRetention) {
    throw new LedgerError(
      'LEDGER_TOMBSTONE_INVALID',
      `${lingering.join(', ')} ${lingering.length === 1 ? 'is' : 'are'} listed as removed by a retention tombstone but still present, which retention on this backend never leaves: the tombstone was not written by retention`,
    );
  }
  await checkTombstoneDates(source, own, lingering, Date.now());
  if (lingering.length > 0) {
    warnings.push(
      `segment(s) ${lingering.join(', ')} were marked removed by retention but are still present (an interrupted run?); they were not verified: run \`llm-audit retention apply\` again`,
    );
  }

  // What each size must hash to.
  const expectations = new Map<number, Expectation[]>();
  const expect = (e: Expectation): void => {
    const list = expectations.get(e.size) ?? [];
    list.push(e);
    expectations.set(e.size, list);
  };
  let unverifiable = 0;
  for (const { checkpoint, where } of all) {
    const e: Expectation = { size: checkpoint.tree_size, root: checkpoint.root, lastLeaf: checkpoint.last_leaf, where, when: checkpoint.timestamp };
    if (checkpoint.tree_size < startSize) unverifiable++;
    else expect(e);
    const head = checkpoint.tombstone?.head;
    if (head && head.tree_size >= startSize) {
      expect({ size: head.tree_size, root: head.root, where: `${where} (head at retention)`, when: checkpoint.timestamp });
    }
  }
  if (unverifiable > 0) {
    warnings.push(
      `${unverifiable} checkpoint(s) predate the records removed by retention; only their signatures could be checked`,
    );
  }

  let matched = 0;
  const matches = (e: Expectation, root: string, lastLeaf: string): boolean => e.root === root && (e.lastLeaf === undefined || e.lastLeaf === lastLeaf);
  const check = (size: number, root: string, lastLeaf: string, at: AcceptedEntry | undefined, previousGood: number): void => {
    for (const e of expectations.get(size) ?? []) {
      if (matches(e, root, lastLeaf)) {
        matched++;
        continue;
      }
      const location = at ? { file: at.location.file, line: at.location.line, seq: at.entry.seq } : undefined;
      throw new LedgerError(
        'LEDGER_CHECKPOINT_MISMATCH',
        (location ? `${describeLocation(location)}: ` : '') +
          `the records do not match ${e.where} (tree size ${size}, ${e.when}): ` +
          (at
            ? `this record, the last one it covers, was altered, or records after seq ${Math.max(previousGood - 1, 0)} were altered and re-chained`
            : `its root differs`),
        location ? { location } : {},
      );
    }
  };
  const rootAt = (s: typeof state): string => (s.range.size === 0 ? emptyRoot() : s.range.root()).toString('hex');
  check(startSize, rootAt(state), state.lastLeaf.toString('hex'), undefined, startSize);

  let lastGood = startSize;
  let recovered: RecoveredRange[] = [];
  let gaps: Gap[] = [];
  let period: VerifyResult['period'] = { first: null, last: null };
  const widen = (first: string, last: string): void => {
    if (period.first === null || first < period.first) period.first = first;
    if (period.last === null || last > period.last) period.last = last;
  };
  let covered: { size: number; by: string } | undefined;
  for (const [size, list] of expectations) if (!covered || size > covered.size) covered = { size, by: list[0]!.where };
  let derived = source.derivedCheck?.();
  // Only a marker's record is parsed (most records' never is: recordActionIs reads the line).
  const markers = (accepted: AcceptedEntry): void => {
    if (recordActionIs(accepted.raw, RECOVERED_ACTION)) {
      const marked = recoveredRange(accepted, warnings);
      if (marked) recovered.push(marked);
    }
    if (recordActionIs(accepted.raw, GAP_ACTION)) {
      const gap = gapOf(accepted.entry);
      if (gap) gaps.push(gap);
    }
  };

  // With worker threads: the segments' facts joined in order here (parallelWalk); anything
  // unusual in them and the walk starts again on one thread from the same state, which names it.
  const initial = { size: state.range.size, frontier: state.range.frontier, lastLeaf: state.lastLeaf, warnings: warnings.length, matched };
  const parallel = options.onEntry === undefined ? await source.segmentFacts?.(skip, options.workers) : undefined;
  let walked: { last: Location | undefined; count: number } | undefined;
  let threads = 0;
  if (parallel) {
    walked = await parallelWalk(parallel.facts, state, {
      markers,
      widen,
      adopt: (segment, settled) => derived?.adopt?.(segment, settled),
      // Any checkpoint that does not match: the single-thread walk names the record.
      reached: (size, leaf) => {
        const list = expectations.get(size);
        if (list === undefined) return true;
        const root = state.range.root().toString('hex');
        const leafHex = leaf.toString('hex');
        if (!list.every((e) => matches(e, root, leafHex))) return false;
        matched += list.length;
        lastGood = size;
        return true;
      },
    });
    if (walked !== undefined) threads = parallel.threads;
    else {
      state = { range: CompactRange.from(initial.size, initial.frontier), lastLeaf: initial.lastLeaf };
      warnings.length = initial.warnings;
      matched = initial.matched;
      lastGood = startSize;
      recovered = [];
      gaps = [];
      period = { first: null, last: null };
      derived = source.derivedCheck?.();
    }
  }
  if (walked === undefined) {
    const serial = await walkChain(source.items({ skip, leaves: true }), state, {
      ...(source.tornAdvice ? { tornAdvice: source.tornAdvice } : {}),
      ...(covered ? { covered } : {}),
      onAccepted: (accepted, s) => {
        options.onEntry?.(accepted);
        derived?.accept(accepted);
        markers(accepted);
        const ts = (accepted.entry.record as { timestamp?: unknown } | null)?.timestamp;
        if (typeof ts === 'string') widen(ts, ts);
        const size = s.range.size;
        if (expectations.has(size)) {
          check(size, s.range.root().toString('hex'), accepted.leaf.toString('hex'), accepted, lastGood);
          lastGood = size;
        }
      },
    });
    const at = serial.last;
    walked = { last: at && { file: at.location.file, line: at.location.line, seq: at.entry.seq }, count: serial.count };
  }
  const { last, count } = walked;

  const finalSize = state.range.size;
  let longest: Expectation | undefined;
  for (const [size, list] of expectations) {
    if (size > finalSize && (!longest || size > longest.size)) longest = list[0];
  }
  if (longest) {
    const missing = longest.size - finalSize;
    const location = last;
    throw new LedgerError(
      'LEDGER_TRUNCATED',
      (location ? `${describeLocation(location)}: ` : '') +
        `the ledger ends here with ${finalSize} records, but ${longest.where} (${longest.when}) says it had ${longest.size}: ` +
        (missing === 1
          ? `1 record (seq ${finalSize}) was removed from the tail`
          : `${missing} records (seq ${finalSize}..${longest.size - 1}) were removed from the tail`),
      location ? { location } : {},
    );
  }

  const newest = own.filter((c) => c.checkpoint.type === 'checkpoint' || c.checkpoint.type === 'tombstone');
  const newestSize = newest.length > 0 ? Math.max(...newest.map((c) => c.checkpoint.tree_size)) : null;
  if (newestSize === null) {
    warnings.push('the ledger has no checkpoint yet: a truncated tail can only be detected with --checkpoint');
  } else if (finalSize > newestSize) {
    const n = finalSize - newestSize;
    warnings.push(
      `${n} record${n === 1 ? '' : 's'} after the newest checkpoint (size ${newestSize}) ${n === 1 ? 'is' : 'are'} protected by the hash chain only (a checkpoint is written every N records and on close)`,
    );
  }

  for (const r of recovered) {
    const one = r.from_seq === r.to_seq;
    const text =
      `${one ? `record ${r.from_seq} was` : `records ${r.from_seq}..${r.to_seq} were`} recovered at startup after a crash, not signed when written ` +
      `(a writer starting at ${r.at} found ${one ? 'it' : 'them'} after the newest checkpoint it had signed, and marked ${one ? 'it' : 'them'} at seq ${r.marker_seq}): ` +
      `a later signature over ${one ? 'it' : 'them'} only says the writer found ${one ? 'it' : 'them'}`;
    if (options.strict) throw new LedgerError('LEDGER_RECORDS_RECOVERED', `${text} (--strict)`);
    warnings.push(text);
  }
  if (options.publicKey && source.unsignedTransactions) {
    for (const r of notMarked(await source.unsignedTransactions(), recovered, startSize)) {
      const one = r.from === r.to;
      const text =
        `${one ? `record ${r.from} was` : `records ${r.from}..${r.to} were`} written by a transaction that wrote no signed checkpoint: ` +
        `a signing writer signs one in every append transaction, so ${one ? 'it was' : 'they were'} inserted with the writer role but without the signing key ` +
        `(by hand, or by a writer configured without LLM_AUDIT_SIGNING_KEY), and no signing writer has marked ${one ? 'it' : 'them'} since`;
      if (options.strict) throw new LedgerError('LEDGER_RECORDS_UNSIGNED', `${text} (--strict)`);
      warnings.push(text);
    }
  }
  const lost = gapWarning(gaps);
  if (lost) warnings.push(lost);

  return {
    records: count,
    treeSize: finalSize,
    root: rootAt(state),
    removed: startSize,
    checkpointsMatched: matched,
    signaturesVerified,
    newestCheckpointSize: newestSize,
    period,
    threads,
    recovered,
    warnings,
    notes: [...(await source.notes()), ...((await derived?.finish(skip)) ?? [])],
  };
}

type Location = { file: string; line: number; seq: number };

interface ParallelHooks {
  /** An accepted marker line (recovered or gap). */
  markers(accepted: AcceptedEntry): void;
  /** A segment's record times. */
  widen(first: string, last: string): void;
  /** A segment whose summary a worker checked. */
  adopt(segment: string, settled: { missing: boolean; partial: boolean }): void;
  /** The tree reached `size` with this last leaf; false when a checkpoint of that size does not match. */
  reached(size: number, leaf: Buffer): boolean;
}

/**
 * The chain walk over the segments' facts from worker threads: each segment's first line must
 * continue the one before (seq and prev; the workers checked the lines inside each segment), and
 * every leaf joins the tree here, in order. Undefined (state then partly advanced) on the first
 * segment that is not clean or does not continue the chain, and on a checkpoint that does not
 * match: the caller walks again on one thread, which names the record.
 */
async function parallelWalk(facts: AsyncIterable<SegmentFacts>, state: ChainState, hooks: ParallelHooks): Promise<{ last: Location | undefined; count: number } | undefined> {
  let last: Location | undefined;
  let count = 0;
  for await (const f of facts) {
    if (!f.clean) return undefined;
    if (f.lines === 0) continue;
    if (f.firstSeq !== state.range.size || f.firstPrev !== state.lastLeaf.toString('hex')) return undefined;
    const leaves = Buffer.from(f.leaves.buffer, f.leaves.byteOffset, f.leaves.byteLength);
    const file = f.file;
    let m = 0;
    for (let i = 0; i < f.lines; i++) {
      const leaf = leaves.subarray(i * 32, i * 32 + 32);
      state.range.append(leaf);
      state.lastLeaf = leaf;
      const marker = f.markers[m];
      if (marker?.index === i) {
        m++;
        const entry = JSON.parse(marker.raw) as StoredEntry;
        hooks.markers({ entry, leaf, raw: marker.raw, location: { file, line: i + 1, offset: marker.offset } });
      }
      if (!hooks.reached(state.range.size, leaf)) return undefined;
    }
    if (f.period) hooks.widen(f.period[0], f.period[1]);
    hooks.adopt(f.segment, f.summary);
    count += f.lines;
    last = { file, line: f.lines, seq: state.range.size - 1 };
  }
  return { last, count };
}

/** The parts of `ranges` at or after `from` that no recovered range covers. */
function notMarked(ranges: ReadonlyArray<{ from: number; to: number }>, recovered: readonly RecoveredRange[], from: number): Array<{ from: number; to: number }> {
  let out = ranges.filter((r) => r.to >= from).map((r) => ({ from: Math.max(r.from, from), to: r.to }));
  for (const m of recovered) {
    out = out.flatMap((r) => {
      if (m.to_seq < r.from || m.from_seq > r.to) return [r];
      const parts: Array<{ from: number; to: number }> = [];
      if (r.from < m.from_seq) parts.push({ from: r.from, to: m.from_seq - 1 });
      if (m.to_seq < r.to) parts.push({ from: m.to_seq + 1, to: r.to });
      return parts;
    });
  }
  return out;
}

/** The range a `ledger.recovered` record names, checked against where it stands. */
function recoveredRange(accepted: AcceptedEntry, warnings: string[]): RecoveredRange | undefined {
  const record = accepted.entry.record as Partial<LedgerRecord>;
  if (record.action !== RECOVERED_ACTION) return undefined;
  const seq = accepted.entry.seq;
  const from = record.metadata?.from_seq;
  const to = record.metadata?.to_seq;
  if (typeof from !== 'number' || typeof to !== 'number' || !(from <= to) || to !== seq - 1) {
    warnings.push(`seq ${seq} is a ${RECOVERED_ACTION} record whose range (${String(from)}..${String(to)}) does not end right before it; it was not written by llm-audit`);
    return undefined;
  }
  return { from_seq: from, to_seq: to, marker_seq: seq, at: String(record.timestamp) };
}

function checkSignatures(
  own: CheckpointEntry[],
  external: CheckpointEntry[],
  publicKey: KeyObject | undefined,
  warnings: string[],
): number {
  const all = [...own, ...external];
  if (all.length === 0) return 0;
  if (!publicKey) {
    const signed = all.filter((c) => c.checkpoint.signature !== null);
    if (signed.length > 0) {
      warnings.push(
        `${signed.length} checkpoint(s) are signed (key id ${signed[0]!.checkpoint.key_id!.slice(0, 16)}...) but no --public-key was given: signatures were not checked`,
      );
    }
    if (signed.length < all.length) {
      warnings.push(
        `${all.length - signed.length} checkpoint(s) are not signed (set LLM_AUDIT_SIGNING_KEY): they show the ledger is self-consistent, not who wrote it`,
      );
    }
    const unsignedTombstones = own.filter((c) => c.checkpoint.type === 'tombstone' && c.checkpoint.signature === null);
    if (unsignedTombstones.length > 0) {
      warnings.push(
        `retention tombstone(s) ${unsignedTombstones.map((c) => c.where).join(', ')} are not signed: anyone who can write the checkpoints could have written them to hide the records they cover; verify with --public-key`,
      );
    }
    return 0;
  }
  const keyId = keyIdOf(publicKey);
  let verified = 0;
  let unsigned = 0;
  for (const { checkpoint, where } of all) {
    const state = checkSignature(checkpoint, publicKey);
    if (state === 'valid') verified++;
    else if (state === 'unsigned') unsigned++;
    else if (state === 'other-key') {
      throw new LedgerError(
        'LEDGER_SIGNATURE_INVALID',
        `${where}: signed by another key (key id ${checkpoint.key_id!.slice(0, 16)}..., expected ${keyId.slice(0, 16)}...)`,
      );
    } else {
      throw new LedgerError('LEDGER_SIGNATURE_INVALID', `${where} (tree size ${checkpoint.tree_size}): the signature does not verify: the checkpoint was altered or forged`);
    }
  }
  // A tombstone decides which records verify skips: an unsigned one proves nothing about who removed them.
  for (const c of own) {
    if (c.checkpoint.type === 'tombstone' && c.checkpoint.signature === null) {
      throw new LedgerError(
        'LEDGER_TOMBSTONE_UNSIGNED',
        `${c.where} is a retention tombstone (records seq 0..${c.checkpoint.tree_size - 1} removed) that is not signed, but --public-key was given: ` +
          `anyone who can write the checkpoints could have written it to hide those records`,
      );
    }
  }
  const newest = newestOf(own);
  for (const c of [newest, ...external].filter((x): x is CheckpointEntry => x !== undefined)) {
    if (c.checkpoint.signature === null) {
      throw new LedgerError(
        'LEDGER_CHECKPOINT_UNSIGNED',
        `${c.where} (tree size ${c.checkpoint.tree_size}) is not signed, but --public-key was given: an unsigned checkpoint proves nothing about who wrote it`,
      );
    }
  }
  if (unsigned > 0) warnings.push(`${unsigned} older checkpoint(s) are not signed`);
  return verified;
}

function newestOf(entries: CheckpointEntry[]): CheckpointEntry | undefined {
  let best: CheckpointEntry | undefined;
  for (const e of entries) if (!best || e.checkpoint.tree_size >= best.checkpoint.tree_size) best = e;
  return best;
}

export type { Checkpoint };
