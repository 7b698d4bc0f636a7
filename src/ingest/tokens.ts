/**
 * Ingest tokens bound to tenants (`LLM_AUDIT_INGEST_TOKENS`): a JSON file mapping each bearer token
 * to the tenants it may write, so that one application's token cannot write records in another
 * tenant's name. See docs/server.md.
 *
 *   { "token-of-acme-app": ["acme"], "token-of-shared-worker": ["acme", null], "collector-token": "*" }
 *
 * `null` in a list stands for spans without `llm_audit.tenant.id`; `"*"` allows every tenant.
 */
import { LedgerError } from '../ledger/errors';

/** The tenants one token may write: every one, or the listed ids (null: spans without a tenant). */
export type TenantScope = '*' | ReadonlySet<string | null>;

// A bearer token is a secret: one short enough to guess is a configuration mistake.
const MIN_TOKEN_LENGTH = 16;

/** Parses the tokens file; every mistake is a LEDGER_USAGE error naming the file and the entry. */
export function parseIngestTokens(text: string, source: string): Map<string, TenantScope> {
  const fail = (why: string): never => {
    throw new LedgerError('LEDGER_USAGE', `LLM_AUDIT_INGEST_TOKENS ${source}: ${why}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return fail('must be a JSON object mapping each token to "*" or an array of tenant ids');
  }
  const tokens = new Map<string, TenantScope>();
  let index = 0;
  for (const [token, scope] of Object.entries(parsed)) {
    index++;
    // The entry is named by its position: the token itself is never printed.
    const entry = `entry ${index}`;
    if (token.trim() !== token || token.length < MIN_TOKEN_LENGTH) fail(`${entry}: a token has at least ${MIN_TOKEN_LENGTH} characters and no surrounding spaces`);
    if (scope === '*') {
      tokens.set(token, '*');
      continue;
    }
    if (!Array.isArray(scope)) return fail(`${entry}: the value is "*" or an array of tenant ids`);
    for (const tenant of scope) if (typeof tenant !== 'string' && tenant !== null) fail(`${entry}: tenant ids are strings or null (spans without a tenant)`);
    tokens.set(token, new Set(scope as (string | null)[]));
  }
  if (tokens.size === 0) fail('lists no token');
  return tokens;
}

/** Whether a token of this scope may write a record of `tenant`. */
export function scopeAllows(scope: TenantScope, tenant: string | null): boolean {
  return scope === '*' || scope.has(tenant);
}
