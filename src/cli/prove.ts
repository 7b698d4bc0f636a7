/** `llm-audit prove`, `verify-proof`, `consistency` and `checkpoint`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadPublicKey, readCheckpointFile, type Checkpoint } from '../ledger/checkpoint';
import { LedgerError, fsError } from '../ledger/errors';
import { canonicalJson } from '../audit/canonical-json';
import { formatAddCheckpoint, formatTlogProof } from '../ledger/note';
import { newestCheckpoint, proveConsistency, proveInclusion, verifyProof } from '../ledger/proofs';
import { ledgerNotes, requireNote } from '../ledger/witness/quorum';
import { flag, instant, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const PROVE_USAGE =
  'llm-audit prove <request_id> | --seq N [--ledger DIR | --postgres URL] [--format json | tlog-proof] [--out FILE]\n' +
  '  --format tlog-proof  c2sp.org/tlog-proof: the stored entry as "extra", the inclusion path, the checkpoint note with its cosignatures';
export const VERIFY_PROOF_USAGE =
  'llm-audit verify-proof --proof FILE [--public-key FILE] [--allow-unsigned]\n' +
  '  without a public key (--public-key or LLM_AUDIT_PUBLIC_KEY) nothing is proven: anyone can recompute a root the proof matches,\n' +
  '  so it exits 1 (LEDGER_PROOF_UNAUTHENTICATED); --allow-unsigned checks only the arithmetic and exits 0';
export const CONSISTENCY_USAGE =
  'llm-audit consistency <old-checkpoint-file> <new-checkpoint-file> [--ledger DIR | --postgres URL] [--public-key FILE] [--format json | witness] [--out FILE]\n' +
  '  --format witness  the c2sp.org/tlog-witness add-checkpoint body: "old N", the proof, the new checkpoint note';
export const CHECKPOINT_USAGE =
  'llm-audit checkpoint [--at ISO] [--ledger DIR | --postgres URL] [--format json | note] [--out FILE]\n' +
  '  --at ISO       the newest checkpoint written at or before this date or time (the ledger as it stood then)\n' +
  '  --format note  the newest checkpoint as a C2SP signed note (c2sp.org/tlog-checkpoint), with its witness cosignatures';

const FORMAT_OPTION = { format: { type: 'string' } } as const;

/** The --format value, one of `allowed` (the first is the default). */
function format<T extends string>(p: Parameters<typeof str>[0], allowed: readonly T[]): T {
  const value = str(p, 'format') ?? allowed[0]!;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new LedgerError('LEDGER_USAGE', `--format must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

async function emit(io: CliIo, value: unknown, out: string | undefined): Promise<void> {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2) + '\n';
  if (out === undefined) return io.out(text);
  try {
    writeFileSync(out, text, { mode: 0o644 });
  } catch (error) {
    throw fsError(error, 'cannot write', out);
  }
}

export async function proveCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { ledger: { type: 'string' }, seq: { type: 'string' }, out: { type: 'string' }, ...FORMAT_OPTION, ...POSTGRES_OPTION }, PROVE_USAGE, 1);
  const as = format(p, ['json', 'tlog-proof']);
  const requestId = p.positionals[0];
  const seqText = str(p, 'seq');
  if ((requestId === undefined) === (seqText === undefined)) {
    throw new LedgerError('LEDGER_USAGE', `give a request id or --seq N\nusage: ${PROVE_USAGE}`);
  }
  const seq = seqText === undefined ? undefined : Number(seqText);
  if (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 0)) throw new LedgerError('LEDGER_USAGE', `--seq must be a record number`);
  const proof = await withSource(p, io, async (source) => {
    const json = await proveInclusion(source, seq !== undefined ? { seq } : { requestId: requestId! });
    if (as === 'json') return json;
    const note = requireNote(await ledgerNotes(source), json.checkpoint, source.name);
    // The leaf is RFC 6962's hash of the stored entry's canonical JSON, which "extra" carries.
    return formatTlogProof(json.leaf_index, json.path, note, canonicalJson(json.entry));
  });
  await emit(io, proof, str(p, 'out'));
  return 0;
}

export async function verifyProofCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { proof: { type: 'string' }, 'public-key': { type: 'string' }, 'allow-unsigned': { type: 'boolean' } }, VERIFY_PROOF_USAGE, 1);
  const file = str(p, 'proof') ?? p.positionals[0];
  if (file === undefined) throw new LedgerError('LEDGER_USAGE', `--proof FILE is required\nusage: ${VERIFY_PROOF_USAGE}`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) throw new LedgerError('LEDGER_PROOF_INVALID', `${file} is not valid JSON`);
    throw fsError(error, 'cannot read the proof', file);
  }
  const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  const check = verifyProof(value, keyPath ? loadPublicKey(keyPath) : undefined);
  const v = value as { leaf_index?: number; tree_size?: number; old_size?: number; new_size?: number };
  const what =
    check.type === 'inclusion'
      ? `record seq ${v.leaf_index} is included in the ledger of size ${v.tree_size}`
      : `the ledger of size ${v.new_size} extends the ledger of size ${v.old_size}`;
  if (check.signatures !== 'verified') {
    // The hashes are only as good as the root they lead to, and a forger can recompute any root.
    const why = check.signatures === 'unsigned' ? 'the checkpoint in the proof is not signed' : 'no --public-key was given, so its signature was not checked';
    if (!flag(p, 'allow-unsigned')) {
      throw new LedgerError(
        'LEDGER_PROOF_UNAUTHENTICATED',
        `nothing was proven: ${why}, and anyone can recompute a root that a forged proof matches. ` +
          `Give the ledger's public key (--public-key FILE or LLM_AUDIT_PUBLIC_KEY), or --allow-unsigned to check only the arithmetic`,
      );
    }
    await io.out(`UNAUTHENTICATED: the proof's arithmetic holds (${what}), but ${why}: nothing is proven about who vouched for that tree\n`);
    return 0;
  }
  await io.out(`OK: ${what} (signature: ${check.signatures})\n`);
  for (const w of check.warnings) io.err(`warning: ${w}`);
  return 0;
}

