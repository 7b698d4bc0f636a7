/**
 * The process environment's defaults for an LlmAuditInstrumentation built without the options
 * (an application's own NodeSDK; see src/config/index.ts), read when it is built, through the
 * same parsers as readConfig. Kept apart from ./index.ts so that the main entry does not load the
 * ledger and exporter modules the whole configuration names.
 */
import { contentCipherFromEnv, type ContentCipher } from '../audit/content';
import { hashKeyFromEnv } from '../audit/hashing';
import { providerHostMap, type ProviderHostMap } from '../instrumentations/provider-hosts';
import { sanitizeModeFromEnv, type SanitizeMode } from '../audit/sanitize';
import { Problems } from './problems';

/** One reading, thrown as CONFIG_INVALID like readConfig's problems. */
function checked<T>(read: () => T): T {
  const problems = new Problems();
  const value = problems.check(read);
  problems.throwIfAny();
  return value!;
}

export const processDefaults = {
  /** LLM_AUDIT_HASH_KEY and _ID. @throws AuditError CONFIG_INVALID */
  hashKey(): { hashKey: Buffer | undefined; hashKeyId: string | undefined } {
    return checked(() => hashKeyFromEnv(process.env));
  },
  /** LLM_AUDIT_SANITIZE. @throws AuditError CONFIG_INVALID */
  sanitize(): SanitizeMode {
    return checked(() => sanitizeModeFromEnv(process.env));
  },
  /** LLM_AUDIT_PROVIDER_HOSTS. */
  providerHosts(): ProviderHostMap | undefined {
    return providerHostMap(undefined, process.env);
  },
  /** The content cipher of LLM_AUDIT_CONTENT and friends. */
  content(): ContentCipher | undefined {
    return contentCipherFromEnv(process.env);
  },
};
