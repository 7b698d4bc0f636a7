/**
 * Issue 23 end to end, with a real app under `--require otel-llm-audit/register` against the fake
 * provider: the record names the application and environment (OTEL_SERVICE_NAME /
 * OTEL_RESOURCE_ATTRIBUTES) and the end user's client, the app's audit events and the process's
 * `audit.start` are records like the calls; the in-process file ledger and `serve --postgres`
 * (OTLP from the same app) give the same rows to query --service/--env/--action and report events.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, serve, type Served } from '../ingest/helpers';
import { runNodeApp } from '../support/child-app';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { createTestDatabase, postgresUrl, type TestDatabase } from '../support/postgres';

const app = join(repoRoot, 'test', 'fixtures', 'audit-events-app.cjs');
const OPENAI_VERSION = (JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'openai', 'package.json'), 'utf8')) as { version: string }).version;

let fake: FakeProvider;
let db: TestDatabase;
let server: Served;
beforeAll(async () => {
  ensureBuilt();
  postgresUrl();
  fake = await startFakeProvider();
  db = await createTestDatabase('records3');
  server = await serve(['--postgres', db.url]);
}, 600_000);
afterAll(async () => {
  await server?.stop();
  await fake?.close();
  await db?.drop();
});

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const json = (args: string[]): Array<Record<string, unknown>> => {
  const r = cli([...args, '--format', 'json']);
  expect(r.stderr.replace(/^(warning|note): .*\n/gm, '')).toBe('');
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
};

function runApp(env: Record<string, string>) {
  return runNodeApp(['--require', 'otel-llm-audit/register', app], {
    FAKE_PROVIDER_URL: fake.url,
    OTEL_SERVICE_NAME: 'shop-api',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging,service.version=2.1.0,service.namespace=shop,service.instance.id=pod-3',
    LLM_AUDIT_HASH_KEY: 'records-v3-test-hash-key-0123',
    LLM_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'records3-spool-')),
    ...env,
  });
}

/** The fields that do not depend on the run (ids, times, hashes, latency and the run's pid differ). */
const stable = (row: Record<string, unknown>) => {
  const { seq, timestamp, request_id, trace_id, span_id, latency_ms, input_hash, output_hash, system_prompt_hash, ...rest } = row;
  // audit.start describes its own process (pid, exporter, settings): the two runs differ there by design.
  if (rest.action === 'audit.start') delete rest.event_details;
  return rest;
};

