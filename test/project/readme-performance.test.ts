/**
 * The README states only what a results file holds (issue 19): every figure in its Performance
 * section (µs, ratios, MB, modules, seconds...) must appear, as written, in one of the results
 * files that section links to, and every budget verdict it states must be the verdict of that line
 * in the file. A rerun that moves a number then fails here until the README is updated from it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/harness';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The text of the README section that starts with `## title`, up to the next `## `. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README has no "## ${title}" section`).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

const performance = section('Performance');
const linked = [...new Set([...performance.matchAll(/\]\((bench\/results\/[^)#\s]+\.md)\)/g)].map((m) => m[1]!))];
const results = linked.map((file) => ({ file, text: readFileSync(join(repoRoot, file), 'utf8') }));

/**
 * The figures of a text: signed µs (+245), ratios (2.47×), ranges (±30–80), and numbers with a unit.
 * Plain counts in prose ("5 rounds", "50 chunks", "10 KB") are settings, read from the command.
 */
function figures(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/[+±−-]?\d[\d,]*(?:\.\d+)?(?=×)|[+±]\d[\d,]*(?:\.\d+)?/g)) out.add(m[0]);
  return [...out];
}

describe('README Performance section', () => {
  it('links the results files it quotes, and they exist', () => {
    expect(linked.length).toBeGreaterThan(0);
    expect(linked).toContain('bench/results/latest.md');
  });

  it('states only figures that a linked results file holds', () => {
    const haystack = results.map((r) => r.text).join('\n');
    const missing = figures(performance).filter((figure) => {
      // A range "±30–80" is two figures; the file holds each as a noise bound or a signed value.
      const bare = figure.replace(/^[±+−-]/, '');
      return !haystack.includes(figure) && !haystack.includes(`±${bare}`) && !haystack.includes(`+${bare}`) && !haystack.includes(`${bare}×`);
    });
    expect(missing, `figures in the README's Performance section that no linked results file holds (${linked.join(', ')})`).toEqual([]);
  });

  it('states each budget verdict as the results file has it', () => {
    // The budget is measured over a loopback socket (issue 19): its verdicts are the loopback run's.
    const loopback = results.find((r) => r.file === 'bench/results/latest.md')!.text;
    // "| SDK | calls | messages | exporter | line | value | cross-check | margin | result |" rows.
    const verdicts = new Map<string, string>();
    for (const row of loopback.split('\n').filter((l) => l.includes('| ≤ 1.0× '))) {
      const cells = row.split('|').map((c) => c.trim());
      verdicts.set(cells.slice(1, 6).join(' '), `${cells[6]} ${cells[9]}`);
    }
    expect(verdicts.size, 'the loopback results file has no budget lines in the current format').toBeGreaterThan(0);
    // The README's budget table repeats the file's rows (SDK, calls, messages, exporter, line, ratio,
    // result): each must be one of them, with the same ratio and result.
    const rows = performance.split('\n').filter((l) => l.startsWith('| ') && l.includes(' ≤ 1.0× '));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      expect(verdicts.get(cells.slice(1, 6).join(' ')), `README budget row not in the results file: ${row}`).toBe(`${cells[6]} ${cells[7]}`);
    }
  });
});
