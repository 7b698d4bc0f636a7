/**
 * docs/auditor-guide.md cannot drift from the CLI: every ```console block in it is a command run
 * here, in order, on the fixed data set of auditor-data.ts (in ./llm-audit-ledger, with the test
 * key as audit-signing.pem(.pub) and the prompt of req-0001 as prompt.json), and its output (stdout
 * then stderr, less the note that the read is not recorded) must be the block's text. `<...>` in the guide stands for text that changes from run
 * to run (ages, times of day, random ids) and matches anything within its line.
 *
 * UPDATE_AUDITOR_GUIDE=1 rewrites the outputs from a run, keeping the lines whose placeholders
 * still match; read the diff before committing it.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMPT_FILE, PUBLIC_KEY, SIGNING_KEY, writeAuditorLedger } from './auditor-data';
import { ROOT, cli, ensureBuilt } from './cli-helpers';

const GUIDE = join(ROOT, 'docs/auditor-guide.md');
/**
 * The note of query and report that this read is not recorded as an audit.read record (the test
 * runs without the signing key of the signed ledger, as an auditor would): the guide says it once.
 */
const UNRECORDED_READ = 'note: this read is not recorded in the ledger (audit.read)';
const BLOCK = /```console\n([\s\S]*?)```/g;
let cwd: string;

beforeAll(async () => {
  ensureBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'guide-'));
  await writeAuditorLedger({ dir: join(cwd, 'llm-audit-ledger') });
  copyFileSync(PUBLIC_KEY, join(cwd, 'audit-signing.pem.pub'));
  copyFileSync(SIGNING_KEY, join(cwd, 'audit-signing.pem'));
  copyFileSync(PROMPT_FILE, join(cwd, 'prompt.json'));
}, 60_000);
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** Shell words: spaces separate, '...' and "..." quote (no escapes needed in the guide). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Joins quoted words back: `A="x y"` is one word in the guide. */
function command(line: string): { env: Record<string, string>; args: string[] } {
  const tokens = [...line.matchAll(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g)].map((m) => m[0]);
  const env: Record<string, string> = {};
  while (tokens[0] && /^[A-Z_]+=/.test(tokens[0])) {
    const [name, ...rest] = tokens.shift()!.split('=');
    env[name!] = words(rest.join('=')).join(' ');
  }
  if (tokens.shift() !== 'llm-audit') throw new Error(`a guide command must run llm-audit: ${line}`);
  return { env, args: tokens.flatMap(words) };
}

const pattern = (expected: string): RegExp =>
  new RegExp('^' + expected.split(/<[^<>\n]*>/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^\\n]*?') + '$');

function same(expected: string, actual: string): boolean {
  const e = expected.split('\n');
  const a = actual.split('\n');
  return e.length === a.length && e.every((line, i) => pattern(line).test(a[i]!));
}

describe('docs/auditor-guide.md', () => {
  it('every command prints what the guide shows', () => {
    const text = readFileSync(GUIDE, 'utf8');
    const blocks = [...text.matchAll(BLOCK)];
    expect(blocks.length).toBeGreaterThanOrEqual(15);
    const updated: string[] = [];
    const failures: string[] = [];
    for (const block of blocks) {
      const [first, ...rest] = block[1]!.replace(/\n$/, '').split('\n');
      expect(first, 'a block starts with "$ llm-audit ..."').toMatch(/^\$ /);
      const { env, args } = command(first!.slice(2));
      const r = cli(args, env, cwd);
      const actual = (r.stdout + r.stderr)
        .replace(/\s+$/, '')
        .split('\n')
        .map((l) => l.trimEnd())
        .filter((l) => !l.startsWith(UNRECORDED_READ))
        .join('\n');
      const expected = rest.join('\n');
      if (!same(expected, actual)) failures.push(`$ ${first!.slice(2)}\n--- guide\n${expected}\n--- actual (exit ${r.code})\n${actual}`);
      const old = rest;
      updated.push('```console\n' + first + '\n' + actual.split('\n').map((line, i) => (old[i] !== undefined && pattern(old[i]!).test(line) ? old[i] : line)).join('\n') + '\n```');
    }
    if (process.env.UPDATE_AUDITOR_GUIDE === '1') {
      let i = 0;
      writeFileSync(GUIDE, text.replace(BLOCK, () => updated[i++]!));
      return;
    }
    expect(failures.join('\n\n')).toBe('');
  });
});
