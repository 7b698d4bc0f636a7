/**
 * A database written at schema version 2 (before the transaction stamps of migration 3 and the
 * http_status column of migration 4) upgraded by `migrate`: its rows (v1 records, no stamps) keep
 * verifying, with --public-key and --strict, and a signing writer appends v2 records after them.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { CHECKPOINT_VERSION, ZERO_HASH, finishCheckpoint, generateSigningKeyPair } from '../../src/ledger/checkpoint';
import { CompactRange, leafHash } from '../../src/ledger/merkle';
import { MIGRATIONS, checksum, migrate } from '../../src/ledger/postgres/migrations';
import { derivedColumns } from '../../src/ledger/postgres/rows';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { verifyLedger } from '../../src/ledger/verify';
import { makeRecord } from '../ledger/helpers';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const { privatePem, publicPem } = generateSigningKeyPair();
const signingKey = createPrivateKey(privatePem);
const publicKey = createPublicKey(publicPem);
let db: TestDatabase | undefined;

afterAll(async () => {
  await db?.drop();
});

/** Schema version 2 and three v1 records with a signed checkpoint, inserted as the writer of that version did. */
async function versionTwoLedger(client: Client): Promise<void> {
  await client.query(`CREATE SCHEMA llm_audit`);
  await client.query(`CREATE TABLE llm_audit.schema_migrations (version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(), applied_by text NOT NULL DEFAULT session_user)`);
  for (const m of MIGRATIONS.slice(0, 2)) {
    await client.query(m.sql);
    await client.query(`INSERT INTO llm_audit.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [m.version, m.name, checksum(m.sql)]);
  }
  const ledgerId = (await client.query<{ id: string }>(`SELECT ledger_id::text AS id FROM llm_audit.ledger_meta`)).rows[0]!.id;
  const at = new Date('2025-06-01T12:00:00.000Z');
  await client.query(`SELECT llm_audit.ensure_partition('2025-06-01'::date)`);
  const range = CompactRange.empty();
  let prev = ZERO_HASH;
  let last = Buffer.alloc(32);
  for (let seq = 0; seq < 3; seq++) {
    const record = makeRecord({ span_id: randomBytes(8).toString('hex'), timestamp: at.toISOString() });
    expect(record.v).toBe(1);
    const line = canonicalJson({ seq, prev, record });
    const leaf = leafHash(line);
    const c = derivedColumns(record);
    await client.query(`INSERT INTO llm_audit.chain (seq, trace_id, span_id, prev_hash, leaf_hash, appended_at) VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6)`, [
      seq, c.trace_id, c.span_id, prev, leaf, at,
    ]);
    await client.query(
      `INSERT INTO llm_audit.records (seq, appended_at, line, prev_hash, leaf_hash, ts, trace_id, span_id, request_id, user_id, session_id, tenant_id,
         provider, operation, model_request, model_response, status, input_tokens, output_tokens, cost_usd, latency_ms, error_type, has_content, has_errors)
       VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
      [seq, at, line, prev, leaf, c.ts, c.trace_id, c.span_id, c.request_id, c.user_id, c.session_id, c.tenant_id, c.provider, c.operation, c.model_request,
        c.model_response, c.status, c.input_tokens, c.output_tokens, c.cost_usd, c.latency_ms, c.error_type, c.has_content, c.has_errors],
    );
    range.append(leaf);
    prev = leaf.toString('hex');
    last = leaf;
  }
  const checkpoint = finishCheckpoint(
    { v: CHECKPOINT_VERSION, type: 'checkpoint', ledger_id: ledgerId, tree_size: 3, root: range.root().toString('hex'), last_leaf: last.toString('hex'),
      frontier: range.frontier.map((h) => h.toString('hex')), position: null, timestamp: at.toISOString() },
    signingKey,
  );
  await client.query(`INSERT INTO llm_audit.checkpoints (line, type, tree_size) VALUES ($1, 'checkpoint', 3)`, [canonicalJson(checkpoint)]);
}

describe('PostgreSQL schema upgrade 2 -> latest', () => {
  it('old rows keep verifying (strict, signed), and a signing writer appends v2 records after them', async () => {
    db = await createTestDatabase('upgrade', { migrated: false });
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await versionTwoLedger(client);
      expect(await migrate(client)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    } finally {
      await client.end();
    }
    const source = () => new PostgresLedgerSource(db!.url);
    expect(await verifyLedger(source(), { publicKey, strict: true })).toMatchObject({ records: 3, recovered: [] });

    const writer = await PostgresLedger.open({ url: db.url, signingKey });
    await writer.append([{ ...makeRecord({ span_id: randomBytes(8).toString('hex') }), v: 2, http_status: 429, error_type: 'rate_limit_exceeded' }]);
    await writer.close();
    const result = await verifyLedger(source(), { publicKey, strict: true });
    expect(result).toMatchObject({ records: 4, recovered: [] });
    const rows = await new Client({ connectionString: db.url });
    await rows.connect();
    try {
      const r = await rows.query(`SELECT seq::int AS seq, http_status FROM llm_audit.records ORDER BY seq`);
      expect(r.rows).toEqual([0, 1, 2].map((seq) => ({ seq, http_status: null })).concat([{ seq: 3, http_status: 429 }]));
    } finally {
      await rows.end();
    }
  });
});
