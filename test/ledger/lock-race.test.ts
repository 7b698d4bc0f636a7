/**
 * Taking over a stale lock (issue 14): processes that all find the lock of a dead process
 * must not all take it over. Before, each unlinked the lock it had judged stale and created its own,
 * so a slower one deleted the faster one's fresh lock and both held "the" lock. Real processes,
 * started together on a shared clock, race for the same stale lock many times; each round must
 * have exactly one winner. The ledger's writer lock and the content keystore's lock share the
 * takeover (util/lock-owner.ts removeStaleLock); both are raced.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBuilt } from '../cli/cli-helpers';
import { repoRoot } from '../support/processes';
import { tempDir } from './helpers';

const CONTENDERS = 3;
const SPACING_MS = 40;

/**
 * One contender for every round: it waits for each round's start time on a busy loop (so the
 * contenders begin within microseconds of each other), tries that round's lock and reports; it
 * keeps what it won (its pid stays alive, so the lock is live for the others).
 */
const script = `
const { acquireLock } = require(${JSON.stringify(join(repoRoot, 'dist/cjs/ledger/file/lock.js'))});
const { acquireKeystoreLock } = require(${JSON.stringify(join(repoRoot, 'dist/cjs/audit/content/lock.js'))});
const [dirs, first, spacing, kind] = [process.argv[1].split(','), Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const outcomes = [];
dirs.forEach((dir, round) => {
  const at = first + round * spacing;
  while (Date.now() < at) {}
  try {
    if (kind === 'ledger') acquireLock(dir);
    else acquireKeystoreLock(dir + '/ledger.lock', 0);
    outcomes.push('won');
  } catch (error) {
    outcomes.push(error.code === 'LEDGER_LOCKED' || error.code === 'CONTENT_KEYSTORE_LOCKED' ? 'locked' : 'error ' + error.message);
  }
});
process.stdout.write(JSON.stringify(outcomes) + '\\n');
// Alive (holding what it won) until every contender is done: a late one must find live owners.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

type Kind = 'ledger' | 'keystore';

function contender(kind: Kind, dirs: string[], first: number): { outcomes: Promise<string[]>; done(): void } {
  const child = spawn(process.execPath, ['-e', script, dirs.join(','), String(first), String(SPACING_MS), kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const outcomes = new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.endsWith('\n')) resolve(JSON.parse(out) as string[]);
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`a contender exited (${code}) before reporting: ${out}`)));
  });
  return { outcomes, done: () => child.stdin.end() };
}

describe('stale lock takeover', () => {
  it.each([['ledger', 300], ['keystore', 100]] as const)(`%s lock: ${CONTENDERS} processes racing for the same stale lock, exactly one wins, %i rounds`, async (kind, ROUNDS) => {
    ensureBuilt();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const dirs = Array.from({ length: ROUNDS }, () => {
      const dir = tempDir('lock-race-');
      writeFileSync(join(dir, 'ledger.lock'), JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00.000Z' }) + '\n');
      return dir;
    });
    const first = Date.now() + 1500;
    const contenders = Array.from({ length: CONTENDERS }, () => contender(kind, dirs, first));
    let results: string[][];
    try {
      results = await Promise.all(contenders.map((c) => c.outcomes));
    } finally {
      for (const c of contenders) c.done();
    }
    const winners = dirs.map((_, round) => results.filter((r) => r[round] === 'won').length);
    expect(results.flat().filter((o) => o !== 'won' && o !== 'locked')).toEqual([]);
    expect(results.map((r) => r.length)).toEqual(results.map(() => ROUNDS));
    // Nothing of the takeover is left behind but the winner's lock.
    expect(dirs.filter((dir) => readdirSync(dir).join() !== 'ledger.lock')).toEqual([]);
    const bad = winners.flatMap((n, round) => (n === 1 ? [] : [`round ${round}: ${results.map((r) => r[round]).join(' ')}`]));
    expect({ roundsWithoutOneWinner: bad.length, bad }).toEqual({ roundsWithoutOneWinner: 0, bad: [] });
  }, 120_000);
});
