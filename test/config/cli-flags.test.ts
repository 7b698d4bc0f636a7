/**
 * CLI flags map onto the configuration, not onto a made-up environment (issue 20): `serve
 * --fsync` used to be passed as LLM_AUDIT_FSYNC, so a bad flag was reported under the name of a
 * variable the operator never set.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt } from '../cli/cli-helpers';

beforeAll(() => ensureBuilt());

describe('llm-audit serve flags', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'cli-flags-')), 'ledger');

  it('a bad --fsync is reported as the flag, a usage error', () => {
    const result = cli(['serve', '--ledger', dir, '--port', '0', '--fsync', 'sometimes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('llm-audit: LEDGER_USAGE: --fsync must be one of always, batch, none, got "sometimes"\n');
  });

  it('a bad --checkpoint-every is reported as the flag', () => {
    const result = cli(['serve', '--ledger', dir, '--port', '0', '--checkpoint-every', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('llm-audit: LEDGER_USAGE: --checkpoint-every must be a positive integer, got "0"\n');
  });

  it('a bad LLM_AUDIT_FSYNC is reported as the variable', () => {
    const result = cli(['serve', '--ledger', dir, '--port', '0'], { LLM_AUDIT_FSYNC: 'sometimes' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('llm-audit: LEDGER_USAGE: LLM_AUDIT_FSYNC must be one of always, batch, none, got "sometimes"\n');
  });
});
