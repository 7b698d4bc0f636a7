// Segment summaries (src/ledger/file/summary.ts): written when a segment closes and after a crash,
// checked by verify, and used by queries and windowed reports to read only what can match, with
// the same rows as reading everything.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import type { LedgerItem, SkippedItem } from '../../src/ledger/backend';
import { FileLedger, FileLedgerSource } from '../../src/ledger/file/ledger';
import { repairSummaries } from '../../src/ledger/file/repair';
import { SegmentSummary, summarizeSegmentFile } from '../../src/ledger/file/summary';
import { queryRecords, type QueryFilter } from '../../src/ledger/query';
import { reportBackend } from '../../src/ledger/reports';
import type { LedgerRecord } from '../../src/ledger/record';
import { verifyLedger } from '../../src/ledger/verify';
import { ensureBuilt } from '../cli/cli-helpers';
import { startProcess, waitFor } from '../support/processes';
import { fakeClock, makeRecord, tempDir } from './helpers';

const DAYS = ['2026-03-01', '2026-03-02', '2026-03-03'];

/** Record i of a small varied data set: 5 users, 3 tenants, 2 models, 3 actions, timestamps up to 2 days before the append. */
function varied(i: number, day: string): Partial<LedgerRecord> {
  const lag = (i % 7) * 7 * 3_600_000; // up to 42 h earlier than the append day
  return {
    timestamp: new Date(Date.parse(`${day}T12:00:00.000Z`) + (i % 11) * 60_000 - lag).toISOString(),
    user_id: `user-${i % 5}`,
    session_id: `sess-${i % 13}`,
    tenant_id: i % 4 === 0 ? null : `tenant-${i % 3}`,
    model: i % 3 === 0 ? { request: 'gpt-4o', response: null } : { request: 'claude', response: 'claude-2025' },
    action: ['chat.completions.create', 'messages.create', 'auth.login'][i % 3]!,
    status: i % 9 === 0 ? 'error' : 'success',
  };
}

/** A ledger of `perDay` records on each of DAYS (3000-line blocks make block skipping visible with BLOCK_LINES 1024). */
async function threeDays(dir: string, perDay = 40): Promise<LedgerRecord[]> {
  const clock = fakeClock(`${DAYS[0]}T12:00:00.000Z`);
  const ledger = await FileLedger.open({ dir, fsync: 'none', clock: clock.now, checkpointEvery: 50 });
  const written: LedgerRecord[] = [];
  let i = 0;
  for (const day of DAYS) {
    clock.set(`${day}T12:00:00.000Z`);
    for (let n = 0; n < perDay; n += 10) {
      const batch = Array.from({ length: 10 }, () => makeRecord(varied(i++, day)));
      written.push(...batch);
      await ledger.append(batch);
    }
  }
  await ledger.close();
  return written;
}

async function rows(source: FileLedgerSource, filter: QueryFilter): Promise<Array<[number, string]>> {
  const out: Array<[number, string]> = [];
  for await (const hit of queryRecords(source, filter)) out.push([hit.seq, hit.record.request_id]);
  return out;
}

const FILTERS: QueryFilter[] = [
  { user: 'user-3' },
  { session: 'sess-7' },
  { tenant: 'tenant-1' },
  { model: 'claude-2025' },
  { model: 'gpt-4o' },
  { action: 'auth.*' },
  { action: 'messages.create', user: 'user-1' },
  { user: 'nobody' },
  { from: Date.parse('2026-03-02T00:00:00.000Z') },
  { from: Date.parse('2026-03-01T00:00:00.000Z'), to: Date.parse('2026-03-02T06:00:00.000Z'), user: 'user-2' },
  { to: Date.parse('2026-03-01T00:00:00.000Z') },
  { status: 'error', tenant: 'tenant-0' },
];

