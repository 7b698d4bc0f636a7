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
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../audit/canonical-json';
import { latestTombstone, stateFromCheckpoint, walkChain, removedSegments, initialChainState } from './chain';
import { CHECKPOINT_VERSION, finishCheckpoint, type Checkpoint } from './checkpoint';
import { LedgerError, fsError } from './errors';
import { FileLedgerSource, readMeta } from './file-ledger';
import { syncDirSync } from '../util/durable-file';
import { CHECKPOINTS_FILE, FILE_MODE, SEGMENTS_DIR, segmentLabel, segmentPath } from './layout';
import { acquireLock } from './lock';
import type { LedgerRecord } from './record';
import { verifyLedger } from './verify';

export interface Duration {
  years?: number;
  months?: number;
  weeks?: number;
  days?: number;
}

/** `90d`, `12w`, `6m`, `2y`. */
export function parseDuration(text: string): Duration {
  const m = /^(\d+)\s*([dwmy])$/i.exec(text.trim());
  if (!m) throw new LedgerError('LEDGER_USAGE', `not a duration: ${JSON.stringify(text)} (use e.g. 90d, 12w, 6m, 2y)`);
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  return unit === 'd' ? { days: n } : unit === 'w' ? { weeks: n } : unit === 'm' ? { months: n } : { years: n };
}

export function formatDuration(d: Duration): string {
  if (d.years) return `${d.years}y`;
  if (d.months) return `${d.months}m`;
  if (d.weeks) return `${d.weeks}w`;
  return `${d.days ?? 0}d`;
}

/** Calendar arithmetic in UTC: 2024-02-29 + 1y = 2025-03-01 (Date's own overflow rule). */
export function addDuration(ms: number, d: Duration): number {
  const date = new Date(ms);
  if (d.years) date.setUTCFullYear(date.getUTCFullYear() + d.years);
  if (d.months) date.setUTCMonth(date.getUTCMonth() + d.months);
  if (d.weeks) date.setUTCDate(date.getUTCDate() + 7 * d.weeks);
  if (d.days) date.setUTCDate(date.getUTCDate() + d.days);
  return date.getTime();
}

function durationAtLeastOneDay(d: Duration): boolean {
  return addDuration(0, d) >= 86_400_000;
}

export interface RetentionPolicy {
  name: string;
  /** Who, when, which model, tokens, cost, status: every record has these. */
  metadata: Duration;
  /** system_prompt_hash, input_hash, output_hash, rag_document_ids. */
  content: Duration;
  /** error_type, error_message. */
  errors: Duration;
}

export const NAMED_POLICIES = ['standard', 'hipaa', 'gdpr', 'custom'] as const;

export interface PolicyFlags {
  metadata?: string;
  content?: string;
  errors?: string;
  maxAge?: string;
}

/**
 * `standard`: metadata 2y, content hashes 1y, error details 1y. `hipaa`: 6y for everything
 * (45 CFR 164.316(b)(2)). `gdpr`: one maximum age for everything, default 90d (`--max-age`), as
 * storage limitation asks for the shortest period the purpose allows. `custom`: `--metadata`,
 * `--content`, `--errors` (all required). Any policy's values can be overridden by the same flags.
 */
export function resolvePolicy(name: string, flags: PolicyFlags = {}): RetentionPolicy {
  let base: RetentionPolicy;
  switch (name) {
    case 'standard':
      base = { name, metadata: { years: 2 }, content: { years: 1 }, errors: { years: 1 } };
      break;
    case 'hipaa':
      base = { name, metadata: { years: 6 }, content: { years: 6 }, errors: { years: 6 } };
      break;
    case 'gdpr': {
      const age = parseDuration(flags.maxAge ?? '90d');
      base = { name, metadata: age, content: age, errors: age };
      break;
    }
    case 'custom': {
      if (!flags.metadata || !flags.content || !flags.errors) {
        throw new LedgerError('LEDGER_USAGE', 'the custom policy needs --metadata, --content and --errors (e.g. --metadata 3y --content 1y --errors 6m)');
      }
      const d = parseDuration(flags.metadata);
      base = { name, metadata: d, content: d, errors: d };
      break;
    }
    default:
      throw new LedgerError('LEDGER_USAGE', `unknown retention policy ${JSON.stringify(name)} (one of ${NAMED_POLICIES.join(', ')})`);
  }
  const policy: RetentionPolicy = {
    ...base,
    ...(flags.metadata ? { metadata: parseDuration(flags.metadata) } : {}),
    ...(flags.content ? { content: parseDuration(flags.content) } : {}),
    ...(flags.errors ? { errors: parseDuration(flags.errors) } : {}),
  };
  for (const key of ['metadata', 'content', 'errors'] as const) {
    if (!durationAtLeastOneDay(policy[key])) throw new LedgerError('LEDGER_USAGE', `the ${key} lifetime must be at least one day`);
  }
  return policy;
}

/** Whether a record holds content hashes (the `content` category of a policy). */
export function hasContent(r: LedgerRecord): boolean {
  return r.system_prompt_hash != null || r.input_hash != null || r.output_hash != null || (r.rag_document_ids?.length ?? 0) > 0;
}
/** Whether a record holds error details (the `errors` category of a policy). */
export function hasErrors(r: LedgerRecord): boolean {
  return r.error_type != null || r.error_message != null;
}

/** When the whole record may go: the longest lifetime among the data categories it holds. */
export function recordExpiry(record: LedgerRecord, policy: RetentionPolicy): number {
  const t = Date.parse(record.timestamp);
  let expiry = addDuration(t, policy.metadata);
  if (hasContent(record)) expiry = Math.max(expiry, addDuration(t, policy.content));
  if (hasErrors(record)) expiry = Math.max(expiry, addDuration(t, policy.errors));
  return expiry;
}

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

/** Allowed clock skew for `--now`: it may not be later than the real clock by more than this. */
const FUTURE_SKEW_MS = 5 * 60_000;

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
  const realNow = Date.now();
  const now = options.now?.getTime() ?? realNow;
  if (now > realNow + FUTURE_SKEW_MS) {
    throw new LedgerError('LEDGER_USAGE', `--now ${new Date(now).toISOString()} is in the future: retention never removes records before they expire`);
  }
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
  const path = join(dir, CHECKPOINTS_FILE);
  try {
    const fd = openSync(path, 'a', FILE_MODE);
    try {
      writeSync(fd, canonicalJson(tombstone) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw fsError(error, 'cannot write the tombstone to', path);
  }
  for (const s of planned.remove) {
    try {
      unlinkSync(segmentPath(dir, s.name));
    } catch (error) {
      throw fsError(error, `cannot remove ${segmentLabel(s.name)}`, segmentPath(dir, s.name));
    }
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
    else if (s.expiry > now) reason = 'not expired';
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
      expires_at: Number.isFinite(s.expiry) ? new Date(s.expiry).toISOString() : 'never (bad timestamp)',
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
  const n = remove[remove.length - 1]!.last_seq + 1;
  const previous = latestTombstone(planned.checkpoints);
  const state = previous ? stateFromCheckpoint(previous.checkpoint)! : initialChainState();
  await walkChain(source.items({ skip: planned.skip }), state, { stopAtSize: n });
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
        policy: {
          name: policy.name,
          metadata: formatDuration(policy.metadata),
          content: formatDuration(policy.content),
          errors: formatDuration(policy.errors),
        },
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
