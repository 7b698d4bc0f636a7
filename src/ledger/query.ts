/**
 * Reading records for queries and reports: a streaming scan with filters. Reading does not verify
 * the hash chain (that is `verify`'s job, and it is much slower); it does refuse lines that are not
 * entries, so a corrupt ledger never yields silently wrong numbers.
 */
import type { ItemLocation, LedgerSource, RecordSelection, SelectableField, StoredEntry } from './backend';
import { removedSegments } from './chain';
import { LedgerError, describeLocation } from './errors';
import { AUDIT_STATUS, AUDIT_STATUS_UNAUDITED } from '../semconv';
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
  /** Only records with these field values (a hint: the source may leave out lines it knows cannot match; the caller still filters). */
  where?: RecordSelection['where'];
  /** Called for a torn last line (the writer may be mid-append): skipped, not fatal. */
  onTorn?: (location: ItemLocation) => void;
}

/**
 * Every record of the ledger, in ledger order, optionally restricted to a time window. Records
 * that should be there and are not (a deleted segment file: the sequence jumps, or ends before the
 * newest checkpoint's tree size) end the scan with LEDGER_RECORD_MISSING once everything present
 * has been yielded: a query or report never looks complete when it is not. What retention removed
 * (listed in its tombstones) is not missing.
 */
