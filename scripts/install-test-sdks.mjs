// Installs the fixture packages the tests load, each from its own lockfile: the older SDK majors of
// the version-matrix tests (test/sdk-versions/*) and the runners, bundlers, OpenTelemetry neighbours
// and Next.js app of the deployment matrix (test/deploy/apps). Cheap when they are already installed
// (node_modules newer than the lockfile); CI runs it on a fresh clone. Prints what it installs and
// how long it took.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sdkVersions = join(root, 'test', 'sdk-versions');
const deployApps = join(root, 'test', 'deploy', 'apps');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function install(dir) {
  const lock = join(dir, 'package-lock.json');
  if (!existsSync(lock)) return;
  // A node_modules that is a link belongs to another checkout (a worktree sharing the main one's):
  // `npm ci` would empty the linked directory under every checkout that uses it.
  try {
    if (lstatSync(join(dir, 'node_modules')).isSymbolicLink()) return;
  } catch {
    // not there yet
  }
  const marker = join(dir, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  const started = Date.now();
  process.stdout.write(`installing test fixtures in ${relative(root, dir)}\n`);
  execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  process.stdout.write(`installed ${relative(root, dir)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

for (const name of readdirSync(sdkVersions)) install(join(sdkVersions, name));
install(deployApps);

// The deployment apps load otel-llm-audit as an installed package: a link to this checkout, so they
// run its dist/ (built by `npm run build`) with its own dependencies.
const link = join(deployApps, 'node_modules', 'otel-llm-audit');
let present = false;
try {
  present = lstatSync(link).isSymbolicLink();
  if (!present) rmSync(link, { recursive: true, force: true });
} catch {
  // not there yet
}
if (!present && existsSync(join(deployApps, 'node_modules'))) symlinkSync(relative(join(deployApps, 'node_modules'), root), link, 'dir');
