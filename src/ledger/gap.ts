/**
 * `ledger.gap` records (written by the span exporter once the ledger works again after audit
 * records could not be written anywhere): what `verify` reports about them.
 */
import type { StoredEntry } from './backend';
import { GAP_ACTION, type LedgerRecord } from './record';

export interface Gap {
  seq: number;
  lost: number;
  from: string;
  to: string;
}

/** The gap an entry records, if it is a `ledger.gap` record. */
export function gapOf(entry: StoredEntry): Gap | undefined {
  const record = entry.record as Partial<LedgerRecord> | undefined;
  if (record?.action !== GAP_ACTION) return undefined;
  const meta = (record.metadata ?? {}) as Record<string, unknown>;
  return { seq: entry.seq, lost: Number(meta.lost_records) || 0, from: String(meta.first_failure ?? '?'), to: String(meta.last_failure ?? '?') };
}

/** verify's warning about the gaps found (none: undefined). */
export function gapWarning(gaps: readonly Gap[]): string | undefined {
  if (gaps.length === 0) return undefined;
  const lost = gaps.reduce((sum, g) => sum + g.lost, 0);
  const where = gaps.map((g) => `seq ${g.seq}: ${g.lost} between ${g.from} and ${g.to}`).join('; ');
  return `${lost} audit record(s) could not be written by their writer and are missing from the ledger, as its ${GAP_ACTION} record(s) say (${where})`;
}
