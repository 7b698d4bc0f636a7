import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LedgerError } from '../../src/ledger/errors';
import { FileLedger, FileLedgerSource, type FileOpener, type WritableFile } from '../../src/ledger/file/ledger';
import { repairLedger } from '../../src/ledger/file/repair';
import { verifyLedger } from '../../src/ledger/verify';
import { fakeClock, makeRecord, readLines, tempDir } from './helpers';

async function rejects(promise: Promise<unknown>): Promise<LedgerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(LedgerError);
    return error as LedgerError;
  }
  throw new Error('expected a rejection');
}

describe('FileLedger', () => {
  it('creates a private directory and files, a segment per UTC day, and a chain across them', async () => {
    const dir = join(tempDir(), 'ledger');
    const clock = fakeClock('2026-11-21T23:59:59.900Z');
    const ledger = await FileLedger.open({ dir, clock: clock.now });
    expect(await ledger.append([makeRecord(), makeRecord()])).toEqual({ firstSeq: 0, lastSeq: 1 });
    clock.set('2026-11-22T00:00:00.100Z');
    expect(await ledger.append([makeRecord()])).toEqual({ firstSeq: 2, lastSeq: 2 });
    // The clock going back does not reopen an old segment.
    clock.set('2026-11-21T12:00:00Z');
    await ledger.append([makeRecord()]);
    await ledger.close();

    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'segments')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, 'segments'))).toEqual(['2026-11-21.jsonl', '2026-11-22.jsonl']);
    for (const f of ['segments/2026-11-21.jsonl', 'segments/2026-11-22.jsonl', 'checkpoints.jsonl', 'ledger.json']) {
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    }
    expect(readLines(join(dir, 'segments/2026-11-22.jsonl'))).toHaveLength(2);
    const first = JSON.parse(readLines(join(dir, 'segments/2026-11-22.jsonl'))[0]!);
    expect(Object.keys(first)).toEqual(['prev', 'record', 'seq']);
    expect(first.seq).toBe(2);
    expect(existsSync(join(dir, 'ledger.lock'))).toBe(false);
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result.treeSize).toBe(4);
  });

  it('continues the chain after reopening, from a checkpoint or from a full scan', async () => {
    const dir = tempDir();
    const a = await FileLedger.open({ dir, fsync: 'none', checkpointEvery: 3 });
    for (let i = 0; i < 7; i++) await a.append([makeRecord()]);
    const rootBefore = a.root.toString('hex');
    await a.close();
    const b = await FileLedger.open({ dir, fsync: 'none' });
    expect(b.size).toBe(7);
    expect(b.root.toString('hex')).toBe(rootBefore);
    await b.append([makeRecord()]);
    await b.close();
    // Without checkpoints the writer rescans everything, and marks the 8 records nothing vouches for as recovered.
    writeFileSync(join(dir, 'checkpoints.jsonl'), '');
    const c = await FileLedger.open({ dir, fsync: 'none' });
    expect(c.size).toBe(9);
    await c.append([makeRecord()]);
    await c.close();
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result.treeSize).toBe(10);
    expect(result.recovered).toMatchObject([{ from_seq: 0, to_seq: 7, marker_seq: 8 }]);
  });

  it('refuses a second writer, and takes over the lock of a dead process', async () => {
    const dir = tempDir();
    const first = await FileLedger.open({ dir, fsync: 'none' });
    const error = await rejects(FileLedger.open({ dir, fsync: 'none' }));
    expect(error.code).toBe('LEDGER_LOCKED');
    expect(error.message).toContain(`process ${process.pid}`);
    await first.close();

    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(dir, 'ledger.lock'), JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00Z' }));
    const second = await FileLedger.open({ dir, fsync: 'none' });
    expect(second.notices.join()).toMatch(new RegExp(`stale lock of process ${dead}`));
    await second.close();

    writeFileSync(join(dir, 'ledger.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', started: '2026-01-01T00:00:00Z' }));
    const remote = await rejects(FileLedger.open({ dir, fsync: 'none' }));
    expect(remote.code).toBe('LEDGER_LOCKED');
    expect(remote.message).toMatch(/on elsewhere.*delete .*ledger\.lock/);
  });

  it('leaves no half-written record when the disk fills up, and recovers when space is back', async () => {
    const dir = tempDir();
    let full = false;
    const opener: FileOpener = async (path, flags, mode) => {
      const handle = await open(path, flags, mode);
      const wrapped: WritableFile = {
        write: async (buffer, offset, length, position) => {
          if (full && path.endsWith('.jsonl') && path.includes('segments')) {
            // The kernel accepts part of the write, then the next call fails.
            await handle.write(buffer, offset, Math.min(length, 17), position);
            full = false;
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          }
          return handle.write(buffer, offset, length, position);
        },
        datasync: () => handle.datasync(),
        truncate: (n) => handle.truncate(n),
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
      return wrapped;
    };
    const ledger = await FileLedger.open({ dir, openFile: opener });
    await ledger.append([makeRecord()]);
    full = true;
    const error = await rejects(ledger.append([makeRecord(), makeRecord()]));
    expect(error.code).toBe('LEDGER_NO_SPACE');
    expect(error.message).toMatch(/no space left/);
    const segment = join(dir, 'segments', readdirSync(join(dir, 'segments'))[0]!);
    expect(readFileSync(segment, 'utf8').endsWith('\n')).toBe(true);
    expect(readLines(segment)).toHaveLength(1);
    expect(await ledger.append([makeRecord()])).toEqual({ firstSeq: 1, lastSeq: 1 });
    await ledger.close();
    expect((await verifyLedger(new FileLedgerSource(dir))).treeSize).toBe(2);
  });

  it('stops accepting records when a failed write cannot be rolled back', async () => {
    const dir = tempDir();
    const opener: FileOpener = async (path, flags, mode) => {
      const handle = await open(path, flags, mode);
      return {
        write: async (buffer, offset, length, position) => {
          if (path.includes('segments')) {
            await handle.write(buffer, offset, 5, position);
            throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
          }
          return handle.write(buffer, offset, length, position);
        },
        datasync: () => handle.datasync(),
        truncate: async () => {
          throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
        },
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
    };
    const ledger = await FileLedger.open({ dir, openFile: opener });
    expect((await rejects(ledger.append([makeRecord()]))).code).toBe('LEDGER_IO');
    const again = await rejects(ledger.append([makeRecord()]));
    expect(again.code).toBe('LEDGER_IO');
    expect(again.message).toMatch(/stopped accepting records/);
    await ledger.close();
  });

  it('refuses to append after a torn tail until it is repaired, and repair records what it did', async () => {
    const dir = tempDir();
    const a = await FileLedger.open({ dir, fsync: 'none' });
    await a.append([makeRecord(), makeRecord()]);
    await a.close();
    const segment = join(dir, 'segments', readdirSync(join(dir, 'segments'))[0]!);
    appendFileSync(segment, '{"prev":"abc","record":{"tim');
    const error = await rejects(FileLedger.open({ dir, fsync: 'none' }));
    expect(error.code).toBe('LEDGER_TORN_TAIL');
    expect(error.message).toMatch(/:3: incomplete record \(28 bytes/);
    expect(error.message).toContain('llm-audit repair');
    expect(existsSync(join(dir, 'ledger.lock'))).toBe(false);

    const actions = await repairLedger(dir, { now: new Date('2026-11-22T10:00:00Z') });
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ bytes: 28, offset: statSync(segment).size });
    expect(readFileSync(join(dir, actions[0]!.quarantine), 'utf8')).toBe('{"prev":"abc","record":{"tim');
    expect(readFileSync(join(dir, 'repairs.jsonl'), 'utf8')).toContain(actions[0]!.sha256);
    expect(await repairLedger(dir)).toEqual([]);

    const b = await FileLedger.open({ dir, fsync: 'none' });
    await b.append([makeRecord()]);
    await b.close();
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result.treeSize).toBe(3);
    expect(result.notes.join()).toMatch(/28 torn bytes/);
  });

  it('treats a torn checkpoints.jsonl the same way', async () => {
    const dir = tempDir();
    const a = await FileLedger.open({ dir, fsync: 'none' });
    await a.append([makeRecord()]);
    await a.close();
    appendFileSync(join(dir, 'checkpoints.jsonl'), '{"v":1,"ty');
    await expect(verifyLedger(new FileLedgerSource(dir))).rejects.toMatchObject({ code: 'LEDGER_TORN_TAIL', location: { file: 'checkpoints.jsonl', line: 2 } });
    await expect(FileLedger.open({ dir, fsync: 'none' })).rejects.toMatchObject({ code: 'LEDGER_TORN_TAIL' });
    expect((await repairLedger(dir)).map((r) => r.file)).toEqual(['checkpoints.jsonl']);
    expect((await verifyLedger(new FileLedgerSource(dir))).checkpointsMatched).toBe(1);
  });

  it('writes checkpoints every N records and on close, each covering flushed records', async () => {
    const dir = tempDir();
    const ledger = await FileLedger.open({ dir, fsync: 'batch', checkpointEvery: 4, batchSyncMs: 5 });
    for (let i = 0; i < 10; i++) await ledger.append([makeRecord()]);
    await ledger.sync();
    await ledger.close();
    const sizes = readLines(join(dir, 'checkpoints.jsonl')).map((l) => JSON.parse(l).tree_size);
    expect(sizes).toEqual([4, 8, 10]);
    await expect(ledger.append([makeRecord()])).rejects.toMatchObject({ code: 'LEDGER_CLOSED' });
  });

  it('rejects an unknown fsync policy and a non-Ed25519 key', async () => {
    const dir = tempDir();
    await expect(FileLedger.open({ dir, fsync: 'sometimes' as never })).rejects.toMatchObject({ code: 'LEDGER_USAGE' });
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(join(dir, 'rsa.pem'), rsa);
    await expect(FileLedger.open({ dir: join(dir, 'l'), signingKeyPath: join(dir, 'rsa.pem') })).rejects.toMatchObject({
      code: 'LEDGER_KEY_INVALID',
    });
    await expect(FileLedger.open({ dir: join(dir, 'l'), signingKeyPath: join(dir, 'missing.pem') })).rejects.toMatchObject({
      code: 'LEDGER_NOT_FOUND',
    });
  });

  it('refuses a ledger path that is a file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'f'), '');
    const error = await rejects(FileLedger.open({ dir: join(dir, 'f') }));
    expect(error.code).toBe('LEDGER_UNREADABLE');
    expect(error.message).toMatch(/is not a directory/);
  });
});
