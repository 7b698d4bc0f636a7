// Builds the package: TypeScript to CommonJS under dist/cjs, then the thin ESM entry points
// (src/esm/*.mjs, hand-written so that `--import` can install the loader hook before anything
// else is evaluated) copied next to it under dist/esm.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// Built beside dist and swapped in with renames, so that a process starting from dist meanwhile
// (a test, the demo) never finds it half-written or missing.
const out = join(root, `.dist-build-${process.pid}`);
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', join(out, 'cjs')], {
  stdio: 'inherit',
});
// dist/cjs is CommonJS whatever the root package.json says about "type".
writeFileSync(join(out, 'cjs/package.json'), '{ "type": "commonjs" }\n');
mkdirSync(join(out, 'esm'), { recursive: true });
cpSync(join(root, 'src/esm'), join(out, 'esm'), { recursive: true });
const dist = join(root, 'dist');
const old = join(root, `.dist-old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });
