/**
 * Retention: removes whole segments whose every record has expired under a policy, and leaves a
 * signed tombstone checkpoint so that verification still passes over what remains and still
 * proves nothing else was removed.
 *
 * Why whole segments and whole records: every record is a Merkle leaf, hashed whole. Stripping a
 * field from a kept record (e.g. content hashes after 1 year under `standard`) would change its
 * leaf hash and break every later checkpoint. So a record lives as long as the longest lifetime of
 * the data categories it holds, and a segment as long as its longest-lived record. The plan reports
 * how many kept records hold fields past their own shorter lifetime (docs/ledger.md).
 *
 * The tombstone keeps, for the removed prefix [0, n): its Merkle root, its frontier (the O(log n)
 * subtree hashes from which every later root, and inclusion proofs of the remaining records, can
 * still be computed), the last removed leaf hash (the `prev` of record n), the removed segments and
 * the ledger's head (size, root) at that moment. Like tiled transparency logs that keep hash tiles
 * apart from entry bundles, the hashes survive the entries.
 */
import type { KeyObject } from 'node:crypto';
import type { CheckpointEntry, LedgerSource } from './backend';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { latestTombstone, stateFromCheckpoint, walkChain, removedSegments, initialChainState } from './chain';
import { CHECKPOINT_VERSION, finishCheckpoint, type Checkpoint } from './checkpoint';
import { LedgerError, fsError } from './errors';
import { FileLedgerSource, readMeta } from './file/ledger';
import { syncDirSync } from '../util/durable-file';
import { CHECKPOINTS_FILE, SEGMENTS_DIR, appendJsonLineSync, segmentLabel, segmentPath } from './file/layout';
import { removeSummary } from './file/summary';
import { acquireLock } from './file/lock';
import type { LedgerRecord } from './record';
import { verifyLedger } from './verify';
import { addDuration, describePolicy, formatDuration, hasContent, hasErrors, recordExpiry, retentionNow, type RetentionPolicy } from './policy';
import { segmentExpiry } from './tombstone';

export * from './policy';

/** Fields of a kept record that outlived their own category's lifetime (reported, not stripped). */
function overdueFields(record: LedgerRecord, policy: RetentionPolicy, now: number): boolean {
  const t = Date.parse(record.timestamp);
  return (hasContent(record) && addDuration(t, policy.content) <= now) || (hasErrors(record) && addDuration(t, policy.errors) <= now);
}

export interface SegmentPlan {
  name: string;
  records: number;
  first_seq: number;
  last_seq: number;
  newest_timestamp: string;
  expires_at: string;
  action: 'remove' | 'keep';
  reason: string;
}

export interface RetentionPlan {
  policy: RetentionPolicy;
  now: string;
  segments: SegmentPlan[];
  removeRecords: number;
  /** Kept records holding content or error fields past their shorter lifetime. */
  overdueKept: number;
  notes: string[];
}

export interface RetentionOptions {
  policy: RetentionPolicy;
  now?: Date;
  dryRun?: boolean;
  signingKey?: KeyObject;
  publicKey?: KeyObject;
}


export interface RetentionResult {
  plan: RetentionPlan;
  tombstone: Checkpoint | undefined;
  warnings: string[];
}

/**
 * Plans and (unless dry-run) applies retention to the file ledger in `dir`. The ledger must verify
 * first; a record that has not expired can never be removed (the newest segment is always kept,
 * `now` may not lie in the future, and only a prefix of wholly expired segments goes).
 */
export async function applyRetention(dir: string, options: RetentionOptions): Promise<RetentionResult> {
  const now = retentionNow(options.now, options.dryRun);
  const source = new FileLedgerSource(dir);
  source.assertLedger();
  const lock = options.dryRun ? undefined : acquireLock(dir, 'apply retention to');
  try {
    return await run(dir, source, options, now);
  } finally {
    lock?.release();
  }
}

async function run(dir: string, source: FileLedgerSource, options: RetentionOptions, now: number): Promise<RetentionResult> {
  const planned = await planRetention(source, options, now, (file) => file.slice(SEGMENTS_DIR.length + 1));
  const { plan, warnings } = planned;
  if (options.dryRun || planned.remove.length === 0) return { plan, tombstone: undefined, warnings };
  const meta = readMeta(dir);
  const firstKept = plan.segments.find((s) => s.action === 'keep')!;
  const tombstone = await buildTombstone(source, planned, meta?.ledger_id ?? '', { segment: firstKept.name, offset: 0 }, options.signingKey);
  if (!options.signingKey) warnings.push('the tombstone is not signed (no signing key): set LLM_AUDIT_SIGNING_KEY or pass --signing-key');

  // The tombstone is durable before any segment goes: a crash in between leaves segments that
  // verify reports as "marked removed but still present", never a gap without a tombstone.
  appendJsonLineSync(join(dir, CHECKPOINTS_FILE), tombstone, 'cannot write the tombstone to');
  for (const s of planned.remove) {
    try {
      unlinkSync(segmentPath(dir, s.name));
    } catch (error) {
      throw fsError(error, `cannot remove ${segmentLabel(s.name)}`, segmentPath(dir, s.name));
    }
    removeSummary(dir, s.name);
  }
  syncDirSync(join(dir, SEGMENTS_DIR));
  return { plan, tombstone, warnings };
}

/** A retention plan over any backend, with what the tombstone needs. */
export interface PlannedRetention {
  plan: RetentionPlan;
  /** The segments (partitions) to remove: a prefix of the ledger. */
  remove: SegmentPlan[];
  warnings: string[];
  checkpoints: CheckpointEntry[];
  skip: Set<string>;
  policy: RetentionPolicy;
  now: number;
  head: { tree_size: number; root: string };
}

/**
 * Verifies the ledger (refusing to plan over one that does not verify) and plans which segments
 * go: a prefix of wholly expired segments, never the newest. `segmentOf` names the segment of a
 * stored entry from its location (a file under segments/, or a table partition).
 */
