/**
 * verify with worker threads (src/ledger/file/verify-pool.ts) against the single-thread walk: the
 * compiled CLI with `--workers 2` must reach exactly the same verdict as verifyLedger on one thread,
 * on an intact multi-segment ledger and after every kind of tampering (same code, message and
 * location), and must say that the threads did the work when the ledger is intact.
 */
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { leafHash } from '../../src/ledger/merkle';
import { GAP_ACTION, RECOVERED_ACTION } from '../../src/ledger/record';
import { verifyLedger } from '../../src/ledger/verify';
import { cli, ensureBuilt } from '../cli/cli-helpers';
import { makeRecord, tempDir } from './helpers';

beforeAll(ensureBuilt, 180_000);

/** 30 records 7 hours apart (ten daily segments), checkpoints every 4; seq 9 is a gap marker, seq 17 a recovered marker. */
async function ledger(): Promise<string> {
  const dir = tempDir('verify-workers-');
  let now = '2026-03-01T10:00:00.000Z';
  const writer = await FileLedger.open({ dir, fsync: 'none', clock: () => new Date(now), checkpointEvery: 4 });
  for (let i = 0; i < 30; i++) {
    now = new Date(Date.parse('2026-03-01T10:00:00.000Z') + i * 7 * 3_600_000).toISOString();
    const marker =
      i === 9
        ? { action: GAP_ACTION, metadata: { lost_records: 3, first_failure: '2026-03-03T00:00:00.000Z', last_failure: '2026-03-03T01:00:00.000Z' } }
        : i === 17
          ? { action: RECOVERED_ACTION, metadata: { from_seq: 15, to_seq: 16 } }
          : {};
    await writer.append([makeRecord({ timestamp: now, request_id: `r${i}`, user_id: i % 2 ? 'bob' : 'alice', ...marker })]);
  }
  await writer.close();
  return dir;
}

const segmentsOf = (dir: string): string[] => readdirSync(join(dir, 'segments')).sort().map((name) => join(dir, 'segments', name));
const linesOf = (path: string): string[] => readFileSync(path, 'utf8').split('\n').slice(0, -1);
const write = (path: string, lines: string[]): void => writeFileSync(path, lines.map((l) => l + '\n').join(''));

/** The verdict of the single-thread walk, in the CLI's --json terms. */
async function oneThread(dir: string): Promise<Record<string, unknown>> {
  try {
    const r = await verifyLedger(new FileLedgerSource(dir), { workers: 0 });
    expect(r.threads).toBe(0);
    return { ok: true, records: r.records, treeSize: r.treeSize, root: r.root, checkpointsMatched: r.checkpointsMatched, warnings: r.warnings, notes: r.notes, recovered: r.recovered, period: { first_record: r.period.first, last_record: r.period.last } };
  } catch (error) {
    const e = error as { code: string; message: string; location?: unknown };
    return { ok: false, code: e.code, message: e.message, ...(e.location ? { location: e.location } : {}) };
  }
}

/** The verdict of `llm-audit verify --workers 2 --json`, the same fields. */
function threaded(dir: string): Record<string, unknown> & { threads?: number } {
  const run = cli(['verify', '--ledger', dir, '--workers', '2', '--json']);
  const out = JSON.parse(run.stdout) as Record<string, unknown>;
  if (out.ok !== true) return { ok: false, code: out.code, message: out.message, ...(out.location ? { location: out.location } : {}) };
  const { records, treeSize, root, checkpointsMatched, warnings, recovered, period, threads } = out as Record<string, unknown> & { threads: number };
  return { ok: true, records, treeSize, root, checkpointsMatched, warnings, recovered, period, threads };
}

async function sameVerdict(dir: string): Promise<Record<string, unknown>> {
  const { notes, ...expected } = await oneThread(dir);
  const { threads, ...verdict } = threaded(dir);
  expect(verdict).toEqual(expected);
  if (expected.ok) {
    expect(threads).toBe(2);
    // --json reports the number of C2SP notes under "notes"; the ledger's notes are in the text output.
    const text = cli(['verify', '--ledger', dir, '--workers', '2']);
    for (const note of notes as string[]) expect(text.stdout + text.stderr).toContain(note);
  }
  return { ...expected, notes };
}

/** Re-chains every line from `from` (an index over all segments' lines) on: an attacker without the key. */
function rechainFrom(dir: string, from: number, edit: (line: string) => string): void {
  const files = segmentsOf(dir).map((path) => ({ path, lines: linesOf(path) }));
  const all = files.flatMap((f) => f.lines);
  all[from] = edit(all[from]!);
  let prev = from === 0 ? '0'.repeat(64) : leafHash(all[from - 1]!).toString('hex');
  for (let i = from; i < all.length; i++) {
    const entry = JSON.parse(all[i]!);
    entry.prev = prev;
    all[i] = canonicalJson(entry);
    prev = leafHash(all[i]!).toString('hex');
  }
  let k = 0;
  for (const f of files) write(f.path, all.slice(k, (k += f.lines.length)));
}

