/** `llm-audit verify`: full streaming verification of a ledger. */
import { readCheckpointFile, loadPublicKey } from '../ledger/checkpoint';
import type { CheckpointEntry } from '../ledger/backend';
import { newestCheckpoint } from '../ledger/proofs';
import { verifyLedger } from '../ledger/verify';
import { EXIT, LedgerError, exitCodeFor, isLedgerError } from '../ledger/errors';
import { checkNotes, ledgerNotes, requireQuorum, witnessVerifiers } from '../ledger/witness/quorum';
import { flag, parse, str, strs, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const VERIFY_USAGE =
  'llm-audit verify [--ledger DIR | --postgres URL] [--checkpoint FILE]... [--public-key FILE] [--witness KEY]... [--witness-quorum N] [--strict] [--workers N] [--json]\n' +
  '  --public-key FILE  every tombstone, the newest checkpoint and each --checkpoint must be signed by this key (default $LLM_AUDIT_PUBLIC_KEY)\n' +
  '  --strict           fail (exit 1) when a writer recovered records at startup after a crash instead of reporting them\n' +
  '  --workers N        threads for the per-line work of a file ledger (whole segments each; 0: none; default: the cores, at most 4, from 16 MiB of segments)\n' +
  '  --json             the result as JSON, on success and on failure ({"ok": false, "code", "message", ...} with the same exit code)\n' +
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
      workers: { type: 'string' },
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
  const workersText = str(p, 'workers');
  const workers = workersText === undefined ? undefined : Number(workersText);
  if (workers !== undefined && !(Number.isSafeInteger(workers) && workers >= 0 && workers <= 64)) {
    throw new LedgerError('LEDGER_USAGE', `--workers must be an integer from 0 to 64, got ${JSON.stringify(workersText)}`);
  }
  let dir = '';
  let notesChecked = 0;
  let witnessed: string[] = [];
  const found: { newest?: NewestCheckpoint } = {};
  let result: Awaited<ReturnType<typeof verifyLedger>>;
  try {
    result = await withSource(p, io, async (source) => {
      dir = source.name;
      const verified = await verifyLedger(source, {
        ...(publicKey ? { publicKey } : {}),
        external,
        strict: flag(p, 'strict'),
        ...(workers !== undefined ? { workers } : {}),
      });
      // The C2SP notes must tell the same story as the checkpoints they restate.
      const checkpoints = (await source.checkpoints()).map((c) => c.checkpoint);
      const notes = await ledgerNotes(source);
      notesChecked = checkNotes(notes, checkpoints, publicKey);
      if (witnesses.length > 0) {
        const newestCp = checkpoints.filter((c) => c.type === 'checkpoint').sort((a, b) => b.tree_size - a.tree_size)[0];
        if (!newestCp) throw new LedgerError('LEDGER_WITNESS_QUORUM', `${source.name} has no checkpoint, so no witness cosigned anything`);
        witnessed = requireQuorum(notes, newestCp, witnesses, quorum, 'the newest checkpoint');
        for (const e of external) requireQuorum(notes, e.checkpoint, witnesses, quorum, e.where);
      }
      if (verified.newestCheckpointSize !== null) {
        const cp = await newestCheckpoint(source);
        found.newest = { tree_size: cp.tree_size, timestamp: cp.timestamp, key_id: cp.key_id, signed: cp.signature !== null };
      }
      return verified;
    });
  } catch (error) {
    // A failure is an answer too: a script reading --json must get one, with the same exit code.
    if (!flag(p, 'json') || !isLedgerError(error) || exitCodeFor(error) === EXIT.usage) throw error;
    await io.out(
      JSON.stringify({ ok: false, ledger: dir, code: error.code, message: error.message, ...(error.location ? { location: error.location } : {}), meaning: FAILED_MEANS }, null, 2) + '\n',
    );
    io.err(`llm-audit: ${error.code}: ${error.message.split('\n')[0]}`);
    return exitCodeFor(error);
  }
  const cp = found.newest ?? null;
  const now = Date.now();
  const meaning = okMeans(result.removed, result.treeSize, cp, publicKey !== undefined, external.length);
  if (flag(p, 'json')) {
    await io.out(
      JSON.stringify(
        {
          ok: true,
          ledger: dir,
          ...result,
          notes: notesChecked,
          witnesses: witnessed,
          period: { first_record: result.period.first, last_record: result.period.last },
          newest_checkpoint: cp ? { ...cp, age_seconds: Math.round((now - Date.parse(cp.timestamp)) / 1000) } : null,
          meaning,
        },
        null,
        2,
      ) + '\n',
    );
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
        .join('') +
      (result.period.first !== null ? `   period covered: ${result.period.first} .. ${result.period.last} (first and last record time)\n` : '') +
      (cp
        ? `   newest checkpoint: tree size ${cp.tree_size}, ${cp.timestamp} (${age(now - Date.parse(cp.timestamp))} old), ${cp.signed ? `signed by key ${cp.key_id}` : 'NOT signed'}\n`
        : '   no checkpoint yet\n') +
      `\n${meaning.proves}\n${meaning.does_not_prove}\n`,
  );
  for (const w of result.warnings) io.err(`warning: ${w}`);
  for (const n of result.notes) io.err(`note: ${n}`);
  return 0;
}

