/**
 * Every LLM_AUDIT_* variable, with its default as the README's configuration table states it
 * (test/config/reference.test.ts checks the table against this list, both ways, so neither can
 * drift) and whether its value is a secret (`llm-audit config check` shows a secret only as a
 * fingerprint). The defaults themselves are the named constants beside the code that uses them.
 */
import { DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_BYTES } from '../export/config';
import { DEFAULT_CHECKPOINT_EVERY } from '../ledger/checkpoint';
import { DEFAULT_LEDGER_DIR, DEFAULT_MAX_BACKLOG } from '../ledger/span-exporter';

export const AUDIT_EXPORTERS = ['ledger', 'otlp', 'both', 'console'] as const;
export type AuditExporter = (typeof AUDIT_EXPORTERS)[number];

/** LLM_AUDIT_SHUTDOWN_TIMEOUT_MS unset: how long the exit flush may take. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export interface ConfigVariable {
  name: string;
  /** As the README's Default column says it (backticks included). */
  default: string;
  /** A key or token: shown by `config check` as a fingerprint, never as is. A path to a key file is not a secret. */
  secret?: true;
  /** Read by the `llm-audit` CLI only, not by `register`. */
  cliOnly?: true;
}

const code = (value: string | number): string => `\`${value}\``;
const mib = (bytes: number): string => `${bytes / 1024 / 1024}MiB`;

export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  { name: 'LLM_AUDIT_HASH_KEY', default: 'unset', secret: true },
  { name: 'LLM_AUDIT_HASH_KEY_ID', default: 'key fingerprint' },
  { name: 'LLM_AUDIT_PRICES_FILE', default: 'unset' },
  { name: 'LLM_AUDIT_SANITIZE', default: code('off') },
  { name: 'LLM_AUDIT_CONTENT', default: code('off') },
  { name: 'LLM_AUDIT_CONTENT_KEY', default: 'unset' },
  { name: 'LLM_AUDIT_CONTENT_KEY_ID', default: "the key file's" },
  { name: 'LLM_AUDIT_CONTENT_KEYSTORE', default: 'beside the key' },
  { name: 'LLM_AUDIT_CONTENT_OLD_KEYS', default: 'unset' },
  { name: 'LLM_AUDIT_CLIENT_ADDRESS', default: code('truncated') },
  { name: 'LLM_AUDIT_HOOKS', default: 'unset' },
  { name: 'LLM_AUDIT_EXPORTER', default: '`otlp` with an OTLP endpoint, else `ledger`' },
  { name: 'LLM_AUDIT_LEDGER_DIR', default: code(DEFAULT_LEDGER_DIR) },
  { name: 'LLM_AUDIT_FSYNC', default: code('always') },
  { name: 'LLM_AUDIT_SIGNING_KEY', default: 'unset' },
  { name: 'LLM_AUDIT_LOG_ORIGIN', default: '`otel-llm-audit.invalid/ledger/<ledger id>`' },
  { name: 'LLM_AUDIT_WITNESSES', default: 'unset' },
  { name: 'LLM_AUDIT_CHECKPOINT_EVERY', default: code(DEFAULT_CHECKPOINT_EVERY) },
  { name: 'LLM_AUDIT_LEDGER_MAX_BACKLOG', default: code(DEFAULT_MAX_BACKLOG) },
  { name: 'LLM_AUDIT_ON_FAILURE', default: code('continue') },
  { name: 'LLM_AUDIT_SHUTDOWN_TIMEOUT_MS', default: code(DEFAULT_SHUTDOWN_TIMEOUT_MS) },
  { name: 'LLM_AUDIT_SPOOL', default: code('on') },
  { name: 'LLM_AUDIT_SPOOL_DIR', default: code(DEFAULT_SPOOL_DIR) },
  { name: 'LLM_AUDIT_SPOOL_MAX_BYTES', default: code(mib(DEFAULT_SPOOL_MAX_BYTES)) },
  { name: 'LLM_AUDIT_PROVIDER_HOSTS', default: 'unset' },
  { name: 'LLM_AUDIT_LLM_HOSTS', default: 'unset' },
  { name: 'LLM_AUDIT_POSTGRES_URL', default: 'unset', secret: true, cliOnly: true },
  { name: 'LLM_AUDIT_PUBLIC_KEY', default: 'unset', cliOnly: true },
  { name: 'LLM_AUDIT_INGEST_TOKEN', default: 'unset', secret: true, cliOnly: true },
  { name: 'LLM_AUDIT_INGEST_TOKENS', default: 'unset', cliOnly: true },
  { name: 'LLM_AUDIT_RETENTION_POLICY', default: 'unset', cliOnly: true },
  { name: 'LLM_AUDIT_DEBUG', default: 'unset', cliOnly: true },
];
