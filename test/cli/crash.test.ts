import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileLedgerSource } from '../../src/ledger/file/ledger';
import { scanRecords } from '../../src/ledger/query';
import { tempDir } from '../ledger/helpers';
import { MAIN, cli, ensureBuilt } from './cli-helpers';

beforeAll(() => ensureBuilt(), 120_000);

const WRITER = (dir: string) => `
const { FileLedger } = require(${JSON.stringify(join(MAIN, '../../ledger/file/ledger.js'))});
(async () => {
  const ledger = await FileLedger.open({ dir: ${JSON.stringify(dir)}, fsync: 'always', checkpointEvery: 25 });
  // Large records make a kill in the middle of a write more likely.
  const pad = 'x'.repeat(64 * 1024);
  for (let i = 0; ; i++) {
    const { lastSeq } = await ledger.append([{ v: 1, request_id: 'r' + i, timestamp: new Date().toISOString(), model: { request: 'm', response: null }, metadata: { pad } }]);
    process.stdout.write('ack ' + lastSeq + ' r' + i + '\\n');
  }
})();
`;

describe('crash safety', () => {
  it('a writer killed with SIGKILL never loses an acknowledged record', async () => {
    const dir = join(tempDir('crash-'), 'ledger');
    const child = spawn(process.execPath, ['-e', WRITER(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let buffer = '';
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) {
          const [, seq, id] = line.split(' ');
          acked.set(Number(seq), id!);
        }
        if (acked.size >= 150 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.once('exit', resolve));
    expect(acked.size).toBeGreaterThanOrEqual(150);

    let verify = cli(['verify', '--ledger', dir]);
    if (verify.code !== 0) {
      // The only acceptable failure is a torn tail (a write cut short), which repair quarantines.
      expect(verify.stderr).toMatch(/LEDGER_TORN_TAIL/);
      expect(cli(['repair', '--ledger', dir]).code).toBe(0);
      verify = cli(['verify', '--ledger', dir]);
    }
    expect(verify.code).toBe(0);

    const stored = new Map<number, string>();
    for await (const hit of scanRecords(new FileLedgerSource(dir))) stored.set(hit.seq, hit.record.request_id!);
    for (const [seq, id] of acked) expect(stored.get(seq)).toBe(id);
    // The stale lock of the killed writer is detected by the next writer (cli repair took it over above, or:)
    const next = cli(['repair', '--ledger', dir]);
    expect(next.code).toBe(0);
  });
});