export async function planRetention(
  source: LedgerSource,
  options: Pick<RetentionOptions, 'policy' | 'publicKey'>,
  now: number,
  segmentOf: (file: string) => string,
): Promise<PlannedRetention> {
  const { policy } = options;
  const stats = new Map<string, { records: number; first: number; last: number; newest: number; expiry: number; overdue: number }>();
  let verified;
  try {
    verified = await verifyLedger(source, {
      ...(options.publicKey ? { publicKey: options.publicKey } : {}),
      onEntry: (accepted) => {
        const record = accepted.entry.record as LedgerRecord;
        const name = segmentOf(accepted.location.file);
        let s = stats.get(name);
        if (!s) stats.set(name, (s = { records: 0, first: accepted.entry.seq, last: 0, newest: -Infinity, expiry: -Infinity, overdue: 0 }));
        s.records++;
        s.last = accepted.entry.seq;
        const t = Date.parse(record.timestamp);
        if (t > s.newest) s.newest = t;
        const expiry = Number.isNaN(t) ? Infinity : recordExpiry(record, policy);
        if (expiry > s.expiry) s.expiry = expiry;
        if (overdueFields(record, policy, now)) s.overdue++;
      },
    });
  } catch (error) {
    if (error instanceof LedgerError) {
      throw new LedgerError('LEDGER_RETENTION_REFUSED', `the ledger does not verify, so nothing was removed: ${error.code}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }

  const checkpoints = await source.checkpoints();
  const skip = removedSegments(checkpoints);
  const names = (await source.segments()).filter((n) => !skip.has(n));
  const segments: SegmentPlan[] = [];
  let removing = true;
  let removeRecords = 0;
  let overdueKept = 0;
  names.forEach((name, i) => {
    const s = stats.get(name);
    if (!s) {
      segments.push({ name, records: 0, first_seq: -1, last_seq: -1, newest_timestamp: '', expires_at: '', action: 'keep', reason: 'empty' });
      removing = false;
      return;
    }
    let action: SegmentPlan['action'] = 'keep';
    let reason: string;
    if (i === names.length - 1) reason = 'newest segment (the writer appends to it)';
    else if (!removing) reason = 'an earlier segment is kept (only a prefix can be removed)';
    else if (segmentExpiry(name, s.expiry, policy) > now) reason = 'not expired';
    else {
      action = 'remove';
      reason = 'every record expired';
    }
    if (action === 'keep') {
      removing = false;
      overdueKept += s.overdue;
    } else removeRecords += s.records;
    segments.push({
      name,
      records: s.records,
      first_seq: s.first,
      last_seq: s.last,
      newest_timestamp: new Date(s.newest).toISOString(),
      expires_at: Number.isFinite(s.expiry) ? new Date(segmentExpiry(name, s.expiry, policy)).toISOString() : 'never (bad timestamp)',
      action,
      reason,
    });
  });
  const notes: string[] = [];
  if (overdueKept > 0) {
    notes.push(
      `${overdueKept} kept record(s) hold content hashes or error details past their ${formatDuration(policy.content)}/${formatDuration(policy.errors)} lifetime: ` +
        `records are hashed whole into the Merkle tree, so fields cannot be stripped without breaking verification; they go with their segment when the whole record expires`,
    );
  }
  const plan: RetentionPlan = { policy, now: new Date(now).toISOString(), segments, removeRecords, overdueKept, notes };
  return {
    plan,
    remove: segments.filter((s) => s.action === 'remove'),
    warnings: [...verified.warnings],
    checkpoints,
    skip,
    policy,
    now,
    head: { tree_size: verified.treeSize, root: verified.root },
  };
}

/**
 * The tombstone of a plan: a checkpoint of the removed prefix [0, n) (computed by a second
 * streaming pass that stops at n) with the policy, the removed segments and the head.
 */
export async function buildTombstone(
  source: LedgerSource,
  planned: PlannedRetention,
  ledgerId: string,
  position: Checkpoint['position'],
  signingKey: KeyObject | undefined,
): Promise<Checkpoint> {
  const { policy, remove } = planned;
  const signedBefore = planned.checkpoints.find((c) => c.checkpoint.signature !== null);
  if (!signingKey && signedBefore) {
    // verify --public-key requires every tombstone to be signed: an unsigned one would fail it for good.
    throw new LedgerError(
      'LEDGER_USAGE',
      `the ledger's checkpoints are signed (key id ${signedBefore.checkpoint.key_id!.slice(0, 16)}...) but no signing key was given: an unsigned tombstone would fail \`verify --public-key\` from now on. Pass --signing-key FILE or set LLM_AUDIT_SIGNING_KEY; nothing was removed`,
    );
  }
  const n = remove[remove.length - 1]!.last_seq + 1;
  const previous = latestTombstone(planned.checkpoints);
  const state = previous ? stateFromCheckpoint(previous.checkpoint)! : initialChainState();
  await walkChain(source.items({ skip: planned.skip, leaves: true }), state, { stopAtSize: n });
  if (state.range.size !== n) throw new LedgerError('LEDGER_IO', `the ledger changed while retention ran; nothing was removed`);
  return finishCheckpoint(
    {
      v: CHECKPOINT_VERSION,
      type: 'tombstone',
      ledger_id: ledgerId,
      tree_size: n,
      root: state.range.root().toString('hex'),
      last_leaf: state.lastLeaf.toString('hex'),
      frontier: state.range.frontier.map((h) => h.toString('hex')),
      position,
      timestamp: new Date().toISOString(),
      tombstone: {
        policy: describePolicy(policy),
        applied_at: new Date(planned.now).toISOString(),
        removed_segments: remove.map((s) => ({
          name: s.name,
          first_seq: s.first_seq,
          last_seq: s.last_seq,
          records: s.records,
          newest_timestamp: s.newest_timestamp,
          expired_at: s.expires_at,
        })),
        head: planned.head,
      },
    },
    signingKey,
  );
}
