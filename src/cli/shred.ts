/**
 * `llm-audit shred --tenant T --yes`: crypto-shredding of one tenant's encrypted content. Destroys
 * every data key of the tenant in the content keystore and records the shred in shredded.jsonl;
 * the ledger is not touched, so it still verifies, while the tenant's envelopes can no longer be
 * opened (CONTENT_KEY_SHREDDED). Needs no master key: only the keystore.
 *
 * Refuses without --yes, except on a terminal where it asks for the tenant id to be typed again.
 * Exit codes: 0 done; 2 usage (or not confirmed); 3 keystore unusable or locked.
 */
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ContentError, defaultKeystorePath, shredTenant } from '../audit/content';
import { LedgerError } from '../ledger/errors';
import { runContentCommand } from './decrypt';
import { flag, parse, str, type CliIo } from './io';

export const SHRED_USAGE = 'llm-audit shred --tenant T [--keystore FILE | --key FILE] [--reason TEXT] [--yes] [--json]';

async function confirmOnTerminal(tenant: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question(`this destroys every data key of tenant ${JSON.stringify(tenant)}: its encrypted content becomes unreadable for good.\ntype the tenant id again to confirm: `, resolve);
    });
    return answer === tenant;
  } finally {
    rl.close();
  }
}

export async function shredCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    { tenant: { type: 'string' }, keystore: { type: 'string' }, key: { type: 'string' }, reason: { type: 'string' }, yes: { type: 'boolean' }, json: { type: 'boolean' } },
    SHRED_USAGE,
  );
  const tenant = str(p, 'tenant');
  if (tenant === undefined || tenant === '') throw new LedgerError('LEDGER_USAGE', `--tenant T is required\nusage: ${SHRED_USAGE}`);
  const keyPath = str(p, 'key') ?? (io.env.LLM_AUDIT_CONTENT_KEY?.trim() || undefined);
  const keystore = str(p, 'keystore') ?? (io.env.LLM_AUDIT_CONTENT_KEYSTORE?.trim() || (keyPath !== undefined ? defaultKeystorePath(keyPath) : undefined));
  if (keystore === undefined) {
    throw new LedgerError('LEDGER_USAGE', `give --keystore FILE (or --key FILE, or set LLM_AUDIT_CONTENT_KEYSTORE / LLM_AUDIT_CONTENT_KEY)\nusage: ${SHRED_USAGE}`);
  }
  return runContentCommand(io, async () => {
    if (!existsSync(keystore)) {
      throw new ContentError('CONTENT_KEYSTORE_NOT_FOUND', `the content keystore ${keystore} does not exist; nothing was shredded`);
    }
    if (!flag(p, 'yes') && !(await confirmOnTerminal(tenant))) {
      io.err(`llm-audit: CONTENT_USAGE: refusing to shred tenant ${JSON.stringify(tenant)} without --yes (this cannot be undone)`);
      return 2;
    }
    const reason = str(p, 'reason');
    const result = shredTenant(keystore, tenant, reason !== undefined ? { reason } : {});
    if (flag(p, 'json')) {
      await io.out(JSON.stringify(result) + '\n');
    } else if (result.deks.length === 0) {
      await io.out(`tenant ${JSON.stringify(tenant)} had no data keys in ${result.keystore}; nothing destroyed (recorded in shredded.jsonl)\n`);
    } else {
      await io.out(
        `shredded tenant ${JSON.stringify(tenant)}: destroyed ${result.deks.length} data key${result.deks.length === 1 ? '' : 's'} (${result.deks.join(', ')}) ` +
          `at ${result.at}; recorded in shredded.jsonl next to ${result.keystore}\n`,
      );
      io.err('its envelopes can no longer be decrypted (CONTENT_KEY_SHREDDED); the ledger is unchanged and still verifies');
    }
    return 0;
  });
}
