/**
 * `llm-audit shred --tenant T --yes`: crypto-shredding of one tenant's encrypted content. Destroys
 * every data key of the tenant in the content keystore and records the shred in shredded.jsonl;
 * the ledger's records are not touched, so it still verifies, while the tenant's envelopes can no
 * longer be opened (CONTENT_KEY_SHREDDED). Needs no master key: only the keystore.
 *
 * With `--ledger DIR` or `--postgres URL` (or LLM_AUDIT_POSTGRES_URL / LLM_AUDIT_LEDGER_DIR) the shred is also appended to that ledger as a record of
 * action `content.shred`, in the same hash chain as the calls: the erasure is then as
 * tamper-evident as what it erased. The ledger is opened first, so a ledger that cannot be written
 * (locked by a running writer, missing, unreachable) stops the command before anything is destroyed.
 *
 * Refuses without --yes, except on a terminal where it asks for the tenant id to be typed again.
 * Exit codes: 0 done; 2 usage (or not confirmed); 3 keystore or ledger unusable or locked.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ContentError, keystorePathFrom, shredTenant, type ShredResult } from '../audit/content';
import { LedgerError } from '../ledger/errors';
import { LEDGER_FILE } from '../ledger/file/layout';
import { operationRecord, type LedgerRecord } from '../ledger/record';
import type { LedgerWriter } from '../ledger/writer';
import { flag, parse, str, type CliIo, type Parsed } from './io';
import { POSTGRES_OPTION, ledgerName, ledgerOf, openCliWriter } from './source';

export const SHRED_USAGE =
  'llm-audit shred --tenant T [--keystore FILE | --key FILE] [--reason TEXT] [--ledger DIR | --postgres URL] [--signing-key FILE] [--yes] [--json]';

/** The shred as a ledger record: who ran it, where, why, and which keys it destroyed (never a key). */
export function shredRecord(result: ShredResult): LedgerRecord {
  return operationRecord({
    action: 'content.shred',
    timestamp: result.at,
    tenantId: result.tenant,
    status: 'success',
    metadata: {
      data_key_ids: result.deks,
      master_key_ids: result.kids,
      keystore: result.keystore,
      host: result.host,
      operator: result.user,
      ...(result.reason !== undefined ? { reason: result.reason } : {}),
    },
  });
}

/**
 * Opens the ledger named by --ledger / --postgres for appending, or returns undefined when none is
 * named. A directory without a ledger is refused rather than created: a typo must not start a new
 * ledger that nobody reads.
 */
async function openShredLedger(p: Parsed, io: CliIo): Promise<{ writer: LedgerWriter; name: string } | undefined> {
  // The ledger the flags name, else the one the environment configures (LLM_AUDIT_POSTGRES_URL,
  // LLM_AUDIT_LEDGER_DIR: as the writers choose it); not the default directory, which would record
  // a shred in a ledger nobody configured.
  const named = str(p, 'ledger') !== undefined || str(p, 'postgres') !== undefined;
  if (!named && !io.env.LLM_AUDIT_POSTGRES_URL?.trim() && !io.env.LLM_AUDIT_LEDGER_DIR?.trim()) return undefined;
  const where = ledgerOf(p, io);
  if (where.backend === 'file' && !existsSync(join(where.dir, LEDGER_FILE))) {
    throw new LedgerError('LEDGER_NOT_FOUND', `${where.dir} holds no audit ledger (no ${LEDGER_FILE}); nothing was shredded`);
  }
  return {
    writer: await openCliWriter(p, io, where),
    name: ledgerName(where),
  };
}

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
    {
      tenant: { type: 'string' },
      keystore: { type: 'string' },
      key: { type: 'string' },
      reason: { type: 'string' },
      yes: { type: 'boolean' },
      json: { type: 'boolean' },
      ledger: { type: 'string' },
      'signing-key': { type: 'string' },
      ...POSTGRES_OPTION,
    },
    SHRED_USAGE,
  );
  const tenant = str(p, 'tenant');
  if (tenant === undefined || tenant === '') throw new LedgerError('LEDGER_USAGE', `--tenant T is required\nusage: ${SHRED_USAGE}`);
  const keyPath = str(p, 'key') ?? (io.env.LLM_AUDIT_CONTENT_KEY?.trim() || undefined);
  const keystore = keystorePathFrom(str(p, 'keystore'), io.env, keyPath);
  if (keystore === undefined) {
    throw new LedgerError('LEDGER_USAGE', `give --keystore FILE (or --key FILE, or set LLM_AUDIT_CONTENT_KEYSTORE / LLM_AUDIT_CONTENT_KEY)\nusage: ${SHRED_USAGE}`);
  }
  if (!existsSync(keystore)) {
    throw new ContentError('CONTENT_KEYSTORE_NOT_FOUND', `the content keystore ${keystore} does not exist; nothing was shredded`);
  }
  if (!flag(p, 'yes') && !(await confirmOnTerminal(tenant))) {
    throw new ContentError('CONTENT_USAGE', `refusing to shred tenant ${JSON.stringify(tenant)} without --yes (this cannot be undone)`);
  }
  const reason = str(p, 'reason');
  const ledger = await openShredLedger(p, io);
  let result: ShredResult;
  try {
    result = shredTenant(keystore, tenant, reason !== undefined ? { reason } : {});
    if (ledger !== undefined) await recordShred(ledger, result);
  } finally {
    await ledger?.writer.close();
  }
  const where = ledger !== undefined ? `shredded.jsonl and ${ledger.name}` : 'shredded.jsonl';
  if (flag(p, 'json')) {
    await io.out(JSON.stringify(result) + '\n');
  } else if (result.deks.length === 0) {
    await io.out(`tenant ${JSON.stringify(tenant)} had no data keys in ${result.keystore}; nothing destroyed (recorded in ${where})\n`);
  } else {
    await io.out(
      `shredded tenant ${JSON.stringify(tenant)}: destroyed ${result.deks.length} data key${result.deks.length === 1 ? '' : 's'} (${result.deks.join(', ')}) ` +
        `at ${result.at}; recorded in ${where}\n`,
    );
    io.err(`its envelopes can no longer be decrypted (CONTENT_KEY_SHREDDED); the ledger's records are unchanged and still verify`);
  }
  if (ledger === undefined) io.err('not recorded in an audit ledger: give --ledger DIR or --postgres URL to chain the shred with the records');
  return 0;
}

/**
 * Appends the shred's record. The keys are already destroyed when this runs: a failure here says
 * so, so that the operator records it by hand rather than shredding again.
 */
async function recordShred(ledger: { writer: LedgerWriter; name: string }, result: ShredResult): Promise<void> {
  try {
    // A fresh random span id (operationRecord): it cannot be stored already.
    await ledger.writer.append([shredRecord(result)], { unique: true });
  } catch (error) {
    const message = (error as Error).message;
    const code = error instanceof LedgerError ? error.code : 'LEDGER_IO';
    throw new LedgerError(code, `the keys of tenant ${JSON.stringify(result.tenant)} were destroyed (see shredded.jsonl) but recording it in ${ledger.name} failed: ${message}`, { cause: error });
  }
}
