/**
 * What the receiver needs of the ledger it writes to: a {@link LedgerWriter} (src/ledger/writer.ts,
 * from openLedgerWriter), seen through the two guarantees the receiver promises its clients:
 *
 * - all or nothing per request: one `append` per request; when it fails nothing of it is stored;
 * - idempotent: a span (trace id + span id) that was stored before is not stored again, so a
 *   collector that retries an export does not duplicate records.
 */
import type { AppendInput } from '../ledger/protocol';
import type { AppendOutcome, LedgerWriter } from '../ledger/writer';

export interface IngestStore extends Pick<LedgerWriter, 'description' | 'close'> {
  append(records: readonly AppendInput[]): Promise<Pick<AppendOutcome, 'stored' | 'duplicates'>>;
}
