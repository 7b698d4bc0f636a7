/**
 * The CLI as a first-time user meets it (issue 21): advice that points the right way, bad input
 * refused with a clear line, machine output with what an incident responder needs, and a --help
 * for every command.
 */
import { readdirSync, rmSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main';
import { cli, ensureBuilt, expectNoStack, ledger } from './cli-helpers';

beforeAll(() => ensureBuilt(), 120_000);

function expectUsage(result: ReturnType<typeof cli>, message: RegExp): void {
  expectNoStack(result);
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(message);
}

describe('verify: a torn tail', () => {
  it('inside the range a checkpoint covers is an integrity failure, with no repair advice', async () => {
    const dir = await ledger({ count: 8, every: 4 }); // checkpoints at 4 and 8: every record covered
    const segments = readdirSync(join(dir, 'segments')).sort();
    const last = join(dir, 'segments', segments[segments.length - 1]!);
    truncateSync(last, statSync(last).size - 10);
    const r = cli(['verify', '--ledger', dir]);
    expectNoStack(r);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_TRUNCATED: segments\/.*\(seq 7\): incomplete record .* checkpoints\.jsonl:\d+ \(tree size 8\) says a whole record/m);
    expect(r.stderr).toMatch(/integrity failure, not an interrupted write: do not repair/);
    expect(r.stderr).not.toMatch(/Run `llm-audit repair/);
  });

  it('after the newest checkpoint is an interrupted write, and repair is the advice', async () => {
    const dir = await ledger({ count: 6, every: 4 }); // records 4 and 5 after the checkpoint at 4... and close writes one at 6
    const segments = readdirSync(join(dir, 'segments')).sort();
    const last = join(dir, 'segments', segments[segments.length - 1]!);
    // Drop the close-time checkpoint so that the last record is past the newest one.
    const cps = join(dir, 'checkpoints.jsonl');
    const lines = require('node:fs').readFileSync(cps, 'utf8').trimEnd().split('\n');
    require('node:fs').writeFileSync(cps, lines.filter((l: string) => JSON.parse(l).tree_size <= 4).join('\n') + '\n');
    truncateSync(last, statSync(last).size - 10);
    const r = cli(['verify', '--ledger', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LEDGER_TORN_TAIL: .* a write was interrupted \(crash or kill\).*llm-audit repair/);
  });
});

describe('retention', () => {
  it('--now in the future is a preview with --dry-run, refused without', async () => {
    const dir = await ledger({ count: 6 });
    const dry = cli(['retention', 'apply', '--policy', 'gdpr', '--now', '2099-01-01', '--dry-run', '--ledger', dir]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/dry run \(policy gdpr, now 2099-01-01T00:00:00\.000Z\): would remove \d+ segment/);
    expectUsage(cli(['retention', 'apply', '--policy', 'gdpr', '--now', '2099-01-01', '--ledger', dir]), /is in the future.*--dry-run previews it/);
  });

  it('--max-age with a policy that does not use it is refused, not ignored', async () => {
    const dir = await ledger({ count: 2 });
    for (const policy of ['standard', 'hipaa']) {
      expectUsage(cli(['retention', 'apply', '--policy', policy, '--max-age', '5d', '--dry-run', '--ledger', dir]), /--max-age is for --policy gdpr/);
    }
  });
});

describe('bad input, one clear line', () => {
  let dir: string;
  // A new ledger for each test: temporary directories go after each test.
  beforeEach(async () => {
    dir = await ledger({ count: 4 });
  });

  it('a date that does not exist', () => {
    expectUsage(cli(['query', '--ledger', dir, '--from', '2026-02-30']), /--from "2026-02-30" is not a date: 2026-02-30 does not exist/);
    expectUsage(cli(['report', 'cost-by-user', '--ledger', dir, '--to', '2026-04-31T10:00:00Z']), /--to .* does not exist/);
    expect(cli(['query', '--ledger', dir, '--from', '2026-02-28', '--to', '2026-03-01T10:00:00+01:00']).code).toBe(0);
  });

  it('a negative number is a bad value, not an ambiguous argument', () => {
    expectUsage(cli(['query', '--ledger', dir, '--limit', '-1']), /^llm-audit: LEDGER_USAGE: --limit must be a positive integer, got "-1"$/m);
  });

  it('an unknown option, with balanced quotes and where to look', () => {
    const r = cli(['query', '--ledger', dir, '--bogus']);
    expectUsage(r, /^llm-audit: LEDGER_USAGE: unknown option --bogus$/m);
    for (const line of r.stderr.split('\n')) expect((line.match(/'/g) ?? []).length % 2, line).toBe(0);
    expect(r.stderr).toMatch(/--help/);
  });

  it('a status no record can have', () => {
    expectUsage(cli(['query', '--ledger', dir, '--status', 'bogus']), /--status must be one of success, error, blocked, interrupted, unaudited, got "bogus"/);
    expect(cli(['query', '--ledger', dir, '--status', 'error', '--format', 'csv']).stdout.trim().split('\n').length).toBeGreaterThan(1);
  });

  it('prove of an unknown id exits 4 (no such record), not 3 (ledger unusable)', () => {
    const r = cli(['prove', 'no-such-id', '--ledger', dir]);
    expectNoStack(r);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_RECORD_NOT_FOUND: no record with request_id no-such-id/m);
  });

  it('decrypt of a record without encrypted content says so, before asking for keys', () => {
    const r = cli(['decrypt', '--reason', 'review', 'r1', '--ledger', dir]);
    expectNoStack(r);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/CONTENT_NOT_CAPTURED: record "r1" has no encrypted content/);
    expect(r.stderr).not.toMatch(/keystore|KEY_MISSING/);
  });
});

describe('query output', () => {
  it('JSON and CSV carry the trace and span ids and the keyed hashes; the table stays narrow', async () => {
    const dir = await ledger({ count: 2 });
    const rows = JSON.parse(cli(['query', '--ledger', dir, '--format', 'json']).stdout) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(row.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(row).toHaveProperty('input_hash');
      expect(row).toHaveProperty('output_hash');
      expect(row).toHaveProperty('system_prompt_hash');
    }
    const csvHeader = cli(['query', '--ledger', dir, '--format', 'csv']).stdout.split('\r\n')[0]!;
    expect(csvHeader.split(',')).toEqual(expect.arrayContaining(['trace_id', 'span_id', 'input_hash', 'output_hash']));
    expect(cli(['query', '--ledger', dir]).stdout.split('\n')[0]).not.toContain('input_hash');
    const picked = JSON.parse(cli(['query', '--ledger', dir, '--format', 'json', '--columns', 'seq,span_id']).stdout);
    expect(Object.keys(picked[0])).toEqual(['seq', 'span_id']);
    expectUsage(cli(['query', '--ledger', dir, '--columns', 'seq,nope']), /--columns: unknown column "nope"/);
  });

  it('a ledger whose segment file was deleted: the rows that are there, then a loud failure', async () => {
    const dir = await ledger({ count: 10, every: 4 });
    const segments = readdirSync(join(dir, 'segments')).sort();
    expect(segments.length).toBeGreaterThanOrEqual(3);
    rmSync(join(dir, 'segments', segments[1]!));
    for (const format of ['table', 'csv']) {
      const r = cli(['query', '--ledger', dir, '--format', format]);
      expectNoStack(r);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/r0/); // the first segment's records are shown
      expect(r.stderr).toMatch(/^llm-audit: LEDGER_RECORD_MISSING: .*records \d+\.\.\d+ are missing .* run `llm-audit verify`$/m);
    }
    expect(cli(['report', 'cost-by-user', '--ledger', dir]).code).toBe(1);
    // Every segment deleted: not "(no rows)".
    for (const s of segments) rmSync(join(dir, 'segments', s), { force: true });
    const none = cli(['query', '--ledger', dir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/records 0\.\.9 are missing/);
  });
});

describe('--help', () => {
  const commands = (): string[] => {
    let text = '';
    void runCli(['--help'], { out: async (t) => void (text += t), err: () => undefined, env: {}, cwd: '.' });
    return [...text.matchAll(/^ {2}([a-z-]+) {2}/gm)].map((m) => m[1]!);
  };

  it('every command lists its options, with defaults, and an example', () => {
    const names = commands();
    expect(names.length).toBeGreaterThanOrEqual(15);
    for (const name of names) {
      const r = cli([name, '--help']);
      expect(r.code, name).toBe(0);
      const [usage, ...rest] = r.stdout.split('\n');
      const body = rest.join('\n');
      expect(body, name).toMatch(/\nexamples?:\n {2}(?:[A-Z_]+=\S* )?llm-audit /);
      // Usage texts that carry their own options and example (report, evidence) are their authors';
      // the others get an options list that explains every option the usage line names.
      if (/^examples?:$/m.test(body) && !/^options:$/m.test(body)) continue;
      expect(body, name).toMatch(/\noptions:\n/);
      for (const [flag] of usage!.matchAll(/--[a-z-]+/g)) expect(body, `${name} --help explains ${flag}`).toMatch(new RegExp(`^ {2}[^\\n]*${flag}\\b`, 'm'));
    }
    expect(cli(['serve', '--help']).stdout).toMatch(/--port N\s+port \(default 4319/);
    expect(cli(['query', '--help']).stdout).toMatch(/--format table\|json\|csv\s+output format \(default table/);
    // One CLI process per command (over 20 of them), each ~1 s on a loaded 2-core machine.
  }, 120_000);
});
