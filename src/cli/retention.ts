/**
 * `llm-audit retention apply | policy | log`: remove expired segments; the policy in force
 * (declared in configuration, recorded in the ledger when it changes); every deletion so far.
 */
import { hostname } from 'node:os';
import { currentUser } from '../audit/content/keystore';
import type { LedgerSource } from '../ledger/backend';
import { loadPrivateKey, loadPublicKey } from '../ledger/checkpoint';
import { LedgerError } from '../ledger/errors';
import { scanRecords } from '../ledger/query';
import { RETENTION_POLICY_ACTION, operationRecord } from '../ledger/record';
import {
  RETENTION_POLICY_ENV,
  applyRetention,
  describePolicy,
  policyFromConfig,
  policyText,
  resolvePolicy,
  type RetentionOptions,
  type RetentionPolicy,
} from '../ledger/retention';
import { segmentDayStart } from '../ledger/tombstone';
import { CSV_OPTION, FORMATS, csvComment, writeRows, type Row } from './format';
import { flag, instant, oneOf, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, ledgerName, ledgerOf, openCliWriter, withSource } from './source';

export const RETENTION_USAGE =
  'llm-audit retention apply [--policy standard|hipaa|gdpr|custom] [--dry-run] [--now ISO] [--max-age D] [--metadata D] [--content D] [--errors D] [--signing-key FILE] [--public-key FILE] [--format table|json|csv] [--excel] [--ledger DIR | --postgres URL]   (D: 90d, 12w, 6m, 2y)\n' +
  '       llm-audit retention policy [--policy P ...] [--record] [--signing-key FILE] [--ledger DIR | --postgres URL]   the policy in force: configured and recorded\n' +
  '       llm-audit retention log [--format table|json|csv] [--excel] [--ledger DIR | --postgres URL]   every deletion and policy change, oldest first\n' +
  `  without --policy the policy is $${RETENTION_POLICY_ENV} ("standard", "hipaa", "gdpr max-age=30d", "custom metadata=3y content=1y errors=6m")`;

/** The policy named by --policy and its flags, else the configured one ($LLM_AUDIT_RETENTION_POLICY), else undefined. */
function configuredPolicy(p: Parsed, io: CliIo): { policy: RetentionPolicy; declared: string } | undefined {
  const name = str(p, 'policy');
  const flags = {
    ...(str(p, 'max-age') ? { maxAge: str(p, 'max-age')! } : {}),
    ...(str(p, 'metadata') ? { metadata: str(p, 'metadata')! } : {}),
    ...(str(p, 'content') ? { content: str(p, 'content')! } : {}),
    ...(str(p, 'errors') ? { errors: str(p, 'errors')! } : {}),
  };
  if (name) return { policy: resolvePolicy(name, flags), declared: '--policy' };
  if (Object.keys(flags).length > 0) throw new LedgerError('LEDGER_USAGE', '--max-age, --metadata, --content and --errors go with --policy');
  const env = io.env[RETENTION_POLICY_ENV]?.trim();
  return env ? { policy: policyFromConfig(env), declared: RETENTION_POLICY_ENV } : undefined;
}

interface RecordedPolicy {
  at: string;
  seq: number;
  policy: Record<string, unknown>;
  declared: string;
  by: string;
}

/** Every `retention.policy` record of the ledger, oldest first. */
async function recordedPolicies(source: LedgerSource): Promise<RecordedPolicy[]> {
  const out: RecordedPolicy[] = [];
  for await (const { seq, record } of scanRecords(source)) {
    if (record.action !== RETENTION_POLICY_ACTION) continue;
    const m = record.metadata ?? {};
    out.push({
      at: record.timestamp,
      seq,
      policy: { name: m.policy, metadata: m.metadata, content: m.content, errors: m.errors },
      declared: String(m.declared ?? ''),
      by: `${String(m.operator ?? '?')}@${String(m.host ?? '?')}`,
    });
  }
  return out;
}

const samePolicy = (a: Record<string, unknown> | undefined, b: RetentionPolicy): boolean =>
  a !== undefined && (['name', 'metadata', 'content', 'errors'] as const).every((k) => a[k] === describePolicy(b)[k]);

/** Appends a `retention.policy` record unless the newest one already says `policy`. Returns whether it wrote one. */
async function recordPolicy(p: Parsed, io: CliIo, policy: RetentionPolicy, declared: string): Promise<boolean> {
  const newest = (await withSource(p, io, recordedPolicies)).at(-1);
  if (samePolicy(newest?.policy, policy)) return false;
  // The ledger the read commands use: --ledger, --postgres, else $LLM_AUDIT_LEDGER_DIR or ./llm-audit-ledger.
  const where = ledgerOf(p, io);
  const ledger = { writer: await openCliWriter(p, io, where), name: ledgerName(where) };
  const { name, ...durations } = describePolicy(policy);
  try {
    await ledger.writer.append([
      operationRecord({
        action: RETENTION_POLICY_ACTION,
        timestamp: new Date().toISOString(),
        tenantId: null,
        status: 'success',
        metadata: { policy: name, ...durations, declared, operator: currentUser(), host: hostname(), ...(newest ? { previous: policyText(newest.policy) } : {}) },
      }),
    ]);
  } finally {
    await ledger.writer.close();
  }
  io.err(`recorded in ${ledger.name}: the retention policy in force is now ${policyText(describePolicy(policy))}${newest ? ` (was ${policyText(newest.policy)})` : ''}`);
  return true;
}

