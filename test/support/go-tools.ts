/**
 * The stock transparency-log tools built by scripts/build-go-tools.sh into .cache/bin: tlogcheck
 * (golang.org/x/mod's sumdb/note and sumdb/tlog) and torchwood's litewitness with witnessctl. A test
 * that needs them fails, never skips, when they are missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, repoRoot, startProcess, waitFor, waitForPort, type ManagedProcess } from './processes';

const binDir = join(repoRoot, '.cache', 'bin');
export const tlogcheckBin = join(binDir, 'tlogcheck');
export const litewitnessBin = join(binDir, 'litewitness');
export const witnessctlBin = join(binDir, 'witnessctl');

export function requireGoTools(): void {
  const missing = [tlogcheckBin, litewitnessBin, witnessctlBin].filter((b) => !existsSync(b));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} missing: build them with \`bash scripts/build-go-tools.sh\` (needs Go and the Go module proxy)`);
  }
}

/** Runs tlogcheck; `files` are written to `dir` first (name -> content). */
export function tlogcheck(dir: string, args: string[], files: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  requireGoTools();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const r = spawnSync(tlogcheckBin, args.map((a) => (a in files ? join(dir, a) : a)), { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Witness {
  url: string;
  /** The witness's cosignature verifier key, as litewitness prints it. */
  vkey: string;
  name: string;
  process: ManagedProcess;
  /** Stops litewitness (its database stays). */
  stop(): Promise<void>;
  /** Starts it again on the same port and database. */
  start(): Promise<void>;
}

/**
 * A litewitness on loopback, provisioned the way its README says: an Ed25519 key in a dedicated
 * ssh-agent, and the log's origin and verifier key added with witnessctl.
 */
export async function startWitness(dir: string, origin: string, logVerifierKey: string, name = 'witness.test/w1'): Promise<Witness> {
  requireGoTools();
  const key = join(dir, 'witness-key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'litewitness', '-f', key]);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  const sock = join(dir, 'agent.sock');
  startProcess('ssh-agent', 'ssh-agent', { args: ['-D', '-a', sock] });
  await waitFor('the ssh-agent socket', () => existsSync(sock) || undefined, { timeoutMs: 10_000 });
  execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
  const db = join(dir, 'litewitness.db');
  execFileSync(witnessctlBin, ['add-log', '-db', db, '-origin', origin], { stdio: 'pipe' });
  execFileSync(witnessctlBin, ['add-key', '-db', db, '-origin', origin, '-key', logVerifierKey], { stdio: 'pipe' });
  const [port] = await freePorts(1);
  const witness: Witness = {
    url: `http://127.0.0.1:${port}`,
    vkey: '',
    name,
    process: undefined as unknown as ManagedProcess,
    async stop() {
      await witness.process.stop(5_000);
    },
    async start() {
      witness.process = startProcess('litewitness', litewitnessBin, {
        args: ['-db', db, '-name', name, '-key', fingerprint, '-ssh-agent', sock, '-listen', `127.0.0.1:${port}`],
      });
      await waitForPort('127.0.0.1', port!, { timeoutMs: 15_000 });
      witness.vkey = await waitFor('litewitness to print its verifier key', () => /vkey=(\S+)/.exec(witness.process.log())?.[1], { timeoutMs: 10_000 });
    },
  };
  await witness.start();
  return witness;
}
