import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file-ledger';
import { appendPendingJournals, writePendingJournal } from '../../src/ledger/pending-journal';
import { scanRecords } from '../../src/ledger/query';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord, tempDir } from './helpers';

const spanIds = async (dir: string): Promise<string[]> => {
  const ids: string[] = [];
  for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.span_id);
  return ids;
};

describe('the pending journal (records in flight at process.exit())', () => {
  it('the next writer appends the journaled records that are missing, once, and deletes the journal', async () => {
    const dir = join(tempDir(), 'ledger');
    const landed = makeRecord({ span_id: '00000000000000a1' });
    const lost = [makeRecord({ span_id: '00000000000000a2' }), makeRecord({ span_id: '00000000000000a3' })];
    const ledger = await FileLedger.open({ dir });
    await ledger.append([makeRecord({ span_id: '00000000000000a0' }), landed]);
    // The append of `landed` completed before the exit, the others' did not: all three were in flight.
    const journal = writePendingJournal(dir, [landed, ...lost]);
    expect(existsSync(journal)).toBe(true);
    expect((await new FileLedgerSource(dir).notes()).join('\n')).toContain('pending/ holds 1 journal(s)');
    expect(await appendPendingJournals(ledger, dir)).toEqual({ appended: 2, present: 1 });
    expect(await spanIds(dir)).toEqual(['00000000000000a0', '00000000000000a1', '00000000000000a2', '00000000000000a3']);
    expect(readdirSync(join(dir, 'pending'))).toEqual([]);
    // Nothing left to do the second time.
    expect(await appendPendingJournals(ledger, dir)).toEqual({ appended: 0, present: 0 });
    await ledger.close();
    expect(await verifyLedger(new FileLedgerSource(dir))).toMatchObject({ records: 4, treeSize: 4 });
  });

  it('a journal that is not JSON lines is an error for the caller (reported, the ledger stays usable), and stays for inspection', async () => {
    const dir = join(tempDir(), 'ledger');
    const ledger = await FileLedger.open({ dir });
    writePendingJournal(dir, [makeRecord({ span_id: '00000000000000b1' })]);
    writeFileSync(join(dir, 'pending', '1-2.jsonl'), '{"half a record');
    await expect(appendPendingJournals(ledger, dir)).rejects.toThrow(SyntaxError);
    expect(readdirSync(join(dir, 'pending')).sort()).toHaveLength(2);
    await ledger.append([makeRecord({ span_id: '00000000000000b2' })]);
    expect(await spanIds(dir)).toEqual(['00000000000000b2']);
    await ledger.close();
  });
});
