/** `llm-audit retention apply`. */
import { loadPrivateKey, loadPublicKey } from '../ledger/checkpoint';
import { LedgerError } from '../ledger/errors';
import { applyRetention, resolvePolicy, type RetentionOptions } from '../ledger/retention';
import { FORMATS, writeRows } from './format';
import { flag, instant, oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, ledgerOf } from './source';

export const RETENTION_USAGE =
  'llm-audit retention apply --policy standard|hipaa|gdpr|custom [--dry-run] [--now ISO] [--max-age D] [--metadata D] [--content D] [--errors D] [--signing-key FILE] [--public-key FILE] [--format table|json|csv] [--ledger DIR | --postgres URL]   (D: 90d, 12w, 6m, 2y)';

export async function retentionCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      policy: { type: 'string' },
      'dry-run': { type: 'boolean' },
      now: { type: 'string' },
      'max-age': { type: 'string' },
      metadata: { type: 'string' },
      content: { type: 'string' },
      errors: { type: 'string' },
      'signing-key': { type: 'string' },
      'public-key': { type: 'string' },
      format: { type: 'string' },
      ...POSTGRES_OPTION,
    },
    RETENTION_USAGE,
    1,
  );
  if (p.positionals[0] !== 'apply') throw new LedgerError('LEDGER_USAGE', `usage: ${RETENTION_USAGE}`);
  const policyName = str(p, 'policy');
  if (!policyName) throw new LedgerError('LEDGER_USAGE', `--policy is required\nusage: ${RETENTION_USAGE}`);
  const policy = resolvePolicy(policyName, {
    ...(str(p, 'max-age') ? { maxAge: str(p, 'max-age')! } : {}),
    ...(str(p, 'metadata') ? { metadata: str(p, 'metadata')! } : {}),
    ...(str(p, 'content') ? { content: str(p, 'content')! } : {}),
    ...(str(p, 'errors') ? { errors: str(p, 'errors')! } : {}),
  });
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const dryRun = flag(p, 'dry-run');
  const signingPath = str(p, 'signing-key') ?? (io.env.LLM_AUDIT_SIGNING_KEY?.trim() || undefined);
  const publicPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  const now = instant(str(p, 'now'), '--now');
  const where = ledgerOf(p, io);
  const apply = where.backend === 'postgres'
    ? (options: RetentionOptions) =>
        (require('../ledger/postgres/retention') as typeof import('../ledger/postgres/retention')).applyPostgresRetention(where.url, options)
    : (options: RetentionOptions) => applyRetention(where.dir, options);
  const result = await apply({
    policy,
    dryRun,
    ...(now !== undefined ? { now: new Date(now) } : {}),
    ...(signingPath && !dryRun ? { signingKey: loadPrivateKey(signingPath) } : {}),
    ...(publicPath ? { publicKey: loadPublicKey(publicPath) } : {}),
  });
  const { plan } = result;
  await writeRows(
    io,
    format,
    ['name', 'records', 'first_seq', 'last_seq', 'newest_timestamp', 'expires_at', 'action', 'reason'],
    plan.segments.map((s) => ({ ...s })),
  );
  const removed = plan.segments.filter((s) => s.action === 'remove');
  io.err(
    dryRun
      ? `dry run (policy ${policy.name}, now ${plan.now}): would remove ${removed.length} segment(s), ${plan.removeRecords} record(s); nothing was changed`
      : removed.length === 0
        ? `policy ${policy.name}, now ${plan.now}: nothing has expired; nothing was removed`
        : `policy ${policy.name}, now ${plan.now}: removed ${removed.length} segment(s), ${plan.removeRecords} record(s); tombstone at tree size ${result.tombstone!.tree_size} written to ${where.backend === 'postgres' ? 'llm_audit.checkpoints' : 'checkpoints.jsonl'}`,
  );
  for (const n of plan.notes) io.err(`note: ${n}`);
  for (const w of result.warnings) io.err(`warning: ${w}`);
  return 0;
}
