// PostgreSQL connections honour `sslmode` / `sslrootcert` in the URL (issue 23, section 5). The
// shared test server has no TLS, so this test starts a throwaway server of its own with ssl=on, a
// certificate of a CA made at test time (openssl CLI), and a pg_hba.conf that refuses every
// connection without TLS; it uses the same binaries as scripts/setup-postgres.sh (initdb, pg_ctl,
// psql from /usr/lib/postgresql/*/bin, run as the postgres user when root) on a port of its own,
// and stops it in the teardown.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/ledger/postgres/connection';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { cli, expectNoStack } from '../cli/cli-helpers';
import { ensureBuilt } from '../ingest/helpers';
import { makeRecord } from '../ledger/helpers';
import { freePorts } from '../support/processes';

/** The newest PostgreSQL server binaries, where scripts/setup-postgres.sh looks first. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  } catch {
    // none
  }
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: install it (apt-get install -y postgresql), as scripts/setup-postgres.sh does`);
  return join(root, versions[0]!, 'bin');
}

const asRoot = process.getuid?.() === 0;
/** `command args`, as the postgres user when running as root (the server refuses to run as root). */
function run(command: string, args: string[], options: { cwd?: string } = {}): string {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: 'pipe', ...options });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

describe('PostgreSQL over TLS: sslmode and sslrootcert in the URL', () => {
  let base: string;
  let data: string;
  let bin: string;
  let port: number;
  let started = false;
  const url = (query: string) => `postgres://tls_user:pw@127.0.0.1:${port}/llm_audit_tls${query}`;

  beforeAll(async () => {
    ensureBuilt();
    bin = binDir();
    base = mkdtempSync(join(tmpdir(), 'pg-tls-'));
    data = join(base, 'data');
    const socket = join(base, 'socket');
    const pki = join(base, 'pki');
    mkdirSync(pki);
    mkdirSync(socket);
    mkdirSync(data);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=pg test CA', '-keyout', 'ca.key', '-out', 'ca.pem'], pki);
    openssl(['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=another CA', '-keyout', 'other.key', '-out', 'other.pem'], pki);
    openssl(['req', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr'], pki);
    writeFileSync(join(pki, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem'], pki);
    if (asRoot) for (const path of [base, data, socket, pki, join(pki, 'server.key'), join(pki, 'server.pem')]) chownSync(path, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    execFileSync('chmod', ['600', join(pki, 'server.key')]);
    execFileSync('chmod', ['700', data, socket]);

    run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8']);
    // TCP only with TLS; the local socket (trust) is how the test sets the server up.
    writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n');
    if (asRoot) chownSync(join(data, 'pg_hba.conf'), Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    [port] = (await freePorts(1)) as [number];
    run(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(base, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-c listen_addresses=127.0.0.1 -p ${port} -k ${socket} -c ssl=on -c ssl_cert_file=${join(pki, 'server.pem')} -c ssl_key_file=${join(pki, 'server.key')}`,
      'start',
    ]);
    started = true;
    const psql = (sql: string) => run(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socket, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql]);
    psql(`CREATE ROLE tls_user LOGIN SUPERUSER PASSWORD 'pw'`);
    psql('CREATE DATABASE llm_audit_tls OWNER tls_user');
  }, 180_000);

  afterAll(() => {
    if (started) {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
    }
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('sslmode=verify-full with sslrootcert: migrate, the writer, verify and query work, and the connection is encrypted', async () => {
    const ca = join(base, 'pki', 'ca.pem');
    const tls = url(`?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`);
    const migrated = cli(['migrate', '--postgres', tls]);
    expect(migrated.code, migrated.stderr).toBe(0);
    const writer = await PostgresLedger.open({ url: tls });
    await writer.append([makeRecord({ request_id: 'over-tls' })]);
    await writer.close();
    const pool = createPool(tls);
    try {
      const [row] = (await pool.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows;
      expect(row).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    } finally {
      await pool.end();
    }
    const verify = cli(['verify', '--postgres', tls, '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout).records).toBe(1);
    const query = cli(['query', '--postgres', tls, '--format', 'json']);
    expect(query.code, query.stderr).toBe(0);
    expect(JSON.parse(query.stdout)).toEqual([expect.objectContaining({ request_id: 'over-tls' })]);
  }, 60_000);

  it('without sslmode the server refuses the unencrypted connection; with another CA the client refuses the server (exit 3, one line)', () => {
    const plain = cli(['verify', '--postgres', url('')]);
    expectNoStack(plain);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/^llm-audit: LEDGER_UNREADABLE: .*no encryption/m);
    const wrongCa = cli(['verify', '--postgres', url(`?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(base, 'pki', 'other.pem'))}`)]);
    expectNoStack(wrongCa);
    expect(wrongCa.code).toBe(3);
    expect(wrongCa.stderr).toMatch(/^llm-audit: LEDGER_IO: .*certificate/m);
  });
});
