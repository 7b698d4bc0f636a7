/** Connections to the PostgreSQL ledger, and PostgreSQL errors as LedgerErrors. */
import { Pool, type PoolConfig } from 'pg';
import { LedgerError, isLedgerError } from '../errors';
import { redactUrl } from './url';

export { redactUrl };

export function createPool(url: string, config: Omit<PoolConfig, 'connectionString'> = {}): Pool {
  try {
    new URL(url);
  } catch {
    throw new LedgerError('LEDGER_USAGE', `--postgres must be a connection URL such as postgres://user@host:5432/db`);
  }
  if (!/^postgres(ql)?:$/.test(new URL(url).protocol)) {
    throw new LedgerError('LEDGER_USAGE', `--postgres must be a postgres:// or postgresql:// URL`);
  }
  const pool = new Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'llm-audit',
    ...config,
  });
  // An idle client whose server went away must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/** PostgreSQL / connection failures as LedgerErrors with the operator-facing message. */
export function pgError(error: unknown, what: string, name: string): LedgerError {
  if (isLedgerError(error)) return error;
  const e = error as { code?: string; message?: string };
  const detail = e?.message ?? String(error);
  switch (e?.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'ECONNRESET':
    case 'EPIPE':
    case '57P01': // admin_shutdown
    case '57P02':
    case '57P03': // cannot_connect_now
    case '08000':
    case '08001':
    case '08003':
    case '08006':
      return new LedgerError('LEDGER_IO', `${what}: cannot reach PostgreSQL at ${name}: ${detail}`, { cause: error });
    case '28P01':
    case '28000':
      return new LedgerError('LEDGER_UNREADABLE', `${what}: PostgreSQL refused the login at ${name}: ${detail}`, { cause: error });
    case '3D000':
      return new LedgerError('LEDGER_NOT_FOUND', `${what}: the database of ${name} does not exist`, { cause: error });
    case '3F000':
    case '42P01':
      return new LedgerError(
        'LEDGER_NOT_FOUND',
        `${what}: ${name} holds no llm-audit ledger (run \`llm-audit migrate --postgres URL\` as the schema owner): ${detail}`,
        { cause: error },
      );
    case '42501':
      return new LedgerError('LEDGER_UNREADABLE', `${what}: permission denied at ${name}: ${detail}`, { cause: error });
    case '53100':
      return new LedgerError('LEDGER_NO_SPACE', `${what}: the PostgreSQL server at ${name} is out of disk space: ${detail}`, { cause: error });
    default:
      if (/timeout|terminated|Connection terminated/i.test(detail)) {
        return new LedgerError('LEDGER_IO', `${what}: cannot reach PostgreSQL at ${name}: ${detail}`, { cause: error });
      }
      return new LedgerError('LEDGER_IO', `${what}: PostgreSQL at ${name}: ${e?.code ? `${e.code} ` : ''}${detail}`, { cause: error });
  }
}
