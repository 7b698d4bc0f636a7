/**
 * Retention on the PostgreSQL ledger: the plan is made exactly as for the file ledger (verify
 * first, a prefix of wholly expired day partitions, never the newest), the tombstone is computed
 * and signed here, and the database function llm_audit.apply_retention() re-checks the plan,
 * records the tombstone and a retention_log row, and drops the partitions, in one transaction.
 */
import { LedgerError } from '../errors';
import { retentionNow } from '../policy';
import { buildTombstone, planRetention, type RetentionOptions, type RetentionResult } from '../retention';
import { canonicalJson } from '../../audit/canonical-json';
import { createPool, pgError } from './connection';
import { SCHEMA } from './migrations';
import { PostgresLedgerSource } from './source';


export async function applyPostgresRetention(url: string, options: RetentionOptions): Promise<RetentionResult> {
  const now = retentionNow(options.now, options.dryRun);
  const pool = createPool(url, { max: 2 });
  const source = new PostgresLedgerSource(url, { pool });
  try {
    await source.open();
    const planned = await planRetention(source, options, now, (file) => file.slice(SCHEMA.length + 1));
    const { plan, warnings } = planned;
    if (options.dryRun || planned.remove.length === 0) return { plan, tombstone: undefined, warnings };
    const tombstone = await buildTombstone(source, planned, (await source.ledgerId()) ?? '', null, options.signingKey);
    if (!options.signingKey) warnings.push('the tombstone is not signed (no signing key): set LLM_AUDIT_SIGNING_KEY or pass --signing-key');
    try {
      await pool.query(`SELECT ${SCHEMA}.apply_retention($1, $2::text[])`, [canonicalJson(tombstone), planned.remove.map((s) => s.name)]);
    } catch (error) {
      const e = error as { code?: string; message?: string };
      if (e.code === '22023') {
        throw new LedgerError('LEDGER_RETENTION_REFUSED', `the database refused the retention plan, nothing was removed: ${e.message}`, { cause: error });
      }
      throw pgError(error, 'cannot apply retention', source.name);
    }
    return { plan, tombstone, warnings };
  } finally {
    await pool.end().catch(() => undefined);
  }
}
