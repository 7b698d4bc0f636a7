// Builds the package: TypeScript to CommonJS under dist/cjs, then the thin ESM entry points
// (src/esm/*.mjs, hand-written so that `--import` can install the loader hook before anything
// else is evaluated) copied next to it under dist/esm.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
  stdio: 'inherit',
});
// dist/cjs is CommonJS whatever the root package.json says about "type".
writeFileSync(join(root, 'dist/cjs/package.json'), '{ "type": "commonjs" }\n');
mkdirSync(join(root, 'dist/esm'), { recursive: true });
cpSync(join(root, 'src/esm'), join(root, 'dist/esm'), { recursive: true });
