/**
 * What verify can check of a retention tombstone beyond its hashes (issue 14): that it only claims
 * records which had expired under the policy it names, at a time that is not in the future.
 *
 * A tombstone is written by `llm-audit retention apply`, which removes a segment only when every
 * record in it has expired AND the day it was appended on is older than the policy's shortest
 * lifetime (`segmentExpiry`): so the segment's name alone bounds when it could have been removed,
 * whatever the tombstone claims about the timestamps of records nobody can see any more. Signed
 * checkpoints written before the tombstone name the segment each of their records started in,
 * which ties the names to the removed records; segments still present are read and their records'
 * own timestamps checked.
 */
import type { CheckpointEntry, LedgerSource } from './backend';
import { LedgerError } from './errors';
import { FUTURE_SKEW_MS, addDuration, parseDuration, recordExpiry, type RetentionPolicy } from './policy';
import type { LedgerRecord } from './record';

const DAY_MS = 86_400_000;

/** Start (UTC ms) of the day a segment or partition name carries (`2026-11-22.jsonl`, `records_20261122`). */
export function segmentDayStart(name: string): number | undefined {
  const m = /(\d{4})-?(\d{2})-?(\d{2})/.exec(name);
  if (!m) return undefined;
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T00:00:00.000Z`);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The earliest moment retention may remove a segment appended on the day its name carries, given
 * the expiry of its newest-expiring record: no record of that day can be older than the day itself
 * by the ledger's clock, so the day start plus the metadata lifetime (every record holds metadata)
 * is a lower bound anyone can recompute from the name.
 */
export function segmentExpiry(name: string, recordsExpiry: number, policy: RetentionPolicy): number {
  const day = segmentDayStart(name);
  return day === undefined ? recordsExpiry : Math.max(recordsExpiry, addDuration(day, policy.metadata));
}

/** The policy a tombstone names, as durations; throws when it cannot be read. */
function tombstonePolicy(c: CheckpointEntry): RetentionPolicy {
  const p = c.checkpoint.tombstone!.policy;
  try {
    return {
      name: String(p.name),
      metadata: parseDuration(String(p.metadata)),
      content: parseDuration(String(p.content)),
      errors: parseDuration(String(p.errors)),
    };
  } catch {
    throw invalid(c, `its policy ${JSON.stringify(p)} does not name the metadata, content and errors lifetimes`);
  }
}

function invalid(c: CheckpointEntry, why: string): LedgerError {
  return new LedgerError('LEDGER_TOMBSTONE_INVALID', `${c.where} (retention tombstone of seq 0..${c.checkpoint.tree_size - 1}): ${why}`);
}

function time(c: CheckpointEntry, value: unknown, what: string): number {
  const t = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(t)) throw invalid(c, `its ${what} ${JSON.stringify(value)} is not a date`);
  return t;
}

/**
 * Checks every tombstone among `checkpoints` against the dates verify can see: its own times,
 * the names of the segments it removed, the positions of the checkpoints inside the removed prefix,
 * and the records of removed segments that are still present (`lingering`, read from `source`).
 */
export async function checkTombstoneDates(
  source: LedgerSource,
  checkpoints: readonly CheckpointEntry[],
  lingering: readonly string[],
  now: number,
): Promise<void> {
  const segments = await source.segments();
  for (const c of checkpoints) {
    const t = c.checkpoint.tombstone;
    if (c.checkpoint.type !== 'tombstone' || !t) continue;
    const policy = tombstonePolicy(c);
    const written = time(c, c.checkpoint.timestamp, 'timestamp');
    const applied = time(c, t.applied_at, 'applied_at');
    if (written > now + FUTURE_SKEW_MS || applied > now + FUTURE_SKEW_MS) {
      throw invalid(c, `it is dated in the future (applied_at ${t.applied_at}, written ${c.checkpoint.timestamp}): retention never removes records before they expire`);
    }
    if (applied > written + FUTURE_SKEW_MS) throw invalid(c, `its cut-off (applied_at ${t.applied_at}) is later than the tombstone itself (${c.checkpoint.timestamp})`);

    const names = new Set<string>();
    for (const s of t.removed_segments) {
      names.add(s.name);
      const day = segmentDayStart(s.name);
      const newest = time(c, s.newest_timestamp, `newest_timestamp of ${s.name}`);
      if (day !== undefined && newest >= day + 2 * DAY_MS) {
        throw invalid(c, `it says ${s.name} held a record of ${s.newest_timestamp}, after the day that segment was appended on`);
      }
      const earliest = segmentExpiry(s.name, addDuration(newest, policy.metadata), policy);
      if (earliest > applied) {
        throw invalid(
          c,
          `${s.name} had not expired under the policy it names (${policy.name}, metadata kept ${String(t.policy.metadata)}): ` +
            `its records could not be removed before ${new Date(earliest).toISOString()}, but the cut-off was ${t.applied_at}`,
        );
      }
    }

    // A checkpoint inside the removed prefix says which segment its next record started in.
    for (const other of checkpoints) {
      const position = other.checkpoint.position;
      if (other.checkpoint.type !== 'checkpoint' || !position || other.checkpoint.tree_size >= c.checkpoint.tree_size) continue;
      if (!names.has(position.segment)) {
        throw invalid(c, `${other.where} says seq ${other.checkpoint.tree_size} was in ${position.segment}, which the tombstone does not list as removed: it names other segments than those that held the records`);
      }
    }

    const mine = lingering.filter((name) => names.has(name));
    if (mine.length > 0) await checkLingering(source, c, policy, applied, segments, mine);
  }
}

/** Records of segments a tombstone claims removed but that are still present must have expired too. */
async function checkLingering(
  source: LedgerSource,
  c: CheckpointEntry,
  policy: RetentionPolicy,
  applied: number,
  segments: readonly string[],
  lingering: readonly string[],
): Promise<void> {
  const skip = new Set(segments.filter((s) => !lingering.includes(s)));
  for await (const item of source.items({ skip })) {
    if (item.kind !== 'entry') continue;
    let record: LedgerRecord | undefined;
    try {
      record = (JSON.parse(item.raw) as { record?: LedgerRecord }).record;
    } catch {
      record = undefined;
    }
    const expiry = record && typeof record.timestamp === 'string' ? recordExpiry(record, policy) : NaN;
    if (!(expiry <= applied)) {
      throw invalid(
        c,
        `${item.location.file}:${item.location.line} is still present although the tombstone says it was removed, and it had not expired at the cut-off ${c.checkpoint.tombstone!.applied_at}` +
          (record?.timestamp ? ` (record of ${record.timestamp})` : ''),
      );
    }
  }
}
