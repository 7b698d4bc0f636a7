/**
 * The auditor's commands (issue 24) on the fixed data set of auditor-data.ts, on the file ledger
 * and on PostgreSQL: every command must print the same on both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { HOSTILE_USER, PUBLIC_KEY, writeAuditorLedger } from './auditor-data';
import { cli, ensureBuilt, expectNoStack, type CliResult } from './cli-helpers';

let base: string;
let dir: string;
let db: TestDatabase;

beforeAll(async () => {
  ensureBuilt();
  base = mkdtempSync(join(tmpdir(), 'auditor-'));
  dir = join(base, 'ledger');
  await writeAuditorLedger({ dir });
  db = await createTestDatabase('auditor');
  await writeAuditorLedger({ url: db.url });
}, 120_000);

afterAll(async () => {
  rmSync(base, { recursive: true, force: true });
  await db?.drop();
});

/** Runs `args` on both ledgers; they must agree (exit code, output, errors). Returns the file ledger's result. */
function both(args: string[]): CliResult {
  const file = cli([...args, '--ledger', dir]);
  const pg = cli([...args, '--postgres', db.url]);
  expectNoStack(file);
  // A CSV's first line states how the rows were computed (its basis), which differs by backend by design.
  const rows = (out: string): string => out.replace(/^"?# [^\n]*\| computed [^\n]*\n/, '');
  expect(rows(pg.stdout), `${args.join(' ')} on PostgreSQL`).toBe(rows(file.stdout));
  expect(pg.code, pg.stderr).toBe(file.code);
  return file;
}

const json = (args: string[]): Array<Record<string, unknown>> => {
  const r = both([...args, '--format', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
};

const ids = (rows: Array<Record<string, unknown>>): unknown[] => rows.map((r) => r.request_id);

/** Parses RFC 4180 CSV (quoted cells with "" and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) row.push(cell), rows.push(row);
  return rows;
}

describe('query: the whole record', () => {
  it('JSON has every field: both models, token details, guardrails, sanitization, error type and message', () => {
    const rows = json(['query']);
    expect(rows).toHaveLength(12);
    const first = rows[0]!;
    expect(first).toMatchObject({
      seq: 0,
      request_id: 'req-0001',
      trace_id: '000000000000000000000000' + '4bf92f35',
      span_id: '0000000000f067aa',
      model_requested: 'gpt-4o',
      model_response: 'gpt-4o-2024-08-06',
      cache_read_tokens: 300,
      reasoning_tokens: null,
      session_id: 's-alice-1',
      content_encrypted: false,
      record_version: 2,
    });
    expect(rows[1]).toMatchObject({ status: 'error', model_requested: 'gpt-4o', model_response: null, error_type: 'rate_limit_exceeded', http_status: 429, error_message: 'Rate limit reached for requests' });
    expect(rows[2]).toMatchObject({ reasoning_tokens: 120, sanitization_count: 2, sanitization_kinds: null });
    expect(rows[3]!.guardrails).toEqual([{ name: 'pii-filter', action: 'blocked', policy_id: 'pol-7', severity: 'high', time: '2026-11-02T11:00:00.000Z' }]);
    expect(rows[5]).toMatchObject({ sanitization_count: 3, sanitization_mode: 'redact', sanitization_kinds: { email: 2, credit_card: 1 } });
    expect(rows[9]).toMatchObject({ status: 'blocked', block_reason: 'the prompt holds an e-mail address' });
  });

  it('filters by trace id, request id, session, model (requested or answering), provider and status', () => {
    expect(ids(json(['query', '--trace-id', '0000000000000000000000004BF92F38']))).toEqual(['req-0004']);
    expect(ids(json(['query', '--request-id', 'req-0007']))).toEqual(['req-0007']);
    expect(ids(json(['query', '--session', 's-carol-9']))).toEqual(['req-0011', 'req-0012']);
    // The requested model finds its failures too; the answering model only what it answered.
    expect(ids(json(['query', '--model', 'claude-sonnet-4']))).toEqual(['req-0003', 'req-0004', 'req-0008', 'req-0009', 'req-0011', 'req-0012']);
    expect(ids(json(['query', '--model', 'claude-sonnet-4-20250514']))).toEqual(['req-0003', 'req-0009', 'req-0011']);
    expect(ids(json(['query', '--provider', 'anthropic', '--status', 'error']))).toEqual(['req-0008', 'req-0012']);
    expect(json(['query', '--provider', 'nobody'])).toEqual([]);
    const empty = cli(['query', '--ledger', dir, '--session', '']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--session needs a value/);
  });

  it('the table shows the requested and the answering model side by side', () => {
    const r = both(['query', '--status', 'error']);
    expect(r.stdout.split('\n')[0]).toMatch(/\bmodel_requested\s+model_response\b/);
    expect(r.stdout).toMatch(/req-0002 .* gpt-4o\s+chat\.completions\.create\s+error/);
  });
});

describe('CSV for spreadsheets', () => {
  it('neutralises cells a spreadsheet would run as formulas, and states command, filter and period first', () => {
    const r = both(['query', '--format', 'csv', '--tenant', 'globex', '--from', '2026-11-03', '--to', '2026-11-04']);
    expect(r.code, r.stderr).toBe(0);
    const rows = parseCsv(r.stdout);
    expect(rows[0]).toEqual(['# llm-audit query --format csv --tenant globex --from 2026-11-03 --to 2026-11-04 | filter: tenant=globex | period: 2026-11-03T00:00:00.000Z .. 2026-11-04T00:00:00.000Z (excluded) | times UTC']);
    const header = rows[1]!;
    expect(header.slice(0, 3)).toEqual(['seq', 'timestamp', 'request_id']);
    const user = header.indexOf('user_id');
    const hostile = rows.slice(2).find((row) => row[header.indexOf('request_id')] === 'req-0007')!;
    expect(hostile[user]).toBe(`'${HOSTILE_USER}`);
    // Nothing in the file starts a cell with = + - @ (numbers aside).
    for (const row of rows.slice(1)) for (const cell of row) expect(cell, cell).not.toMatch(/^[=+@\t\r]|^-(?!\d)/);
    expect(rows.slice(2)).toHaveLength(3);
    expect(r.stdout).not.toContain('--ledger');
  });

  it('every CSV neutralises: a tab, a carriage return, + - @ as first character', async () => {
    const { csvCell } = await import('../../src/cli/format');
    for (const bad of ['=1+1', '+1', '-1+2', '@SUM(A1)', '\tx', '\rx']) expect(csvCell(bad).replace(/^"|"$/g, '').startsWith("'"), JSON.stringify(bad)).toBe(true);
    expect(csvCell(-1)).toBe('-1');
    expect(csvCell('a,b')).toBe('"a,b"');
  });

  it('--excel adds a byte order mark and writes instants as dates a spreadsheet reads', () => {
    const r = both(['query', '--format', 'csv', '--excel', '--request-id', 'req-0001']);
    expect(r.stdout.startsWith('\uFEFF# llm-audit query --format csv --excel --request-id req-0001 |')).toBe(true);
    const rows = parseCsv(r.stdout.slice(1));
    expect(rows[2]![rows[1]!.indexOf('timestamp')]).toBe('2026-11-02 09:00:00.000');
  });

  it('reports and retention write the first line too', () => {
    const usage = both(['report', 'usage', '--by', 'tenant', '--from', '2026-11-01', '--to', '2026-12-01', '--format', 'csv']);
    expect(parseCsv(usage.stdout)[0]![0]).toMatch(/^# llm-audit report usage --by tenant --from 2026-11-01 --to 2026-12-01 --format csv \| period 2026-11-01T00:00:00.000Z \.\. 2026-12-01T00:00:00.000Z/);
    const retention = cli(['retention', 'apply', '--policy', 'gdpr', '--now', '2026-11-06T00:00:00Z', '--dry-run', '--format', 'csv', '--ledger', dir]);
    expect(parseCsv(retention.stdout)[0]![0]).toMatch(/^# llm-audit retention apply --policy gdpr .* \| policy: gdpr \| now: 2026-11-06T00:00:00.000Z \| dry run/);
  });
});



describe('reports for auditors', () => {
  const period = ['--from', '2026-11-01', '--to', '2026-12-01'];
  it('guardrails: blocks and flags by day, rule and user, or by one of them', () => {
    expect(json(['report', 'guardrails', ...period])).toEqual([
      { day: '2026-11-02', rule: 'pii-filter', policy_id: 'pol-7', user_id: 'bob', blocked: 1, flagged: 0, modified: 0, allowed: 0 },
      { day: '2026-11-03', rule: 'toxicity', policy_id: null, user_id: 'carol', blocked: 0, flagged: 1, modified: 0, allowed: 0 },
      { day: '2026-11-04', rule: 'pii-filter', policy_id: 'pol-7', user_id: 'bob', blocked: 1, flagged: 0, modified: 0, allowed: 0 },
    ]);
    expect(json(['report', 'guardrails', '--by', 'rule', ...period])).toEqual([
      { rule: 'pii-filter', policy_id: 'pol-7', blocked: 2, flagged: 0, modified: 0, allowed: 0 },
      { rule: 'toxicity', policy_id: null, blocked: 0, flagged: 1, modified: 0, allowed: 0 },
    ]);
    expect(json(['report', 'guardrails', '--by', 'user', ...period])).toEqual([
      { user_id: 'bob', blocked: 2, flagged: 0, modified: 0, allowed: 0 },
      { user_id: 'carol', blocked: 0, flagged: 1, modified: 0, allowed: 0 },
    ]);
    expect(cli(['report', 'guardrails', '--by', 'model', '--ledger', dir]).stderr).toMatch(/--by must be one of all, rule, user, day/);
  });

  it('usage --by user,model: who used which model, failures and successes of a model in one row', () => {
    const rows = json(['report', 'usage', '--by', 'user,model', ...period]);
    expect(rows).toHaveLength(7);
    expect(rows[0]).toEqual({ user_id: 'bob', provider: 'anthropic', model: 'claude-sonnet-4', calls: 2, errors: 0, blocked: 1, input_tokens: 800, output_tokens: 400, cost_usd: 0.05, unpriced: 0 });
    expect(rows.find((r) => r.user_id === 'alice' && r.model === 'gpt-4o')).toMatchObject({ calls: 2, errors: 1 });
    expect(json(['report', 'usage', '--by', 'tenant,day', '--top', '2', ...period]).map((r) => [r.tenant_id, r.day])).toEqual([
      ['acme', '2026-11-02'],
      ['acme', '2026-11-04'],
    ]);
    expect(cli(['report', 'usage', '--by', 'user,user', '--ledger', dir]).stderr).toMatch(/--by names a group twice/);
  });

  it('sanitization: findings by tenant, user and kind; a total without kinds is counted and said to be one', () => {
    expect(json(['report', 'sanitization', ...period])).toEqual([
      { tenant_id: 'acme', user_id: 'bob', kind: '(total; kinds not recorded)', calls: 1, findings: 2 },
      { tenant_id: 'globex', user_id: 'carol', kind: '(total; kinds not recorded)', calls: 1, findings: 1 },
      { tenant_id: 'globex', user_id: 'carol', kind: 'credit_card', calls: 1, findings: 1 },
      { tenant_id: 'globex', user_id: 'carol', kind: 'email', calls: 1, findings: 2 },
    ]);
    expect(json(['report', 'sanitization', '--by', 'tenant', ...period])).toEqual([
      { tenant_id: 'acme', kind: '(total; kinds not recorded)', calls: 1, findings: 2 },
      { tenant_id: 'globex', kind: '(total; kinds not recorded)', calls: 1, findings: 1 },
      { tenant_id: 'globex', kind: 'credit_card', calls: 1, findings: 1 },
      { tenant_id: 'globex', kind: 'email', calls: 1, findings: 2 },
    ]);
    const table = both(['report', 'sanitization', '--by', 'kind', ...period]);
    expect(table.stderr).toMatch(/note: 2 call\(s\) record only the number of findings, not their kinds/);
  });
});

describe('verify for people', () => {
  it('states the period, the newest checkpoint (time, age, key) and what OK proves and what not', () => {
    const r = cli(['verify', '--ledger', dir, '--public-key', PUBLIC_KEY]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {3}period covered: 2026-11-02T09:00:00\.000Z \.\. 2026-11-05T10:10:00\.000Z \(first and last record time\)$/m);
    expect(r.stdout).toMatch(/^ {3}newest checkpoint: tree size 12, 2026-11-05T10:10:01\.000Z \(\d+ days old\), signed by key [0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^OK proves: records 0\.\.11 are exactly as they were written, .* the checkpoints were signed with the given key\.$/m);
    expect(r.stdout).toMatch(/^It does not prove that no records were cut off from the end together with the checkpoints covering them \(a checkpoint kept elsewhere, given with --checkpoint, shows that\); nor that every LLM call was recorded/m);
    const unkeyed = cli(['verify', '--postgres', db.url]);
    expect(unkeyed.stdout).toMatch(/; nor who signed the checkpoints \(give --public-key\); nor that every LLM call/);
    const j = JSON.parse(cli(['verify', '--postgres', db.url, '--json']).stdout);
    expect(j).toMatchObject({ ok: true, period: { first_record: '2026-11-02T09:00:00.000Z', last_record: '2026-11-05T10:10:00.000Z' }, newest_checkpoint: { tree_size: 12, timestamp: '2026-11-05T10:10:01.000Z', signed: true } });
    expect(j.newest_checkpoint.age_seconds).toBeGreaterThan(0);
    expect(j.meaning.proves).toMatch(/^OK proves/);
  });

  it('--json answers on failure too, with the exit code', async () => {
    const { cpSync, readdirSync, readFileSync, writeFileSync } = await import('node:fs');
    const copy = join(base, 'tampered');
    cpSync(dir, copy, { recursive: true });
    const segment = join(copy, 'segments', readdirSync(join(copy, 'segments')).sort()[1]!);
    writeFileSync(segment, readFileSync(segment, 'utf8').replace('"user_id":"carol"', '"user_id":"carl"'));
    const r = cli(['verify', '--ledger', copy, '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ok: false, code: expect.stringMatching(/^LEDGER_/), ledger: copy });
    expect(j.message).toMatch(/seq 4/);
    expect(j.meaning).toMatch(/cannot be relied on/);
    expect(r.stderr).toMatch(/^llm-audit: LEDGER_/);
  });
});

describe('checkpoints by time', () => {
  it('checkpoint --at picks the newest at or before the time; consistency names the times', () => {
    // The file ledger checkpoints every 4 records; a signing PostgreSQL writer in every append transaction.
    for (const [source, size, time] of [[['--ledger', dir], 8, '2026-11-04T08:00:01.000Z'], [['--postgres', db.url], 9, '2026-11-04T08:30:01.000Z']] as const) {
      const r = cli(['checkpoint', '--at', '2026-11-04T12:00:00Z', ...source]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ tree_size: size, timestamp: time });
      expect(r.stderr).toBe(`checkpoint of ${time}, tree size ${size}: the newest at or before 2026-11-04T12:00:00.000Z\n`);
      const none = cli(['checkpoint', '--at', '2026-11-01', ...source]);
      expect(none.code).toBe(3);
      expect(none.stderr).toMatch(/no checkpoint at or before 2026-11-01T00:00:00.000Z \(the first is of 2026-11-0\d/);
    }
    const old = join(base, 'cp-old.json');
    const now = join(base, 'cp-new.json');
    expect(cli(['checkpoint', '--at', '2026-11-02T23:00:00Z', '--ledger', dir, '--out', old]).code).toBe(0);
    expect(cli(['checkpoint', '--ledger', dir, '--out', now]).code).toBe(0);
    const c = cli(['consistency', old, now, '--ledger', dir, '--public-key', PUBLIC_KEY]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/OK: the ledger of size 12 \(checkpoint of 2026-11-05T10:10:01.000Z\) extends the ledger of size 4 \(checkpoint of 2026-11-02T11:00:01.000Z\): the 8 record\(s\) added between the two times changed none of the 4 before \(signature: verified\)/);
  });
});

describe('retention: the policy in force, recorded when it changes, and the log of deletions', () => {
  it('file ledger and PostgreSQL', async () => {
    const { cpSync } = await import('node:fs');
    const { SIGNING_KEY } = await import('./auditor-data');
    const copy = join(base, 'retained');
    cpSync(dir, copy, { recursive: true });
    const pg = await createTestDatabase('auditor_retention');
    try {
      await writeAuditorLedger({ url: pg.url });
      const env = { LLM_AUDIT_RETENTION_POLICY: 'gdpr max-age=30d', LLM_AUDIT_SIGNING_KEY: SIGNING_KEY };
      for (const source of [['--ledger', copy], ['--postgres', pg.url]]) {
        const before = cli(['retention', 'policy', ...source], env);
        expect(before.code, before.stderr).toBe(0);
        expect(before.stdout).toBe('configured: gdpr (metadata 30d, content 30d, errors 30d) (LLM_AUDIT_RETENTION_POLICY)\nrecorded:   none (no retention.policy record in the ledger)\n');
        expect(before.stderr).toMatch(/the configured policy is not the one the ledger records/);

        // No --policy: the configured one; recorded in the ledger before the deletion.
        const applied = cli(['retention', 'apply', '--now', '2026-12-05T00:00:00Z', ...source], env);
        expect(applied.code, applied.stderr).toBe(0);
        expect(applied.stderr).toMatch(/recorded in .*: the retention policy in force is now gdpr \(metadata 30d, content 30d, errors 30d\)/);
        expect(applied.stderr).toMatch(/policy gdpr, now 2026-12-05T00:00:00.000Z: removed 3 segment\(s\), 10 record\(s\)/);
        // The same policy again: nothing more is recorded.
        const again = cli(['retention', 'apply', '--now', '2026-12-05T00:00:00Z', ...source], env);
        expect(again.stderr).not.toMatch(/recorded in/);

        const log = JSON.parse(cli(['retention', 'log', '--format', 'json', ...source], env).stdout);
        expect(log).toHaveLength(2);
        expect(log[0]).toMatchObject({ event: 'policy', policy: 'gdpr (metadata 30d, content 30d, errors 30d)', first_seq: 12, by: expect.stringMatching(/@.* \(LLM_AUDIT_RETENTION_POLICY\)$/) });
        expect(log[1]).toMatchObject({
          event: 'deletion',
          policy: 'gdpr (metadata 30d, content 30d, errors 30d)',
          cut_off: '2026-12-05T00:00:00.000Z',
          first_seq: 0,
          last_seq: 9,
          records: 10,
          records_from: '2026-11-02',
          records_to: '2026-11-04T15:00:00.000Z',
          by: expect.stringMatching(/^key [0-9a-f]{64}$/),
        });
        const now = cli(['retention', 'policy', ...source], { LLM_AUDIT_RETENTION_POLICY: 'standard' });
        expect(now.stdout).toMatch(/^recorded: {3}gdpr \(metadata 30d, content 30d, errors 30d\) since \S+ \(seq 12, by .*\)$/m);
        expect(now.stderr).toMatch(/not the one the ledger records/);
        const verify = cli(['verify', '--public-key', PUBLIC_KEY, ...source]);
        expect(verify.code, verify.stderr).toBe(0);
        expect(verify.stdout).toMatch(/records 0\.\.9 were removed by retention/);
        // A policy record cannot be forged from a span: it is an operation only the tool writes.
        const { claimedOperation } = await import('../../src/ledger/record');
        expect(claimedOperation({ action: 'retention.policy' })).toMatch(/operation record/);
      }
      expect(cli(['retention', 'apply', '--ledger', copy]).stderr).toMatch(/--policy is required \(or declare the policy in force in \$LLM_AUDIT_RETENTION_POLICY\)/);
      expect(cli(['retention', 'policy', '--ledger', copy], { LLM_AUDIT_RETENTION_POLICY: 'gdpr maxage=3d' }).stderr).toMatch(/"maxage=3d" is not one of max-age=D/);
    } finally {
      await pg.drop();
    }
  });
});
