/**
 * The configuration of otel-llm-audit: the environment read once into one typed object, validated
 * once. Every problem is reported together, in one CONFIG_INVALID error naming each variable and
 * what it accepts: an operator fixing a deployment should not discover them one restart at a time.
 *
 * Only the entry points read process.env (`register`, the `llm-audit` CLI, `otel-llm-audit/next`)
 * and hand it here; library code gets plain options (test/config/env-readers.test.ts holds that).
 * The one exception is processDefaults (./process-defaults.ts): an instrumentation an application
 * builds itself (`new LlmAuditInstrumentation()` in its own NodeSDK) has always taken its hash key,
 * sanitize mode, provider hosts and content settings from the environment when not given them, and
 * silently dropping to unkeyed hashes would be an audit failure; those defaults are read there,
 * through the same parsers, when the instrumentation is built.
 *
 * The variables, their defaults and what they accept: {@link CONFIG_VARIABLES} (./variables.ts),
 * which the README's configuration table is checked against.
 */
import { resolve } from 'node:path';
import { contentCipherFromEnv, type ContentCipher } from '../audit/content';
import { onFailureFromEnv, type OnFailurePolicy } from '../audit/failure-policy';
import { createContentHasher, hashKeyFromEnv } from '../audit/hashing';
import { sanitizeModeFromEnv, type SanitizeMode } from '../audit/sanitize';
import { watcherSettings } from '../audit/unaudited/config';
import type { ModelPriceOverride } from '../audit/cost';
import { spoolConfigFromEnv, type SpoolConfig } from '../export/config';
import { parseProviderHosts } from '../instrumentations/provider-hosts';
import { ledgerOptionsFromEnv, type LedgerSpanExporterOptions } from '../ledger/span-exporter';
import { loadPriceOverrides } from '../sdk/prices-file';
import { otelSettings, type OtelSettings } from './otel';
import { Problems } from './problems';
import { AUDIT_EXPORTERS, DEFAULT_SHUTDOWN_TIMEOUT_MS, type AuditExporter } from './variables';

export { CONFIG_VARIABLES, AUDIT_EXPORTERS, DEFAULT_SHUTDOWN_TIMEOUT_MS, type AuditExporter, type ConfigVariable } from './variables';
export type { OtelSettings } from './otel';
export { processDefaults } from './process-defaults';

/** What `register` (startAudit) runs with. */
export interface AuditConfig {
  /** LLM_AUDIT_EXPORTER; unset: `otlp` with an OTLP endpoint, else `ledger`. */
  exporter: AuditExporter;
  shutdownTimeoutMs: number;
  onFailure: OnFailurePolicy;
  /** For LlmAuditInstrumentation: everything it would otherwise look up itself. */
  instrumentation: {
    hashKey: Buffer | undefined;
    hashKeyId: string | undefined;
    sanitize: SanitizeMode;
    /** null: content capture off. */
    content: ContentCipher | null;
    providerHosts: Record<string, string> | undefined;
    prices: Record<string, ModelPriceOverride> | undefined;
  };
  /** LLM_AUDIT_HOOKS, resolved against the working directory. */
  hooksPath: string | undefined;
  ledger: LedgerSpanExporterOptions;
  spool: SpoolConfig;
  otel: OtelSettings;
}

/**
 * The process's environment, for an entry point that was given none (`startAudit()`): the one
 * place outside the entry points where process.env is named.
 */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}

/** LLM_AUDIT_EXPORTER; a value that is not known is a configuration error. */
export function exporterFromEnv(env: NodeJS.ProcessEnv = processEnvironment()): AuditExporter {
  const value = env.LLM_AUDIT_EXPORTER?.trim().toLowerCase();
  if (value === undefined || value === '') {
    return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'ledger';
  }
  if ((AUDIT_EXPORTERS as readonly string[]).includes(value)) return value as AuditExporter;
  throw new Error(`LLM_AUDIT_EXPORTER=${env.LLM_AUDIT_EXPORTER} is not one of ${AUDIT_EXPORTERS.join(', ')}`);
}

/** LLM_AUDIT_SHUTDOWN_TIMEOUT_MS: how long shutdown may take to flush (default 10 s). */
export function shutdownTimeoutFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.LLM_AUDIT_SHUTDOWN_TIMEOUT_MS;
  if (raw === undefined || raw === '') return DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`LLM_AUDIT_SHUTDOWN_TIMEOUT_MS=${raw} is not a positive whole number of milliseconds`);
  }
  return value;
}

/** LLM_AUDIT_PROVIDER_HOSTS (`host=name,...`, validated by parseProviderHosts) as the instrumentation's `providerHosts` option. */
function providerHostsOption(env: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const value = env.LLM_AUDIT_PROVIDER_HOSTS?.trim();
  if (!value) return undefined;
  return Object.fromEntries(value.split(',').map((entry) => [entry.slice(0, entry.lastIndexOf('=')).trim(), entry.slice(entry.lastIndexOf('=') + 1)]));
}

/**
 * Reads and validates the whole configuration from `env` (the process's environment, given by an
 * entry point, or one a caller made up: `startAudit(env)` honours every part of it).
 *
 * @throws AuditError CONFIG_INVALID listing every problem found.
 */
export function readConfig(env: NodeJS.ProcessEnv): AuditConfig {
  const problems = new Problems();
  const exporter = problems.check(() => exporterFromEnv(env));
  const shutdownTimeoutMs = problems.check(() => shutdownTimeoutFromEnv(env));
  const onFailure = problems.check(() => onFailureFromEnv(env));
  const hash = problems.check(() => {
    const key = hashKeyFromEnv(env);
    // The key's own checks (length, key id), without building the unkeyed hasher and its warning.
    try {
      if (key.hashKey !== undefined) createContentHasher({ key: key.hashKey, keyId: key.hashKeyId });
    } catch (error) {
      throw new Error(`LLM_AUDIT_HASH_KEY${key.hashKeyId !== undefined ? ' / LLM_AUDIT_HASH_KEY_ID' : ''}: ${(error as Error).message.replace(/^otel-llm-audit: /, '')}`);
    }
    return key;
  });
  const sanitize = problems.check(() => sanitizeModeFromEnv(env));
  const content = problems.check(() => contentCipherFromEnv(env) ?? null);
  problems.check(() => parseProviderHosts(undefined, env));
  const prices = problems.check(() => loadPriceOverrides(env));
  const ledger = problems.check(() => ledgerOptionsFromEnv(env));
  const spool = problems.check(() => spoolConfigFromEnv(env));
  // The unaudited-request watcher reads its hosts itself when it starts; checked here with the rest.
  problems.check(() => watcherSettings({}, env));
  problems.throwIfAny();
  const hooks = env.LLM_AUDIT_HOOKS?.trim();
  return {
    exporter: exporter!,
    shutdownTimeoutMs: shutdownTimeoutMs!,
    onFailure: onFailure!,
    instrumentation: {
      ...hash!,
      sanitize: sanitize!,
      content: content!,
      providerHosts: providerHostsOption(env),
      prices,
    },
    hooksPath: hooks ? resolve(hooks) : undefined,
    ledger: ledger!,
    spool: spool!,
    otel: otelSettings(env),
  };
}
