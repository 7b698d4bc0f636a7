#!/usr/bin/env node
/**
 * `llm-audit`: verify, prove, query, report on and apply retention to an audit ledger.
 * Errors are `llm-audit: CODE: message` (and `fix: ...` when there is one), rendered and given
 * their exit status by src/errors: 0 ok, 1 integrity failure, 2 usage, 3 unusable, 4 no such
 * record, 70 internal error, 78 configuration. Never a stack trace (unless LLM_AUDIT_DEBUG=1).
 */
import { EXIT, exitStatusFor, renderError } from '../errors';
import { LedgerError } from '../ledger/errors';
import { CONFIG_CHECK_USAGE, configCommand } from './config-check';
import { CONTENT_KEY_USAGE, contentKeyCommand } from './content-key';
import { DECRYPT_USAGE, decryptCommand } from './decrypt';
import { EVIDENCE_USAGE, evidenceCommand } from './evidence';
import { GRANT_READER_USAGE, grantReaderCommand } from './grant-reader';
import { commandHelp } from './help';
import { processIo, type CliIo } from './io';
import { KEYGEN_USAGE, VERIFIER_KEY_USAGE, keygenCommand, verifierKeyCommand } from './keygen';
import {
  CHECKPOINT_USAGE,
  CONSISTENCY_USAGE,
  PROVE_USAGE,
  VERIFY_PROOF_USAGE,
  checkpointCommand,
  consistencyCommand,
  proveCommand,
  verifyProofCommand,
} from './prove';
import { QUERY_USAGE, queryCommand } from './query';
import { REPAIR_USAGE, repairCommand } from './repair';
import { REPORT_USAGE, reportCommand } from './report';
import { RETENTION_USAGE, retentionCommand } from './retention';
import { SHRED_USAGE, shredCommand } from './shred';
import { MIGRATE_USAGE, SERVE_USAGE, migrateCommand, serveCommand } from './serve';
import { VERIFY_USAGE, verifyCommand } from './verify';

type Command = (argv: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string; summary: string }> = {
  verify: { run: verifyCommand, usage: VERIFY_USAGE, summary: 'recompute every hash, the chain, the roots and signatures' },
  prove: { run: proveCommand, usage: PROVE_USAGE, summary: 'print an inclusion proof of a record against the newest checkpoint' },
  'verify-proof': { run: verifyProofCommand, usage: VERIFY_PROOF_USAGE, summary: 'check an inclusion or consistency proof without the ledger' },
  consistency: { run: consistencyCommand, usage: CONSISTENCY_USAGE, summary: 'prove (and check) that a newer checkpoint extends an older one' },
  checkpoint: { run: checkpointCommand, usage: CHECKPOINT_USAGE, summary: 'print the newest checkpoint (keep a copy elsewhere)' },
  query: { run: queryCommand, usage: QUERY_USAGE, summary: 'list records' },
  report: { run: reportCommand, usage: REPORT_USAGE, summary: 'cost by user, anomalies, error rate' },
  evidence: { run: evidenceCommand, usage: EVIDENCE_USAGE, summary: 'write (or verify) a compliance evidence bundle: HTML report, facts, signed checkpoint, proofs' },
  retention: { run: retentionCommand, usage: RETENTION_USAGE, summary: 'remove expired segments, leaving a signed tombstone' },
  keygen: { run: keygenCommand, usage: KEYGEN_USAGE, summary: 'create an Ed25519 checkpoint signing key' },
  'verifier-key': { run: verifierKeyCommand, usage: VERIFIER_KEY_USAGE, summary: "print the checkpoint key as a C2SP note verifier key (for witnesses)" },
  repair: { run: repairCommand, usage: REPAIR_USAGE, summary: 'move a torn tail (interrupted write) to quarantine' },
  decrypt: { run: decryptCommand, usage: DECRYPT_USAGE, summary: "show a record's encrypted content to a reviewer (needs the content key)" },
  shred: { run: shredCommand, usage: SHRED_USAGE, summary: "destroy a tenant's content data keys (crypto-shredding); the ledger still verifies" },
  'content-key': { run: contentKeyCommand, usage: CONTENT_KEY_USAGE, summary: 'create a master key for encrypted content capture' },
  serve: { run: serveCommand, usage: SERVE_USAGE, summary: 'receive audit spans over OTLP/HTTP into the ledger (file or PostgreSQL)' },
  config: { run: configCommand, usage: CONFIG_CHECK_USAGE, summary: 'config check: the settings register would run with (secrets as fingerprints), the ledger, keys, OTLP endpoint and SDK versions they need, what would not be audited' },
  migrate: { run: migrateCommand, usage: MIGRATE_USAGE, summary: 'create or upgrade the PostgreSQL ledger schema' },
  'grant-reader': { run: grantReaderCommand, usage: GRANT_READER_USAGE, summary: "PostgreSQL: set up a role that sees only one tenant's records (row-level security)" },
};

export function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return (
    'usage: llm-audit <command> [options]\n\ncommands:\n' +
    Object.entries(COMMANDS)
      .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
      .join('\n') +
    '\n\nthe ledger directory is --ledger DIR, else $LLM_AUDIT_LEDGER_DIR, else ./llm-audit-ledger\n' +
    'exit codes: 0 ok, 1 verification failed, 2 usage error, 3 ledger or key unusable, 4 no such record, 70 internal error, 78 configuration error\n' +
    "run 'llm-audit <command> --help' for a command's options\n"
  );
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    await io.out(helpText());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    await io.out(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    reportError(new LedgerError('LEDGER_USAGE', `unknown command ${JSON.stringify(name)}\n${helpText().trimEnd()}`), io);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    await io.out(commandHelp(name, command.usage));
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    reportError(error, io);
    return exitStatusFor(error);
  }
}

function reportError(error: unknown, io: CliIo): void {
  for (const line of renderError(error, 'llm-audit', io.env.LLM_AUDIT_DEBUG === '1')) io.err(line);
}

function packageVersion(): string {
  try {
    // dist/cjs/cli/main.js -> package.json three levels up.
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

if (require.main === module) {
  const io = processIo();
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(renderError(error, 'llm-audit').join('\n') + '\n');
      process.exitCode = EXIT.internal;
    },
  );
}

export { LedgerError };
