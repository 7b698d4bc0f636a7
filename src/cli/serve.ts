/**
 * `llm-audit serve`: the OTLP/HTTP receiver that lands audit spans in the ledger (file or
 * PostgreSQL), and `llm-audit migrate`: creates or upgrades the PostgreSQL schema. docs/server.md.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DEFAULTS, startIngestServer } from '../ingest/server';
import { parseIngestTokens } from '../ingest/tokens';
import { LedgerError, fsError, isLedgerError } from '../ledger/errors';
import { pgError, redactUrl } from '../ledger/postgres/connection';
import { LATEST_VERSION, migrate } from '../ledger/postgres/migrations';
import { ledgerConfigFromEnv, openLedgerWriter, type LedgerConfig, type LedgerWriter } from '../ledger/writer';
import { flag, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, postgresUrl } from './source';

export const SERVE_USAGE =
  'llm-audit serve [--host 127.0.0.1] [--port 4319] [--ledger DIR | --postgres URL] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] ' +
  '[--max-body-bytes N] [--max-inflight N] [--max-queued-bytes N] [--max-record-bytes N] [--retry-after S] [--shutdown-timeout S] ' +
  '[--fsync always|batch|none] [--signing-key FILE] [--checkpoint-every N] [--migrate] [--db-wait S]   ' +
  '(env: LLM_AUDIT_INGEST_TOKEN, LLM_AUDIT_INGEST_TOKENS, LLM_AUDIT_POSTGRES_URL, LLM_AUDIT_LEDGER_DIR, LLM_AUDIT_FSYNC, LLM_AUDIT_SIGNING_KEY, LLM_AUDIT_CHECKPOINT_EVERY)';

export const MIGRATE_USAGE = 'llm-audit migrate --postgres URL   (or LLM_AUDIT_POSTGRES_URL; run as the role that owns the schema)';

/** How long serve waits for PostgreSQL to accept connections at start-up (--db-wait), seconds. */
export const DEFAULT_DB_WAIT_S = 60;