const TAMPERING: Array<[string, (dir: string) => void]> = [
  ['a changed byte inside a segment', (dir) => {
    const s = segmentsOf(dir)[3]!;
    const lines = linesOf(s);
    lines[1] = lines[1]!.replace('"request_id":"r', '"request_id":"x');
    write(s, lines);
  }],
  ['a changed first line of a segment', (dir) => {
    const s = segmentsOf(dir)[4]!;
    const lines = linesOf(s);
    lines[0] = lines[0]!.replace('"request_id":"r', '"request_id":"x');
    write(s, lines);
  }],
  ['a changed last line of a segment', (dir) => {
    const s = segmentsOf(dir)[4]!;
    const lines = linesOf(s);
    lines[lines.length - 1] = lines[lines.length - 1]!.replace('"request_id":"r', '"request_id":"x');
    write(s, lines);
  }],
  ['a deleted first line of a segment', (dir) => {
    const s = segmentsOf(dir)[5]!;
    write(s, linesOf(s).slice(1));
  }],
  ['a deleted segment', (dir) => rmSync(segmentsOf(dir)[2]!)],
  ['a line moved to the next segment (chain intact)', (dir) => {
    const [a, b] = [segmentsOf(dir)[2]!, segmentsOf(dir)[3]!];
    const la = linesOf(a);
    write(b, [la.pop()!, ...linesOf(b)]);
    write(a, la);
  }],
  ['a line replayed at the start of the next segment', (dir) => {
    const [a, b] = [segmentsOf(dir)[2]!, segmentsOf(dir)[3]!];
    write(b, [linesOf(a).at(-1)!, ...linesOf(b)]);
  }],
  ['two segments swapped', (dir) => {
    const [a, b] = [segmentsOf(dir)[1]!, segmentsOf(dir)[6]!];
    const [ta, tb] = [readFileSync(a), readFileSync(b)];
    writeFileSync(a, tb);
    writeFileSync(b, ta);
  }],
  ['a line no longer canonical', (dir) => {
    const s = segmentsOf(dir)[7]!;
    write(s, linesOf(s).map((l, i) => (i === 0 ? l.replace('"seq":', '"seq": ') : l)));
  }],
  ['the tail truncated', (dir) => {
    const s = segmentsOf(dir).at(-1)!;
    write(s, linesOf(s).slice(0, -2));
  }],
  ['a torn tail', (dir) => appendFileSync(segmentsOf(dir).at(-1)!, '{"prev":"')],
  ['an edit re-chained to the end', (dir) => rechainFrom(dir, 12, (l) => l.replace('"request_id":"r', '"request_id":"x'))],
  ['an altered summary', (dir) => {
    const s = join(dir, 'summaries', readdirSync(join(dir, 'summaries')).sort()[2]!);
    writeFileSync(s, readFileSync(s, 'utf8').replace('"alice"', '"carol"'));
  }],
  ['a deleted summary', (dir) => rmSync(join(dir, 'summaries', readdirSync(join(dir, 'summaries')).sort()[4]!))],
  ['an empty segment added', (dir) => writeFileSync(join(dir, 'segments', '2026-03-30.jsonl'), '')],
];

describe('verify with worker threads', () => {
  it('an intact multi-segment ledger: the threads did the work and the result is the one-thread result', async () => {
    const dir = await ledger();
    const verdict = await sameVerdict(dir);
    expect(verdict).toMatchObject({ ok: true, records: 30, treeSize: 30, checkpointsMatched: 8 });
    expect((verdict.warnings as string[]).join('\n')).toMatch(/3 audit record\(s\) could not be written/);
    expect(verdict.recovered).toEqual([expect.objectContaining({ from_seq: 15, to_seq: 16, marker_seq: 17 })]);
    expect(cli(['verify', '--ledger', dir, '--workers', 'x']).code).toBe(2);
  });

  it('a worker thread that fails fails verify loudly (LEDGER_VERIFY_INCOMPLETE, exit 3), never a pass', async () => {
    const dir = await ledger();
    // A real failure: a preload (an agent loaded with NODE_OPTIONS) that throws in every worker thread.
    const preload = join(tempDir('verify-workers-preload-'), 'break-threads.cjs');
    writeFileSync(preload, "if (!require('node:worker_threads').isMainThread) throw new Error('this preload refuses worker threads');\n");
    const run = cli(['verify', '--ledger', dir, '--workers', '2', '--json'], { NODE_OPTIONS: `--require ${preload}` });
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, code: 'LEDGER_VERIFY_INCOMPLETE', message: expect.stringContaining('this preload refuses worker threads') });
    // Without threads the same process verifies.
    expect(cli(['verify', '--ledger', dir, '--workers', '0', '--json'], { NODE_OPTIONS: `--require ${preload}` }).code).toBe(0);
  });

  // With the checkpoints, and without them (the chain alone must then catch what the checkpoints would).
  for (const chainOnly of [false, true]) {
    for (const [what, tamper] of TAMPERING) {
      it(`${what}${chainOnly ? ', checkpoints deleted' : ''}: the same verdict with threads as without`, async () => {
        const dir = await ledger();
        if (chainOnly) rmSync(join(dir, 'checkpoints.jsonl'));
        tamper(dir);
        const verdict = await sameVerdict(dir);
        if (!/deleted summary|empty segment|truncated/.test(what) || (what.includes('truncated') && !chainOnly)) expect(verdict.ok).toBe(false);
      });
    }
  }
});
