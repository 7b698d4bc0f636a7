/**
 * The PostgreSQL backend against a real server (test/support/postgres.ts starts one): schema and
 * migrations, append-only enforcement and roles, the CLI on --postgres giving what it gives on the
 * file ledger, tampering by a superuser, retention through the database function.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/ledger/file/ledger';
import { migrate } from '../../src/ledger/postgres/migrations';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import type { LedgerRecord } from '../../src/ledger/record';
import { makeRecord } from '../ledger/helpers';
import { MAIN, ensureBuilt, scratchDir } from '../ingest/helpers';
import { adminQuery, createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Ten records over three days, fixed ids, as the file-ledger tests make them. */
function records(): LedgerRecord[] {
  return Array.from({ length: 10 }, (_, i) =>
    makeRecord({
      request_id: `r${i}`,
      timestamp: new Date(Date.parse('2026-03-01T10:00:00.000Z') + i * 7 * 3_600_000).toISOString(),
      span_id: (0x1000 + i).toString(16).padStart(16, '0'),
      user_id: i % 2 ? 'bob' : 'alice',
      status: i % 3 === 0 ? 'error' : 'success',
      cost_usd: 0.25 * (i + 1),
      error_type: i % 3 === 0 ? 'RateLimitError' : null,
    }),
  );
}

