/**
 * docker-compose.yml's services run as their images' users, over directories owned as in the
 * images, without Docker (issue 21): setpriv gives each command the image's uid, and the
 * checkout (root's, like /app in the image) is its working directory.
 *
 * - the demo app exits 78 when its spool is left in the working directory (what bit), and sends
 *   its spans with the compose environment (the spool on a volume its user owns);
 * - the ledger server waits for a PostgreSQL that is not up yet, then its healthcheck passes;
 * - the collector cannot open its queue on a volume as Docker creates it (root's), and starts
 *   after the one-shot service's chown.
 *
 * Needs root (setpriv), the collector binary (test/e2e/support/stack.ts) and PostgreSQL.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver } from '../support/otlp-receiver';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { freePorts, repoRoot, runToCompletion, startProcess, stopAll, waitFor } from '../support/processes';
import { envOf, services, uidOf } from './support/compose';
import { Collector, asUid, baseEnv, cliPath, ensureBinaries } from './support/stack';

const root = mkdtempSync(join(tmpdir(), 'compose-runtime-'));
chmodSync(root, 0o755); // as / in an image: every user may pass through
/** A directory owned by `uid`, as a volume whose mount point the image gives that user. */
function ownedBy(uid: number, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uid, uid);
  return dir;
}

/** `test -<what> path` as `uid` (checked as that uid, not guessed from modes). */
function testAs(uid: number, what: 'r' | 'w', path: string): boolean {
  const [command, args] = asUid(uid, 'test', [`-${what}`, path]);
  try {
    execFileSync(command, args);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  expect(process.getuid?.(), 'these tests run commands as other users (setpriv): run them as root').toBe(0);
  for (const service of ['demo', 'ledger']) {
    expect(testAs(uidOf(service), 'r', join(repoRoot, 'package.json')), `the checkout must be readable by uid ${uidOf(service)}, as /app is in the image`).toBe(true);
  }
  await ensureBinaries();
  // The fake provider the demo app talks to, compiled into the image by the Dockerfile.
  if (!existsSync(join(repoRoot, '.cache/demo/fake-provider.js'))) {
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.demo.json')], { cwd: repoRoot });
  }
}, 600_000);

afterAll(async () => {
  await stopAll();
  rmSync(root, { recursive: true, force: true });
});

describe('the demo app as the image user', () => {
  const uid = uidOf('demo');
  const [entry, script] = services.demo.entrypoint as string[];

  async function runDemo(env: Record<string, string>) {
    const receiver = await startOtlpReceiver();
    const [command, args] = asUid(uid, entry === 'node' ? process.execPath : entry!, [script!]);
    const p = startProcess('compose-demo', command, {
      args,
      cwd: repoRoot,
      env: baseEnv({ ...envOf('demo'), ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, HOME: ownedBy(uid, 'home') }),
    });
    return { p, receiver };
  }

  it('cannot write the working directory it is given (root owns /app)', () => {
    expect(uid).not.toBe(0);
    expect(testAs(uid, 'w', repoRoot)).toBe(false);
  });

  it('exits 78 with its spool left in the working directory', async () => {
    const env = { ...envOf('demo') };
    const { p, receiver } = await runDemo({ LLM_AUDIT_SPOOL_DIR: '' });
    const exit = await p.exited;
    await receiver.close();
    expect(env.LLM_AUDIT_SPOOL_DIR).toBeTruthy();
    expect(exit.code, p.log()).toBe(78);
    expect(p.log()).toMatch(/LLM_AUDIT_SPOOL_DIR=.*llm-audit-spool cannot be written/);
  }, 60_000);

  it('sends its spans with the compose environment (the spool on its own volume)', async () => {
    const { p, receiver } = await runDemo({ LLM_AUDIT_SPOOL_DIR: ownedBy(uid, 'demo-spool') });
    try {
      await waitFor('the demo app to export its spans', () => (receiver.traceExports().length > 0 ? true : undefined), { process: p, timeoutMs: 30_000 });
      expect(p.log()).not.toContain('demo app exited');
    } finally {
      await p.stop(5_000);
      await receiver.close();
    }
  }, 60_000);
});

describe('the ledger server as the image user', () => {
  let db: TestDatabase;
  let proxy: Server | undefined;
  beforeAll(async () => {
    db = await createTestDatabase('compose', { migrated: false });
  });
  afterAll(async () => {
    proxy?.close();
    await db?.drop();
  });

  it('waits for PostgreSQL to come up, migrates, serves, and its healthcheck passes', async () => {
    const uid = uidOf('ledger');
    const [pgPort, httpPort] = await freePorts(2);
    // PostgreSQL "starting": nothing listens on its port for the first seconds.
    const target = new URL(db.url);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${pgPort}`;
    const command = (services.ledger.command as string[]).map((arg, i, all) => (all[i - 1] === '--host' ? '127.0.0.1' : all[i - 1] === '--port' ? String(httpPort) : arg));
    const [bin, args] = asUid(uid, process.execPath, [cliPath, ...command]);
    const p = startProcess('compose-ledger', bin, { args, cwd: repoRoot, env: baseEnv({ ...envOf('ledger'), LLM_AUDIT_POSTGRES_URL: url.toString() }) });
    await waitFor('serve to find PostgreSQL down and retry', () => (/not reachable yet; retrying/.test(p.log()) ? true : undefined), { process: p, timeoutMs: 20_000 });
    proxy = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      const end = () => (client.destroy(), upstream.destroy());
      client.on('error', end);
      upstream.on('error', end);
    });
    await new Promise<void>((resolve) => proxy!.listen(pgPort, '127.0.0.1', resolve));
    await waitFor('serve to listen', () => (/listening on/.test(p.log()) ? true : undefined), { process: p, timeoutMs: 30_000 });
    // The compose healthcheck, as the same user, against the compose port mapped to this one.
    const [check, ...checkArgs] = (services.ledger.healthcheck.test as string[]).slice(1).map((a) => a.replace('127.0.0.1:4319', `127.0.0.1:${httpPort}`));
    const [hcBin, hcArgs] = asUid(uid, check === 'node' ? process.execPath : check!, checkArgs);
    await runToCompletion('compose-ledger-healthcheck', hcBin, { args: hcArgs, timeoutMs: 20_000 });
    expect(p.log()).toMatch(/applied schema migration/);
    await p.stop(10_000);
  }, 90_000);
});

describe('the collector as the image user', () => {
  const uid = uidOf('collector');
  const queueDir = envOf('collector').OTELCOL_FILE_STORAGE_DIR!;
  const init = services['collector-queue-init'];

  async function collector(storage: string): Promise<Collector> {
    return Collector.create({ jaegerEndpoint: '127.0.0.1:1', ledgerUrl: 'http://127.0.0.1:1', token: 't', fileStorageDir: storage, runAs: uid });
  }

  it('cannot open its queue on a volume as Docker creates it (owned by root)', async () => {
    const volume = join(root, 'queue-as-created');
    mkdirSync(volume);
    const c = await collector(volume);
    await expect(c.start()).rejects.toThrow();
    expect(c.log()).toMatch(/permission denied/i);
  }, 60_000);

  it('starts after the one-shot chown service ran over the volume', async () => {
    const volume = join(root, 'queue');
    mkdirSync(volume);
    // The init service's own command, on this directory in place of the mount point.
    const [cmd, ...args] = (init.command as string[]).map((a) => (a === queueDir ? volume : a));
    await runToCompletion('collector-queue-init', cmd!, { args });
    const c = await collector(volume);
    await c.start();
    await c.stop();
  }, 60_000);
});
