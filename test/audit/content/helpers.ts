import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { createContentCipher, createContentMasterKey, loadContentMasterKey, type ContentCipher, type MasterKey } from '../../../src/audit/content';
import { MAIN, ROOT } from '../../cli/cli-helpers';

const dirs: string[] = [];

export function tempDir(prefix = 'content-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new master key file in `dir`, loaded. */
export function newKey(dir: string, kid: string): MasterKey & { path: string } {
  const path = join(dir, `${kid}.json`);
  createContentMasterKey(path, kid);
  return { ...loadContentMasterKey(path), path };
}

export function cipherFor(dir: string, master: MasterKey | undefined, oldKeys: MasterKey[] = [], refreshMs = 0): ContentCipher {
  return createContentCipher({ ...(master ? { masterKey: master } : {}), oldKeys, keystorePath: join(dir, 'content-keystore.jsonl'), refreshMs });
}

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

/** The compiled package (CLI and dist/cjs/audit/content) for tests that spawn processes; rebuilt when older than its sources. */
export function ensureBuiltWithContent(): void {
  const sources = ['src/audit', 'src/cli', 'src/ledger'].map((d) => newest(join(ROOT, d)));
  const marker = join(ROOT, 'dist/cjs/audit/content/index.js');
  if (existsSync(MAIN) && existsSync(marker) && Math.min(statSync(MAIN).mtimeMs, statSync(marker).mtimeMs) >= Math.max(...sources)) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: 'pipe' });
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`npm run build failed:\n${out.slice(0, 2000)}`);
  }
}