describe('segment summaries', () => {
  it('are written at rollover and on close, bound to their segment, with the records’ own time range', async () => {
    const dir = tempDir();
    const written = await threeDays(dir);
    expect(readdirSync(join(dir, 'summaries')).sort()).toEqual(DAYS.map((d) => `${d}.jsonl`));
    const first = SegmentSummary.load(dir, `${DAYS[0]}.jsonl`)!;
    expect(first.describes(dir, `${DAYS[0]}.jsonl`)).toBe(true);
    const day0 = written.slice(0, 40).map((r) => Date.parse(r.timestamp));
    // Older than the append day: the span start, not the day the segment is named after.
    expect(first.header).toMatchObject({ segment: `${DAYS[0]}.jsonl`, lines: 40, first_seq: 0, last_seq: 39, time: [Math.min(...day0), Math.max(...day0)] });
    expect(first.header.time![0]).toBeLessThan(Date.parse(`${DAYS[0]}T00:00:00.000Z`));
    expect(first.field('user').values).toEqual(['user-0', 'user-1', 'user-2', 'user-3', 'user-4']);
    // Canonical JSON lines, whichever serialiser wrote them.
    for (const line of first.text.split('\n').slice(0, -1)) expect(canonicalJson(JSON.parse(line))).toBe(line);
    const result = await verifyLedger(new FileLedgerSource(dir));
    expect(result.notes.join('\n')).not.toMatch(/summar/);
  });

  it('queries and windowed reads return the same rows with and without summaries, reading only what can match', async () => {
    const dir = tempDir();
    const written = await threeDays(dir);
    const source = new FileLedgerSource(dir);
    const withSummaries = await Promise.all(FILTERS.map((f) => rows(source, f)));

    // What the summaries let the reader leave out: most of the lines for one user.
    const items: Array<LedgerItem | SkippedItem> = [];
    for await (const item of source.selectItems({}, { where: { user: 'user-3' } })) items.push(item);
    const entries = items.filter((i) => i.kind === 'entry');
    expect(entries.length).toBe(written.filter((r) => r.user_id === 'user-3').length);
    expect(items.filter((i) => i.kind === 'skipped').length).toBeGreaterThan(0);

    rmSync(join(dir, 'summaries'), { recursive: true });
    const without = await Promise.all(FILTERS.map((f) => rows(source, f)));
    expect(withSummaries).toEqual(without);
    // And they are the right rows (audit.start is not written by FileLedger itself: seq i is written[i]).
    const user3 = written.flatMap((r, i) => (r.user_id === 'user-3' ? [[i, r.request_id]] : []));
    expect(withSummaries[0]).toEqual(user3);
    expect(withSummaries.every((r, i) => r.length > 0 || FILTERS[i]!.user === 'nobody' || FILTERS[i]!.to !== undefined)).toBe(true);

    // Reports over a window (the scan backend) agree too.
    await repairSummaries(dir);
    expect(readdirSync(join(dir, 'summaries'))).toHaveLength(3);
    const now = Date.parse('2026-03-03T13:00:00.000Z');
    const withIndex = await reportBackend(source).errorRate(now - 86_400_000, now);
    rmSync(join(dir, 'summaries'), { recursive: true });
    expect(await reportBackend(source).errorRate(now - 86_400_000, now)).toEqual(withIndex);
  });

  it('verify fails on a changed summary and on one left from a different segment; a missing one is a note', async () => {
    const dir = tempDir();
    const written = await threeDays(dir);
    const path = join(dir, 'summaries', `${DAYS[1]}.jsonl`);
    const original = readFileSync(path, 'utf8');

    // An insider hides user-3's records of that day from queries: the binding (size, last leaf) still holds.
    const lines = original.split('\n');
    const userLine = lines.findIndex((l) => l.startsWith('{"field":"user"'));
    const user = JSON.parse(lines[userLine]!) as { values: string[]; rows: number[][] };
    const at = user.values.indexOf('user-3');
    user.values.splice(at, 1);
    user.rows.splice(at, 1);
    lines[userLine] = JSON.stringify({ field: 'user', rows: user.rows, values: user.values });
    writeFileSync(path, lines.join('\n'));
    const source = new FileLedgerSource(dir);
    // Queries trust a summary that describes its file: the hidden records are not shown...
    expect((await rows(source, { user: 'user-3' })).length).toBe(written.filter((r, i) => r.user_id === 'user-3' && (i < 40 || i >= 80)).length);
    // ...which is what verify is for.
    await expect(verifyLedger(source)).rejects.toMatchObject({ code: 'LEDGER_SUMMARY_MISMATCH', message: expect.stringMatching(/summaries\/2026-03-02\.jsonl: it does not follow/) });

    // Another segment's summary under this segment's name.
    copyFileSync(join(dir, 'summaries', `${DAYS[0]}.jsonl`), path);
    await expect(verifyLedger(source)).rejects.toMatchObject({ code: 'LEDGER_SUMMARY_MISMATCH', message: expect.stringMatching(/describes segments\/2026-03-01\.jsonl|does not match the segment/) });
    // A reader does not use it (it does not describe the file), so queries stay complete.
    rmSync(path);
    const complete = await rows(source, { user: 'user-3' });
    copyFileSync(join(dir, 'summaries', `${DAYS[0]}.jsonl`), path);
    expect(await rows(source, { user: 'user-3' })).toEqual(complete);

    // Missing (a ledger from before summaries): verify passes and says so; repair writes it again.
    rmSync(path);
    const result = await verifyLedger(source);
    expect(result.notes.join('\n')).toMatch(/1 segment\(s\) have no summary .*2026-03-02\.jsonl/);
    await repairSummaries(dir);
    expect(readFileSync(path, 'utf8')).toBe(original);
    expect((await verifyLedger(source)).notes.join('\n')).not.toMatch(/summar/);
  });

  it('a writer reopening the day’s segment extends its summary; readers meanwhile read that segment whole', async () => {
    const dir = tempDir();
    await threeDays(dir);
    const clock = fakeClock(`${DAYS[2]}T18:00:00.000Z`);
    const ledger = await FileLedger.open({ dir, fsync: 'none', clock: clock.now });
    await ledger.append([makeRecord({ user_id: 'user-3', timestamp: `${DAYS[2]}T18:00:00.000Z` })]);
    const source = new FileLedgerSource(dir);
    const open = await rows(source, { user: 'user-3' });
    expect(open.at(-1)![0]).toBe(120);
    const check = await verifyLedger(source);
    expect(check.notes.join('\n')).toMatch(/the summary of 2026-03-03\.jsonl covers only the lines written before a writer reopened it/);
    await ledger.close();
    expect(SegmentSummary.load(dir, `${DAYS[2]}.jsonl`)!.header).toMatchObject({ lines: 41, last_seq: 120 });
    expect(await rows(source, { user: 'user-3' })).toEqual(open);
    expect((await verifyLedger(source)).notes.join('\n')).not.toMatch(/summar/);
  });

  it('after a writer is killed mid-segment (SIGKILL), the next writer’s summary covers every line', async () => {
    ensureBuilt();
    const dir = tempDir();
    await threeDays(dir);
    const script = `
      const { FileLedger } = require(${JSON.stringify(join(__dirname, '../../dist/cjs/ledger/file/ledger.js'))});
      (async () => {
        const ledger = await FileLedger.open({ dir: ${JSON.stringify(dir)}, fsync: 'always', clock: () => new Date('${DAYS[2]}T20:00:00.000Z') });
        for (let i = 0; i < 5; i++) await ledger.append([${JSON.stringify(makeRecord({ user_id: 'killed', timestamp: `${DAYS[2]}T20:00:00.000Z` }))}]);
        console.log('appended');
        setInterval(() => {}, 1000);
      })();`;
    const child = startProcess('summary-sigkill', process.execPath, { args: ['-e', script] });
    await waitFor('the writer to append', () => (child.log().includes('appended') ? true : undefined), { timeoutMs: 20_000 });
    child.kill('SIGKILL');
    await child.exited;
    // The killed writer never wrote the summary: the stored one is stale and readers ignore it.
    expect(SegmentSummary.load(dir, `${DAYS[2]}.jsonl`)!.describes(dir, `${DAYS[2]}.jsonl`)).toBe(false);

    const clock = fakeClock(`${DAYS[2]}T21:00:00.000Z`);
    const next = await FileLedger.open({ dir, fsync: 'none', clock: clock.now });
    await next.append([makeRecord({ user_id: 'killed', timestamp: `${DAYS[2]}T21:00:00.000Z` })]);
    clock.set('2026-03-04T01:00:00.000Z');
    await next.append([makeRecord({ user_id: 'next-day' })]); // rollover: the killed day's summary is final
    await next.close();
    const summary = SegmentSummary.load(dir, `${DAYS[2]}.jsonl`)!;
    expect(summary.describes(dir, `${DAYS[2]}.jsonl`)).toBe(true);
    const killedRows = summary.field('user').rows[summary.field('user').values.indexOf('killed')]!;
    expect(killedRows).toHaveLength(6);
    const source = new FileLedgerSource(dir);
    expect(await rows(source, { user: 'killed' })).toHaveLength(6);
    const result = await verifyLedger(source);
    expect(result.notes.join('\n')).not.toMatch(/summar/);
    expect(existsSync(join(dir, 'summaries', '2026-03-04.jsonl'))).toBe(true);
  }, 60_000);
});

