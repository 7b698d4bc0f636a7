/**
 * Read side of the C2SP notes: finding a checkpoint's note (with every cosignature stored for it),
 * checking that the stored notes agree with the checkpoints, and the witness quorum of
 * `llm-audit verify --witness`.
 */
import type { KeyObject } from 'node:crypto';
import type { LedgerSource } from '../backend';
import type { Checkpoint } from '../checkpoint';
import { LedgerError } from '../errors';
import { NOTE_KEY_COSIGNATURE_V1, collectNotes, formatNote, hasValidSignature, parseVerifierKey, verifierKey, type CheckpointNote, type NoteVerifier } from '../note';

/** Every stored note of the ledger, one per tree head, each with all of its stored signatures. */
export async function ledgerNotes(source: LedgerSource): Promise<CheckpointNote[]> {
  return collectNotes(await source.signedNotes());
}

/** The note of `checkpoint` (same size and root), or undefined. */
export function noteOf(notes: readonly CheckpointNote[], checkpoint: Pick<Checkpoint, 'tree_size' | 'root'>): CheckpointNote | undefined {
  return notes.find((n) => n.treeSize === checkpoint.tree_size && n.root === checkpoint.root);
}

/** The note text of `checkpoint`; LEDGER_NOTE_UNAVAILABLE when it has none (unsigned, or written before notes existed). */
export function requireNote(notes: readonly CheckpointNote[], checkpoint: Checkpoint, where: string): string {
  const note = noteOf(notes, checkpoint);
  if (!note) {
    throw new LedgerError(
      'LEDGER_NOTE_UNAVAILABLE',
      `${where} has no C2SP note for the checkpoint of size ${checkpoint.tree_size}: notes are written only for signed checkpoints (LLM_AUDIT_SIGNING_KEY), by writers of this version or later`,
    );
  }
  return formatNote(note);
}

/**
 * Every stored note must be the tree head of a checkpoint of the same size (a note over another
 * root is a second history signed with the log's key), and with `publicKey`, carry its valid
 * signature under the note's own origin. Returns how many notes were checked.
 */
export function checkNotes(notes: readonly CheckpointNote[], checkpoints: readonly Checkpoint[], publicKey: KeyObject | undefined): number {
  const bySize = new Map<number, Checkpoint[]>();
  for (const c of checkpoints) bySize.set(c.tree_size, [...(bySize.get(c.tree_size) ?? []), c]);
  for (const note of notes) {
    const same = bySize.get(note.treeSize) ?? [];
    if (same.length > 0 && !same.some((c) => c.root === note.root)) {
      throw new LedgerError(
        'LEDGER_NOTE_INVALID',
        `the C2SP note of tree size ${note.treeSize} has root ${note.root}, but the checkpoint of that size has ${same[0]!.root}: two histories were signed`,
      );
    }
    if (publicKey && !hasValidSignature(note, parseVerifierKey(verifierKey(note.origin, publicKey)))) {
      throw new LedgerError('LEDGER_NOTE_INVALID', `the C2SP note of tree size ${note.treeSize} (origin ${note.origin}) is not validly signed by the public key`);
    }
  }
  return notes.length;
}

/** Parses `--witness` keys (verifier keys of cosignature/v1 type). */
export function witnessVerifiers(keys: readonly string[]): NoteVerifier[] {
  return keys.map((k) => {
    const v = parseVerifierKey(k);
    if (v.type !== NOTE_KEY_COSIGNATURE_V1) throw new LedgerError('LEDGER_USAGE', `--witness ${k}: not a witness (cosignature/v1) verifier key`);
    return v;
  });
}

/** Names of the witnesses in `verifiers` with a valid cosignature on `checkpoint`'s note. */
export function cosigners(notes: readonly CheckpointNote[], checkpoint: Checkpoint, verifiers: readonly NoteVerifier[]): string[] {
  const note = noteOf(notes, checkpoint);
  if (!note) return [];
  return verifiers.filter((v) => hasValidSignature(note, v)).map((v) => v.name);
}

/** Throws LEDGER_WITNESS_QUORUM unless `checkpoint` carries `quorum` valid cosignatures of `verifiers`. */
export function requireQuorum(
  notes: readonly CheckpointNote[],
  checkpoint: Checkpoint,
  verifiers: readonly NoteVerifier[],
  quorum: number,
  what: string,
): string[] {
  const names = cosigners(notes, checkpoint, verifiers);
  if (names.length < quorum) {
    const has = noteOf(notes, checkpoint) ? `${names.length} valid cosignature${names.length === 1 ? '' : 's'}${names.length ? ` (${names.join(', ')})` : ''}` : 'no C2SP note at all';
    throw new LedgerError(
      'LEDGER_WITNESS_QUORUM',
      `${what} (tree size ${checkpoint.tree_size}) has ${has}, ${quorum} required: no witness vouches that this history is the one it saw ` +
        `(the witnesses were unreachable, or refused it as inconsistent with what they cosigned before)`,
    );
  }
  return names;
}
