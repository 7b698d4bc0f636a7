/**
 * The Go builds of the end-to-end binaries (scripts/build-jaeger.sh, scripts/build-collector.sh)
 * find an up-to-date binary without Go (issue 21: with the binaries built but no Go on PATH, 9
 * end-to-end tests failed). Each script runs on a copy of the repository's scripts, with a
 * stand-in binary and stamp, and a PATH without Go.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { goBuild } from '../e2e/support/stack';
import { repoRoot } from '../support/harness';

const NO_GO_PATH = '/usr/bin:/bin';
let root: string;
const made: string[] = [];

function copyWith(binary: string, stamp: string): void {
  root = mkdtempSync(join(tmpdir(), 'go-builds-'));
  cpSync(join(repoRoot, 'scripts'), join(root, 'scripts'), { recursive: true });
  cpSync(join(repoRoot, 'collector'), join(root, 'collector'), { recursive: true });
  mkdirSync(join(root, '.cache/bin'), { recursive: true });
  writeFileSync(join(root, '.cache/bin', binary), '#!/bin/sh\necho stand-in\n');
  chmodSync(join(root, '.cache/bin', binary), 0o755);
  writeFileSync(join(root, '.cache/bin', `${binary}.stamp`), `${stamp}\n`);
}

function run(script: string, ...args: string[]) {
  // A build that starts (the old behaviour: Go found elsewhere, a rebuild for another Go version)
  // is cut short: it is a failure here either way.
  return spawnSync('bash', [join(root, 'scripts', script), ...args], { encoding: 'utf8', timeout: 20_000, env: { PATH: NO_GO_PATH, HOME: root } });
}

const version = (script: string, name: string): string => new RegExp(`^${name}=(\\S+)`, 'm').exec(readFileSync(join(repoRoot, 'scripts', script), 'utf8'))![1]!;
const jaegerInputs = () => `module=github.com/jaegertracing/jaeger@${version('build-jaeger.sh', 'JAEGER_VERSION')}`;
const collectorInputs = () =>
  `manifest-sha256=${createHash('sha256').update(readFileSync(join(repoRoot, 'collector/builder-config.yaml'))).digest('hex')} builder=${version('build-collector.sh', 'BUILDER_VERSION')}`;

afterEach(() => {
  for (const dir of [root, ...made.splice(0)]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Go builds of the end-to-end binaries', () => {
  it('there is no go on the PATH these tests give', () => {
    expect(spawnSync('sh', ['-c', 'command -v go'], { env: { PATH: NO_GO_PATH } }).status).not.toBe(0);
  });

  for (const [script, binary, inputs] of [
    ['build-jaeger.sh', 'jaeger', jaegerInputs],
    ['build-collector.sh', 'otelcol-llm-audit', collectorInputs],
  ] as const) {
    it(`${script}: an up-to-date binary needs no Go, whatever Go built it`, () => {
      copyWith(binary, `${inputs()} go=go1.0-some-other-go`);
      for (const args of [[], ['--check']]) {
        const r = run(script, ...args);
        expect(r.status, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toContain('up to date');
      }
    });

    it(`${script} --check: exit 1 when the inputs changed, building nothing`, () => {
      copyWith(binary, `${inputs().replace(/=(\S)/, '=0$1')} go=go1.26.8`);
      const r = run(script, '--check');
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toContain('needs a build');
      expect(execFileSync('cat', [join(root, '.cache/bin', binary)], { encoding: 'utf8' })).toContain('stand-in');
    });
  }
});

describe('a Go build during the test run', () => {
  /** A build script that needs a build (--check exits 1), then "builds" for `seconds`. */
  function fakeScript(seconds: number, exitCode = 0): string {
    const dir = mkdtempSync(join(tmpdir(), 'go-builds-'));
    made.push(dir);
    const script = join(dir, 'build-thing.sh');
    writeFileSync(script, `[ "$1" = --check ] && exit 1\necho compiling; sleep ${seconds}; exit ${exitCode}\n`);
    return script;
  }

  it('says what it builds, how long that usually takes and where the log is, then reports while it runs', async () => {
    const said: string[] = [];
    expect(await goBuild(fakeScript(1.5), 'the thing', { say: (l) => said.push(l), everyMs: 400 })).toBe('built');
    expect(said[0]).toMatch(/^building the thing from Go modules \(.*build-thing\.sh\) for the end-to-end tests; .*about 24 min on a 2-core machine; log: \S+build-thing-\S+\.log/);
    const log = /log: (\S+)/.exec(said[0]!)![1]!;
    expect(readFileSync(log, 'utf8')).toContain('compiling');
    expect(said.filter((l) => l.startsWith('still building the thing')).length).toBeGreaterThanOrEqual(2);
    expect(said[said.length - 1]).toMatch(/^built the thing in \d+ min$/);
  });

  it('says nothing when the binary is up to date, and fails with the log when the build does', async () => {
    const said: string[] = [];
    const upToDate = fakeScript(0);
    writeFileSync(upToDate, 'exit 0\n');
    expect(await goBuild(upToDate, 'the thing', { say: (l) => said.push(l) })).toBe('up to date');
    expect(said).toEqual([]);
    await expect(goBuild(fakeScript(0, 3), 'the thing', { say: (l) => said.push(l) })).rejects.toThrow(/build-thing\.sh failed \(code 3[\s\S]*compiling/);
  });
});