export async function* scanRecords(source: LedgerSource, options: ScanOptions = {}): AsyncGenerator<RecordHit> {
  await source.open();
  // A tenant reader sees its tenants' records and nothing that counts the others' (the checkpoints):
  // the seqs it does not see are not missing, and it has no checkpoint to compare with.
  const partial = (await source.partialView?.()) !== undefined;
  const checkpoints = partial ? [] : await source.checkpoints();
  const skip = removedSegments(checkpoints);
  const removed = checkpoints.flatMap((e) => e.checkpoint.tombstone?.removed_segments ?? []).sort((a, b) => a.first_seq - b.first_seq);
  const missing: Array<[number, number]> = [];
  /** Notes seq first..last as missing, less what retention removed (its tombstones list it). */
  const gap = (first: number, last: number) => {
    let from = first;
    for (const r of removed) {
      if (r.last_seq < from || r.first_seq > last) continue;
      if (r.first_seq > from) missing.push([from, r.first_seq - 1]);
      from = Math.max(from, r.last_seq + 1);
    }
    if (from <= last) missing.push([from, last]);
  };
  let last: number | undefined;
  // A segment holds records appended on its day; a record's timestamp (span start) is never later
  // than its append, so segments of days before `from` cannot hold matching records.
  const fromDay = options.from !== undefined ? new Date(options.from).toISOString().slice(0, 10) : undefined;
  /** Records first..lastSeq were read or knowingly left out: what lies between them and the last ones is missing. */
  const reach = (first: number, lastSeq: number): void => {
    if (!partial && last !== undefined && first > last + 1) gap(last + 1, first - 1);
    // The first record read must be the first one kept (seq 0, or the first after what retention
    // removed), unless segments of days before --from were left out on purpose.
    if (!partial && last === undefined && fromDay === undefined && first > 0) gap(0, first - 1);
    last = lastSeq;
  };
  const itemsOptions = { skip, ...(fromDay ? { fromDay } : {}) };
  const selection: RecordSelection = {
    ...(options.from !== undefined ? { from: options.from } : {}),
    ...(options.to !== undefined ? { to: options.to } : {}),
    ...(options.where ? { where: options.where } : {}),
  };
  const selective = source.selectItems && Object.keys(selection).length > 0;
  for await (const item of selective ? source.selectItems!(itemsOptions, selection) : source.items(itemsOptions)) {
    if (item.kind === 'torn') {
      options.onTorn?.(item.location);
      continue;
    }
    if (item.kind === 'skipped') {
      reach(item.first, item.last);
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
    if (item.seq !== undefined && entry.seq !== item.seq) {
      throw new LedgerError('LEDGER_SUMMARY_MISMATCH', `${describeLocation(item.location)}: holds seq ${entry.seq} where its segment's summary puts seq ${item.seq}; run \`llm-audit verify\``, {
        location: item.location,
      });
    }
    reach(entry.seq, entry.seq);
    const ts = Date.parse(entry.record.timestamp);
    if (options.from !== undefined && !(ts >= options.from)) continue;
    if (options.to !== undefined && !(ts < options.to)) continue;
    yield { seq: entry.seq, record: entry.record, location: item.location };
  }
  const size = Math.max(0, ...checkpoints.map((e) => e.checkpoint.tree_size));
  // Nothing read while a checkpoint covers records: without a --from, all of them are missing.
  const end = last ?? (options.from === undefined ? -1 : size - 1);
  if (end < size - 1) gap(end + 1, size - 1);
  if (missing.length > 0) {
    const ranges = missing.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(', ');
    throw new LedgerError(
      'LEDGER_RECORD_MISSING',
      `${source.name}: records ${ranges} are missing (the checkpoints cover them; was a segment file deleted?): ` +
        'anything shown from it is incomplete; run `llm-audit verify`',
    );
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
  session?: string;
  provider?: string;
  /** The trace id a tracing backend shows (32 hex digits; matched without regard to case). */
  traceId?: string;
  requestId?: string;
  /**
   * `llm_audit.action`: the SDK method (`chat.completions.create`...), an audit event's type
   * (`auth.login`...) or an operation on the trail (`content.shred`). `*` matches any run of
   * characters: `auth.*` finds every authentication event.
   */
  action?: string;
  /** The resource's `service.name` (v3 records; older records have none and never match). */
  service?: string;
  /** The resource's `deployment.environment.name`. */
  env?: string;
}

/** The filter fields a source's summaries can select by, from a query's filter. */
function selectable(filter: QueryFilter): RecordSelection['where'] | undefined {
  const where: Partial<Record<SelectableField, string>> = {};
  for (const field of ['user', 'session', 'tenant', 'model', 'service', 'env', 'action'] as const) {
    if (filter[field] !== undefined) where[field] = filter[field];
  }
  return Object.keys(where).length > 0 ? where : undefined;
}

/** Whether a stored field value matches a filter's value for it (`matches` below, one field). */
export function valueMatches(field: SelectableField, pattern: string, value: string): boolean {
  return field === 'action' && pattern.includes('*') ? globOf(pattern).test(value) : value === pattern;
}

function globOf(pattern: string): RegExp {
  let re = globs.get(pattern);
  if (re === undefined) globs.set(pattern, (re = glob(pattern)));
  return re;
}

/** `pattern` with `*` as a wildcard, as an anchored regular expression. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
}
const globs = new Map<string, RegExp>();

export function matches(record: LedgerRecord, filter: QueryFilter): boolean {
  if (filter.user !== undefined && record.user_id !== filter.user) return false;
  if (filter.tenant !== undefined && record.tenant_id !== filter.tenant) return false;
  if (filter.session !== undefined && record.session_id !== filter.session) return false;
  if (filter.provider !== undefined && record.provider !== filter.provider) return false;
  if (filter.traceId !== undefined && record.trace_id?.toLowerCase() !== filter.traceId.toLowerCase()) return false;
  if (filter.requestId !== undefined && record.request_id !== filter.requestId) return false;
  if (filter.service !== undefined && record.service_name !== filter.service) return false;
  if (filter.env !== undefined && record.deployment_environment !== filter.env) return false;
  if (filter.action !== undefined) {
    if (!filter.action.includes('*')) {
      if (record.action !== filter.action) return false;
    } else if (typeof record.action !== 'string' || !globOf(filter.action).test(record.action)) {
      return false;
    }
  }
  if (filter.model !== undefined && record.model?.request !== filter.model && record.model?.response !== filter.model) return false;
  if (filter.status !== undefined && record.status !== filter.status) return false;
  return true;
}

/**
 * The records matching `filter`, in ledger order: filtered in the database where the source can
 * (PostgreSQL), else by scanning.
 */
export function queryRecords(source: LedgerSource, filter: QueryFilter, options: Omit<ScanOptions, 'from' | 'to'> = {}): AsyncIterable<RecordHit> {
  const own = source.reports?.();
  return own ? own.query(filter) : queryRecordsByScan(source, filter, options);
}

export async function* queryRecordsByScan(source: LedgerSource, filter: QueryFilter, options: Omit<ScanOptions, 'from' | 'to'> = {}): AsyncGenerator<RecordHit> {
  const scan: ScanOptions = { ...options };
  if (filter.from !== undefined) scan.from = filter.from;
  if (filter.to !== undefined) scan.to = filter.to;
  const where = selectable(filter);
  if (where) scan.where = where;
  for await (const hit of scanRecords(source, scan)) {
    if (matches(hit.record, filter)) yield hit;
  }
}

/**
 * Flat columns for table output of records: both models, so a model's failures (which have no
 * answering model) and its successes read as one model.
 */
export const RECORD_COLUMNS = [
  'seq',
  'timestamp',
  'request_id',
  'user_id',
  'session_id',
  'tenant_id',
  'provider',
  'model_requested',
  'model_response',
  'action',
  'status',
  'input_tokens',
  'output_tokens',
  'cost_usd',
  'latency_ms',
  'error_type',
  'http_status',
] as const;

/**
 * What machine-readable output (JSON, CSV) adds to the table's columns: the rest of the record.
 * The ids that tie a record to its trace in a tracing backend, the keyed hashes that tie it to
 * content held elsewhere, the token details, the scrubbed error message, what guardrails decided
 * and what sanitization found. Lists and objects are JSON values in JSON and JSON text in CSV.
 */
export const DETAIL_COLUMNS = [
  'trace_id',
  'span_id',
  'operation',
  'cache_read_tokens',
  'cache_creation_tokens',
  'reasoning_tokens',
  'error_message',
  'system_prompt_hash',
  'input_hash',
  'output_hash',
  'sanitization_count',
  'sanitization_mode',
  'sanitization_kinds',
  'guardrails',
  'block_reason',
  'tools',
  'rag_document_ids',
  'metadata',
  'content_encrypted',
  'http_request',
  'service_name',
  'service_namespace',
  'service_version',
  'service_instance_id',
  'deployment_environment',
  'client_address',
  'user_agent',
  'event_outcome',
  'event_target',
  'record_version',
] as const;

/** Columns only --columns asks for: `model` is the answering model, else the requested one (what reports used to group by). */
export const EXTRA_COLUMNS = ['model'] as const;

/** `--status` values: what `llm_audit.status` can be. */
export const RECORD_STATUSES = [...Object.values(AUDIT_STATUS), AUDIT_STATUS_UNAUDITED] as const;

/** How sanitization treated the call's content (`detect` or `redact`), when the record says (v3). */
export function sanitizationMode(record: LedgerRecord): string | null {
  const mode = record.sanitization?.mode;
  return typeof mode === 'string' ? mode : null;
}

/** Findings per kind (`EMAIL`: 2, ...) when the record holds them (v3); null when it has only the total (`sanitization_count`). */
export function sanitizationKinds(record: LedgerRecord): Record<string, number> | null {
  const kinds = record.sanitization?.kinds;
  if (kinds === null || typeof kinds !== 'object') return null;
  // Read back from storage: only finite counts are counts.
  const out = Object.fromEntries(Object.entries(kinds).filter(([, n]) => typeof n === 'number' && Number.isFinite(n)));
  return Object.keys(out).length > 0 ? out : null;
}

/** Why a guardrail blocked the call: the record's own field (v3), else the blocking decision's reason. */
export function blockReason(record: LedgerRecord): string | null {
  if (typeof record.block_reason === 'string') return record.block_reason;
  const blocking = (record.guardrails ?? []).find((g) => isBlockAction(g.action));
  const reason = blocking?.reason ?? blocking?.reason_hash;
  return typeof reason === 'string' ? reason : null;
}

/** A guardrail decision that stopped the call (`blocked`; `block` in hand-made records). */
export function isBlockAction(action: unknown): boolean {
  return action === 'blocked' || action === 'block';
}

/** Every top-level field flatRecord reads (directly or through the readers above). */
const READ_FIELDS: ReadonlySet<string> = new Set([
  'v', 'request_id', 'timestamp', 'trace_id', 'span_id', 'user_id', 'session_id', 'tenant_id', 'provider', 'operation', 'model', 'action',
  'status', 'system_prompt_hash', 'input_hash', 'output_hash', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens',
  'thinking_tokens', 'latency_ms', 'cost_usd', 'error_type', 'http_status', 'error_message', 'sanitization_count', 'guardrails', 'tools',
  'rag_document_ids', 'metadata', 'content', 'http', 'sanitization', 'sanitization_mode', 'sanitization_kinds', 'block_reason',
]);

/** Fields of a record this version of the tool has no column for (a newer record version): JSON output shows them as they are. */
export function unreadFields(record: LedgerRecord): Record<string, string | number | boolean | null | object> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !READ_FIELDS.has(key))) as Record<string, string | number | boolean | null | object>;
}

