/**
 * A real PostgreSQL server for the tests, never a mock. `postgresUrl()` uses
 * $LLM_AUDIT_TEST_POSTGRES_URL when set (a superuser on a test server), else runs
 * scripts/setup-postgres.sh, which installs PostgreSQL from Debian's packages if needed and starts
 * a private cluster on loopback. When that fails the tests fail, with the script's reason: they are
 * never skipped (in CI a missing PostgreSQL must be seen).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { migrate } from '../../src/ledger/postgres/migrations';

const ROOT = resolve(__dirname, '../..');
let cached: string | undefined;

export function postgresUrl(): string {
  if (cached) return cached;
  const given = process.env.LLM_AUDIT_TEST_POSTGRES_URL?.trim();
  if (given) return (cached = given);
  let out: string;
  try {
    out = execFileSync('bash', [join(ROOT, 'scripts/setup-postgres.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(
      `PostgreSQL is required by these tests and could not be started by scripts/setup-postgres.sh` +
        `${process.env.CI ? ' (CI: install it with `apt-get install -y postgresql` or set LLM_AUDIT_TEST_POSTGRES_URL)' : ''}:\n` +
        `${(e.stderr ?? '').trim() || e.message}`,
    );
  }
  const url = out.trim().split('\n').pop()?.trim();
  if (!url || !url.startsWith('postgres://')) throw new Error(`scripts/setup-postgres.sh printed no connection URL:\n${out}`);
  return (cached = url);
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery<T extends object = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  /** Superuser URL of the new database. */
  url: string;
  name: string;
  /** The same server, another role: LOGIN with password `pw`. */
  urlAs(role: string): string;
  drop(): Promise<void>;
}

/** A new empty database (migrated unless `migrated: false`), dropped by drop(). */
export async function createTestDatabase(prefix: string, options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const admin = postgresUrl();
  const name = `t_${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase();
  await adminQuery(admin, `CREATE DATABASE ${name}`);
  const url = withDatabase(admin, name);
  if (options.migrated !== false) {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await migrate(client);
    } finally {
      await client.end();
    }
  }
  return {
    url,
    name,
    urlAs(role: string): string {
      const u = new URL(url);
      u.username = role;
      u.password = 'pw';
      return u.toString();
    },
    async drop(): Promise<void> {
      await adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      // Roles are cluster-wide: the login roles made for this database go with it.
      for (const { rolname } of await adminQuery<{ rolname: string }>(admin, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`${name}\\_%`])) {
        await adminQuery(admin, `DROP ROLE IF EXISTS ${rolname}`);
      }
    },
  };
}

/** A LOGIN role that is a member of `group` (roles are cluster-wide: named per test database). */
export async function loginRole(db: TestDatabase, group: string): Promise<string> {
  const role = `${db.name}_${group.replace(/^llm_audit_/, '')}`;
  await adminQuery(db.url, `CREATE ROLE ${role} LOGIN PASSWORD 'pw' IN ROLE ${group}`);
  await adminQuery(db.url, `GRANT CONNECT ON DATABASE ${db.name} TO ${role}`);
  return role;
}