function positiveInt(p: Parsed, name: string, fallback: number, min = 1): number {
  const text = str(p, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new LedgerError('LEDGER_USAGE', `--${name} must be ${min === 0 ? 'a whole number of 0 or more' : 'a positive integer'}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * Runs `open` until PostgreSQL answers, for up to `waitMs`: started beside its database (docker
 * compose, systemd), the server may come up first, and exiting at once would need a supervisor to
 * get the order right. Only "cannot reach" (LEDGER_IO) is retried; a refused login, a missing
 * database or schema fail at once, since waiting does not fix them.
 */
async function whenReachable<T>(url: string, waitMs: number, io: CliIo, open: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 5_000)) {
    try {
      return await open();
    } catch (error) {
      if (!isLedgerError(error) || error.code !== 'LEDGER_IO' || Date.now() + delayMs > deadline) throw error;
      io.err(`llm-audit serve: PostgreSQL at ${redactUrl(url)} is not reachable yet; retrying in ${delayMs / 1000}s (--db-wait ${waitMs / 1000}s): ${error.message.split('\n')[0]}`);
      await sleep(delayMs);
    }
  }
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw fsError(error, `cannot read the ${what}`, path);
  }
}

export async function serveCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      ledger: { type: 'string' },
      ...POSTGRES_OPTION,
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'max-inflight': { type: 'string' },
      'max-queued-bytes': { type: 'string' },
      'max-record-bytes': { type: 'string' },
      'retry-after': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      fsync: { type: 'string' },
      'signing-key': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      migrate: { type: 'boolean' },
      'db-wait': { type: 'string' },
    },
    SERVE_USAGE,
  );
  const portText = str(p, 'port');
  const port = portText === undefined ? DEFAULTS.port : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LedgerError('LEDGER_USAGE', `--port must be 0..65535, got ${JSON.stringify(portText)}`);
  const certPath = str(p, 'tls-cert');
  const keyPath = str(p, 'tls-key');
  if ((certPath === undefined) !== (keyPath === undefined)) throw new LedgerError('LEDGER_USAGE', 'TLS needs both --tls-cert and --tls-key');
  const clientCaPath = str(p, 'tls-client-ca');
  if (clientCaPath !== undefined && certPath === undefined) throw new LedgerError('LEDGER_USAGE', '--tls-client-ca needs --tls-cert and --tls-key (client certificates are checked in the TLS handshake)');
  const tls =
    certPath && keyPath
      ? {
          cert: readFile(certPath, 'TLS certificate'),
          key: readFile(keyPath, 'TLS key'),
          ...(clientCaPath !== undefined ? { clientCa: readFile(clientCaPath, 'TLS client CA') } : {}),
        }
      : undefined;
  const token = io.env.LLM_AUDIT_INGEST_TOKEN?.trim() || undefined;
  const tokensPath = io.env.LLM_AUDIT_INGEST_TOKENS?.trim() || undefined;
  const tenantTokens = tokensPath ? parseIngestTokens(readFile(tokensPath, 'ingest tokens file').toString('utf8'), tokensPath) : undefined;
  const shutdownMs = positiveInt(p, 'shutdown-timeout', DEFAULTS.shutdownTimeoutMs / 1000) * 1000;

  // The flags win over the environment (the same variables as the exporter's: ledgerConfigFromEnv).
  const config = ledgerConfigFromEnv(io.env, {
    ...(str(p, 'ledger') !== undefined ? { dir: str(p, 'ledger')! } : {}),
    ...(postgresUrl(p) !== undefined ? { url: postgresUrl(p)! } : {}),
    ...(str(p, 'fsync') !== undefined ? { fsync: str(p, 'fsync')! } : {}),
    ...(str(p, 'signing-key') !== undefined ? { signingKeyPath: str(p, 'signing-key')! } : {}),
    ...(str(p, 'checkpoint-every') !== undefined ? { checkpointEvery: str(p, 'checkpoint-every')! } : {}),
  });
  const writerConfig: LedgerConfig = { ...config, onWarning: (message) => io.err(`llm-audit serve: warning: ${message}`) };
  let store: LedgerWriter;
  if (writerConfig.backend === 'postgres') {
    const { url } = writerConfig;
    const waitMs = positiveInt(p, 'db-wait', DEFAULT_DB_WAIT_S, 0) * 1000;
    if (flag(p, 'migrate')) await whenReachable(url, waitMs, io, () => runMigrations(url, io));
    store = await whenReachable(url, waitMs, io, () => openLedgerWriter(writerConfig));
  } else {
    if (flag(p, 'migrate')) throw new LedgerError('LEDGER_USAGE', '--migrate is for --postgres');
    if (str(p, 'db-wait') !== undefined) throw new LedgerError('LEDGER_USAGE', '--db-wait is for --postgres');
    store = await openLedgerWriter(writerConfig);
  }
  for (const notice of store.notices) io.err(`llm-audit serve: ${notice}`);

  let server;
  try {
    server = await startIngestServer({
      store,
      host: str(p, 'host') ?? DEFAULTS.host,
      port,
      ...(token ? { token } : {}),
      ...(tenantTokens ? { tenantTokens } : {}),
      ...(tls ? { tls } : {}),
      maxBodyBytes: positiveInt(p, 'max-body-bytes', DEFAULTS.maxBodyBytes),
      maxInflight: positiveInt(p, 'max-inflight', DEFAULTS.maxInflight),
      maxQueuedBytes: positiveInt(p, 'max-queued-bytes', DEFAULTS.maxQueuedBytes),
      maxRecordBytes: positiveInt(p, 'max-record-bytes', DEFAULTS.maxRecordBytes),
      retryAfterSeconds: positiveInt(p, 'retry-after', DEFAULTS.retryAfterSeconds),
      log: (line) => io.err(`llm-audit serve: ${line}`),
    });
  } catch (error) {
    await store.close().catch(() => undefined);
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      throw new LedgerError('LEDGER_USAGE', `cannot listen on ${str(p, 'host') ?? DEFAULTS.host}:${port}: ${e.code}`);
    }
    throw error;
  }
  await io.out(
    `llm-audit serve: listening on ${server.url}/v1/traces (store: ${store.description}${
      tenantTokens ? `, ${tenantTokens.size} tenant-bound token(s)${token ? ' and a token for every tenant' : ''}` : token ? ', bearer token required' : ''
    }${tls?.clientCa ? ', client certificate required' : ''})\n`,
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  io.err(`llm-audit serve: ${signal}: finishing the requests in flight, then closing the ledger`);
  await server.close(shutdownMs);
  const s = server.stats;
  io.err(`llm-audit serve: stopped (${s.requests} requests, ${s.stored} records stored, ${s.duplicates} duplicates, ${s.ignored} spans ignored, ${s.rejected} rejected)`);
  return 0;
}

async function runMigrations(url: string, io: CliIo): Promise<number[]> {
  const client = new Client({ connectionString: url, application_name: 'llm-audit migrate', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const applied = await migrate(client);
    io.err(
      applied.length > 0
        ? `llm-audit: applied schema migration(s) ${applied.join(', ')} to ${redactUrl(url)} (now at version ${LATEST_VERSION})`
        : `llm-audit: the schema of ${redactUrl(url)} is up to date (version ${LATEST_VERSION})`,
    );
    return applied;
  } catch (error) {
    throw pgError(error, 'cannot migrate the ledger schema', redactUrl(url));
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function migrateCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { ...POSTGRES_OPTION }, MIGRATE_USAGE);
  const url = postgresUrl(p) ?? (io.env.LLM_AUDIT_POSTGRES_URL?.trim() || undefined);
  if (url === undefined) throw new LedgerError('LEDGER_USAGE', `--postgres URL is required\nusage: ${MIGRATE_USAGE}`);
  await runMigrations(url, io);
  return 0;
}