export function flatRecord(hit: RecordHit): Record<string, string | number | boolean | null | object> {
  const r = hit.record;
  return {
    seq: hit.seq,
    timestamp: r.timestamp,
    request_id: r.request_id,
    user_id: r.user_id,
    session_id: r.session_id,
    tenant_id: r.tenant_id,
    provider: r.provider,
    model_requested: r.model?.request ?? null,
    model_response: r.model?.response ?? null,
    model: modelOf(r),
    action: r.action,
    status: r.status,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    cost_usd: r.cost_usd,
    latency_ms: r.latency_ms,
    error_type: r.error_type,
    http_status: r.http_status ?? null,
    trace_id: r.trace_id,
    span_id: r.span_id,
    operation: r.operation,
    cache_read_tokens: r.cache_read_tokens,
    cache_creation_tokens: r.cache_creation_tokens,
    reasoning_tokens: r.thinking_tokens,
    error_message: r.error_message,
    system_prompt_hash: r.system_prompt_hash,
    input_hash: r.input_hash,
    output_hash: r.output_hash,
    sanitization_count: r.sanitization_count,
    sanitization_mode: sanitizationMode(r),
    sanitization_kinds: sanitizationKinds(r),
    guardrails: r.guardrails,
    block_reason: blockReason(r),
    tools: r.tools,
    rag_document_ids: r.rag_document_ids,
    metadata: r.metadata,
    // The envelope is ciphertext and long; `llm-audit decrypt` shows it to a key holder.
    content_encrypted: typeof r.content === 'string',
    http_request: r.http ?? null,
    service_name: r.service_name ?? null,
    service_namespace: r.service_namespace ?? null,
    service_version: r.service_version ?? null,
    service_instance_id: r.service_instance_id ?? null,
    deployment_environment: r.deployment_environment ?? null,
    client_address: r.client_address ?? null,
    user_agent: r.user_agent ?? null,
    event_outcome: r.event?.outcome ?? null,
    event_target: r.event?.target ?? null,
    record_version: r.v,
  };
}