function singleCheckpoint(file: string): Checkpoint {
  const all = readCheckpointFile(file);
  let best = all[0]!;
  for (const c of all) if (c.tree_size >= best.tree_size) best = c;
  return best;
}

export async function consistencyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { ledger: { type: 'string' }, 'public-key': { type: 'string' }, out: { type: 'string' }, ...FORMAT_OPTION, ...POSTGRES_OPTION }, CONSISTENCY_USAGE, 2);
  const as = format(p, ['json', 'witness']);
  if (p.positionals.length !== 2) throw new LedgerError('LEDGER_USAGE', `give two checkpoint files\nusage: ${CONSISTENCY_USAGE}`);
  const oldCp = singleCheckpoint(p.positionals[0]!);
  const newCp = singleCheckpoint(p.positionals[1]!);
  let note = '';
  const proof = await withSource(p, io, async (source) => {
    const json = await proveConsistency(source, oldCp, newCp);
    if (as === 'witness') note = requireNote(await ledgerNotes(source), newCp, source.name);
    return json;
  });
  const keyPath = str(p, 'public-key') ?? (io.env.LLM_AUDIT_PUBLIC_KEY?.trim() || undefined);
  const check = verifyProof(proof, keyPath ? loadPublicKey(keyPath) : undefined);
  await emit(io, as === 'witness' ? formatAddCheckpoint(proof.old_size, proof.path, note) : proof, str(p, 'out'));
  io.err(
    `OK: the ledger of size ${newCp.tree_size} (checkpoint of ${newCp.timestamp}) extends the ledger of size ${oldCp.tree_size} (checkpoint of ${oldCp.timestamp}): ` +
      `the ${newCp.tree_size - oldCp.tree_size} record(s) added between the two times changed none of the ${oldCp.tree_size} before (signature: ${check.signatures})`,
  );
  for (const w of check.warnings) io.err(`warning: ${w}`);
  return 0;
}

export async function checkpointCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { ledger: { type: 'string' }, out: { type: 'string' }, at: { type: 'string' }, ...FORMAT_OPTION, ...POSTGRES_OPTION }, CHECKPOINT_USAGE);
  const as = format(p, ['json', 'note']);
  const at = instant(str(p, 'at'), '--at');
  let chosen: Checkpoint | undefined;
  const checkpoint = await withSource(p, io, async (source) => {
    chosen = await newestCheckpoint(source, at);
    return as === 'json' ? chosen : requireNote(await ledgerNotes(source), chosen, source.name);
  });
  await emit(io, checkpoint, str(p, 'out'));
  if (at !== undefined) io.err(`checkpoint of ${chosen!.timestamp}, tree size ${chosen!.tree_size}: the newest at or before ${new Date(at).toISOString()}`);
  return 0;
}
