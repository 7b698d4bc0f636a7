#!/usr/bin/env node
/**
 * `llm-audit`: verify, prove, query, report on and apply retention to an audit ledger.
 * Errors are `llm-audit: CODE: message` (and `fix: ...` when there is one), rendered and given
 * their exit status by src/errors: 0 ok, 1 integrity failure, 2 usage, 3 unusable, 4 no such
 * record, 70 internal error, 78 configuration. Never a stack trace (unless LLM_AUDIT_DEBUG=1).
 */
import { EXIT, exitStatusFor, renderError } from '../errors';
import { LedgerError } from '../ledger/errors';
import { processIo, type CliIo } from './io';

type Command = (argv: string[], io: CliIo) => Promise<number>;

/**
 * Each command's module is loaded when it runs (or shows its help), not at start-up: a report on
 * PostgreSQL needs neither the OTLP receiver, the price tables nor the instrumentations that other
 * commands load (measured: `--help` loading every command took 2.8 s on a loaded 2-core machine,
 * the report command's own modules 0.5 s; bench/results/scale-pgsql-200k.md).
 */
const lazy =
  <M>(load: () => Promise<M>, pick: (m: M) => [Command, string]) =>
  async (): Promise<{ run: Command; usage: string }> => {
    const [run, usage] = pick(await load());
    return { run, usage };
  };

const COMMANDS: Record<string, { load: () => Promise<{ run: Command; usage: string }>; summary: string }> = {
  verify: { load: lazy(() => import('./verify.js'), (m) => [m.verifyCommand, m.VERIFY_USAGE]), summary: 'recompute every hash, the chain, the roots and signatures' },
  prove: { load: lazy(() => import('./prove.js'), (m) => [m.proveCommand, m.PROVE_USAGE]), summary: 'print an inclusion proof of a record against the newest checkpoint' },
  'verify-proof': { load: lazy(() => import('./prove.js'), (m) => [m.verifyProofCommand, m.VERIFY_PROOF_USAGE]), summary: 'check an inclusion or consistency proof without the ledger' },
  consistency: { load: lazy(() => import('./prove.js'), (m) => [m.consistencyCommand, m.CONSISTENCY_USAGE]), summary: 'prove (and check) that a newer checkpoint extends an older one' },
  checkpoint: { load: lazy(() => import('./prove.js'), (m) => [m.checkpointCommand, m.CHECKPOINT_USAGE]), summary: 'print the newest checkpoint (keep a copy elsewhere)' },
  query: { load: lazy(() => import('./query.js'), (m) => [m.queryCommand, m.QUERY_USAGE]), summary: 'list records' },
  report: {
    load: lazy(() => import('./report.js'), (m) => [m.reportCommand, m.REPORT_USAGE]),
    summary: 'usage and cost per user/tenant/model, guardrails, sanitization, anomalies, error rate, summary',
  },
  hash: { load: lazy(() => import('./hash.js'), (m) => [m.hashCommand, m.HASH_USAGE]), summary: "recompute a request's keyed prompt hashes (and compare with a record's)" },
  evidence: {
    load: lazy(() => import('./evidence.js'), (m) => [m.evidenceCommand, m.EVIDENCE_USAGE]),
    summary: 'write (or verify) a compliance evidence bundle: HTML report, facts, signed checkpoint, proofs',
  },
  retention: {
    load: lazy(() => import('./retention.js'), (m) => [m.retentionCommand, m.RETENTION_USAGE]),
    summary: 'remove expired segments (signed tombstone); the policy in force; the log of deletions',
  },
  keygen: { load: lazy(() => import('./keygen.js'), (m) => [m.keygenCommand, m.KEYGEN_USAGE]), summary: 'create an Ed25519 checkpoint signing key' },
  'verifier-key': { load: lazy(() => import('./keygen.js'), (m) => [m.verifierKeyCommand, m.VERIFIER_KEY_USAGE]), summary: "print the checkpoint key as a C2SP note verifier key (for witnesses)" },
  repair: { load: lazy(() => import('./repair.js'), (m) => [m.repairCommand, m.REPAIR_USAGE]), summary: 'move a torn tail (interrupted write) to quarantine' },
  decrypt: { load: lazy(() => import('./decrypt.js'), (m) => [m.decryptCommand, m.DECRYPT_USAGE]), summary: "show a record's encrypted content to a reviewer (needs the content key)" },
  shred: { load: lazy(() => import('./shred.js'), (m) => [m.shredCommand, m.SHRED_USAGE]), summary: "destroy a tenant's content data keys (crypto-shredding); the ledger still verifies" },
  'content-key': { load: lazy(() => import('./content-key.js'), (m) => [m.contentKeyCommand, m.CONTENT_KEY_USAGE]), summary: 'create a master key for encrypted content capture' },
  serve: { load: lazy(() => import('./serve.js'), (m) => [m.serveCommand, m.SERVE_USAGE]), summary: 'receive audit spans over OTLP/HTTP into the ledger (file or PostgreSQL)' },
  config: {
    load: lazy(() => import('./config-check.js'), (m) => [m.configCommand, m.CONFIG_CHECK_USAGE]),
    summary: 'config check: the settings register would run with (secrets as fingerprints), the ledger, keys, OTLP endpoint and SDK versions they need, what would not be audited',
  },
  migrate: { load: lazy(() => import('./serve.js'), (m) => [m.migrateCommand, m.MIGRATE_USAGE]), summary: 'create or upgrade the PostgreSQL ledger schema' },
  'grant-reader': {
    load: lazy(() => import('./grant-reader.js'), (m) => [m.grantReaderCommand, m.GRANT_READER_USAGE]),
    summary: "PostgreSQL: set up a role that sees only one tenant's records (row-level security)",
  },
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
  const entry = COMMANDS[name];
  if (!entry) {
    reportError(new LedgerError('LEDGER_USAGE', `unknown command ${JSON.stringify(name)}\n${helpText().trimEnd()}`), io);
    return EXIT.usage;
  }
  try {
    const command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      // Loaded only for --help: help.ts names serve's and the receiver's defaults, whose modules load
      // the PostgreSQL driver and the OTLP receiver (every command paid for them at start-up).
      const { commandHelp } = await import('./help.js');
      await io.out(commandHelp(name, command.usage));
      return EXIT.ok;
    }
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
