/**
 * The `audit.start` record: one per process that starts the audit (register / startAudit, main
 * thread) and writes audit records, just before the first of them, so that the log itself shows under which configuration and with which SDKs the records
 * that follow were made, and a changed setting or an upgraded SDK is visible where it happened.
 *
 * - `config.fingerprint`: SHA-256 over the canonical JSON of the effective settings (every
 *   LLM_AUDIT_* and OTEL_* variable set, plus the modes in force when left to their defaults).
 *   Values of variables that hold secrets (keys, tokens, passwords, headers, URLs) enter as their
 *   keyed hash, so the fingerprint changes with them and reveals nothing of them;
 * - `config.settings`: the names of the variables set (never their values);
 * - `sdk.<module>`: the version of each supported SDK patched by the time of the process's first
 *   audit record (written just before it, see start.ts), else the version installed where the
 *   process runs (found from its working directory), `none` when neither.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT_CONTEXT, type Attributes } from '@opentelemetry/api';
import { canonicalJson } from '../audit/canonical-json';
import type { ContentHasher } from '../audit/hashing';
import { writeEvent } from '../audit-events';
import * as A from '../semconv';
import { PACKAGE_VERSION } from '../version';

/** The packages the instrumentation patches (src/instrumentation.ts PROVIDERS). */
const SDK_MODULES = ['openai', '@anthropic-ai/sdk', '@google/genai', '@mistralai/mistralai', '@aws-sdk/client-bedrock-runtime', 'ai'] as const;
const SECRET_SETTING = /KEY|TOKEN|SECRET|PASSWORD|HEADERS|URL|ENDPOINT/;

export interface StartFacts {
  env: NodeJS.ProcessEnv;
  /** The modes in force, defaults included (what the variables left unset mean). */
  effective: Record<string, string>;
  hasher: ContentHasher;
  patched: ReadonlyMap<string, string>;
}

/** The attributes of the `audit.start` record. */
export function auditStartAttributes(facts: StartFacts): Attributes {
  const names = Object.keys(facts.env)
    .filter((name) => (name.startsWith('LLM_AUDIT_') || name.startsWith('OTEL_')) && facts.env[name] !== undefined)
    .sort();
  const settings: Record<string, string> = {};
  for (const name of names) {
    const value = facts.env[name]!;
    settings[name] = SECRET_SETTING.test(name) ? facts.hasher.hash(value) : value;
  }
  const fingerprint = createHash('sha256').update(canonicalJson({ settings, effective: facts.effective, package: PACKAGE_VERSION })).digest('hex');
  const details = A.ATTR_AUDIT_EVENT_DETAILS_PREFIX;
  const attributes: Attributes = {
    [A.ATTR_AUDIT_EVENT_OUTCOME]: 'success',
    [A.ATTR_AUDIT_STATUS]: A.AUDIT_STATUS.success,
    [`${details}config.fingerprint`]: `sha256:${fingerprint}`,
    [`${details}config.settings`]: names.join(','),
    [`${details}package.version`]: PACKAGE_VERSION,
    [`${details}pid`]: process.pid,
  };
  for (const [key, value] of Object.entries(facts.effective)) attributes[`${details}config.${key}`] = value;
  for (const name of SDK_MODULES) attributes[`${details}sdk.${name}`] = facts.patched.get(name) ?? installedVersion(name) ?? 'none';
  return attributes;
}

export function writeAuditStart(facts: StartFacts): void {
  // A trace of its own: not a part of whatever request made the process's first audited call.
  writeEvent('audit.start', auditStartAttributes(facts), ROOT_CONTEXT, { traced: false });
}

/** The version of `name` in the nearest node_modules from the working directory up, if any. */
function installedVersion(name: string): string | undefined {
  let dir = process.cwd();
  for (;;) {
    try {
      const version = (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: unknown }).version;
      if (typeof version === 'string') return version;
    } catch {
      // Not here: one level up.
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
