/**
 * `llm-audit config check`: what `register` would run with, and whether it can. Reads the
 * configuration as register does (src/config: a bad value is CONFIG_INVALID, exit 78, every problem
 * listed), prints the effective settings (secrets only as fingerprints), then checks what they
 * name: the ledger directory or database, the keys, the OTLP endpoint, the installed LLM SDKs
 * against the tested ranges, and says what would not be audited. A failed check exits 3
 * (CONFIG_CHECK_FAILED) after everything was printed; warnings do not fail.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { CONFIG_VARIABLES, readConfig, type AuditConfig } from '../config';
import { missingShape } from '../core/provider';
import { AuditError } from '../errors';
import { LedgerError } from '../ledger/errors';
import { otlpEndpointFromEnv } from '../export/endpoint-probe';
import { PROVIDER_PATCHES } from '../instrumentation';
import { loadPrivateKey, loadPublicKey } from '../ledger/checkpoint';
import { redactUrl } from '../ledger/postgres/connection';
import { flag, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, postgresUrl } from './source';

export const CONFIG_CHECK_USAGE = 'llm-audit config check [--ledger DIR | --postgres URL] [--json]   (reads the LLM_AUDIT_* and OTEL_* variables as register does)';

type Verdict = 'ok' | 'warn' | 'fail';
interface Check {
  verdict: Verdict;
  what: string;
}

/** How long the OTLP endpoint may take to accept a connection. */
const PROBE_TIMEOUT_MS = 2_000;

/** A secret named without revealing it: the first 8 hex digits of its SHA-256 (for the hash key, its default key id). */
export function fingerprint(value: string | Buffer): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
}

export async function configCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'check') throw new LedgerError('LEDGER_USAGE', `unknown config command ${JSON.stringify(sub ?? '')}\nusage: ${CONFIG_CHECK_USAGE}`);
  const p = parse(rest, { ledger: { type: 'string' }, ...POSTGRES_OPTION, json: { type: 'boolean' } }, CONFIG_CHECK_USAGE);
  const url = postgresUrl(p) ?? (io.env.LLM_AUDIT_POSTGRES_URL?.trim() || undefined);
  const env = { ...io.env, ...(str(p, 'ledger') !== undefined ? { LLM_AUDIT_LEDGER_DIR: str(p, 'ledger') } : {}) };
  const config = readConfig(env);

  const settings = CONFIG_VARIABLES.map((variable) => ({ name: variable.name, value: shown(variable.name, env, config), default: variable.default }));
  const checks: Check[] = [];
  const notAudited: string[] = [];
  await checkTrail(config, env, url, checks, notAudited);
  checkKeys(config, env, checks);
  checkSdks(io.cwd, checks, notAudited);
  notAudited.push('LLM calls of a client bundled into the application code, or of an SDK not listed above, are not patched: the unaudited-request watcher warns about requests to known LLM hosts and records them as `unaudited` (docs/deployment-watcher.md)');

  const failed = checks.filter((c) => c.verdict === 'fail');
  if (flag(p, 'json')) {
    await io.out(JSON.stringify({ settings, exporter: config.exporter, checks, notAudited, ok: failed.length === 0 }, null, 2) + '\n');
  } else {
    const width = Math.max(...settings.map((s) => s.name.length));
    const lines = ['configuration (set values; secrets as fingerprints):'];
    for (const s of settings) lines.push(`  ${s.name.padEnd(width)}  ${s.value ?? `(default: ${s.default})`}`);
    lines.push('', `audit records go to: ${describeTrail(config, url)}`, '', 'checks:');
    for (const c of checks) lines.push(`  ${c.verdict.padEnd(4)}  ${c.what}`);
    lines.push('', 'what would not be audited:', ...notAudited.map((line) => `  - ${line}`));
    await io.out(lines.join('\n') + '\n');
  }
  if (failed.length > 0) {
    throw new AuditError('CONFIG_CHECK_FAILED', `${failed.length} check(s) failed: ${failed.map((c) => c.what).join('; ')}`, {
      fix: 'see the checks above; each names what it could not use',
    });
  }
  return 0;
}

/** A variable's value as printed: unset → undefined; a secret → its fingerprint; a database URL without its password. */
function shown(name: string, env: NodeJS.ProcessEnv, config: AuditConfig): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (name === 'LLM_AUDIT_HASH_KEY') return `set, ${fingerprint(config.instrumentation.hashKey!)} (the default key id is its hex digits)`;
  if (name === 'LLM_AUDIT_POSTGRES_URL') return redactUrl(raw);
  if (CONFIG_VARIABLES.find((v) => v.name === name)?.secret) return `set, ${fingerprint(raw)}`;
  return raw;
}

