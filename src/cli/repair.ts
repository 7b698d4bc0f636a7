/** `llm-audit repair`: quarantines torn tails, recreates a deleted ledger.json from the checkpoints, writes missing segment summaries (and nothing else). */
import { repairLedger, repairSummaries } from '../ledger/file/repair';
import { ledgerDir, parse, str, type CliIo } from './io';

export const REPAIR_USAGE = 'llm-audit repair [--ledger DIR]';

export async function repairCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { ledger: { type: 'string' } }, REPAIR_USAGE);
  const dir = ledgerDir(str(p, 'ledger'), io);
  const actions = await repairLedger(dir);
  const summarized = await repairSummaries(dir);
  if (summarized.length > 0) await io.out(`wrote the summaries of ${summarized.length} segment(s) that had none describing them: ${summarized.join(', ')}\n`);
  if (actions.length === 0) {
    await io.out(`nothing ${summarized.length > 0 ? 'else ' : ''}to repair in ${dir}: no torn tail, ledger.json present\n`);
    return 0;
  }
  for (const a of actions) {
    await io.out(
      'ledger_id' in a
        ? `recreated ${a.file} with ledger id ${a.ledger_id}, the id every checkpoint carries; recorded in repairs.jsonl\n`
        : `moved ${a.bytes} torn bytes from the end of ${a.file} (offset ${a.offset}) to ${a.quarantine} (sha256 ${a.sha256}); recorded in repairs.jsonl\n`,
    );
  }
  io.err('run `llm-audit verify` to check the ledger');
  return 0;
}
