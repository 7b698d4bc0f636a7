import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLedgerSource, type FileOpener } from '../../src/ledger/file/ledger';
import { FileLedgerWriter } from '../../src/ledger/file/writer';
import { JournalConsumer, appendPendingJournals, journalKey, writePendingJournal } from '../../src/ledger/file/pending-journal';
import { repoRoot } from '../support/harness';
import { scanRecords } from '../../src/ledger/query';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord, tempDir } from './helpers';

const spanIds = async (dir: string): Promise<string[]> => {
  const ids: string[] = [];
  for await (const hit of scanRecords(new FileLedgerSource(dir))) ids.push(hit.record.span_id);
  return ids;
};

const hashKey = 'pending-journal-test-hash-key';
const key = journalKey({ hashKey })!;

describe('the pending journal (records other writers, or an exit, left for the lock holder)', () => {
  it('the holder appends the journaled records that are missing, once, and deletes the journal', async () => {
    const dir = join(tempDir(), 'ledger');
    const landed = makeRecord({ span_id: '00000000000000a1' });
    const lost = [makeRecord({ span_id: '00000000000000a2' }), makeRecord({ span_id: '00000000000000a3' })];
    const ledger = await FileLedgerWriter.open({ dir });
    await ledger.append([makeRecord({ span_id: '00000000000000a0' }), landed]);
    // The append of `landed` completed before the exit, the others' did not: all three were in flight.
    const journal = writePendingJournal(dir, [landed, ...lost], key);
    expect(existsSync(journal)).toBe(true);
    expect((await new FileLedgerSource(dir).notes()).join('\n')).toContain('pending/ holds 1 journal(s)');
    expect(await appendPendingJournals(ledger, dir, key)).toEqual({ appended: 2, present: 1, rejected: 0 });
    expect(await spanIds(dir)).toEqual(['00000000000000a0', '00000000000000a1', '00000000000000a2', '00000000000000a3']);
    expect(readdirSync(join(dir, 'pending'))).toEqual([]);
    // Nothing left to do the second time.
    expect(await appendPendingJournals(ledger, dir, key)).toEqual({ appended: 0, present: 0, rejected: 0 });
    await ledger.close();
    expect(await verifyLedger(new FileLedgerSource(dir))).toMatchObject({ records: 4, treeSize: 4 });
  });

  it('a forged journal (plain JSON, a backdated $777 record with an extra field) is rejected, moved aside and reported, never appended', async () => {
    const dir = join(tempDir(), 'ledger');
    const ledger = await FileLedgerWriter.open({ dir });
    await ledger.append([makeRecord({ span_id: '00000000000000c0' })]);
    writePendingJournal(dir, [makeRecord({ span_id: '00000000000000c1' })], key);
    const forged = { ...makeRecord({ span_id: '00000000000000f0', timestamp: '2025-01-01T00:00:00.000Z', cost_usd: 777, user_id: 'mallory' }), approved_by: 'cfo' };
    // The name of a journal written at an exit (older versions), and the name of a writer's journal with made-up MACs.
    writeFileSync(join(dir, 'pending', '4242-1700000000000.jsonl'), JSON.stringify(forged) + '\n');
    writeFileSync(join(dir, 'pending', `4243-0-1700000000000-abcd1234.jsonl`), JSON.stringify({ mac: 'ab'.repeat(32), n: 0, record: forged }) + '\n');
    const reports: string[] = [];
    const result = await appendPendingJournals(ledger, dir, key, (message) => reports.push(message));
    expect(result).toEqual({ appended: 1, present: 0, rejected: 2 });
    expect(await spanIds(dir)).toEqual(['00000000000000c0', '00000000000000c1']);
    expect(readdirSync(join(dir, 'pending', 'rejected')).sort()).toEqual(['4242-1700000000000.jsonl', '4243-0-1700000000000-abcd1234.jsonl']);
    expect(reports.join('\n')).toMatch(/REJECTED the pending journal 4242-1700000000000\.jsonl: it is an unauthenticated journal/);
    expect(reports.join('\n')).toMatch(/REJECTED the pending journal 4243-0-1700000000000-abcd1234\.jsonl: a line fails authentication/);
    expect((await new FileLedgerSource(dir).notes()).join('\n')).toContain('pending/rejected/ holds 2 journal(s) that FAILED authentication');
    await ledger.close();
  });

  it('an authentic journal changed afterwards (a cost raised) is rejected; lines removed from one are reported', async () => {
    const dir = join(tempDir(), 'ledger');
    const signingKey = generateKeyPairSync('ed25519').privateKey;
    const signedKey = journalKey({ signingKey })!;
    // The signing key, when there is one, is what the key derives from (not the hash key).
    expect(signedKey.equals(key)).toBe(false);
    const ledger = await FileLedgerWriter.open({ dir, signingKey });
    const altered = writePendingJournal(dir, [makeRecord({ span_id: '00000000000000d1', cost_usd: 0.001 })], signedKey);
    writeFileSync(altered, readFileSync(altered, 'utf8').replace('"cost_usd":0.001', '"cost_usd":777'));
    const cut = writePendingJournal(dir, ['d2', 'd3', 'd4'].map((s) => makeRecord({ span_id: `00000000000000${s}` })), signedKey);
    const lines = readFileSync(cut, 'utf8').split('\n');
    writeFileSync(cut, [lines[0], lines[2], lines[3], ''].join('\n'));
    const reports: string[] = [];
    expect(await appendPendingJournals(ledger, dir, signedKey, (message) => reports.push(message))).toEqual({ appended: 2, present: 0, rejected: 1 });
    expect(await spanIds(dir)).toEqual(['00000000000000d2', '00000000000000d4']);
    expect(reports.join('\n')).toMatch(/is missing 1 of its lines/);
    // A journal read without the key it was written with cannot be checked: rejected too.
    writePendingJournal(dir, [makeRecord({ span_id: '00000000000000d5' })], signedKey);
    expect(await appendPendingJournals(ledger, dir, undefined, () => {})).toMatchObject({ appended: 0, rejected: 1 });
    await ledger.close();
  });

  it('without any key journals are unauthenticated: appended, with a warning', async () => {
    const dir = join(tempDir(), 'ledger');
    const ledger = await FileLedgerWriter.open({ dir });
    writePendingJournal(dir, [makeRecord({ span_id: '00000000000000e1' })]);
    expect((await new FileLedgerSource(dir).notes()).join('\n')).toMatch(/1 of them are UNAUTHENTICATED/);
    const reports: string[] = [];
    expect(await appendPendingJournals(ledger, dir, undefined, (message) => reports.push(message))).toEqual({ appended: 1, present: 0, rejected: 0 });
    expect(reports.join('\n')).toMatch(/unauthenticated pending journal/);
    await ledger.close();
  });

  it('a journal that is not JSON lines is rejected (moved aside, reported); the ledger stays usable', async () => {
    const dir = join(tempDir(), 'ledger');
    const ledger = await FileLedgerWriter.open({ dir });
    writePendingJournal(dir, [makeRecord({ span_id: '00000000000000b1' })], key);
    writeFileSync(join(dir, 'pending', '1-2.jsonl'), '{"half a record\n');
    expect(await appendPendingJournals(ledger, dir, key, () => {})).toEqual({ appended: 1, present: 0, rejected: 1 });
    expect(readdirSync(join(dir, 'pending', 'rejected'))).toEqual(['1-2.jsonl']);
    await ledger.append([makeRecord({ span_id: '00000000000000b2' })]);
    expect(await spanIds(dir)).toEqual(['00000000000000b1', '00000000000000b2']);
    await ledger.close();
  });

  it('a writer that adds lines and dies while the holder appends what it read: its journal is kept until they are appended too', async () => {
    const dir = join(tempDir(), 'ledger');
    // Another process (the built package) journals one record, then, told to, a second one and
    // dies without closing its journal (SIGKILL, or process.exit() with no exporter to close it).
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const { JournalWriter, journalKey } = require(${JSON.stringify(join(repoRoot, 'dist', 'cjs', 'ledger', 'file', 'pending-journal.js'))});
         const [first, second] = JSON.parse(process.env.RECORDS);
         const journal = new JournalWriter(process.env.DIR, journalKey({ hashKey: process.env.HASH_KEY }));
         journal.appendSync([first]);
         process.stdout.write('ready\\n');
         process.stdin.once('data', () => { journal.appendSync([second]); process.exit(0); });`,
      ],
      { env: { PATH: process.env.PATH, DIR: dir, HASH_KEY: hashKey, RECORDS: JSON.stringify(['00000000000000f1', '00000000000000f2'].map((span_id) => makeRecord({ span_id }))) } },
    );
    await once(writer.stdout!, 'data');
    // The holder's append of what it read (the first record) is where the writer adds the second and dies.
    let armed = true;
    const opener: FileOpener = async (path, flags, mode) => {
      const handle = await open(path, flags, mode);
      return {
        write: async (b, o, l, p) => {
          if (armed && path.includes('segments')) {
            armed = false;
            writer.stdin!.write('go\n');
            await once(writer, 'exit');
          }
          return handle.write(b, o, l, p);
        },
        datasync: () => handle.datasync(),
        truncate: (n) => handle.truncate(n),
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
    };
    const ledger = await FileLedgerWriter.open({ dir, openFile: opener });
    const consumer = new JournalConsumer(ledger, dir, key, () => {});
    expect(await consumer.consume()).toEqual({ appended: 1, present: 0, rejected: 0 });
    expect(armed).toBe(false);
    // Before, the journal was deleted here (its writer was dead) with the second record unread.
    expect(await consumer.consume()).toEqual({ appended: 1, present: 0, rejected: 0 });
    expect(await spanIds(dir)).toEqual(['00000000000000f1', '00000000000000f2']);
    expect(readdirSync(join(dir, 'pending'))).toEqual([]);
    await ledger.close();
  });
});