interface NewestCheckpoint {
  tree_size: number;
  timestamp: string;
  key_id: string | null;
  signed: boolean;
}

/** What a failed verification means, in one sentence (for --json on failure). */
const FAILED_MEANS = 'The ledger is not as it was written: a record was changed, inserted, removed or reordered, or a checkpoint or signature does not match; what it shows cannot be relied on until this is explained.';

/** 3 days, 5 hours, 40 minutes: the age of a checkpoint, coarse enough to read at a glance. */
function age(ms: number): string {
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? '' : 's'}`;
  if (ms < 0) return 'in the future: check the clocks,';
  if (ms < 3_600_000) return unit(Math.floor(ms / 60_000), 'minute');
  if (ms < 86_400_000) return unit(Math.floor(ms / 3_600_000), 'hour');
  return unit(Math.floor(ms / 86_400_000), 'day');
}

/**
 * One plain sentence of what this OK proves, and one of what it cannot: the limits a person
 * relying on it must know (truncation after the newest checkpoint, signatures without a key,
 * calls that were never recorded).
 */
function okMeans(
  removed: number,
  size: number,
  newest: NewestCheckpoint | null,
  keyGiven: boolean,
  external: number,
): { proves: string; does_not_prove: string } {
  const range = size > removed ? `records ${removed}..${size - 1}` : 'no records';
  const proves =
    `OK proves: ${range} are exactly as they were written, in order, with nothing inserted, changed or removed among them` +
    (newest ? `, and the ledger still holds everything its newest checkpoint (size ${newest.tree_size}) covered` : '') +
    (keyGiven ? ', and that the checkpoints were signed with the given key' : '') +
    (external > 0 ? `, and it still matches the ${external} checkpoint(s) kept elsewhere` : '') +
    (removed > 0 ? `; records 0..${removed - 1} were removed by retention as a signed tombstone records` : '') +
    '.';
  const limits: string[] = [];
  if (newest && newest.tree_size < size) {
    limits.push(`that records ${newest.tree_size}..${size - 1}, written after the newest checkpoint, are as written (only the hash chain protects them until the next checkpoint)`);
  }
  limits.push(
    external === 0
      ? 'that no records were cut off from the end together with the checkpoints covering them (a checkpoint kept elsewhere, given with --checkpoint, shows that)'
      : 'that no records written after the newest checkpoint kept elsewhere were cut off from the end',
  );
  if (!keyGiven) limits.push(newest?.signed ? 'who signed the checkpoints (give --public-key)' : 'who wrote the checkpoints: they are not signed');
  limits.push('that every LLM call was recorded (look for ledger.gap records and unaudited calls: llm-audit report summary)');
  const does = `It does not prove ${limits.join('; nor ')}.`;
  return { proves, does_not_prove: does };
}
