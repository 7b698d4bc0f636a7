/**
 * Decoded OTLP spans to ledger records. The record is built by the very function the in-process
 * exporter uses (`recordFromSpan`, src/ledger/record.ts), which reads a narrow SpanView that a
 * decoded span provides as well as an SDK span, so a call audited in-process and the same call
 * received over OTLP give the same record.
 */
import type { HrTime } from '@opentelemetry/api';
import { SerializedRecord } from '../ledger/protocol';
import { claimedOperation, isAuditSpan, recordFromSpan, type LedgerRecord, type SpanView } from '../ledger/record';
import { scopeAllows, type TenantScope } from './tokens';
import type { DecodedSpan } from './otlp';

const NS_PER_S = 1_000_000_000n;

function hrTime(ns: bigint): HrTime {
  const seconds = ns / NS_PER_S;
  return [Number(seconds), Number(ns - seconds * NS_PER_S)];
}

/** A decoded span as recordFromSpan reads it. */
export function spanViewOf(span: DecodedSpan): SpanView {
  const context = { traceId: span.traceId ?? '', spanId: span.spanId ?? '' };
  return {
    attributes: span.attributes,
    startTime: hrTime(span.startTimeUnixNano),
    duration: hrTime(span.endTimeUnixNano - span.startTimeUnixNano),
    status: { code: span.statusCode },
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes, time: hrTime(e.timeUnixNano) })),
    spanContext: () => context,
    resource: { attributes: span.resource },
  };
}

export interface Conversion {
  /** With their canonical JSON: measured for --max-record-bytes, and the very bytes the ledger line embeds. */
  records: SerializedRecord[];
  /** Spans that are not audited LLM calls: counted and ignored (they are not rejected). */
  ignored: number;
  rejected: number;
  /** Of `rejected`: spans that claimed to be operation records (OPERATION_ACTIONS). */
  rejectedOperations: number;
  /** Of `rejected`: spans of a tenant the request's token may not write. */
  rejectedTenant: number;
  /** One line per kind of rejection, with a count. */
  reasons: string[];
}

const TENANT_REASON = 'tenant not allowed for this token';

/**
 * Picks the audit spans out of a request and turns each into a record. A span is rejected (and
 * counted in the partial-success answer) when its trace or span id is missing or malformed, when
 * its record would be larger than `maxRecordBytes`, when it claims to be an operation record
 * (`llm_audit.action` in OPERATION_ACTIONS), or when `scope` (the request's token, when tokens are
 * bound to tenants) does not cover its tenant.
 */
export function recordsOf(spans: readonly DecodedSpan[], maxRecordBytes: number, scope: TenantScope = '*'): Conversion {
  const records: SerializedRecord[] = [];
  const reasons = new Map<string, number>();
  const reject = (why: string): void => {
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  };
  let ignored = 0;
  let rejectedOperations = 0;
  let rejectedTenant = 0;
  for (const span of spans) {
    if (span.traceId === null || span.spanId === null) {
      reject(span.traceId === null ? 'missing or malformed trace id (16 bytes, not all zero)' : 'missing or malformed span id (8 bytes, not all zero)');
      continue;
    }
    if (!isAuditSpan(span)) {
      ignored++;
      continue;
    }
    let record: LedgerRecord | undefined;
    let serial: SerializedRecord | undefined;
    try {
      record = recordFromSpan(spanViewOf(span));
      // Serialised here once: the size check needs the bytes, and the writer appends this very text.
      serial = record ? SerializedRecord.of(record) : undefined;
    } catch (error) {
      reject(`the span cannot be recorded (${(error as Error).message})`);
      continue;
    }
    if (!record || !serial) {
      ignored++;
      continue;
    }
    if (Buffer.byteLength(serial.json) > maxRecordBytes) {
      reject(`record larger than ${maxRecordBytes} bytes (attribute values too large)`);
      continue;
    }
    const claimed = claimedOperation(record);
    if (claimed) {
      reject(claimed);
      rejectedOperations++;
      continue;
    }
    if (!scopeAllows(scope, record.tenant_id)) {
      reject(TENANT_REASON);
      rejectedTenant++;
      continue;
    }
    records.push(serial);
  }
  let rejected = 0;
  const lines: string[] = [];
  for (const [why, n] of reasons) {
    rejected += n;
    lines.push(`${n} span${n === 1 ? '' : 's'}: ${why}`);
  }
  return { records, ignored, rejected, rejectedOperations, rejectedTenant, reasons: lines };
}
