/**
 * The file writer's dedup index is bounded (file/writer.ts dedupWindow): it remembers the newest
 * stored spans only, while appending and when rebuilt at open, and a span re-sent after more
 * records than that is stored again, as documented.
 */
import { describe, expect, it } from 'vitest';
import { FileLedgerWriter } from '../../src/ledger/file/writer';
import { LedgerError } from '../../src/ledger/errors';
import { makeRecord, tempDir } from './helpers';

const span = (id: string) => makeRecord({ span_id: id.repeat(16), request_id: id });

describe('the file writer dedup window', () => {
  it('recognises a re-sent span among the newest N stored, stores it again beyond them, and rebuilds the same window at open', async () => {
    const dir = tempDir();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(span) as [ReturnType<typeof span>, ReturnType<typeof span>, ReturnType<typeof span>, ReturnType<typeof span>];
    const writer = await FileLedgerWriter.open({ dir, dedupWindow: 3 });
    try {
      expect(await writer.append([a, b])).toMatchObject({ stored: 2, duplicates: 0 });
      expect(await writer.append([c, b])).toMatchObject({ stored: 1, duplicates: 1 });
      expect(await writer.append([d])).toMatchObject({ stored: 1, duplicates: 0 });
      // a is now the fourth newest: forgotten, stored again; b, c, d are still known.
      expect(await writer.append([a, b, c, d])).toMatchObject({ stored: 1, duplicates: 3 });
    } finally {
      await writer.close();
    }
    // Stored: a b c d a. Rebuilt from the ledger, the window holds the newest three: c d a.
    const reopened = await FileLedgerWriter.open({ dir, dedupWindow: 3 });
    try {
      expect(await reopened.append([c, d, a])).toMatchObject({ stored: 0, duplicates: 3 });
      expect(await reopened.append([b])).toMatchObject({ stored: 1, duplicates: 0 });
    } finally {
      await reopened.close();
    }
    // The default window remembers every span of this small ledger.
    const unbounded = await FileLedgerWriter.open({ dir });
    try {
      expect(await unbounded.append([a, b, c, d])).toMatchObject({ stored: 0, duplicates: 4 });
    } finally {
      await unbounded.close();
    }
  });

  it('refuses a window that is not a positive integer', async () => {
    await expect(FileLedgerWriter.open({ dir: tempDir(), dedupWindow: 0 })).rejects.toThrow(LedgerError);
  });
});
