/**
 * The README's configuration table is the configuration reference; it is checked against the
 * configuration module (src/config/variables.ts) both ways: every variable the module knows is a
 * row, every LLM_AUDIT_* row is a variable the module knows, with the same default.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config';

function readmeRows(): Map<string, string> {
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = line.split(' | ');
    const name = /^\| `(LLM_AUDIT_[A-Z_]+)`/.exec(line)?.[1];
    if (name !== undefined) rows.set(name, cells[1]!.trim());
  }
  return rows;
}

describe('the configuration reference', () => {
  it('the README table lists every variable of src/config with its default, and no other', () => {
    const rows = readmeRows();
    const expected = new Map(CONFIG_VARIABLES.map((v) => [v.name, v.default]));
    expect([...rows.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, def] of expected) expect(rows.get(name), name).toBe(def);
  });

  it('every LLM_AUDIT_* variable named in src/ is in the configuration module', () => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const named = new Set(
      execFileSync('grep', ['-rhoE', 'LLM_AUDIT_[A-Z_]*[A-Z]', join(__dirname, '../../src')], { encoding: 'utf8' })
        .split('\n')
        .filter((n) => n !== ''),
    );
    // Not variables: the prefix families named in prose, and an error code.
    for (const notVariable of ['LLM_AUDIT_CONTENT_', 'LLM_AUDIT_SPOOL_', 'LLM_AUDIT_UNAVAILABLE']) named.delete(notVariable);
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    expect([...named].filter((n) => !known.has(n)).sort()).toEqual([]);
  });
});
