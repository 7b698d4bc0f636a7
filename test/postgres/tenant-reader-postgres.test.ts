// `llm-audit grant-reader --tenant T ROLE` (issue 23, section 4): a role that sees only tenant T's
// records, enforced by PostgreSQL's row-level security, so that it holds for the CLI and for raw
// SQL alike. Tenant acme's reader cannot see, count or prove globex's records; verify says it
// cannot check the chain from a partial view rather than calling the ledger tampered. Reads by
// the CLI are recorded as audit.read when the role may write, and said unrecorded otherwise.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentPayload } from '../../src/audit/content';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { cipherFor, newKey, tempDir } from '../audit/content/helpers';
import { makeRecord } from '../ledger/helpers';
import { cli, expectNoStack } from '../cli/cli-helpers';
import { ensureBuilt, post, scratchDir, serve } from '../ingest/helpers';
import { adminQuery, createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

describe('tenant readers on the PostgreSQL ledger', () => {
  let db: TestDatabase;
  let acme: string;
  let globex: string;
  beforeAll(async () => {
    db = await createTestDatabase('tenants');
    const writer = await PostgresLedger.open({ url: db.url });
    await writer.append([
      makeRecord({ request_id: 'acme-1', tenant_id: 'acme', cost_usd: 1, trace_id: 'a'.repeat(32), span_id: '1'.repeat(16) }),
      makeRecord({ request_id: 'globex-1', tenant_id: 'globex', cost_usd: 10, trace_id: 'b'.repeat(32), span_id: '2'.repeat(16) }),
      makeRecord({ request_id: 'acme-2', tenant_id: 'acme', cost_usd: 2, trace_id: 'c'.repeat(32), span_id: '3'.repeat(16) }),
      makeRecord({ request_id: 'none-1', tenant_id: null, cost_usd: 100, trace_id: 'd'.repeat(32), span_id: '4'.repeat(16) }),
      makeRecord({ request_id: 'globex-2', tenant_id: 'globex', cost_usd: 20, trace_id: 'e'.repeat(32), span_id: '5'.repeat(16) }),
    ]);
    await writer.close();
    acme = `${db.name}_acme`;
    globex = `${db.name}_globex`;
    for (const [role, tenant] of [
      [acme, 'acme'],
      [globex, 'globex'],
    ] as const) {
      const r = cli(['grant-reader', '--tenant', tenant, role, '--postgres', db.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`created role (NOLOGIN) ${role} reads only the records of tenant "${tenant}"`);
      await adminQuery(db.url, `ALTER ROLE ${role} LOGIN PASSWORD 'pw'`);
    }
  }, 120_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('raw SQL: each reader sees and counts only its tenant\'s records and their chain rows; checkpoints and partitions are closed to it', async () => {
    const as = db.urlAs(acme);
    expect(await adminQuery(as, 'SELECT request_id FROM llm_audit.records ORDER BY seq')).toEqual([{ request_id: 'acme-1' }, { request_id: 'acme-2' }]);
    expect(await adminQuery(as, `SELECT count(*)::int AS n FROM llm_audit.records WHERE tenant_id = 'globex'`)).toEqual([{ n: 0 }]);
    expect(await adminQuery(as, 'SELECT count(*)::int AS n FROM llm_audit.chain')).toEqual([{ n: 2 }]);
    expect(await adminQuery(db.urlAs(globex), 'SELECT count(*)::int AS n FROM llm_audit.records')).toEqual([{ n: 2 }]);
    // What would count every tenant's records together is not granted at all.
    for (const table of ['llm_audit.checkpoints', 'llm_audit.retention_log', 'llm_audit.cosigned_notes']) {
      await expect(adminQuery(as, `SELECT count(*) FROM ${table}`)).rejects.toThrow(/permission denied/);
    }
    const [partition] = await adminQuery<{ name: string }>(db.url, `SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'llm_audit.records'::regclass`);
    await expect(adminQuery(as, `SELECT count(*) FROM llm_audit.${partition!.name}`)).rejects.toThrow(/permission denied/);
    // Its own grant, not the other tenant's.
    expect(await adminQuery(as, 'SELECT role_name::text, tenant_id FROM llm_audit.tenant_readers')).toEqual([{ role_name: acme, tenant_id: 'acme' }]);
    // And it cannot write.
    await expect(adminQuery(as, `INSERT INTO llm_audit.tenant_readers (role_name, tenant_id) VALUES ('${acme}', 'globex')`)).rejects.toThrow(/permission denied/);
  });

  it('query and report show only the reader\'s tenant, and say the read is not recorded (no writer access)', () => {
    const url = db.urlAs(acme);
    const all = cli(['query', '--postgres', url, '--format', 'json']);
    expect(all.code, all.stderr).toBe(0);
    expect((JSON.parse(all.stdout) as Array<{ request_id: string }>).map((r) => r.request_id)).toEqual(['acme-1', 'acme-2']);
    expect(all.stderr).toMatch(/^note: this read is not recorded in the ledger \(audit\.read\): the role .*_acme has no writer's access/m);
    expect(JSON.parse(cli(['query', '--postgres', url, '--tenant', 'globex', '--format', 'json']).stdout)).toEqual([]);

    const usage = cli(['report', 'usage', '--by', 'tenant', '--from', '2026-01-01', '--to', '2027-01-01', '--postgres', url, '--format', 'json']);
    expect(usage.code, usage.stderr).toBe(0);
    expect(JSON.parse(usage.stdout)).toEqual([expect.objectContaining({ tenant_id: 'acme', calls: 2, cost_usd: 3 })]);
    const summary = cli(['report', 'summary', '--from', '2026-01-01', '--to', '2027-01-01', '--postgres', url]);
    expect(summary.code, summary.stderr).toBe(0);
    expect(summary.stderr).toMatch(/note: ledger not verified: verify needs the whole chain, and the role .* is a tenant reader/);
    expect(summary.stderr).not.toMatch(/FAILED/);
    const strict = cli(['query', '--postgres', url, '--require-audit']);
    expect(strict.code).toBe(3);
    expect(strict.stdout).toBe('');
  });

  it('verify and prove refuse with LEDGER_PARTIAL_VIEW (exit 3), never "tampered"; the other tenant\'s record is not even named', () => {
    const url = db.urlAs(acme);
    const verify = cli(['verify', '--postgres', url]);
    expectNoStack(verify);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/^llm-audit: LEDGER_PARTIAL_VIEW: verify needs the whole chain, and the role .*_acme is a tenant reader: row-level security shows it only the records of "acme".*says nothing about the ledger's integrity/m);
    for (const id of ['globex-1', 'acme-1']) {
      const prove = cli(['prove', id, '--postgres', url]);
      expect(prove.code).toBe(3);
      expect(prove.stderr).toMatch(/^llm-audit: LEDGER_PARTIAL_VIEW: a proof needs the whole chain/m);
      expect(prove.stdout).toBe('');
    }
    for (const [args, what] of [
      [['checkpoint'], 'a proof'],
      [['evidence', '--framework', 'soc2', '--from', '2026-01-01', '--out', join(scratchDir('tenant-evidence-'), 'bundle')], 'an evidence bundle'],
    ] as const) {
      const r = cli([...args, '--postgres', url]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^llm-audit: LEDGER_PARTIAL_VIEW: ${what}`, 'm'));
    }
    // The auditor's view is whole: verify passes and globex's record can be proven.
    expect(cli(['verify', '--postgres', db.url]).code).toBe(0);
    expect(cli(['prove', 'globex-1', '--postgres', db.url]).code).toBe(0);
  });

  it('the writer role still appends; its reads are recorded as audit.read, which the tenant\'s reader then sees for its tenant', async () => {
    const writer = await loginRole(db, 'llm_audit_writer');
    const w = cli(['query', '--tenant', 'acme', '--postgres', db.urlAs(writer), '--format', 'json', '--reason', 'support case', '--actor', 'bob']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toBe('');
    expect(JSON.parse(w.stdout)).toHaveLength(2);
    const seen = JSON.parse(cli(['query', '--action', 'audit.read', '--postgres', db.urlAs(acme), '--format', 'json']).stdout) as Array<{ tenant_id: string; action: string }>;
    expect(seen).toEqual([expect.objectContaining({ tenant_id: 'acme', action: 'audit.read' })]);
    expect(JSON.parse(cli(['query', '--action', 'audit.read', '--postgres', db.urlAs(globex), '--format', 'json']).stdout)).toEqual([]);
    const [line] = await adminQuery<{ line: string }>(db.url, `SELECT line FROM llm_audit.records WHERE line LIKE '%audit.read%'`);
    expect(JSON.parse(line!.line).record.metadata).toMatchObject({ command: 'query', actor: 'bob', reason: 'support case', records: 2, tenant: 'acme' });
    expect(cli(['verify', '--postgres', db.url]).code).toBe(0);
  });

  it('refuses to limit a role that reads everything anyway, and a reader without a tenant grant sees nothing', async () => {
    const auditor = await loginRole(db, 'llm_audit_auditor');
    const r = cli(['grant-reader', '--tenant', 'acme', auditor, '--postgres', db.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a member of llm_audit_writer, llm_audit_auditor or llm_audit_retention: it reads every tenant's records/);
    expect(cli(['grant-reader', '--tenant', 'acme', 'bad-name', '--postgres', db.url]).code).toBe(2);
    expect(cli(['grant-reader', 'x', '--postgres', db.url]).code).toBe(2);
    // A member of the group alone (no tenant_readers row) sees no record.
    const bare = await loginRole(db, 'llm_audit_tenant_reader');
    expect(await adminQuery(db.urlAs(bare), 'SELECT count(*)::int AS n FROM llm_audit.records')).toEqual([{ n: 0 }]);
  });
});

/** OTLP JSON of calls of these tenants (span id, tenant), optionally claiming an action. */
function calls(spans: Array<[spanId: string, tenant: string, action?: string]>): string {
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: spans.map(([spanId, tenant, action]) => ({
              traceId: '7d9efff798038103d269b633813fc60c',
              spanId,
              name: 'chat gpt-4o',
              startTimeUnixNano: '1767225600000000000',
              endTimeUnixNano: '1767225601000000000',
              attributes: [
                { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
                { key: 'llm_audit.tenant.id', value: { stringValue: tenant } },
                { key: 'llm_audit.request_id', value: { stringValue: `req-${spanId}` } },
                ...(action ? [{ key: 'llm_audit.action', value: { stringValue: action } }] : []),
              ],
            })),
          },
        ],
      },
    ],
  });
}

describe('decrypt on PostgreSQL is recorded first, or refused', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('decrypt');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('an auditor (no writer access) is refused with nothing printed; a writer\'s decrypt is in the ledger before the content is shown', async () => {
    const dir = tempDir('pg-decrypt-');
    const master = newKey(dir, 'ck-pg-read');
    const canary = 'CANARY-pg-read-91b3';
    const envelope = cipherFor(dir, master).seal(contentPayload('openai.chat', { messages: [{ role: 'user', content: canary }] }, []), { requestId: 'req-acme', tenantId: 'acme' });
    const writer = await PostgresLedger.open({ url: db.url });
    await writer.append([{ ...makeRecord({ request_id: 'req-acme', tenant_id: 'acme' }), content: envelope }]);
    await writer.close();
    const args = (url: string) => ['decrypt', 'req-acme', '--postgres', url, '--key', master.path, '--keystore', join(dir, 'content-keystore.jsonl'), '--reason', 'case 7'];

    const refused = cli(args(db.urlAs(await loginRole(db, 'llm_audit_auditor'))));
    expectNoStack(refused);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).not.toContain(canary);
    expect(refused.stderr).toMatch(/decrypt shows content only once the read is recorded .*has no writer's access.*nothing was shown/);

    const shown = cli(args(db.urlAs(await loginRole(db, 'llm_audit_writer'))));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(canary);
    const rows = await adminQuery<{ tenant_id: string; line: string }>(db.url, `SELECT tenant_id, line FROM llm_audit.records WHERE seq = 1`);
    expect(rows[0]!.tenant_id).toBe('acme');
    expect(JSON.parse(rows[0]!.line).record).toMatchObject({ action: 'audit.read', metadata: { command: 'decrypt', request_id: 'req-acme', seq: 0, reason: 'case 7' } });
    expect(cli(['verify', '--postgres', db.url]).code).toBe(0);
  }, 60_000);
});

describe('serve --postgres with tokens bound to tenants: a token writes only its tenants\' records', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('tokens');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('the acme token\'s globex span and its forged audit.read are rejected; the acme reader sees the acme record only', async () => {
    const tokens = join(scratchDir('pg-tokens-'), 'tokens.json');
    writeFileSync(tokens, JSON.stringify({ 'acme-app-token-0001': ['acme'] }), { mode: 0o600 });
    const server = await serve(['--postgres', db.url], { LLM_AUDIT_INGEST_TOKENS: tokens });
    try {
      const headers = { 'content-type': 'application/json', authorization: 'Bearer acme-app-token-0001' };
      const r = await post(server.url, calls([['3000000000000001', 'acme'], ['3000000000000002', 'globex'], ['3000000000000003', 'acme', 'audit.read']]), headers);
      expect(r.status).toBe(200);
      expect(r.headers['x-llm-audit-stored']).toBe('1');
      expect(JSON.parse(r.body.toString()).partialSuccess.rejectedSpans).toBe('2');
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(await adminQuery(db.url, 'SELECT span_id, tenant_id FROM llm_audit.records ORDER BY seq')).toEqual([{ span_id: '3000000000000001', tenant_id: 'acme' }]);
    const reader = `${db.name}_acme`;
    expect(cli(['grant-reader', '--tenant', 'acme', reader, '--postgres', db.url]).code).toBe(0);
    await adminQuery(db.url, `ALTER ROLE ${reader} LOGIN PASSWORD 'pw'`);
    const seen = cli(['query', '--postgres', db.urlAs(reader), '--format', 'json']);
    expect((JSON.parse(seen.stdout) as Array<{ request_id: string }>).map((x) => x.request_id)).toEqual(['req-3000000000000001']);
  }, 60_000);
});
