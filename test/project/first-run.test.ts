/**
 * What a newcomer sees before any test of the package runs: `npm install` and every vitest start
 * print no warning about this project's own set-up (issue 21).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/harness';

describe('first run', () => {
  it('every dependency install script is reviewed in allowScripts (npm warns at each install otherwise)', () => {
    // Read-only: lists the installed packages whose install scripts allowScripts does not cover.
    const out = execFileSync('npm', ['install-scripts', 'ls'], { cwd: repoRoot, encoding: 'utf8' });
    expect(out.trim()).toBe('No packages with unreviewed install scripts.');
  });

  it('vitest loads its config without the Vite configLoader warning', () => {
    const run = spawnSync(process.execPath, [join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'list', '--filesOnly', 'test/project/first-run.test.ts'], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: '' },
    });
    const out = run.stdout + run.stderr;
    expect(run.status, out).toBe(0);
    expect(out).toContain('first-run.test.ts');
    expect(out).not.toMatch(/configLoader|Vite config/);
  });
});
