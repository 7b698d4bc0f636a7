/**
 * The spool's settings from the environment. A value that cannot be used is a configuration error
 * (thrown; the register entry point turns it into one stderr line and exit status 78), never a
 * silent fallback: an operator who asked for a 2 GiB spool and got none would lose spans.
 */
import { resolve } from 'node:path';

export interface SpoolConfig {
  /** false: LLM_AUDIT_SPOOL=off, the plain BatchSpanProcessor as NodeSDK builds it. */
  enabled: boolean;
  /** Absolute path of the spool root (each process works in its own subdirectory of it). */
  dir: string;
  /** Bytes of spool files one process may hold; batches past it are dropped and counted. */
  maxBytes: number;
}

/**
 * Beside the default ledger (`./llm-audit-ledger`, src/ledger/span-exporter.ts): a path the
 * operator already expects the package to write to, and durable (not os.tmpdir(), which a reboot
 * or a tmp cleaner empties: exactly the spans the spool exists to keep).
 */
export const DEFAULT_SPOOL_DIR = './llm-audit-spool';
export const DEFAULT_SPOOL_MAX_BYTES = 512 * 1024 * 1024;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** `LLM_AUDIT_SPOOL` (on|off), `LLM_AUDIT_SPOOL_DIR`, `LLM_AUDIT_SPOOL_MAX_BYTES` (bytes, or with KiB/MiB/GiB/KB/MB/GB). */
export function spoolConfigFromEnv(env: NodeJS.ProcessEnv): SpoolConfig {
  const mode = env.LLM_AUDIT_SPOOL?.trim().toLowerCase();
  let enabled = true;
  if (mode === 'off' || mode === 'false' || mode === '0') enabled = false;
  else if (mode !== undefined && mode !== '' && mode !== 'on' && mode !== 'true' && mode !== '1') {
    throw new Error(`LLM_AUDIT_SPOOL=${env.LLM_AUDIT_SPOOL} is not one of on, off`);
  }
  const dir = resolve(env.LLM_AUDIT_SPOOL_DIR?.trim() || DEFAULT_SPOOL_DIR);
  return { enabled, dir, maxBytes: parseByteSize(env.LLM_AUDIT_SPOOL_MAX_BYTES) };
}

function parseByteSize(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_SPOOL_MAX_BYTES;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new Error(`LLM_AUDIT_SPOOL_MAX_BYTES=${raw} is not a positive size in bytes (e.g. 536870912, 512MiB, 2GiB)`);
  }
  return bytes;
}
