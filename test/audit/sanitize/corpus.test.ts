import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_TYPES, createSanitizer } from '../../../src/audit/sanitize/detectors';

/**
 * Precision and recall per type over test/fixtures/sanitize-corpus.json: hand-written sentences
 * mixing personal data and secrets with look-alikes (dates, order ids, versions, hashes, invalid
 * checksums), each labelled with the findings a careful reader would expect, misses included.
 * A finding counts as a true positive only with the right type and the exact substring.
 *
 * `LLM_AUDIT_WRITE_SANITIZE_METRICS=1 npx vitest run test/audit/sanitize/corpus.test.ts` also
 * writes the table to test/fixtures/sanitize-metrics.md.
 */

interface Entry {
  text: string;
  findings: Array<{ type: string; value: string }>;
  note?: string;
}

const fixtures = join(__dirname, '..', '..', 'fixtures');
const corpus = JSON.parse(readFileSync(join(fixtures, 'sanitize-corpus.json'), 'utf8')) as Entry[];

// Set from the measured values, with a margin for corpus additions; see docs/sanitization.md.
const MINIMUM: Record<string, { precision: number; recall: number }> = {
  SECRET: { precision: 0.95, recall: 0.95 },
  CARD: { precision: 0.95, recall: 0.95 },
  IBAN: { precision: 0.95, recall: 0.95 },
  SSN: { precision: 0.95, recall: 0.9 },
  EMAIL: { precision: 0.95, recall: 0.9 },
  IP: { precision: 0.95, recall: 0.95 },
  PHONE: { precision: 0.9, recall: 0.85 },
};

interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

function measure(): Map<string, Counts> {
  const sanitizer = createSanitizer();
  const counts = new Map<string, Counts>(BUILTIN_TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }]));
  for (const entry of corpus) {
    const expected = entry.findings.map((f) => `${f.type}\u0000${f.value}`);
    for (const f of sanitizer.scan(entry.text)) {
      const key = `${f.type}\u0000${entry.text.slice(f.start, f.end)}`;
      const i = expected.indexOf(key);
      if (i === -1) counts.get(f.type)!.fp++;
      else {
        expected.splice(i, 1);
        counts.get(f.type)!.tp++;
      }
    }
    for (const key of expected) counts.get(key.split('\u0000')[0]!)!.fn++;
  }
  return counts;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : a / b);

function table(counts: Map<string, Counts>): string {
  const rows = [...counts].map(([type, c]) => {
    const p = ratio(c.tp, c.tp + c.fp);
    const r = ratio(c.tp, c.tp + c.fn);
    return `| ${type} | ${c.tp + c.fn} | ${c.tp} | ${c.fp} | ${c.fn} | ${p.toFixed(3)} | ${r.toFixed(3)} |`;
  });
  const negatives = corpus.filter((e) => e.findings.length === 0).length;
  return [
    `Corpus: ${corpus.length} labelled strings (${negatives} with nothing to find), test/fixtures/sanitize-corpus.json.`,
    '',
    '| Type | Labelled | True positives | False positives | Missed | Precision | Recall |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

describe('sanitizer corpus', () => {
  it('has at least 200 labelled strings, each label a substring of its text', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    for (const entry of corpus) {
      for (const f of entry.findings) {
        expect(entry.text, f.value).toContain(f.value);
        expect(BUILTIN_TYPES).toContain(f.type);
      }
    }
  });

  it('meets the minimum precision and recall per type', () => {
    const counts = measure();
    if (process.env['LLM_AUDIT_WRITE_SANITIZE_METRICS'] === '1') {
      writeFileSync(join(fixtures, 'sanitize-metrics.md'), `# Sanitizer precision and recall\n\n${table(counts)}`);
    }
    for (const [type, c] of counts) {
      const min = MINIMUM[type]!;
      expect(c.tp + c.fn, `${type} has labelled examples`).toBeGreaterThanOrEqual(10);
      expect(ratio(c.tp, c.tp + c.fp), `${type} precision`).toBeGreaterThanOrEqual(min.precision);
      expect(ratio(c.tp, c.tp + c.fn), `${type} recall`).toBeGreaterThanOrEqual(min.recall);
    }
  });
});
