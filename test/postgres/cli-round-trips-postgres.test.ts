/**
 * What a read command costs the database besides its own SQL (issue 22): a report or query on
 * PostgreSQL, run by a role that records the read (audit.read), uses one connection for the probe,
 * the report and the append, asks for the schema and the privileges once each, and appends the
 * read and its checkpoint in one transaction. The checks themselves stay: the read is recorded and
 * covered by a checkpoint, and the ledger still verifies.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { makeRecord } from '../ledger/helpers';
import { MAIN, ensureBuilt } from '../ingest/helpers';
import { adminQuery, createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';

const COUNTER = join(__dirname, '../support/pg-statements.cjs');

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

/** `llm-audit args` in a child with the statement counter preloaded. */
function counted(args: string[]) {
  const r = spawnSync(process.execPath, ['--require', COUNTER, MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 60_000 });
  const line = r.stderr.split('\n').find((l) => l.startsWith('pg-statements: '));
  expect(line, r.stderr).toBeDefined();
  const seen = JSON.parse(line!.slice('pg-statements: '.length)) as { connections: number; statements: string[]; modules: string[] };
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ...seen, count: (re: RegExp) => seen.statements.filter((s) => re.test(s)).length };
}

describe('a PostgreSQL read command: one connection, each check asked once', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('trips');
    const pg = await PostgresLedger.open({ url: db.url, checkpointEvery: 5 });
    await pg.append(
      Array.from({ length: 12 }, (_, i) =>
        makeRecord({ request_id: `r${i}`, span_id: (i + 1).toString(16).padStart(16, '0'), timestamp: `2026-03-09T${String(i + 1).padStart(2, '0')}:00:00.000Z`, user_id: i % 2 ? 'alice' : 'bob' }),
      ),
    );
    await pg.close();
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  const reads: Array<[string, string[], number]> = [
    ['report error-rate', ['report', 'error-rate', '--now', '2026-03-10T00:00:00Z', '--format', 'json'], 1],
    ['query --user', ['query', '--user', 'alice', '--format', 'json'], 6],
  ];
  for (const [name, args, rows] of reads) {
    it(`${name}: one connection, the schema and privileges asked once, the read and its checkpoint in one transaction`, async () => {
      const [before] = await adminQuery<{ size: string; checkpoints: string }>(db.url, `SELECT (SELECT count(*) FROM llm_audit.chain)::text AS size, (SELECT count(*) FROM llm_audit.checkpoints)::text AS checkpoints`);
      const r = counted([...args, '--postgres', db.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveLength(rows);
      // Was 3 connections (probe, report, audit.read writer), the migrations read 4 times, the
      // privileges twice, and two transactions for the read record (append, then the close's checkpoint).
      expect(r.connections).toBe(1);
      expect(r.count(/FROM llm_audit\.schema_migrations/)).toBe(1);
      expect(r.count(/has_table_privilege/)).toBe(1);
      expect(r.count(/^BEGIN$/)).toBe(1);
      // The read is recorded, and covered by the one checkpoint it wrote.
      const [after] = await adminQuery<{ size: string; checkpoints: string; newest: string; action: string }>(
        db.url,
        `SELECT (SELECT count(*) FROM llm_audit.chain)::text AS size, (SELECT count(*) FROM llm_audit.checkpoints)::text AS checkpoints,
                (SELECT max(tree_size) FROM llm_audit.checkpoints)::text AS newest,
                (SELECT r.line::json->'record'->>'action' FROM llm_audit.records r ORDER BY seq DESC LIMIT 1) AS action`,
      );
      expect(Number(after!.size)).toBe(Number(before!.size) + 1);
      expect(Number(after!.checkpoints)).toBe(Number(before!.checkpoints) + 1);
      expect(after!.newest).toBe(after!.size);
      expect(after!.action).toBe('audit.read');
      const v = counted(['verify', '--postgres', db.url]);
      expect(v.code, v.stderr).toBe(0);
    }, 60_000);
  }

  it('a report loads its own modules only: no OpenTelemetry API, HTML renderers, help, OTLP receiver or file writer', () => {
    const r = counted(['report', 'error-rate', '--now', '2026-03-10T00:00:00Z', '--format', 'json', '--postgres', db.url]);
    expect(r.code, r.stderr).toBe(0);
    // Was 138 modules, 47 of them @opentelemetry/api (ledger/record.ts), plus cli/help -> serve -> ingest.
    const unneeded = r.modules.filter((m) => /@opentelemetry[\\/]|[\\/](evidence[\\/](html|report-html|charts)|cli[\\/](help|serve)|ingest[\\/]\w+|ledger[\\/]file[\\/]writer|audit[\\/]hashing)\.js$/.test(m));
    expect(unneeded).toEqual([]);
    expect(r.modules.some((m) => /[\\/]cli[\\/]report\.js$/.test(m))).toBe(true);
  }, 60_000);
});
