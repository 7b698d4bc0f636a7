/**
 * `npm run demo` as a newcomer reads it (issue 21): tables that fit a 100-column terminal, a keyed
 * hash shown, the tampered record named as the table and verify name it (its seq), and no
 * needless flags.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ensureBuilt } from '../cli/cli-helpers';
import { repoRoot } from '../support/harness';

it('the demo is narrow, shows a keyed hash, and says which record it changed', () => {
  ensureBuilt();
  const run = spawnSync(process.execPath, [join(repoRoot, 'scripts/demo.mjs')], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
  const out = run.stdout;
  expect(run.status, out + run.stderr).toBe(0);
  // Every table line (a header, its dashes, its rows) fits.
  const lines = out.split('\n');
  const tables = lines.flatMap((l, i) => (/^-+( {2}-+)+$/.test(l) ? [lines[i - 1]!, l] : []));
  expect(tables.length).toBeGreaterThan(0);
  for (const l of lines.filter((l) => /^\s*\d+\s{2}/.test(l)).concat(tables)) expect(l.length, l).toBeLessThanOrEqual(100);
  expect(out).toMatch(/^\s*\d+\s+hmac-sha256:demo:[0-9a-f]{64}$/m);
  expect(out).not.toMatch(/--from|--to /);
  const changed = /the record with seq (\d+) is changed: its output_tokens (\d+) -> (\d+)/.exec(out);
  expect(changed, out).not.toBeNull();
  expect(changed![2]).not.toBe(changed![3]);
  expect(run.stderr).toMatch(new RegExp(`LEDGER_RECORD_HASH_MISMATCH: .*\\(seq ${changed![1]}\\)`));
}, 300_000);
