/**
 * Issue 4's end-to-end check: the collector's `otlp_http` exporter pointed at
 * `llm-audit serve --postgres URL` lands every audit span in PostgreSQL exactly once;
 * `llm-audit verify --postgres` passes, then fails, naming the row, after a superuser with the
 * triggers off changed one.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { expectedText, startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { ensureDir, runToCompletion, stopAll, waitFor } from '../support/processes';
import { baseEnv, cliPath, ensureBinaries, startStack, BUILD_TIMEOUT_MS, type Collector } from './support/stack';

const TOKEN = 'e2e-postgres-ingest-token';
let fake: FakeProvider | undefined;
let db: TestDatabase | undefined;
let collector: Collector;
let setupError: unknown;

beforeAll(async () => {
  try {
    await ensureBinaries();
    const runDir = ensureDir(join(repoRoot, '.cache', 'e2e', `pipeline-pg-${process.pid}-${Date.now()}`));
    db = await createTestDatabase('e2e_pipeline');
    fake = await startFakeProvider();
    ({ collector } = await startStack({ runDir, token: TOKEN, postgresUrl: db.url }));
  } catch (error) {
    setupError = error;
  }
}, BUILD_TIMEOUT_MS * 2 + 120_000);

afterAll(async () => {
  await stopAll(10_000);
  await fake?.close();
  await db?.drop();
}, 60_000);

const verify = () => spawnSync(process.execPath, [cliPath, 'verify', '--postgres', db!.url], { encoding: 'utf8' });

async function rows(sql: string, params: unknown[] = []): Promise<any[]> {
  const client = new pg.Client({ connectionString: db!.url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

it('lands every call of the demo app in PostgreSQL exactly once; verify passes, then catches a tampered row', async () => {
  if (setupError) throw setupError;
  const app = await runToCompletion('chat-app-pg', process.execPath, {
    args: ['--require', 'otel-llm-audit/register', join(repoRoot, 'examples', 'chat-app.cjs')],
    env: baseEnv({
      FAKE_PROVIDER_URL: fake!.url,
      OTEL_SERVICE_NAME: 'e2e-postgres-app',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpUrl,
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
    }),
    timeoutMs: 60_000,
  });
  expect(app.output.trim()).toBe(JSON.stringify([expectedText(), expectedText(), expectedText(), expectedText()]));

  await waitFor('4 records in PostgreSQL', async () => {
    const found = await rows(`SELECT seq, line FROM llm_audit.records ORDER BY seq`);
    return found.length >= 4 ? found : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // anything retried would show up now
  // The calls: the app's process also wrote its audit.start record.
  const records = (await rows(`SELECT line FROM llm_audit.records ORDER BY seq`)).map((r) => JSON.parse(r.line).record).filter((r) => r.action !== 'audit.start');
  expect(records).toHaveLength(4);
  expect(new Set(records.map((r) => r.request_id)).size).toBe(4);
  expect(records.map((r) => r.action).sort()).toEqual(['chat.completions.create', 'chat.completions.create', 'messages.create', 'messages.stream']);

  const ok = verify();
  expect(ok.stderr).not.toMatch(/LEDGER_[A-Z_]+:/);
  expect(ok.status).toBe(0);

  // A superuser with the triggers off edits the output token count of one row.
  const [victim] = await rows(`SELECT seq, line FROM llm_audit.records ORDER BY seq LIMIT 1 OFFSET 2`);
  const altered = String(victim.line).replace(/"output_tokens":(\d+)/, (_, n) => `"output_tokens":${Number(n) + 1}`);
  expect(altered).not.toBe(victim.line);
  const client = new pg.Client({ connectionString: db!.url });
  await client.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    await client.query(`UPDATE llm_audit.records SET line = $1 WHERE seq = $2`, [altered, victim.seq]);
  } finally {
    await client.end();
  }
  const caught = verify();
  expect(caught.status).toBe(1);
  expect(caught.stderr).toMatch(new RegExp(`\\(seq ${victim.seq}\\)`));
}, 120_000);
