/** `llm-audit keygen --out FILE`: an Ed25519 key pair for signing checkpoints; `verifier-key`: its C2SP note form. */
import { LedgerError } from '../ledger/errors';
import { loadPublicKey, writeKeyFiles } from '../ledger/checkpoint';
import { checkOrigin, defaultOrigin, originFromEnv, verifierKey } from '../ledger/note';
import { parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const KEYGEN_USAGE =
  'llm-audit keygen --out FILE [--origin ORIGIN]   (writes FILE, private, mode 0600, and FILE.pub)\n' +
  '  with --origin (or $LLM_AUDIT_LOG_ORIGIN) also prints the note verifier key <origin>+<hash>+<base64> that note verifiers and witnesses use';
export const VERIFIER_KEY_USAGE =
  'llm-audit verifier-key [--public-key FILE] [--origin ORIGIN | --ledger DIR | --postgres URL]\n' +
  '  prints the C2SP note verifier key of the checkpoint key (default $LLM_AUDIT_PUBLIC_KEY) under the log origin:\n' +
  '  --origin, else $LLM_AUDIT_LOG_ORIGIN, else the default one derived from the ledger id';

function configuredOrigin(p: Parameters<typeof str>[0], io: CliIo): string | undefined {
  const flagged = str(p, 'origin');
  return flagged !== undefined ? checkOrigin(flagged, '--origin') : originFromEnv(io.env);
}

export async function keygenCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { out: { type: 'string' }, origin: { type: 'string' } }, KEYGEN_USAGE);
  const out = str(p, 'out');
  if (!out) throw new LedgerError('LEDGER_USAGE', `--out FILE is required\nusage: ${KEYGEN_USAGE}`);
  const origin = configuredOrigin(p, io);
  const { privatePath, publicPath, keyId } = writeKeyFiles(out);
  await io.out(`wrote ${privatePath} (private, 0600) and ${publicPath}; key id ${keyId}\n`);
  if (origin) await io.out(`verifier key: ${verifierKey(origin, loadPublicKey(publicPath))}\n`);
  io.err(`set LLM_AUDIT_SIGNING_KEY=${privatePath} for the writer; give ${publicPath} to verifiers (--public-key)`);
  if (!origin) io.err(`for note verifiers and witnesses: llm-audit verifier-key --public-key ${publicPath} --ledger DIR (or --origin ORIGIN)`);
  return 0;
}

export async function verifierKeyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { 'public-key': { type: 'string' }, origin: { type: 'string' }, ledger: { type: 'string' }, ...POSTGRES_OPTION }, VERIFIER_KEY_USAGE);
  const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  if (!keyPath) throw new LedgerError('LEDGER_USAGE', `--public-key FILE (or LLM_AUDIT_PUBLIC_KEY) is required\nusage: ${VERIFIER_KEY_USAGE}`);
  const publicKey = loadPublicKey(keyPath);
  let origin = configuredOrigin(p, io);
  origin ??= await withSource(p, io, async (source) => {
    await source.open();
    const id = await source.ledgerId();
    if (id === null) throw new LedgerError('LEDGER_NOT_FOUND', `${source.name} has no ledger id yet; give --origin`);
    return defaultOrigin(id);
  });
  await io.out(`${verifierKey(origin, publicKey)}\n`);
  return 0;
}
