/**
 * `llm-audit grant-reader --tenant T ROLE --postgres URL`: sets up ROLE (created NOLOGIN when it does
 * not exist) as a reader of tenant T's records only, enforced by the database: ROLE becomes a member
 * of llm_audit_tenant_reader and llm_audit.tenant_readers lists (ROLE, T), which the row-level
 * security policies of schema version 6 read (migrations.ts). Repeat --tenant for several tenants.
 *
 * Run as the schema owner (or a superuser): it creates a role and writes the tenant_readers table.
 * A role that already reads every row (a member of the writer, auditor or retention roles, a
 * superuser, a role with BYPASSRLS, the schema owner) is refused: the grant would not limit it.
 */
import { Client } from 'pg';
import { LedgerError } from '../ledger/errors';
import { pgError, redactUrl } from '../ledger/postgres/connection';
import { ROLES, SCHEMA, TENANT_READERS_VERSION } from '../ledger/postgres/migrations';
import { parse, strs, type CliIo } from './io';
import { POSTGRES_OPTION, postgresUrl } from './source';

export const GRANT_READER_USAGE =
  'llm-audit grant-reader --tenant T [--tenant T2]... ROLE --postgres URL   (run as the schema owner; ROLE then sees only those tenants\' records)';

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

export async function grantReaderCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { tenant: { type: 'string', multiple: true }, ...POSTGRES_OPTION }, GRANT_READER_USAGE, 1);
  const role = p.positionals[0];
  const tenants = strs(p, 'tenant');
  const url = postgresUrl(p) ?? (io.env.LLM_AUDIT_POSTGRES_URL?.trim() || undefined);
  if (role === undefined) throw new LedgerError('LEDGER_USAGE', `name the role\nusage: ${GRANT_READER_USAGE}`);
  if (!ROLE_NAME.test(role)) throw new LedgerError('LEDGER_USAGE', `${JSON.stringify(role)} is not a plain role name (letters, digits, _ and $, at most 63)`);
  if (tenants.length === 0 || tenants.some((t) => t === '')) throw new LedgerError('LEDGER_USAGE', `--tenant T is required (a tenant id)\nusage: ${GRANT_READER_USAGE}`);
  if (url === undefined) throw new LedgerError('LEDGER_USAGE', `--postgres URL is required (tenant readers are a PostgreSQL feature)\nusage: ${GRANT_READER_USAGE}`);

  const name = redactUrl(url);
  const client = new Client({ connectionString: url, application_name: 'llm-audit grant-reader', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const version = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${SCHEMA}.schema_migrations`);
    if ((version.rows[0]?.v ?? 0) < TENANT_READERS_VERSION) {
      throw new LedgerError('LEDGER_SCHEMA_MISMATCH', `the ledger schema in ${name} has no tenant readers yet (version ${TENANT_READERS_VERSION}): run \`llm-audit migrate --postgres URL\` as the schema owner first`);
    }
    const q = client.escapeIdentifier(role);
    await client.query('BEGIN');
    const existing = await client.query<{ super: boolean; bypass: boolean; owner: boolean; full: boolean }>(
      `SELECT r.rolsuper AS super, r.rolbypassrls AS bypass,
          r.rolname = (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '${SCHEMA}') AS owner,
          pg_has_role(r.oid, '${ROLES.writer}', 'MEMBER') OR pg_has_role(r.oid, '${ROLES.auditor}', 'MEMBER') OR pg_has_role(r.oid, '${ROLES.retention}', 'MEMBER') AS full
         FROM pg_roles r WHERE r.rolname = $1`,
      [role],
    );
    const found = existing.rows[0];
    if (found && (found.super || found.bypass || found.owner || found.full)) {
      const why = found.super ? 'a superuser' : found.bypass ? 'a role with BYPASSRLS' : found.owner ? 'the owner of the ledger schema' : `a member of ${ROLES.writer}, ${ROLES.auditor} or ${ROLES.retention}`;
      throw new LedgerError('LEDGER_USAGE', `${role} is ${why}: it reads every tenant's records whatever it is granted, so it cannot be limited to ${tenants.join(', ')}; use a role of its own`);
    }
    if (!found) await client.query(`CREATE ROLE ${q} NOLOGIN`);
    await client.query(`GRANT ${ROLES.tenantReader} TO ${q}`);
    const db = await client.query<{ d: string }>('SELECT current_database() AS d');
    await client.query(`GRANT CONNECT ON DATABASE ${client.escapeIdentifier(db.rows[0]!.d)} TO ${q}`);
    for (const tenant of tenants) {
      await client.query(`INSERT INTO ${SCHEMA}.tenant_readers (role_name, tenant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [role, tenant]);
    }
    const all = await client.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${SCHEMA}.tenant_readers WHERE role_name = $1 ORDER BY tenant_id`, [role]);
    await client.query('COMMIT');
    await io.out(
      `${found ? 'role' : 'created role (NOLOGIN)'} ${role} reads only the records of tenant${all.rows.length === 1 ? '' : 's'} ` +
        `${all.rows.map((r) => JSON.stringify(r.tenant_id)).join(', ')} in ${name} (row-level security); ` +
        `grant it to a login role (GRANT ${role} TO someone) or give it LOGIN\n`,
    );
    return 0;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw pgError(error, 'cannot set up the tenant reader', name);
  } finally {
    await client.end().catch(() => undefined);
  }
}
