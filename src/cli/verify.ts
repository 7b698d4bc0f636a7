/** `llm-audit verify`: full streaming verification of a ledger. */
import { readCheckpointFile, loadPublicKey } from '../ledger/checkpoint';
import type { CheckpointEntry } from '../ledger/backend';
import { verifyLedger } from '../ledger/verify';
import { flag, parse, str, strs, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const VERIFY_USAGE =
  'llm-audit verify [--ledger DIR | --postgres URL] [--checkpoint FILE]... [--public-key FILE] [--strict] [--json]\n' +
  '  --public-key FILE  every tombstone, the newest checkpoint and each --checkpoint must be signed by this key (default $LLM_AUDIT_PUBLIC_KEY)\n' +
  '  --strict           fail (exit 1) when a writer recovered records at startup after a crash instead of reporting them';

export async function verifyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      checkpoint: { type: 'string', multiple: true },
      'public-key': { type: 'string' },
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
      ...POSTGRES_OPTION,
    },
    VERIFY_USAGE,
  );
  const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  const publicKey = keyPath ? loadPublicKey(keyPath) : undefined;
  const external: CheckpointEntry[] = [];
  for (const file of strs(p, 'checkpoint')) {
    readCheckpointFile(file).forEach((checkpoint, i, all) =>
      external.push({ checkpoint, where: all.length > 1 ? `${file} #${i + 1}` : file }),
    );
  }
  let dir = '';
  const result = await withSource(p, io, (source) => {
    dir = source.name;
    return verifyLedger(source, { ...(publicKey ? { publicKey } : {}), external, strict: flag(p, 'strict') });
  });
  if (flag(p, 'json')) {
    await io.out(JSON.stringify({ ok: true, ledger: dir, ...result }, null, 2) + '\n');
    return 0;
  }
  const first = result.removed;
  const range = result.records > 0 ? ` (seq ${first}..${result.treeSize - 1})` : '';
  await io.out(
    `OK ${dir}: ${result.records} record${result.records === 1 ? '' : 's'} verified${range}, tree size ${result.treeSize}, root ${result.root}\n` +
      (result.removed > 0 ? `   ${result.removed} earlier records were removed by retention (tombstone verified)\n` : '') +
      `   ${result.checkpointsMatched} checkpoint root${result.checkpointsMatched === 1 ? '' : 's'} matched` +
      (publicKey ? `, ${result.signaturesVerified} signature${result.signaturesVerified === 1 ? '' : 's'} verified` : '') +
      (external.length > 0 ? `, including ${external.length} external` : '') +
      '\n' +
      result.recovered
        .map((r) => `   records ${r.from_seq}..${r.to_seq}: recovered at startup after a crash (marker seq ${r.marker_seq}), NOT signed when written\n`)
        .join(''),
  );
  for (const w of result.warnings) io.err(`warning: ${w}`);
  for (const n of result.notes) io.err(`note: ${n}`);
  return 0;
}
