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
import { repoRoot } from '../support/harness';

const NO_GO_PATH = '/usr/bin:/bin';
let root: string;

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
  if (root) rmSync(root, { recursive: true, force: true });
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
