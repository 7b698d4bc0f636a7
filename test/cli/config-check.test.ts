/**
 * `llm-audit config check` (issue 20): the effective configuration with secrets only as
 * fingerprints, the checks of what it names, exit 0 / 3 (a check failed) / 78 (a value invalid).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt, expectNoStack } from './cli-helpers';

const KEY = 'config-check-hash-key-0123456789';
let listening: Server;
let port: number;

beforeAll(async () => {
  ensureBuilt();
  listening = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  port = (listening.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => listening.close(() => resolve())));

describe('llm-audit config check', () => {
  it('prints the settings with the hash key as a fingerprint only, and passes when everything it names is usable', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'config-check-')), 'ledger');
    const result = cli(['config', 'check'], { LLM_AUDIT_HASH_KEY: KEY, LLM_AUDIT_LEDGER_DIR: dir, LLM_AUDIT_INGEST_TOKEN: 'ingest-token-secret' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(KEY);
    expect(result.stdout).not.toContain('ingest-token-secret');
    expect(result.stdout).toContain(`sha256:${createHash('sha256').update(KEY).digest('hex').slice(0, 8)}`);
    expect(result.stdout).toMatch(new RegExp(`ok +ledger directory ${dir} does not exist yet and can be created`));
    expect(result.stdout).toMatch(/ok +openai \d+\.\d+\.\d+: in the tested range/);
    expect(result.stdout).toMatch(/warn +LLM_AUDIT_SIGNING_KEY is unset/);
    expect(result.stdout).toContain('what would not be audited:');
  });

  it('an OTLP endpoint nobody listens at fails the check: CONFIG_CHECK_FAILED, exit 3; one that listens passes', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const spool = join(mkdtempSync(join(tmpdir(), 'config-check-')), 'spool');
    const env = { LLM_AUDIT_HASH_KEY: KEY, LLM_AUDIT_SPOOL_DIR: spool };

    const down = cli(['config', 'check'], { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closedPort}` });
    expect(down.code).toBe(3);
    expect(down.stdout).toMatch(new RegExp(`fail +nothing accepts connections at the OTLP endpoint http://127.0.0.1:${closedPort}/v1/traces`));
    expect(down.stderr).toMatch(/^llm-audit: CONFIG_CHECK_FAILED: 1 check\(s\) failed: nothing accepts connections/);
    expect(down.stderr).toMatch(/\nfix: /);
    expectNoStack(down);

    const up = cli(['config', 'check', '--json'], { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(up.code).toBe(0);
    const report = JSON.parse(up.stdout) as { ok: boolean; exporter: string; checks: Array<{ verdict: string; what: string }> };
    expect(report.ok).toBe(true);
    expect(report.exporter).toBe('otlp');
    expect(report.checks).toContainEqual({ verdict: 'ok', what: `the OTLP endpoint 127.0.0.1:${port} accepts connections (grpc)` });
  });

  it('OTLP records with OTEL_TRACES_EXPORTER=none would go nowhere: a failed check', () => {
    const result = cli(['config', 'check'], { LLM_AUDIT_EXPORTER: 'otlp', OTEL_TRACES_EXPORTER: 'none' });
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/fail +OTEL_TRACES_EXPORTER=none: the audit records go nowhere, not over OTLP/);
  });

  it('a key file that does not load fails the check', () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'config-check-')), 'signing.pem');
    writeFileSync(bad, 'not a key');
    const result = cli(['config', 'check', '--ledger', join(tmpdir(), 'config-check-unused')], { LLM_AUDIT_SIGNING_KEY: bad });
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/fail +LLM_AUDIT_SIGNING_KEY: /);
    expect(result.stderr).toMatch(/^llm-audit: CONFIG_CHECK_FAILED: /);
  });

  it('invalid values: CONFIG_INVALID listing each one, exit 78, before any check runs', () => {
    const result = cli(['config', 'check'], { LLM_AUDIT_FSYNC: 'sometimes', LLM_AUDIT_SPOOL_MAX_BYTES: 'lots' });
    expect(result.code).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'llm-audit: CONFIG_INVALID: 2 problems in the configuration:\n' +
        '  - LLM_AUDIT_FSYNC must be one of always, batch, none, got "sometimes"\n' +
        '  - LLM_AUDIT_SPOOL_MAX_BYTES=lots is not a positive size in bytes (e.g. 536870912, 512MiB, 2GiB)\n' +
        'fix: correct the variables named above (README "Configuration" lists each with its accepted values); `llm-audit config check` checks a configuration without starting an app\n',
    );
  });

  it('an unknown subcommand is a usage error', () => {
    const result = cli(['config', 'show']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^llm-audit: LEDGER_USAGE: unknown config command "show"/);
  });
});