describe('call cells (summary version 2)', () => {
  /** Awkward sums: costs and latencies whose float sums depend on the order they are added in. */
  async function cellDays(dir: string): Promise<void> {
    const clock = fakeClock(`${DAYS[0]}T12:00:00.000Z`);
    const ledger = await FileLedger.open({ dir, fsync: 'none', clock: clock.now });
    let i = 0;
    for (const day of DAYS) {
      clock.set(`${day}T12:00:00.000Z`);
      for (let n = 0; n < 60; n += 10) {
        await ledger.append(
          Array.from({ length: 10 }, () => {
            const k = i++;
            return makeRecord({ ...varied(k, day), cost_usd: k % 5 === 0 ? null : 0.1 + k * 1e-7 + (k % 3) * 0.2, latency_ms: 100.1 + (k % 17) * 0.37 });
          }),
        );
      }
    }
    await ledger.close();
  }

  async function cellSegments(source: FileLedgerSource, from?: number, to?: number, cells: 'users' | 'models' = 'users'): Promise<number> {
    let n = 0;
    for await (const item of source.selectItems({}, { cells, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) })) if (item.kind === 'skipped' && item.cells) n++;
    return n;
  }

  it('cost-by-user and error-rate add a whole segment’s cells instead of its lines, to the same bits; verify checks them; version 1 summaries still serve', async () => {
    const dir = tempDir();
    await cellDays(dir);
    const source = new FileLedgerSource(dir);
    const now = Date.parse('2026-03-04T00:00:00.000Z');
    // The groups before formatting (their order is the report's to set), so sums are compared to the last bit.
    const sorted = <T>(groups: T[]): T[] => groups.map((g) => [JSON.stringify(g), g] as const).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, g]) => g);
    const reads = async () => ({
      all: sorted(await reportBackend(source).costByUser(undefined, undefined)),
      window: sorted(await reportBackend(source).costByUser(Date.parse('2026-02-28T00:00:00.000Z'), now)),
      errors: sorted(await reportBackend(source).errorRate(now - 3 * 86_400_000, now)),
      day: sorted(await reportBackend(source).errorRate(now - 86_400_000, now)),
      month: sorted(await reportBackend(source).errorRate(Date.parse('2026-02-01T00:00:00.000Z'), now)),
    });
    const withCells = await reads();
    // Every segment is read as cells when the window holds it (records up to 42 h before their append day).
    expect(await cellSegments(source)).toBe(3);
    expect(await cellSegments(source, now - 86_400_000, now)).toBe(0); // the last segment holds records of earlier days
    // error-rate's cells are per block of lines (one block per segment here).
    expect(await cellSegments(source, Date.parse('2026-02-01T00:00:00.000Z'), now, 'models')).toBe(3);
    expect(await cellSegments(source, now - 86_400_000, now, 'models')).toBe(0);
    const original = DAYS.map((d) => readFileSync(join(dir, 'summaries', `${d}.jsonl`), 'utf8'));

    rmSync(join(dir, 'summaries'), { recursive: true });
    expect(await cellSegments(source)).toBe(0);
    expect(await reads()).toEqual(withCells); // toEqual compares numbers with Object.is: the same bits

    // Version 1 summaries (no cells): read as before, verified as version 1, rewritten by repair.
    mkdirSync(join(dir, 'summaries'));
    for (const d of DAYS) writeFileSync(join(dir, 'summaries', `${d}.jsonl`), (await summarizeSegmentFile(dir, `${d}.jsonl`)).text(1));
    expect(await cellSegments(source)).toBe(0);
    expect(await reads()).toEqual(withCells);
    expect((await verifyLedger(source)).notes.join('\n')).not.toMatch(/summar/);
    await repairSummaries(dir);
    expect(DAYS.map((d) => readFileSync(join(dir, 'summaries', `${d}.jsonl`), 'utf8'))).toEqual(original);

    // A changed cell (one request fewer for a user): verify says the summary does not follow from its segment.
    const path = join(dir, 'summaries', `${DAYS[1]}.jsonl`);
    const lines = original[1]!.split('\n');
    const at = lines.findIndex((l) => l.startsWith('{"cells":'));
    const cells = JSON.parse(lines[at]!) as { cells: { users: number[][] } };
    cells.cells.users[0]![2]! -= 1; // requests
    lines[at] = JSON.stringify(cells);
    writeFileSync(path, lines.join('\n'));
    await expect(verifyLedger(source)).rejects.toMatchObject({ code: 'LEDGER_SUMMARY_MISMATCH', message: expect.stringMatching(/summaries\/2026-03-02\.jsonl: it does not follow/) });
  });
});

