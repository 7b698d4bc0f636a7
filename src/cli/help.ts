/**
 * `llm-audit <command> --help`: the usage line, then every option with its default, then an
 * example. test/cli/rough-edges.test.ts checks that each option a usage line names is explained.
 */
import { DEFAULTS } from '../ingest/server';
import { DEFAULT_DB_WAIT_S } from './serve';

type Option = [flag: string, meaning: string];

interface CommandHelp {
  options: Option[];
  examples: string[];
}

const LEDGER: Option = ['--ledger DIR', 'the file ledger (default $LLM_AUDIT_LEDGER_DIR, else ./llm-audit-ledger)'];
const POSTGRES: Option = ['--postgres URL', 'the PostgreSQL ledger instead of a directory'];
const OUT: Option = ['--out FILE', 'write to FILE instead of standard output'];
const PUBLIC_KEY: Option = ['--public-key FILE', 'Ed25519 public key the checkpoints must be signed with (default $LLM_AUDIT_PUBLIC_KEY)'];
const SIGNING_KEY: Option = ['--signing-key FILE', 'Ed25519 private key to sign with (default $LLM_AUDIT_SIGNING_KEY; unsigned without)'];
const FORMAT: Option = ['--format table|json|csv', 'output format (default table)'];
const EXCEL: Option = [
  '--excel',
  'with --format csv: a byte order mark and dates a spreadsheet reads (every CSV starts with a # line stating command, filter and period, and neutralises cells a spreadsheet would run as formulas)',
];
const FROM_TO: Option[] = [
  ['--from ISO', 'records at or after this date or time (default: from the first)'],
  ['--to ISO', 'records before this date or time (default: to the last)'],
];
const CONTENT_KEYS: Option[] = [
  ['--key FILE', 'a content master key; repeat for rotated keys (default $LLM_AUDIT_CONTENT_KEY)'],
  ['--keystore FILE', 'the keystore of data keys (default $LLM_AUDIT_CONTENT_KEYSTORE, else beside the key file)'],
];
/** The audit.read record a reading command appends (audit-read.ts). */
const READ_AUDIT: Option[] = [
  ['--actor NAME', 'who reads, in the audit.read record (default: the OS user, which is recorded too)'],
  ['--reason TEXT', 'why, in the audit.read record'],
  ['--signing-key FILE', 'the ledger\'s signing key, to append the audit.read record to a signed ledger (default $LLM_AUDIT_SIGNING_KEY)'],
  ['--require-audit', 'refuse (exit 3, nothing read) when the read cannot be recorded (default: a note on stderr)'],
];
const mib = (bytes: number): string => `${bytes / (1024 * 1024)} MiB`;