function describeTrail(config: AuditConfig, url: string | undefined): string {
  const ledger = `the ledger in ${resolve(config.ledger.dir)} (fsync ${config.ledger.fsync ?? 'always'})`;
  const otlp = `OTLP (${config.otel.traceExporters.join(', ') || 'no exporter'}, ${config.otel.tracesProtocol}${config.spool.enabled ? `, spool ${config.spool.dir}` : ', no spool'})`;
  const trail = { ledger, otlp, both: `${ledger} and ${otlp}`, console: 'standard output only (LLM_AUDIT_EXPORTER=console)' }[config.exporter];
  return url !== undefined ? `${trail}; the CLI reads the PostgreSQL ledger ${redactUrl(url)}` : trail;
}

async function checkTrail(config: AuditConfig, env: NodeJS.ProcessEnv, url: string | undefined, checks: Check[], notAudited: string[]): Promise<void> {
  if (config.exporter === 'console') notAudited.push('every call: LLM_AUDIT_EXPORTER=console prints the records and keeps none');
  if (config.exporter === 'ledger' || config.exporter === 'both') checks.push(ledgerDirCheck(config.ledger.dir));
  if (config.exporter === 'otlp' || config.exporter === 'both') {
    const { traceExporters, tracesProtocol } = config.otel;
    if (!traceExporters.includes('otlp')) {
      const where = traceExporters.length === 0 ? 'nowhere' : `only to ${traceExporters.join(', ')}`;
      checks.push({ verdict: 'fail', what: `OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER ?? ''}: the audit records go ${where}, not over OTLP` });
    } else {
      const endpoint = otlpEndpointFromEnv('TRACES', tracesProtocol, PROBE_TIMEOUT_MS);
      if (endpoint === undefined) checks.push({ verdict: 'warn', what: 'the OTLP endpoint cannot be told from OTEL_EXPORTER_OTLP_*; not probed' });
      else if (await endpoint.reachable()) checks.push({ verdict: 'ok', what: `the OTLP endpoint ${endpoint.url} accepts connections (${tracesProtocol})` });
      else checks.push({ verdict: 'fail', what: `nothing accepts connections at the OTLP endpoint ${endpoint.url} (${tracesProtocol})${config.spool.enabled ? '; the spool would keep the records until it does' : ''}` });
      if (!config.spool.enabled) notAudited.push('with LLM_AUDIT_SPOOL=off, the records of calls made while the OTLP endpoint is down are dropped');
      else checks.push(spoolDirCheck(config.spool.dir));
    }
  }
  if (url !== undefined) checks.push(await postgresCheck(url));
  if (config.onFailure === 'continue') notAudited.push('while the trail cannot be written, calls go on without their records (reported on stderr and as a ledger.gap record); LLM_AUDIT_ON_FAILURE=block refuses them instead');
}

/** A directory the process must be able to create or write. */
function writableDir(dir: string, what: string): Check {
  const path = resolve(dir);
  try {
    if (existsSync(path)) {
      if (!statSync(path).isDirectory()) return { verdict: 'fail', what: `${what} ${path} exists and is not a directory` };
      accessSync(path, constants.W_OK | constants.R_OK);
      return { verdict: 'ok', what: `${what} ${path} is writable` };
    }
    let parent = dirname(path);
    while (!existsSync(parent)) parent = dirname(parent);
    accessSync(parent, constants.W_OK);
    return { verdict: 'ok', what: `${what} ${path} does not exist yet and can be created` };
  } catch (error) {
    return { verdict: 'fail', what: `${what} ${path} is not writable: ${(error as Error).message.split('\n')[0]}` };
  }
}

const ledgerDirCheck = (dir: string): Check => writableDir(dir, 'ledger directory');
const spoolDirCheck = (dir: string): Check => writableDir(dir, 'spool directory');

