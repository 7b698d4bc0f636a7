/**
 * Retention policies and when a record expires under one. Shared by retention (which removes
 * expired segments) and verify (which checks that a tombstone only claims records that had
 * expired under the policy it names).
 */
import { LedgerError } from './errors';
import type { LedgerRecord } from './record';

/** Allowed clock skew for a retention time (`--now`, a tombstone's dates): never later than the real clock by more than this. */
export const FUTURE_SKEW_MS = 5 * 60_000;

/** The `now` of a retention run (`--now`, default the clock), refused when it lies in the future (but for a dry run). */
export function retentionNow(requested: Date | undefined, dryRun = false): number {
  const realNow = Date.now();
  const now = requested?.getTime() ?? realNow;
  // A dry run changes nothing: previewing what a future date would remove is what it is for.
  if (now > realNow + FUTURE_SKEW_MS && !dryRun) {
    throw new LedgerError(
      'LEDGER_USAGE',
      `--now ${new Date(now).toISOString()} is in the future: retention never removes records before they expire (--dry-run previews it)`,
    );
  }
  return now;
}

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
  // Accepted and ignored, it would let an operator believe records go sooner than they do.
  if (flags.maxAge !== undefined && name !== 'gdpr') {
    throw new LedgerError('LEDGER_USAGE', `--max-age is for --policy gdpr; the ${name} policy takes --metadata, --content and --errors`);
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

/** The environment variable that declares the retention policy in force (see policyFromConfig). */
export const RETENTION_POLICY_ENV = 'LLM_AUDIT_RETENTION_POLICY';

/**
 * A policy as configuration declares it: its name, then the flags as `key=value` words:
 * `standard`, `hipaa`, `gdpr max-age=30d`, `custom metadata=3y content=1y errors=6m`,
 * `standard content=6m`.
 */
export function policyFromConfig(text: string, where = RETENTION_POLICY_ENV): RetentionPolicy {
  const [name = '', ...words] = text.trim().split(/[\s,]+/);
  const flags: PolicyFlags = {};
  const keys: Record<string, keyof PolicyFlags> = { 'max-age': 'maxAge', metadata: 'metadata', content: 'content', errors: 'errors' };
  for (const word of words) {
    const m = /^([a-z-]+)=(.+)$/.exec(word);
    const key = m ? keys[m[1]!] : undefined;
    if (!m || key === undefined) {
      throw new LedgerError('LEDGER_USAGE', `${where}: ${JSON.stringify(word)} is not one of max-age=D, metadata=D, content=D, errors=D (e.g. "gdpr max-age=30d")`);
    }
    flags[key] = m[2]!;
  }
  return resolvePolicy(name, flags);
}

/** A policy as it is written into a tombstone or a `retention.policy` record. */
export function describePolicy(policy: RetentionPolicy): { name: string; metadata: string; content: string; errors: string } {
  return { name: policy.name, metadata: formatDuration(policy.metadata), content: formatDuration(policy.content), errors: formatDuration(policy.errors) };
}

/** `gdpr (metadata 30d, content 30d, errors 30d)`. */
export function policyText(policy: Record<string, unknown>): string {
  return `${String(policy.name)} (metadata ${String(policy.metadata)}, content ${String(policy.content)}, errors ${String(policy.errors)})`;
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
