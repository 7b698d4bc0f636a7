import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentPayload } from '../../src/audit/content';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { makeRecord } from '../ledger/helpers';
import { cipherFor, newKey, tempDir } from '../audit/content/helpers';
import { cli } from '../cli/cli-helpers';
import { ensureBuilt } from '../ingest/helpers';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';
import { chatRequest } from '../../src/instrumentations/openai/request';

// `llm-audit shred --postgres URL`: the erasure of a tenant's content is chained in the PostgreSQL
// ledger as a record of action content.shred, next to the calls whose content it erased.

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

describe('llm-audit shred --postgres', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('shred');
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
  });

  it('appends the shred to the chain: query finds it by action and tenant, verify passes, the tenant content is gone', async () => {
    const dir = tempDir('shred-pg-');
    const master = newKey(dir, 'ck-pg');
    const envelope = cipherFor(dir, master).seal(contentPayload(chatRequest, { messages: [{ role: 'user', content: 'hello' }] }, []), {
      requestId: 'req-acme',
      tenantId: 'acme',
    });
    const writer = await PostgresLedger.open({ url: db.url });
    await writer.append([{ ...makeRecord({ request_id: 'req-acme', tenant_id: 'acme' }), content: envelope }]);
    await writer.close();
    expect(cli(['decrypt', '--reason', 'review', 'req-acme', '--postgres', db.url, '--key', master.path]).code).toBe(0);

    const done = cli(['shred', '--tenant', 'acme', '--key', master.path, '--yes', '--reason', 'ticket 12', '--postgres', db.url]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('recorded in shredded.jsonl and the PostgreSQL ledger');

    const found = JSON.parse(cli(['query', '--action', 'content.shred', '--tenant', 'acme', '--postgres', db.url, '--format', 'json']).stdout);
    // seq 1: the audit.read record of the decrypt above.
    expect(found).toEqual([expect.objectContaining({ seq: 2, tenant_id: 'acme', action: 'content.shred', status: 'success' })]);
    const verify = cli(['verify', '--postgres', db.url, '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    // The call, the decrypt's and the query's audit.read records, the shred.
    expect(JSON.parse(verify.stdout).records).toBe(4);
    // LLM_AUDIT_POSTGRES_URL names the ledger as --postgres does (before, shred ignored it).
    const byEnv = cli(['shred', '--tenant', 'globex', '--key', master.path, '--yes'], { LLM_AUDIT_POSTGRES_URL: db.url });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    expect(byEnv.stdout).toContain('recorded in shredded.jsonl and the PostgreSQL ledger');
    expect(JSON.parse(cli(['query', '--action', 'content.shred', '--tenant', 'globex', '--postgres', db.url, '--format', 'json']).stdout)).toHaveLength(1);
    const gone = cli(['decrypt', '--reason', 'review', 'req-acme', '--postgres', db.url, '--key', master.path]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('CONTENT_KEY_SHREDDED');
  });
});