async function postgresCheck(url: string): Promise<Check> {
  // Loaded only when asked for: the file-ledger commands never load the database driver.
  const { Client } = require('pg') as typeof import('pg');
  const { appliedMigrations, checkApplied, LATEST_VERSION } = require('../ledger/postgres/migrations') as typeof import('../ledger/postgres/migrations');
  const client = new Client({ connectionString: url, application_name: 'llm-audit config check', connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const applied = await appliedMigrations(client);
    if (applied.length === 0) return { verdict: 'fail', what: `PostgreSQL ${redactUrl(url)}: no ledger schema (run llm-audit migrate)` };
    checkApplied(applied);
    const version = Math.max(...applied.map((row) => row.version));
    if (version < LATEST_VERSION) return { verdict: 'fail', what: `PostgreSQL ${redactUrl(url)}: schema version ${version}, this llm-audit needs ${LATEST_VERSION} (run llm-audit migrate)` };
    return { verdict: 'ok', what: `PostgreSQL ${redactUrl(url)}: reachable, schema version ${version}` };
  } catch (error) {
    return { verdict: 'fail', what: `PostgreSQL ${redactUrl(url)}: ${(error as Error).message.split('\n')[0]}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function checkKeys(config: AuditConfig, env: NodeJS.ProcessEnv, checks: Check[]): void {
  if (config.instrumentation.hashKey === undefined) {
    checks.push({ verdict: 'warn', what: 'LLM_AUDIT_HASH_KEY is unset: content hashes are plain SHA-256, which can be reversed by guessing short prompts' });
  } else {
    checks.push({ verdict: 'ok', what: `hash key ${fingerprint(config.instrumentation.hashKey)} (${config.instrumentation.hashKey.length} bytes)` });
  }
  const keyFile = (name: string, load: (path: string) => unknown, what: string): void => {
    const path = env[name]?.trim();
    if (!path) return;
    try {
      load(path);
      checks.push({ verdict: 'ok', what: `${name}: ${what} ${path} loads` });
    } catch (error) {
      checks.push({ verdict: 'fail', what: `${name}: ${(error as Error).message.split('\n')[0]}` });
    }
  };
  if (env.LLM_AUDIT_SIGNING_KEY?.trim()) keyFile('LLM_AUDIT_SIGNING_KEY', loadPrivateKey, 'signing key');
  else if (config.exporter === 'ledger' || config.exporter === 'both') checks.push({ verdict: 'warn', what: 'LLM_AUDIT_SIGNING_KEY is unset: checkpoints are unsigned, and anyone who can write the ledger can rewrite it unnoticed' });
  keyFile('LLM_AUDIT_PUBLIC_KEY', loadPublicKey, 'public key');
  if (config.instrumentation.content !== null) checks.push({ verdict: 'ok', what: 'content capture: the master key(s) load and the keystore directory is writable' });
}

/** The installed version of `name` as resolved from `cwd` (the application's directory), or undefined. */
function installedVersion(name: string, cwd: string): { version: string; dir: string } | undefined {
  const from = createRequire(join(resolve(cwd), 'noop.js'));
  let entry: string;
  try {
    entry = from.resolve(name);
  } catch {
    return undefined;
  }
  // package.json is not always among a package's exports: walk up from its entry file.
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === name) return { version: pkg.version ?? 'unknown', dir };
  }
  return undefined;
}

function checkSdks(cwd: string, checks: Check[], notAudited: string[]): void {
  for (const patch of PROVIDER_PATCHES) {
    const installed = installedVersion(patch.moduleName, cwd);
    if (installed === undefined) continue;
    const match = /^(\d+)\.(\d+)/.exec(installed.version);
    if (match !== null && patch.tested(Number(match[1]), Number(match[2]))) {
      checks.push({ verdict: 'ok', what: `${patch.moduleName} ${installed.version}: in the tested range ${patch.testedRange}` });
      continue;
    }
    // Outside the tested range: audited when it has what the patch wraps, as at run time (core/provider.ts).
    let missing: string[];
    try {
      missing = missingShape(patch, createRequire(join(resolve(cwd), 'noop.js'))(patch.moduleName));
    } catch (error) {
      missing = [`(cannot be loaded: ${(error as Error).message.split('\n')[0]})`];
    }
    if (missing.length === 0) {
      checks.push({ verdict: 'warn', what: `${patch.moduleName} ${installed.version}: outside the tested range ${patch.testedRange}; it has everything the audit wraps, so its calls are audited` });
    } else {
      checks.push({ verdict: 'fail', what: `${patch.moduleName} ${installed.version}: lacks ${missing.join(', ')}; tested: ${patch.testedRange}` });
      notAudited.push(`the calls of ${patch.moduleName} ${installed.version}`);
    }
  }
}
