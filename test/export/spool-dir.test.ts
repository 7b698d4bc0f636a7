import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OWNER_FILE, SpoolDirectory } from '../../src/export/spool-dir';
import { encodeSpoolFile } from '../../src/export/spool-file';
import { makeSpans } from './helpers';

// Which process may send which spool file: its own, and those of processes that are gone, each
// adopted by exactly one process; never the files of a live one.

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A process subdirectory as another process would have left it, with `count` spool files. */
async function leftBehind(root: string, pid: number, count: number, extra: Record<string, unknown> = {}): Promise<{ dir: string; names: string[] }> {
  const dir = join(root, `proc-${pid}-1700000000000`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', ...extra }));
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    names.push(`00170000000000${i}-${pid}-000000000${i}.spool`);
    writeFileSync(join(dir, names[i]!), await encodeSpoolFile(makeSpans(1, `${pid}-${i}`)));
  }
  return { dir, names };
}

/** The pid of a process that has ended. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

function livePid(): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const spoolNames = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.spool')).sort();

describe('SpoolDirectory ownership', () => {
  it('a dead process\'s files are adopted once (by the first process to look), a live process\'s never', async () => {
    const root = mkdtempSync(join(tmpdir(), 'spool-owners-'));
    const dead = await leftBehind(root, deadPid(), 3);
    writeFileSync(join(dead.dir, '.tmp-interrupted.spool'), 'half a file');
    const live = await leftBehind(root, livePid(), 2);

    const first = new SpoolDirectory(root, 1 << 30);
    first.open();
    const second = new SpoolDirectory(root, 1 << 30);
    second.open();

    expect(first.files).toBe(3);
    expect(spoolNames(first.directory!)).toEqual(dead.names);
    expect(second.files).toBe(0); // the first adopter's directory is live (this very process)
    expect(existsSync(dead.dir)).toBe(false); // emptied, unlocked, removed; the interrupted write deleted
    expect(spoolNames(live.dir)).toEqual(live.names);
    // Oldest first across what was adopted.
    expect(first.oldest()!.name).toBe(dead.names[0]);
  });

  it('a process that exited cleanly with files left marks its directory released: the next process adopts them at once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'spool-released-'));
    const before = new SpoolDirectory(root, 1 << 30);
    before.open();
    const name = before.reserveName();
    await before.write(name, await encodeSpoolFile(makeSpans(2)));
    const ownDir = before.directory!;
    before.close();
    expect(JSON.parse(readFileSync(join(ownDir, OWNER_FILE), 'utf8'))).toMatchObject({ pid: process.pid, released: true });

    const after = new SpoolDirectory(root, 1 << 30);
    after.open();
    expect(after.files).toBe(1);
    expect(after.oldest()!.name).toBe(name);
    expect(existsSync(ownDir)).toBe(false);
  });

  it('adopts only what fits under the byte bound; the rest stays for later', async () => {
    const root = mkdtempSync(join(tmpdir(), 'spool-adopt-bound-'));
    const dead = await leftBehind(root, deadPid(), 3);
    const oneFile = readFileSync(join(dead.dir, dead.names[0]!)).length;
    const adopter = new SpoolDirectory(root, oneFile * 2 + 10);
    adopter.open();
    expect(adopter.files).toBe(2);
    expect(spoolNames(dead.dir)).toEqual([dead.names[2]]);
    expect(existsSync(join(dead.dir, OWNER_FILE))).toBe(true);
  });
});