async function withClient<T>(url: string, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function expectRefused(url: string, sql: string, pattern: RegExp): Promise<void> {
  await expect(withClient(url, (c) => c.query(sql))).rejects.toThrow(pattern);
}

describe('PostgreSQL ledger', () => {
  let db: TestDatabase;
  let fileDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('pg');
    // The same records, in the same order, into both backends.
    const writer = await PostgresLedger.open({ url: db.url, checkpointEvery: 4 });
    for (const chunk of [records().slice(0, 3), records().slice(3, 7), records().slice(7)]) await writer.append(chunk);
    await writer.close();
    fileDir = join(scratchDir('pgfile-'), 'ledger');
    const file = await FileLedger.open({ dir: fileDir, fsync: 'none', checkpointEvery: 4 });
    for (const chunk of [records().slice(0, 3), records().slice(3, 7), records().slice(7)]) await file.append(chunk);
    await file.close();
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('migrations are versioned, recorded with a checksum, and idempotent', async () => {
    const rows = await adminQuery<{ version: number; checksum: string }>(db.url, 'SELECT version, checksum FROM llm_audit.schema_migrations');
    expect(rows).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((version) => ({ version, checksum: expect.stringMatching(/^[0-9a-f]{64}$/) })));
    expect(await withClient(db.url, (c) => migrate(c))).toEqual([]);
    const r = cli(['migrate', '--postgres', db.url]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/up to date \(version 9\)/);
    expect(r.stderr).not.toContain('llm_audit_test:llm_audit_test'); // the password is not printed
  });

  it('stores the same lines as the file ledger: the same root, and verify / query / report agree', async () => {
    const pg = cli(['verify', '--postgres', db.url, '--json']);
    const file = cli(['verify', '--ledger', fileDir, '--json']);
    expect(pg.code).toBe(0);
    const p = JSON.parse(pg.stdout);
    const f = JSON.parse(file.stdout);
    expect(p.records).toBe(10);
    expect(p.root).toBe(f.root);
    expect(p.checkpointsMatched).toBeGreaterThanOrEqual(2);
    // Read without a writer's access (an auditor role; the file ledger locked by a writer), so
    // that no audit.read record is appended to either and the two stay the same.
    const reader = `${db.name}_reader`;
    await adminQuery(db.url, `CREATE ROLE ${reader} LOGIN PASSWORD 'pw' IN ROLE llm_audit_auditor`);
    await adminQuery(db.url, `GRANT CONNECT ON DATABASE ${db.name} TO ${reader}`);
    const lock = await FileLedger.open({ dir: fileDir, fsync: 'none' });
    for (const args of [
      ['query', '--format', 'json', '--user', 'bob'],
      ['query', '--format', 'csv', '--from', '2026-03-02T00:00:00Z', '--status', 'error'],
      ['report', 'cost-by-user', '--format', 'json'],
      ['report', 'error-rate', '--now', '2026-03-04T00:00:00Z', '--hours', '72', '--format', 'json'],
    ]) {
      const a = cli([...args, '--postgres', db.urlAs(reader)]);
      const b = cli([...args, '--ledger', fileDir]);
      expect(a.code, a.stderr).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout.length).toBeGreaterThan(10);
      expect(a.stderr).toMatch(/not recorded in the ledger \(audit\.read\): the role .*_reader has no writer's access/);
      expect(b.stderr).toMatch(/not recorded in the ledger \(audit\.read\): .*locked by process/);
    }
    await lock.close();
  });

  it('prove and checkpoint work on --postgres, and the proof verifies without the database', () => {
    const out = join(scratchDir('proof-'), 'proof.json');
    expect(cli(['prove', 'r3', '--postgres', db.url, '--out', out]).code).toBe(0);
    const check = cli(['verify-proof', '--proof', out, '--allow-unsigned']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/record seq 3 is included in the ledger of size 10/);
    const cp = JSON.parse(cli(['checkpoint', '--postgres', db.url]).stdout);
    expect(cp.tree_size).toBe(10);
    expect(cp.root).toBe(JSON.parse(cli(['verify', '--ledger', fileDir, '--json']).stdout).root);
  });

  it('refuses UPDATE, DELETE and TRUNCATE to everyone, the owner and a superuser included', async () => {
    await expectRefused(db.url, `UPDATE llm_audit.records SET cost_usd = 0 WHERE seq = 1`, /append-only/);
    await expectRefused(db.url, `DELETE FROM llm_audit.records WHERE seq = 1`, /append-only/);
    await expectRefused(db.url, `TRUNCATE llm_audit.records`, /append-only/);
    await expectRefused(db.url, `UPDATE llm_audit.chain SET span_id = 'x' WHERE seq = 1`, /append-only/);
    await expectRefused(db.url, `DELETE FROM llm_audit.checkpoints`, /append-only/);
    await expectRefused(db.url, `TRUNCATE llm_audit.chain CASCADE`, /append-only/);
    const [part] = await adminQuery<{ name: string }>(
      db.url,
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'llm_audit.records'::regclass LIMIT 1`,
    );
    await expectRefused(db.url, `TRUNCATE llm_audit.${part!.name}`, /append-only/);
    await expectRefused(db.url, `DELETE FROM llm_audit.${part!.name}`, /append-only/);
    // A broken chain cannot be inserted either.
    await expectRefused(
      db.url,
      `INSERT INTO llm_audit.chain VALUES (50, 'a', 'b', decode(repeat('00', 32), 'hex'), decode(repeat('11', 32), 'hex'), now())`,
      /seq 50 does not follow/,
    );
  });

  it('the writer role can only insert and read, the auditor only read, retention only call its function', async () => {
    const writer = await loginRole(db, 'llm_audit_writer');
    const auditor = await loginRole(db, 'llm_audit_auditor');
    const retention = await loginRole(db, 'llm_audit_retention');
    const asWriter = db.urlAs(writer);
    const ledger = await PostgresLedger.open({ url: asWriter });
    const more = makeRecord({ request_id: 'by-writer', span_id: 'ffff000000000001', timestamp: '2026-03-04T10:00:00.000Z' });
    expect(await ledger.append([more])).toMatchObject({ stored: 1, firstSeq: 10 });
    await ledger.close();
    await expectRefused(asWriter, `UPDATE llm_audit.records SET user_id = 'x'`, /permission denied/);
    await expectRefused(asWriter, `DELETE FROM llm_audit.chain`, /permission denied/);
    await expectRefused(asWriter, `TRUNCATE llm_audit.records`, /permission denied/);
    await expectRefused(asWriter, `SELECT llm_audit.apply_retention('{}', ARRAY['x'])`, /permission denied/);
    await expectRefused(asWriter, `CREATE TABLE llm_audit.evil (x int)`, /permission denied/);

    const asAuditor = db.urlAs(auditor);
    const v = cli(['verify', '--postgres', asAuditor]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/11 records verified/);
    await expectRefused(asAuditor, `INSERT INTO llm_audit.checkpoints (line, type, tree_size) VALUES ('{}', 'checkpoint', 1)`, /permission denied/);
    await expectRefused(asAuditor, `SELECT llm_audit.ensure_partition('2030-01-01')`, /permission denied/);
    const w = cli(['serve', '--postgres', asAuditor, '--port', '0', '--migrate']);
    expect(w.code).toBe(3);
    expect(w.stderr).toMatch(/permission denied/);

    const asRetention = db.urlAs(retention);
    await expectRefused(asRetention, `DELETE FROM llm_audit.records`, /permission denied/);
    await expectRefused(asRetention, `DROP TABLE llm_audit.records`, /must be owner/);
  });

  it('detects rows changed behind the application\'s back (superuser with the triggers off) and names the row', async () => {
    const [row] = await adminQuery<{ line: string; part: string; cost_usd: number }>(
      db.url,
      `SELECT line, tableoid::regclass::text AS part, cost_usd FROM llm_audit.records WHERE seq = 4`,
    );
    const tamper = async (sql: string, params: unknown[]): Promise<void> =>
      withClient(db.url, async (c) => {
        await c.query(`SET session_replication_role = replica`);
        await c.query(sql, params);
      });
    const restore = () =>
      tamper(`UPDATE llm_audit.records SET line = $1, cost_usd = $2, leaf_hash = sha256('\\x00'::bytea || convert_to($1, 'UTF8')) WHERE seq = 4`, [
        row!.line,
        row!.cost_usd,
      ]);
    const altered = row!.line.replace('"cost_usd":1.25', '"cost_usd":0.01');
    expect(altered).not.toBe(row!.line);

    // 1. The line edited (the cost), nothing else.
    await tamper(`UPDATE llm_audit.records SET line = $1 WHERE seq = 4`, [altered]);
    let v = cli(['verify', '--postgres', db.url]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(new RegExp(`LEDGER_ROW_MISMATCH: ${row!.part.replace('.', '\\.')}:\\d+ \\(seq 4\\): the line does not hash`));
    await restore();
    expect(cli(['verify', '--postgres', db.url]).code).toBe(0);

    // 2. Only an indexed column (what SQL reports would read).
    await tamper(`UPDATE llm_audit.records SET cost_usd = 0 WHERE seq = 4`, []);
    v = cli(['verify', '--postgres', db.url]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/LEDGER_ROW_MISMATCH: .*\(seq 4\): column cost_usd does not match the record in the line/);
    await restore();

    // 3. The line and both stored hashes rewritten consistently: the chain still names the row.
    await tamper(
      `UPDATE llm_audit.records SET line = $1, cost_usd = 0.01, leaf_hash = sha256('\\x00'::bytea || convert_to($1, 'UTF8')) WHERE seq = 4`,
      [altered],
    );
    await tamper(`UPDATE llm_audit.chain SET leaf_hash = sha256('\\x00'::bytea || convert_to($1, 'UTF8')) WHERE seq = 4`, [altered]);
    v = cli(['verify', '--postgres', db.url]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/LEDGER_RECORD_HASH_MISMATCH: .*\(seq 4\): the record does not hash to the value the next record/);
    await restore();
    await tamper(`UPDATE llm_audit.chain SET leaf_hash = sha256('\\x00'::bytea || convert_to($1, 'UTF8')) WHERE seq = 4`, [row!.line]);

    // 4. A row deleted.
    await tamper(`DELETE FROM llm_audit.records WHERE seq = 6`, []);
    v = cli(['verify', '--postgres', db.url]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/LEDGER_RECORD_MISSING: .*\(seq 7\): expected seq 6 here/);
  });
});

describe('PostgreSQL retention', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('ret');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('drops whole expired day partitions through the database function, leaving a tombstone that verifies', async () => {
    let now = new Date('2026-01-01T12:00:00.000Z');
    const writer = await PostgresLedger.open({ url: db.url, clock: () => now, checkpointEvery: 2 });
    const day = (d: string, n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) =>
        makeRecord({ request_id: `${prefix}${i}`, timestamp: `${d}T10:00:00.000Z`, span_id: `${prefix}${i}`.padEnd(16, '0').slice(0, 16).replace(/[^0-9a-f]/g, 'a') }),
      );
    await writer.append(day('2026-01-01', 3, 'a'));
    now = new Date('2026-01-02T12:00:00.000Z');
    await writer.append(day('2026-01-02', 2, 'b'));
    now = new Date();
    await writer.append(day(now.toISOString().slice(0, 10), 2, 'c'));
    await writer.close();

    const dry = cli(['retention', 'apply', '--postgres', db.url, '--policy', 'gdpr', '--max-age', '30d', '--dry-run', '--format', 'json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).map((s: { name: string; action: string }) => [s.name, s.action])).toEqual([
      ['records_20260101', 'remove'],
      ['records_20260102', 'remove'],
      [expect.stringMatching(/^records_\d{8}$/), 'keep'],
    ]);

    // The database re-checks the plan: the newest partition, or records that have not expired, are refused.
    const [meta] = await adminQuery<{ id: string }>(db.url, `SELECT ledger_id::text AS id FROM llm_audit.ledger_meta`);
    const forged = JSON.stringify({
      type: 'tombstone',
      ledger_id: meta!.id,
      tree_size: 3,
      last_leaf: '00',
      tombstone: { applied_at: '2026-01-01T13:00:00Z', policy: { metadata: '1d', content: '1d', errors: '1d' } },
    });
    await expectRefused(db.url, `SELECT llm_audit.apply_retention($$${forged}$$, ARRAY['records_20260101'])`, /have not expired/);
    await expectRefused(db.url, `SELECT llm_audit.apply_retention($$${forged}$$, ARRAY['records_20260102'])`, /only the oldest partitions/);

    const r = cli(['retention', 'apply', '--postgres', db.url, '--policy', 'gdpr', '--max-age', '30d']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed 2 segment\(s\), 5 record\(s\); tombstone at tree size 5 written to llm_audit.checkpoints/);
    const parts = await adminQuery<{ name: string }>(
      db.url,
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'llm_audit.records'::regclass`,
    );
    // Today's, which also holds the retention.policy record written before the deletion.
    expect(parts).toHaveLength(1);
    const v = cli(['verify', '--postgres', db.url]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/3 records verified \(seq 5\.\.7\), tree size 8/);
    expect(v.stdout).toMatch(/5 earlier records were removed by retention \(tombstone verified\)/);
    expect(v.stderr).toMatch(/note: retention on .* dropped records_20260101, records_20260102 \(5 records, seq < 5\)/);
    // A writer reopening after retention continues the same sequence.
    const again = await PostgresLedger.open({ url: db.url });
    expect(await again.append([makeRecord({ request_id: 'after', span_id: 'dddd000000000001' })])).toMatchObject({ firstSeq: 8 });
    await again.close();
    expect(cli(['verify', '--postgres', db.url]).code).toBe(0);
  });
});

