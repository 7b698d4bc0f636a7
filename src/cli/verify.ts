/** `llm-audit verify`: full streaming verification of a ledger. */
import { readCheckpointFile, loadPublicKey } from '../ledger/checkpoint';
import type { CheckpointEntry } from '../ledger/backend';
import { verifyLedger } from '../ledger/verify';
import { LedgerError } from '../ledger/errors';
import { checkNotes, ledgerNotes, requireQuorum, witnessVerifiers } from '../ledger/witness/quorum';
import { flag, parse, str, strs, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const VERIFY_USAGE =
  'llm-audit verify [--ledger DIR | --postgres URL] [--checkpoint FILE]... [--public-key FILE] [--witness KEY]... [--witness-quorum N] [--strict] [--json]\n' +
  '  --public-key FILE  every tombstone, the newest checkpoint and each --checkpoint must be signed by this key (default $LLM_AUDIT_PUBLIC_KEY)\n' +
  '  --strict           fail (exit 1) when a writer recovered records at startup after a crash instead of reporting them\n' +
  '  --witness KEY      a witness verifier key (<name>+<hash>+<base64>, repeatable): the newest checkpoint and each --checkpoint\n' +
  '                     must carry --witness-quorum valid cosignatures (default: all the keys given)';

export async function verifyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    {
      ledger: { type: 'string' },
      checkpoint: { type: 'string', multiple: true },
      'public-key': { type: 'string' },
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
      witness: { type: 'string', multiple: true },
      'witness-quorum': { type: 'string' },
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
  const witnesses = witnessVerifiers(strs(p, 'witness'));
  const quorumText = str(p, 'witness-quorum');
  const quorum = quorumText === undefined ? witnesses.length : Number(quorumText);
  if ((witnesses.length > 0 || quorumText !== undefined) && !(Number.isSafeInteger(quorum) && quorum >= 1 && quorum <= witnesses.length)) {
    throw new LedgerError('LEDGER_USAGE', `--witness-quorum must be between 1 and the number of --witness keys (${witnesses.length}), got ${JSON.stringify(quorumText)}`);
  }
  let dir = '';
  let notesChecked = 0;
  let witnessed: string[] = [];
  const result = await withSource(p, io, async (source) => {
    dir = source.name;
    const verified = await verifyLedger(source, { ...(publicKey ? { publicKey } : {}), external, strict: flag(p, 'strict') });
    // The C2SP notes must tell the same story as the checkpoints they restate.
    const checkpoints = (await source.checkpoints()).map((c) => c.checkpoint);
    const notes = await ledgerNotes(source);
    notesChecked = checkNotes(notes, checkpoints, publicKey);
    if (witnesses.length > 0) {
      const newest = checkpoints.filter((c) => c.type === 'checkpoint').sort((a, b) => b.tree_size - a.tree_size)[0];
      if (!newest) throw new LedgerError('LEDGER_WITNESS_QUORUM', `${source.name} has no checkpoint, so no witness cosigned anything`);
      witnessed = requireQuorum(notes, newest, witnesses, quorum, 'the newest checkpoint');
      for (const e of external) requireQuorum(notes, e.checkpoint, witnesses, quorum, e.where);
    }
    return verified;
  });
  if (flag(p, 'json')) {
    await io.out(JSON.stringify({ ok: true, ledger: dir, ...result, notes: notesChecked, witnesses: witnessed }, null, 2) + '\n');
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
      (notesChecked > 0 ? `   ${notesChecked} C2SP checkpoint note${notesChecked === 1 ? '' : 's'} match the checkpoints${publicKey ? ' and are validly signed' : ''}\n` : '') +
      (witnesses.length > 0 ? `   witnessed: the newest checkpoint carries ${witnessed.length} valid cosignature${witnessed.length === 1 ? '' : 's'} (${witnessed.join(', ')}), ${quorum} required${external.length > 0 ? '; so does each --checkpoint' : ''}\n` : '') +
      result.recovered
        .map((r) => `   records ${r.from_seq}..${r.to_seq}: recovered at startup after a crash (marker seq ${r.marker_seq}), NOT signed when written\n`)
        .join(''),
  );
  for (const w of result.warnings) io.err(`warning: ${w}`);
  for (const n of result.notes) io.err(`note: ${n}`);
  return 0;
}
