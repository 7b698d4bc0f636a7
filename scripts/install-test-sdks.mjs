// Installs the older SDK majors that the version-matrix tests load (test/sdk-versions/*), each
// from its own lockfile. Cheap when they are already installed; CI runs it on a fresh clone.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const base = fileURLToPath(new URL('../test/sdk-versions/', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
for (const name of readdirSync(base)) {
  const dir = join(base, name);
  const lock = join(dir, 'package-lock.json');
  if (!existsSync(lock)) continue;
  const marker = join(dir, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) continue;
  process.stdout.write(`installing test SDK versions in test/sdk-versions/${name}\n`);
  execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
}