describe('PostgreSQL ledger: group commit', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('pggroup');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('concurrent appends share transactions, each caller gets its own result, and with a key every group is signed before close', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const signingKey = generateKeyPairSync('ed25519').privateKey;
    const writer = await PostgresLedger.open({ url: db.url, signingKey });
    const one = (i: number) => [makeRecord({ request_id: `g${i}`, span_id: (0x2000 + i).toString(16).padStart(16, '0') })];
    // 40 appends at once (the 40th repeats the span of the first).
    const results = await Promise.all([...Array.from({ length: 39 }, (_, i) => writer.append(one(i))), writer.append(one(0))]);
    expect(results.slice(0, 39).map((r) => r.firstSeq).sort((a, b) => a - b)).toEqual(Array.from({ length: 39 }, (_, i) => i));
    expect(results.slice(0, 39).every((r) => r.stored === 1 && r.lastSeq === r.firstSeq)).toBe(true);
    expect(results[39]).toMatchObject({ stored: 0, duplicates: 1 });
    // Before close: every group commit wrote a signed checkpoint, the last covering all 39 records.
    const checkpoints = await adminQuery<{ tree_size: string; signature: string | null }>(
      db.url,
      `SELECT tree_size::text AS tree_size, (line::jsonb)->>'signature' AS signature FROM llm_audit.checkpoints ORDER BY id`,
    );
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(checkpoints.length).toBeLessThan(39);
    expect(Number(checkpoints.at(-1)!.tree_size)).toBe(39);
    expect(checkpoints.every((c) => typeof c.signature === 'string')).toBe(true);
    await writer.close();
  });
});
