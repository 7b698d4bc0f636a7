import { diag } from '@opentelemetry/api';
import { LlmAuditUnavailableError, onFailurePolicy, reportAuditProblem } from '../audit/failure-policy';
import type { AuditServices, ServerInfo } from './audited-call';
import type { AuditedMethodOptions, MethodRoute } from './patch';
import type { SdkAdapter } from './sdk-adapter';
import type { OperationSpec } from './types';

/**
 * One method to wrap: an audited SDK call (`spec`), a method carrying several operations (`route`,
 * see core/patch.ts routedMethod), a method the provider wraps itself (`wrap`: one whose result
 * makes records of its own, such as a batch's results) or a helper built on one (`helper`).
 */
export interface PatchTarget {
  proto: any;
  method: string;
  spec?: OperationSpec;
  route?: MethodRoute;
  wrap?(services: () => AuditServices | undefined, options: AuditedMethodOptions): (original: (...args: any[]) => any) => (...args: any[]) => any;
  /** `llm_audit.action` for the calls the helper makes. */
  helper?: string;
}

/**
 * What differs between providers when patching: the module, the versions it is tested with, what
 * it must look like to be patched, where the SDK client sits on a resource object, and which
 * methods to wrap. Everything else is shared.
 */
export interface ProviderPatch {
  moduleName: string;
  /** The majors the tests run (README's supported-versions table); others are patched when their shape matches. */
  tested(major: number, minor: number): boolean;
  /** The tested range as people write it, for the messages about other versions. */
  testedRange: string;
  /**
   * What the patch cannot audit without, by name: the audited operations' methods and the client's
   * `post` (through which a beforeRequest hook holds the request). A version where one of them is
   * not a function is refused. Helpers and operations that only some versions have are not listed.
   * `file` is set when the exports are one of `files` (a file inside the package, which carries
   * the resource classes but not the client).
   */
  needs(moduleExports: any, file?: string): Record<string, unknown>;
  client(resource: any): { baseURL?: unknown } | undefined;
  /** Optional: how results are observed and requests held (./sdk-adapter.ts); default the Stainless adapter over `client`. */
  adapter?: SdkAdapter;
  /** Optional: `server.address` / `server.port` of a resource's calls; default from `client(resource).baseURL`. */
  server?(resource: any): ServerInfo;
  targets(moduleExports: any): PatchTarget[];
  /**
   * Files inside the package (paths relative to it) that export the classes `targets` reads, for
   * code that loads them without the package's main entry: Anthropic's Bedrock and Vertex SDKs
   * require `@anthropic-ai/sdk/client` and its resources, never `@anthropic-ai/sdk` itself.
   */
  files?: string[];
  /** Optional: runs the SDK method (see AuditedMethodOptions.invoke). */
  invoke?(original: (...args: any[]) => any, resource: any, args: any[]): unknown;
}

/** What `patch` needs and `moduleExports` lacks (names from ProviderPatch.needs); empty when its shape matches. */
export function missingShape(patch: Pick<ProviderPatch, 'needs'>, moduleExports: any, file?: string): string[] {
  return Object.entries(patch.needs(moduleExports, file))
    .filter(([, value]) => typeof value !== 'function')
    .map(([name]) => name);
}

const said = new Set<string>();

/**
 * Whether this module (a loaded SDK, `version` from its package.json) can be audited: decided by
 * its shape, not its version number, so that a new major that still has what the patch wraps is
 * audited on the day it ships, and one that changed is never half-patched.
 *
 * A version outside the tested range whose shape matches is patched, with one diag note. One whose
 * shape does not match is left alone, and said once on stderr whatever the log level (an app
 * without audit is an audit failure, not a debugging detail); under LLM_AUDIT_ON_FAILURE=block it
 * is an error instead, thrown where the app loads the SDK, so the app does not start unaudited.
 */
export function checkShape(patch: Pick<ProviderPatch, 'moduleName' | 'needs' | 'tested' | 'testedRange'>, moduleExports: any, version: string | undefined, file?: string): boolean {
  const missing = missingShape(patch, moduleExports, file);
  // Per version and verdict: two copies of one version can differ (a patched or bundled copy).
  const key = `${patch.moduleName}@${version}:${missing.join(',')}`;
  if (missing.length === 0) {
    const match = /^(\d+)\.(\d+)/.exec(version ?? '');
    if (match !== null && !patch.tested(Number(match[1]), Number(match[2])) && !said.has(key)) {
      said.add(key);
      diag.info(
        `otel-llm-audit: ${patch.moduleName} ${version} is outside the tested range ${patch.testedRange}; ` +
          'it has everything the audit wraps, so its calls are audited.',
      );
    }
    return true;
  }
  const problem =
    `${patch.moduleName} ${version ?? '(unknown version)'} lacks what the audit wraps (${missing.join(', ')}), ` +
    `so its calls are NOT audited. Tested: ${patch.testedRange}; install one of those versions or upgrade otel-llm-audit.`;
  if (onFailurePolicy() === 'block') {
    throw new LlmAuditUnavailableError(`otel-llm-audit: ${problem} LLM_AUDIT_ON_FAILURE=block refuses to load an SDK it cannot audit.`);
  }
  if (!said.has(key)) {
    said.add(key);
    reportAuditProblem(problem);
  }
  return false;
}
