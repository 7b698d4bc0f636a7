import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { FileLedgerWriter } from '../../src/ledger/file/writer';
import { scanRecords } from '../../src/ledger/query';
import { makeRecord, tempDir } from './helpers';

/** Record i: its own span, i minutes after 2026-03-01T10:00Z. */
const at = (i: number) => makeRecord({ span_id: i.toString(16).padStart(16, '0'), timestamp: new Date(Date.UTC(2026, 2, 1, 10, i)).toISOString() });

const writers: FileLedgerWriter[] = [];
afterEach(async () => {
  for (const w of writers.splice(0)) await w.close();
});

describe("the file writer's dedup by span", () => {
  it('keeps its index within the limit and still leaves out every stored span, older than the index or not', async () => {
    const dir = join(tempDir(), 'ledger');
    const w = await FileLedgerWriter.open({ dir, fsync: 'none', spanIndexLimit: 10 });
    writers.push(w);
    for (let i = 0; i < 40; i += 4) {
      expect(await w.append([at(i), at(i + 1), at(i + 2), at(i + 3)])).toMatchObject({ stored: 4, duplicates: 0 });
      expect(w.indexedSpans).toBeLessThanOrEqual(10);
    }
    // The oldest spans fell out of the index: found by the pass over the ledger from their time.
    expect(await w.append([at(0), at(1), at(40)])).toMatchObject({ stored: 1, duplicates: 2 });
    // The newest are in it; one repeated in the batch counts once.
    expect(await w.append([at(39), at(40), at(41), at(41)])).toMatchObject({ stored: 1, duplicates: 3 });
    // Spans older and newer in one batch.
    expect(await w.append([at(5), at(20), at(38), at(42)])).toMatchObject({ stored: 1, duplicates: 3 });
    expect(w.indexedSpans).toBeLessThanOrEqual(10);
    await w.close();
    const spans: string[] = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) spans.push(hit.record.span_id);
    expect(spans).toEqual(Array.from({ length: 43 }, (_, i) => i.toString(16).padStart(16, '0')));
    // A new writer builds its index from the batch's oldest time on, not from the whole ledger.
    const again = await FileLedgerWriter.open({ dir, fsync: 'none', spanIndexLimit: 10 });
    writers.push(again);
    expect(await again.append([at(41), at(43)])).toMatchObject({ stored: 1, duplicates: 1 });
    expect(again.indexedSpans).toBe(3);
  });
});
