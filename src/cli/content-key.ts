/** `llm-audit content-key --out FILE [--key-id ID]`: a new master key for encrypted content capture. */
import { resolve } from 'node:path';
import { createContentMasterKey, isContentError, validateKeyId } from '../audit/content';
import { LedgerError } from '../ledger/errors';
import { parse, str, type CliIo } from './io';

export const CONTENT_KEY_USAGE = 'llm-audit content-key --out FILE [--key-id ID]   (writes FILE, mode 0600, never overwrites)';

export async function contentKeyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { out: { type: 'string' }, 'key-id': { type: 'string' } }, CONTENT_KEY_USAGE);
  const out = str(p, 'out');
  if (!out) throw new LedgerError('LEDGER_USAGE', `--out FILE is required\nusage: ${CONTENT_KEY_USAGE}`);
  const keyId = str(p, 'key-id');
  if (keyId !== undefined) {
    try {
      validateKeyId(keyId, '--key-id');
    } catch (error) {
      throw new LedgerError('LEDGER_USAGE', isContentError(error) ? error.message : String(error));
    }
  }
  const { path, kid } = createContentMasterKey(out, keyId);
  await io.out(`wrote ${path} (0600); key id ${kid}\n`);
  io.err(`set LLM_AUDIT_CONTENT=encrypted and LLM_AUDIT_CONTENT_KEY=${resolve(path)} for the application; keep a copy offline: without it the content cannot be read`);
  return 0;
}
