/**
 * Only the configuration module and the entry points read the environment (issue 20): the library
 * takes plain options, so `startAudit(env)` and the CLI's flags mean what they say. A new reader of
 * process.env (or of OpenTelemetry's getXFromEnv helpers, which read it) anywhere else fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(__dirname, '../../src');

/** The places allowed to read it, and why. */
const ALLOWED = new Set([
  'config/index.ts', // processEnvironment(): what an entry point that was given no env reads
  'config/process-defaults.ts', // an instrumentation an application builds without options (see its comment)
  'register.ts', // the `register` entry point
  'cli/io.ts', // the CLI entry point's processIo()
  'next.ts', // the Next.js entry point: NEXT_RUNTIME / NEXT_PHASE / NEXT_DIST_DIR, Next's facts, not settings
]);

const READS = /\bprocess\s*(?:\.\s*env\b|\[\s*['"]env['"]\s*\])|\bget(?:String|Number|Boolean|StringList)FromEnv\s*\(/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : /\.(ts|mts|cts|mjs|cjs|js)$/.test(name) ? [path] : [];
  });
}

/** The code of a file without its comments (a comment may name process.env to explain). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('who reads the environment', () => {
  it('no module outside src/config and the entry points reads process.env', () => {
    const readers = files(SRC)
      .map((path) => relative(SRC, path).split('\\').join('/'))
      .filter((path) => READS.test(code(readFileSync(join(SRC, path), 'utf8'))));
    expect(readers.filter((path) => !ALLOWED.has(path))).toEqual([]);
    // The allowance list stays honest: each entry still reads it.
    expect(readers.sort()).toEqual([...ALLOWED].sort());
  });
});