const HELP: Record<string, CommandHelp> = {
  verify: {
    options: [
      LEDGER,
      POSTGRES,
      ['--checkpoint FILE', 'a checkpoint kept elsewhere that the ledger must still match; repeatable'],
      ['--public-key FILE', 'every tombstone, the newest checkpoint and each --checkpoint must be signed by this key (default $LLM_AUDIT_PUBLIC_KEY)'],
      ['--witness KEY', 'a witness verifier key, repeatable: checkpoints must carry its cosignature'],
      ['--witness-quorum N', 'how many of the --witness keys must have cosigned (default: all)'],
      ['--strict', 'fail (exit 1) when a writer recovered records at startup after a crash (default: a warning)'],
      ['--workers N', 'threads for the per-line work of a file ledger, whole segments each (0: none; default: the cores, at most 4, from 16 MiB of segments)'],
      ['--json', 'print the result as JSON, on failure too ({"ok": false, "code": ..., "message": ...}, same exit code)'],
    ],
    examples: [
      'llm-audit verify --ledger ./llm-audit-ledger --checkpoint cp-2026-11-30.json --public-key audit-signing.pem.pub',
      'llm-audit verify --public-key audit-signing.pem.pub --json > verify-$(date +%F).json   # kept as evidence, OK or not',
    ],
  },
  prove: {
    options: [
      ['<request_id>', 'the record to prove, by request id'],
      ['--seq N', 'or by sequence number'],
      LEDGER,
      POSTGRES,
      ['--format json|tlog-proof', 'the proof as JSON (default) or as a c2sp.org/tlog-proof'],
      OUT,
    ],
    examples: ['llm-audit prove 415ad8ec-ff79-4db3-8c34-836b6bb51703 --out proof.json'],
  },
  'verify-proof': {
    options: [
      ['--proof FILE', 'the proof printed by prove or consistency'],
      ['--public-key FILE', 'the key its checkpoint must be signed with (default $LLM_AUDIT_PUBLIC_KEY); without one nothing is proven (anyone can recompute a root): exit 1, LEDGER_PROOF_UNAUTHENTICATED'],
      ['--allow-unsigned', 'check only the arithmetic, and exit 0 without a key'],
    ],
    examples: ['llm-audit verify-proof --proof proof.json --public-key audit-signing.pem.pub'],
  },
  consistency: {
    options: [
      ['<old> <new>', 'two checkpoint files, older first'],
      LEDGER,
      POSTGRES,
      PUBLIC_KEY,
      ['--format json|witness', 'the proof as JSON (default) or as a c2sp.org/tlog-witness add-checkpoint body'],
      OUT,
    ],
    examples: ['llm-audit consistency cp-2026-11-01.json cp-2026-12-01.json'],
  },
  checkpoint: {
    options: [
      ['--at ISO', 'the newest checkpoint written at or before this date or time (default: the newest)'],
      LEDGER,
      POSTGRES,
      ['--format json|note', 'as JSON (default) or as a C2SP signed note with its cosignatures'],
      OUT,
    ],
    examples: [
      'llm-audit checkpoint --out cp-$(date +%F).json   # keep copies where the ledger\'s writers cannot reach',
      'llm-audit checkpoint --at 2026-11-30T23:59:59Z --out cp-november.json   # the ledger as it stood at the end of November',
    ],
  },
  query: {
    options: [
      ...FROM_TO,
      ['--user U', 'only this user id'],
      ['--tenant T', 'only this tenant id'],
      ['--session S', 'only this session id'],
      ['--model M', 'only this model, requested or answering (the requested one also finds the calls that failed)'],
      ['--provider P', 'only this provider (openai, anthropic, aws.bedrock...)'],
      ['--status S', 'only success, error, blocked, interrupted or unaudited'],
      ['--action A', "only this SDK method, audit event or operation (chat.completions.create, auth.login, content.shred...); * matches anything: 'auth.*'"],
      ['--service NAME', "only this application (the resource's service.name)"],
      ['--env ENV', "only this deployment environment (the resource's deployment.environment.name)"],
      ['--trace-id ID', 'only the records of this trace (the id a tracing backend such as Jaeger shows)'],
      ['--request-id ID', 'only this request (llm_audit.request_id, as an error message or a support ticket quotes it)'],
      ['--format table|json|csv', 'output format (default table; json and csv: the whole record, with ids, hashes, token details, guardrails and sanitization)'],
      EXCEL,
      ['--columns A,B', 'only these columns, in this order'],
      ['--limit N', 'at most N records (default all)'],
      LEDGER,
      POSTGRES,
      ...READ_AUDIT,
    ],
    examples: [
      'llm-audit query --from 2026-11-01 --to 2026-12-01 --status error --format json',
      'llm-audit query --trace-id 4bf92f3577b34da6a3ce929d0e0e4736 --format json   # from a trace to its audit record',
      'llm-audit query --tenant acme --from 2026-11-01 --format csv --excel > acme-november.csv',
    ],
  },
  hash: {
    options: [
      ['--messages FILE', "JSON: the request as the application passed it to the SDK method, or only its message list"],
      ['--action A', "the SDK method, as a record's action names it (default chat.completions.create; with --request-id the record's)"],
      ['--request-id ID', 'compare with this record: MATCH (exit 0) or DIFFERENT (exit 1)'],
      ['--format table|json', 'output format (default table)'],
      LEDGER,
      POSTGRES,
    ],
    examples: [
      'LLM_AUDIT_HASH_KEY=... llm-audit hash --messages prompt.json --request-id 415ad8ec-ff79-4db3-8c34-836b6bb51703',
      'LLM_AUDIT_HASH_KEY=... llm-audit hash --messages request.json --action messages.create --format json',
    ],
  },
  retention: {
    options: [
      ['apply | policy | log', 'remove expired segments | show (or --record) the policy in force | list every deletion and policy change'],
      ['--policy P', 'standard (metadata 2y, content and errors 1y), hipaa (6y), gdpr (--max-age, default 90d) or custom (default: $LLM_AUDIT_RETENTION_POLICY)'],
      ['--record', 'with policy: record the configured policy in the ledger now, when it differs from the recorded one (apply records it anyway)'],
      ['--dry-run', 'show what would be removed; change nothing'],
      ['--now ISO', 'the time expiry is computed at (default the clock; a future one only with --dry-run)'],
      ['--max-age D', 'with --policy gdpr: how long records are kept'],
      ['--metadata D', 'keep records this long (custom, or to override a policy)'],
      ['--content D', 'keep records with content this long'],
      ['--errors D', 'keep error records this long'],
      SIGNING_KEY,
      PUBLIC_KEY,
      FORMAT,
      EXCEL,
      LEDGER,
      POSTGRES,
    ],
    examples: [
      'llm-audit retention apply --policy gdpr --max-age 30d --dry-run',
      'llm-audit retention apply --policy standard --now 2027-01-01 --dry-run',
      'LLM_AUDIT_RETENTION_POLICY="gdpr max-age=30d" llm-audit retention apply   # the declared policy, recorded in the ledger when it changed',
      'llm-audit retention policy   # configured and recorded policy',
      'llm-audit retention log --format csv --excel > deletions.csv',
    ],
  },
  'verifier-key': {
    options: [
      ['--public-key FILE', 'the checkpoint key (default $LLM_AUDIT_PUBLIC_KEY)'],
      ['--origin ORIGIN', 'the log origin (default $LLM_AUDIT_LOG_ORIGIN, else derived from the ledger id)'],
      LEDGER,
      POSTGRES,
    ],
    examples: ['llm-audit verifier-key --public-key audit-signing.pem.pub --ledger ./llm-audit-ledger'],
  },
  keygen: {
    options: [['--out FILE', 'the private key to write (mode 0600), and FILE.pub']],
    examples: ['llm-audit keygen --out audit-signing.pem && export LLM_AUDIT_SIGNING_KEY=$PWD/audit-signing.pem'],
  },
  repair: {
    options: [LEDGER],
    examples: ['llm-audit repair --ledger ./llm-audit-ledger   # only after verify reported a torn tail from a crash'],
  },
  decrypt: {
    options: [
      ['<request_id>', 'the record whose content to show'],
      ['--reason TEXT', 'required: why, recorded in the audit.read record appended before anything is shown'],
      ['--actor NAME', 'who reads (default: the OS user, which is recorded too)'],
      LEDGER,
      POSTGRES,
      ['--signing-key FILE', 'the ledger\'s signing key: a signed ledger takes the audit.read record only with it (default $LLM_AUDIT_SIGNING_KEY)'],
      ...CONTENT_KEYS,
      ['--format text|json', 'output format (default text)'],
    ],
    examples: ['llm-audit decrypt 415ad8ec-ff79-4db3-8c34-836b6bb51703 --key content.key --reason "ticket 4711: customer complaint"'],
  },
  shred: {
    options: [
      ['--tenant T', "the tenant whose content data keys to destroy (its records stay and still verify)"],
      ...CONTENT_KEYS,
      ['--reason TEXT', 'recorded in the operation record'],
      LEDGER,
      POSTGRES,
      SIGNING_KEY,
      ['--yes', 'do not ask (it cannot be undone); required off a terminal'],
      ['--json', 'print the result as JSON'],
    ],
    examples: ['llm-audit shred --tenant acme --key content.key --reason "contract ended" --yes'],
  },
  'content-key': {
    options: [
      ['--out FILE', 'the master key to write (mode 0600; never overwrites)'],
      ['--key-id ID', 'its id, recorded in every envelope (default: random)'],
    ],
    examples: ['llm-audit content-key --out content.key'],
  },
  serve: {
    options: [
      ['--host H', `address to listen on (default ${DEFAULTS.host}; 0.0.0.0 for all)`],
      ['--port N', `port (default ${DEFAULTS.port}; 0 picks a free one)`],
      LEDGER,
      ['--postgres URL', 'the PostgreSQL ledger (default $LLM_AUDIT_POSTGRES_URL)'],
      ['--tls-cert FILE --tls-key FILE', 'serve HTTPS (PEM)'],
      ['--tls-client-ca FILE', 'with TLS: require a client certificate signed by this CA (PEM); others are refused in the handshake'],
      ['--max-body-bytes N', `largest request body (default ${mib(DEFAULTS.maxBodyBytes)})`],
      ['--max-inflight N', `requests handled at once (default ${DEFAULTS.maxInflight})`],
      ['--max-queued-bytes N', `body bytes held at once (default ${mib(DEFAULTS.maxQueuedBytes)})`],
      ['--max-record-bytes N', `largest record (default ${mib(DEFAULTS.maxRecordBytes)})`],
      ['--retry-after S', `Retry-After of 503 answers (default ${DEFAULTS.retryAfterSeconds})`],
      ['--shutdown-timeout S', `how long shutdown waits for requests in flight (default ${DEFAULTS.shutdownTimeoutMs / 1000})`],
      ['--fsync always|batch|none', 'file ledger durability (default $LLM_AUDIT_FSYNC, else always)'],
      SIGNING_KEY,
      ['--checkpoint-every N', 'records between checkpoints (default $LLM_AUDIT_CHECKPOINT_EVERY, else 1000)'],
      ['--migrate', 'with --postgres: apply missing schema migrations first'],
      ['--db-wait S', `with --postgres: how long to retry while PostgreSQL cannot be reached at start-up (default ${DEFAULT_DB_WAIT_S}; 0: fail at once)`],
    ],
    examples: ['LLM_AUDIT_INGEST_TOKEN=... llm-audit serve --host 0.0.0.0 --postgres postgres://llm_audit_writer@db/llm_audit'],
  },
  'grant-reader': {
    options: [
      ['ROLE', 'the role to limit (created NOLOGIN when missing)'],
      ['--tenant T', 'the tenant whose records it may read; repeatable'],
      ['--postgres URL', 'the database (default $LLM_AUDIT_POSTGRES_URL); run as the schema owner'],
    ],
    examples: ['llm-audit grant-reader --tenant acme acme_reader --postgres postgres://llm_audit_owner@db/llm_audit && psql -c "GRANT acme_reader TO alice"'],
  },
  config: {
    options: [
      ['check', 'the only subcommand: print the effective configuration and check it (exit 78 when a value is invalid, 3 when a check fails)'],
      ['--ledger DIR', 'check this ledger directory instead of $LLM_AUDIT_LEDGER_DIR'],
      ['--postgres URL', 'also check this PostgreSQL ledger: reachable, schema up to date (default $LLM_AUDIT_POSTGRES_URL)'],
      ['--json', 'print the settings, checks and what would not be audited as JSON'],
    ],
    examples: ['OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 llm-audit config check'],
  },
  migrate: {
    options: [['--postgres URL', 'the database (default $LLM_AUDIT_POSTGRES_URL); run as the schema owner']],
    examples: ['llm-audit migrate --postgres postgres://llm_audit_owner@db/llm_audit'],
  },
};

/** The whole `--help` text of a command (a usage text with its own example stands alone). */
export function commandHelp(name: string, usage: string): string {
  const help = HELP[name];
  let out = `usage: ${usage}\n`;
  if (!help || /\nexamples?:\n/.test(usage)) return out;
  const width = Math.max(...help.options.map(([flag]) => flag.length));
  out += '\noptions:\n' + help.options.map(([flag, meaning]) => `  ${flag.padEnd(width)}  ${meaning}`).join('\n') + '\n';
  out += `\nexample${help.examples.length > 1 ? 's' : ''}:\n` + help.examples.map((e) => `  ${e}`).join('\n') + '\n';
  return out;
}
