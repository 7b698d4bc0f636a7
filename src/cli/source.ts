/** `--ledger DIR` or `--postgres URL`: which ledger a read command works on. */
import type { LedgerSource } from '../ledger/backend';
import { LedgerError } from '../ledger/errors';
import { FileLedgerSource } from '../ledger/file/ledger';
import { ledgerConfigFromEnv, ledgerLocation, openLedgerWriter, type LedgerWriter } from '../ledger/writer';
import type { PostgresLedgerSource } from '../ledger/postgres/source';
import { str, type CliIo, type Parsed } from './io';

/** The parseArgs option both read commands and serve accept. */
export const POSTGRES_OPTION = { postgres: { type: 'string' } } as const;

/** The --postgres URL given, if any; refuses --ledger and --postgres together. */
export function postgresUrl(p: Parsed): string | undefined {
  const url = str(p, 'postgres');
  if (url !== undefined && str(p, 'ledger') !== undefined) {
    throw new LedgerError('LEDGER_USAGE', 'give either --ledger DIR or --postgres URL, not both');
  }
  if (url !== undefined && url.trim() === '') throw new LedgerError('LEDGER_USAGE', '--postgres needs a connection URL');
  return url;
}

/** The ledger named by the flags, else by the environment (ledgerLocation, as the writers choose it). */
export function ledgerOf(p: Parsed, io: CliIo): ReturnType<typeof ledgerLocation> {
  const url = postgresUrl(p);
  const dir = str(p, 'ledger');
  return ledgerLocation(io.env, { ...(url !== undefined ? { url } : {}), ...(dir !== undefined ? { dir } : {}) });
}

/** The source named by the flags: the PostgreSQL ledger with --postgres (or LLM_AUDIT_POSTGRES_URL), else the file ledger. */
export function sourceOf(p: Parsed, io: CliIo): LedgerSource {
  const where = ledgerOf(p, io);
  if (where.backend === 'postgres') {
    // Loaded only when asked for: the file-ledger commands never load the database driver.
    const { PostgresLedgerSource } = require('../ledger/postgres/source') as typeof import('../ledger/postgres/source');
    return new PostgresLedgerSource(where.url);
  }
  return new FileLedgerSource(where.dir);
}

/** How messages name the ledger `where`. */
export function ledgerName(where: ReturnType<typeof ledgerLocation>): string {
  return where.backend === 'postgres' ? 'the PostgreSQL ledger' : `the ledger in ${where.dir}`;
}

/**
 * A writer on the ledger `where` (by default the one the command names) for the operation records
 * the CLI appends (shred, audit.read), signing with --signing-key or LLM_AUDIT_SIGNING_KEY.
 */
export async function openCliWriter(
  p: Parsed,
  io: CliIo,
  where: ReturnType<typeof ledgerLocation> = ledgerOf(p, io),
  source?: PostgresLedgerSource,
): Promise<LedgerWriter> {
  const signing = str(p, 'signing-key');
  // The environment's writer settings too (signing key, checkpoint notes' origin, witnesses), as the application's writer uses them.
  const config = ledgerConfigFromEnv(io.env, {
    ...(where.backend === 'postgres' ? { url: where.url } : { dir: where.dir }),
    ...(signing !== undefined ? { signingKeyPath: signing } : {}),
  });
  if (config.backend === 'file') return openLedgerWriter(config);
  // PostgreSQL: the checkpoint in the append's own transaction (the writer closes right after, and
  // its close then has nothing to add: one transaction, not two), on the connection the command
  // already holds if it gave it (PostgresLedgerOptions.source).
  return openLedgerWriter({ ...config, checkpointEvery: 1, ...(source !== undefined && source.url === config.url ? { source } : {}) });
}

/** Runs `work` with the source, then releases it (closes the database connections). */
export async function withSource<T>(p: Parsed, io: CliIo, work: (source: LedgerSource) => Promise<T>): Promise<T> {
  const source = sourceOf(p, io);
  try {
    return await work(source);
  } finally {
    await source.close?.();
  }
}