export async function retentionCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      policy: { type: 'string' },
      'dry-run': { type: 'boolean' },
      record: { type: 'boolean' },
      now: { type: 'string' },
      'max-age': { type: 'string' },
      metadata: { type: 'string' },
      content: { type: 'string' },
      errors: { type: 'string' },
      'signing-key': { type: 'string' },
      'public-key': { type: 'string' },
      format: { type: 'string' },
      ...CSV_OPTION,
      ...POSTGRES_OPTION,
    },
    RETENTION_USAGE,
    1,
  );
  const sub = p.positionals[0];
  if (sub === 'log') return retentionLog(p, io, argv);
  if (sub === 'policy') return retentionPolicy(p, io);
  if (sub !== 'apply') throw new LedgerError('LEDGER_USAGE', `usage: ${RETENTION_USAGE}`);
  const configured = configuredPolicy(p, io);
  if (!configured) throw new LedgerError('LEDGER_USAGE', `--policy is required (or declare the policy in force in $${RETENTION_POLICY_ENV})\nusage: ${RETENTION_USAGE}`);
  const { policy } = configured;
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const dryRun = flag(p, 'dry-run');
  const signingPath = str(p, 'signing-key') ?? (io.env.LLM_AUDIT_SIGNING_KEY?.trim() || undefined);
  const publicPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  const now = instant(str(p, 'now'), '--now');
  const where = ledgerOf(p, io);
  // The ledger says which policy a deletion applied before the deletion happens.
  if (!dryRun) await recordPolicy(p, io, policy, configured.declared);
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
    { excel: flag(p, 'excel'), comment: csvComment('retention', argv, [`policy: ${policy.name}`, `now: ${plan.now}`, dryRun ? 'dry run' : 'applied']) },
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

/** `retention policy`: the configured policy, the one the ledger records, and whether they differ; --record writes a change. */
async function retentionPolicy(p: Parsed, io: CliIo): Promise<number> {
  const configured = configuredPolicy(p, io);
  if (flag(p, 'record')) {
    if (!configured) throw new LedgerError('LEDGER_USAGE', `--record needs a policy: --policy P or $${RETENTION_POLICY_ENV}`);
    if (!(await recordPolicy(p, io, configured.policy, configured.declared))) io.err('the ledger already records this policy: nothing was written');
  }
  const history = await withSource(p, io, recordedPolicies);
  const newest = history.at(-1);
  await io.out(
    `configured: ${configured ? `${policyText(describePolicy(configured.policy))} (${configured.declared})` : `none ($${RETENTION_POLICY_ENV} is not set)`}\n` +
      `recorded:   ${newest ? `${policyText(newest.policy)} since ${newest.at} (seq ${newest.seq}, by ${newest.by})` : 'none (no retention.policy record in the ledger)'}\n`,
  );
  if (configured && !samePolicy(newest?.policy, configured.policy)) {
    io.err('note: the configured policy is not the one the ledger records; it is recorded by the next `retention apply`, or now with `retention policy --record`');
  }
  return 0;
}

/** `retention log`: every deletion (from the tombstones) and every recorded policy change, oldest first. */
async function retentionLog(p: Parsed, io: CliIo, argv: string[]): Promise<number> {
  const format = oneOf(str(p, 'format'), FORMATS, '--format', 'table');
  const rows: Row[] = await withSource(p, io, async (source) => {
    await source.open();
    const out: Row[] = [];
    for (const { checkpoint: c } of await source.checkpoints()) {
      const t = c.tombstone;
      if (c.type !== 'tombstone' || !t) continue;
      const segments = t.removed_segments;
      const days = segments.map((s) => segmentDayStart(s.name)).filter((d): d is number => d !== undefined);
      out.push({
        when: c.timestamp,
        event: 'deletion',
        policy: policyText(t.policy),
        cut_off: t.applied_at,
        first_seq: Math.min(...segments.map((s) => s.first_seq)),
        last_seq: Math.max(...segments.map((s) => s.last_seq)),
        records: segments.reduce((n, s) => n + s.records, 0),
        records_from: days.length > 0 ? new Date(Math.min(...days)).toISOString().slice(0, 10) : null,
        records_to: segments.map((s) => s.newest_timestamp).sort().at(-1) ?? null,
        by: c.signature !== null ? `key ${c.key_id}` : 'unsigned',
      });
    }
    for (const r of await recordedPolicies(source)) {
      out.push({ when: r.at, event: 'policy', policy: policyText(r.policy), cut_off: null, first_seq: r.seq, last_seq: r.seq, records: null, records_from: null, records_to: null, by: `${r.by} (${r.declared})` });
    }
    return out.sort((a, b) => String(a.when).localeCompare(String(b.when)));
  });
  await writeRows(io, format, ['when', 'event', 'policy', 'cut_off', 'first_seq', 'last_seq', 'records', 'records_from', 'records_to', 'by'], rows, {
    excel: flag(p, 'excel'),
    comment: csvComment('retention', argv, ['every deletion and policy change']),
  });
  if (rows.length === 0 && format === 'table') io.err('note: nothing was ever removed by retention, and no policy was recorded');
  return 0;
}
