/**
 * Reading records for queries and reports: a streaming scan with filters. Reading does not verify
 * the hash chain (that is `verify`'s job, and it is much slower); it does refuse lines that are not
 * entries, so a corrupt ledger never yields silently wrong numbers.
 */
import type { ItemLocation, LedgerSource, StoredEntry } from './backend';
import { removedSegments } from './chain';
import { LedgerError, describeLocation } from './errors';
import { modelOf, type LedgerRecord } from './record';

export interface RecordHit {
  seq: number;
  record: LedgerRecord;
  location: ItemLocation;
}

export interface ScanOptions {
  /** Only records whose timestamp is >= from (ms since epoch). */
  from?: number;
  /** Only records whose timestamp is < to. */
  to?: number;
  /** Called for a torn last line (the writer may be mid-append): skipped, not fatal. */
  onTorn?: (location: ItemLocation) => void;
}

/** Every record of the ledger, in ledger order, optionally restricted to a time window. */
export async function* scanRecords(source: LedgerSource, options: ScanOptions = {}): AsyncGenerator<RecordHit> {
  await source.open();
  const skip = removedSegments(await source.checkpoints());
  // A segment holds records appended on its day; a record's timestamp (span start) is never later
  // than its append, so segments of days before `from` cannot hold matching records.
  const fromDay = options.from !== undefined ? new Date(options.from).toISOString().slice(0, 10) : undefined;
  for await (const item of source.items({ skip, ...(fromDay ? { fromDay } : {}) })) {
    if (item.kind === 'torn') {
      options.onTorn?.(item.location);
      continue;
    }
    let entry: StoredEntry<LedgerRecord>;
    try {
      entry = JSON.parse(item.raw) as StoredEntry<LedgerRecord>;
    } catch {
      throw new LedgerError('LEDGER_RECORD_MALFORMED', `${describeLocation(item.location)}: not valid JSON; run \`llm-audit verify\``, {
        location: item.location,
      });
    }
    if (typeof entry !== 'object' || entry === null || typeof entry.record !== 'object' || entry.record === null) {
      throw new LedgerError('LEDGER_RECORD_MALFORMED', `${describeLocation(item.location)}: not a ledger entry; run \`llm-audit verify\``, {
        location: item.location,
      });
    }
    const ts = Date.parse(entry.record.timestamp);
    if (options.from !== undefined && !(ts >= options.from)) continue;
    if (options.to !== undefined && !(ts < options.to)) continue;
    yield { seq: entry.seq, record: entry.record, location: item.location };
  }
}

export interface QueryFilter {
  from?: number;
  to?: number;
  user?: string;
  /** Matches the requested or the response model. */
  model?: string;
  status?: string;
  tenant?: string;
  /** `llm_audit.action`: the SDK method (`chat.completions.create`...) or an operation on the trail (`content.shred`). */
  action?: string;
}

export function matches(record: LedgerRecord, filter: QueryFilter): boolean {
  if (filter.user !== undefined && record.user_id !== filter.user) return false;
  if (filter.tenant !== undefined && record.tenant_id !== filter.tenant) return false;
  if (filter.action !== undefined && record.action !== filter.action) return false;
  if (filter.model !== undefined && record.model?.request !== filter.model && record.model?.response !== filter.model) return false;
  if (filter.status !== undefined && record.status !== filter.status) return false;
  return true;
}

export async function* queryRecords(source: LedgerSource, filter: QueryFilter, options: Omit<ScanOptions, 'from' | 'to'> = {}): AsyncGenerator<RecordHit> {
  const scan: ScanOptions = { ...options };
  if (filter.from !== undefined) scan.from = filter.from;
  if (filter.to !== undefined) scan.to = filter.to;
  for await (const hit of scanRecords(source, scan)) {
    if (matches(hit.record, filter)) yield hit;
  }
}

/** Flat columns for table/CSV output of records. */
export const RECORD_COLUMNS = [
  'seq',
  'timestamp',
  'request_id',
  'user_id',
  'session_id',
  'tenant_id',
  'provider',
  'model',
  'action',
  'status',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'latency_ms',
  'error_type',
  'http_status',
] as const;

export function flatRecord(hit: RecordHit): Record<string, string | number | null> {
  const r = hit.record;
  return {
    seq: hit.seq,
    timestamp: r.timestamp,
    request_id: r.request_id,
    user_id: r.user_id,
    session_id: r.session_id,
    tenant_id: r.tenant_id,
    provider: r.provider,
    model: modelOf(r),
    action: r.action,
    status: r.status,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    cost_usd: r.cost_usd,
    latency_ms: r.latency_ms,
    error_type: r.error_type,
    http_status: r.http_status ?? null,
  };
}
