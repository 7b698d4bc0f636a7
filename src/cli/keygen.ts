/** `llm-audit keygen --out FILE`: an Ed25519 key pair for signing checkpoints. */
import { LedgerError } from '../ledger/errors';
import { writeKeyFiles } from '../ledger/checkpoint';
import { parse, str, type CliIo } from './io';

export const KEYGEN_USAGE = 'llm-audit keygen --out FILE   (writes FILE, private, mode 0600, and FILE.pub)';

export async function keygenCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { out: { type: 'string' } }, KEYGEN_USAGE);
  const out = str(p, 'out');
  if (!out) throw new LedgerError('LEDGER_USAGE', `--out FILE is required\nusage: ${KEYGEN_USAGE}`);
  const { privatePath, publicPath, keyId } = writeKeyFiles(out);
  await io.out(`wrote ${privatePath} (private, 0600) and ${publicPath}; key id ${keyId}\n`);
  io.err(`set LLM_AUDIT_SIGNING_KEY=${privatePath} for the writer; give ${publicPath} to verifiers (--public-key)`);
  return 0;
}