describe('the application, the environment, the client and the audit events in both backends', () => {
  const ledgerDir = join(mkdtempSync(join(tmpdir(), 'records3-')), 'ledger');
  const sources: Record<'file' | 'postgres', string[]> = { file: ['--ledger', ledgerDir], postgres: ['--postgres', db?.url ?? ''] };

  beforeAll(async () => {
    sources.postgres = ['--postgres', db.url];
    const toFile = await runApp({ LLM_AUDIT_LEDGER_DIR: ledgerDir });
    expect(toFile.code).toBe(0);
    const toServe = await runApp({ LLM_AUDIT_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: server.base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
    expect(toServe.code).toBe(0);
    for (const run of [toFile, toServe]) {
      // The unknown event type is refused loudly; the app goes on and its call is answered.
      expect(run.stderr).toMatch(/recordAuditEvent: unknown event type "login": use one of auth\.login, .* the event is NOT recorded/);
      expect(JSON.parse(run.stdout.trim())).toEqual(expect.any(String));
    }
  }, 120_000);

  it.each(['file', 'postgres'] as const)('%s: every record names the application and environment; the call and the events carry the client', (backend) => {
    const rows = json(['query', ...sources[backend]]);
    expect(rows.map((r) => r.action).sort()).toEqual(['app.report_exported', 'audit.start', 'auth.failed', 'auth.login', 'chat.completions.create']);
    for (const row of rows) {
      expect(row).toMatchObject({ service_name: 'shop-api', service_namespace: 'shop', service_version: '2.1.0', service_instance_id: 'pod-3', deployment_environment: 'staging' });
    }
    const byAction = Object.fromEntries(rows.map((r) => [r.action, r]));
    expect(byAction['chat.completions.create']).toMatchObject({ user_id: 'user-42', tenant_id: 'acme', client_address: '203.0.113.0', user_agent: 'Mozilla/5.0 AppTest', model_requested: 'gpt-4o-mini' });
    expect(byAction['auth.login']).toMatchObject({ user_id: 'user-42', status: 'success', event_outcome: 'success', event_target: 'account:user-42', client_address: '203.0.113.0' });
    expect(byAction['auth.failed']).toMatchObject({ user_id: 'mallory', status: 'error', event_outcome: 'failure' });
  });

  it.each(['file', 'postgres'] as const)('%s: query --action glob, --service, --env; report events; call reports leave the events out', (backend) => {
    const source = sources[backend];
    expect(json(['query', ...source, '--action', 'auth.*']).map((r) => r.action).sort()).toEqual(['auth.failed', 'auth.login']);
    expect(json(['query', ...source, '--service', 'shop-api', '--env', 'staging'])).toHaveLength(5);
    expect(json(['query', ...source, '--service', 'other-app'])).toEqual([]);
    expect(json(['query', ...source, '--env', 'production'])).toEqual([]);
    const events = json(['report', 'events', ...source]);
    expect(events.map(({ day, ...rest }) => rest)).toEqual([
      { type: 'app.report_exported', outcome: 'success', user_id: 'user-42', events: 1 },
      { type: 'audit.start', outcome: 'success', user_id: null, events: 1 },
      { type: 'auth.failed', outcome: 'failure', user_id: 'mallory', events: 1 },
      { type: 'auth.login', outcome: 'success', user_id: 'user-42', events: 1 },
    ]);
    expect(json(['report', 'cost-by-user', ...source]).map((r) => r.requests)).toEqual([1]);
    expect(json(['report', 'cost-by-user', ...source, '--env', 'production'])).toEqual([]);
    expect(json(['report', 'usage', '--by', 'service', ...source, '--from', '2000-01-01'])).toMatchObject([{ service_name: 'shop-api', calls: 1 }]);
    expect(json(['report', 'usage', '--by', 'env', ...source, '--from', '2000-01-01', '--service', 'shop-api'])).toMatchObject([{ deployment_environment: 'staging', calls: 1 }]);
    expect(cli(['verify', ...source]).code).toBe(0);
  });

  it('the same rows from the file ledger and from serve --postgres', () => {
    const rows = (backend: 'file' | 'postgres') => json(['query', ...sources[backend]]).map(stable).sort((a, b) => String(a.action).localeCompare(String(b.action)));
    expect(rows('postgres')).toEqual(rows('file'));
  });

  it('audit.start: the configuration fingerprint, the setting names and the patched SDK version; no secret, prompt or PII in any ledger byte', () => {
    const lines = readdirSync(join(ledgerDir, 'segments')).flatMap((name) => readFileSync(join(ledgerDir, 'segments', name), 'utf8').split('\n').filter(Boolean));
    const records = lines.map((line) => JSON.parse(line).record);
    const start = records.find((r) => r.action === 'audit.start');
    expect(start.event.details).toMatchObject({
      'config.fingerprint': expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      'config.settings': 'LLM_AUDIT_HASH_KEY,LLM_AUDIT_LEDGER_DIR,LLM_AUDIT_SPOOL_DIR,OTEL_RESOURCE_ATTRIBUTES,OTEL_SERVICE_NAME',
      'config.client_address': 'truncated',
      'config.exporter': 'ledger',
      'sdk.openai': OPENAI_VERSION,
    });
    const login = records.find((r) => r.action === 'auth.login');
    expect(login.event).toMatchObject({ reason: 'password accepted for [EMAIL]', details: { method: 'password', password: '[REDACTED]' } });
    const bytes = lines.join('\n');
    for (const secret of ['records-v3-test-hash-key', 'hunter2', 'jane.roe', 'CANARY-events-app', 'sk-app-secret-key', '203.0.113.77']) expect(bytes).not.toContain(secret);
  });

  it('a wrong LLM_AUDIT_CLIENT_ADDRESS stops register with one clear line', async () => {
    const run = await runApp({ LLM_AUDIT_CLIENT_ADDRESS: 'anonymised', LLM_AUDIT_LEDGER_DIR: join(mkdtempSync(join(tmpdir(), 'records3-bad-')), 'ledger') });
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/^otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_CLIENT_ADDRESS must be one of full, truncated, hashed, off; got "anonymised"\n/);
  });
});