describe('a record timestamped after the day it was appended (the app clock ahead of the ledger writer)', () => {
  // `llm-audit serve` appends by its own clock; a span's start time is the app's. An app whose clock
  // runs 30 s ahead sends, at 23:59:50 by the writer's clock, a call it started at 00:00:20 of the
  // next day: it lands on the earlier day's segment. Windowed reads skipped segments by their day
  // and dropped it without a word.
  async function skewed(dir: string): Promise<LedgerRecord> {
    const clock = fakeClock('2026-03-01T12:00:00.000Z');
    const ledger = await FileLedger.open({ dir, fsync: 'none', clock: clock.now });
    await ledger.append([makeRecord({ timestamp: '2026-03-01T11:00:00.000Z', user_id: 'early' })]);
    clock.set('2026-03-01T23:59:50.000Z');
    const ahead = makeRecord({ timestamp: '2026-03-02T00:00:20.000Z', user_id: 'ahead', status: 'error', model: { request: 'gpt-4o', response: null } });
    await ledger.append([ahead]);
    clock.set('2026-03-02T10:00:00.000Z');
    await ledger.append([makeRecord({ timestamp: '2026-03-02T09:00:00.000Z', user_id: 'later', model: { request: 'gpt-4o', response: 'gpt-4o-1' } })]);
    await ledger.close();
    return ahead;
  }

  it('is found by a query and counted by a windowed report that starts after its segment’s day', async () => {
    const dir = tempDir();
    const ahead = await skewed(dir);
    const source = new FileLedgerSource(dir);
    const found = await rows(source, { from: Date.parse('2026-03-02T00:00:00.000Z') });
    expect(found.map(([, id]) => id)).toContain(ahead.request_id);
    const groups = await reportBackend(source).errorRate(Date.parse('2026-03-02T00:00:00.000Z'), Date.parse('2026-03-02T12:00:00.000Z'));
    expect(groups.find((g) => g.model === 'gpt-4o')).toMatchObject({ requests: 2, errors: 1 });
  });
});
