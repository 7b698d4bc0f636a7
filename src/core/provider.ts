import { diag } from '@opentelemetry/api';
import type { ServerInfo } from './audited-call';
import type { SdkAdapter } from './sdk-adapter';
import type { OperationSpec } from './types';

/** One method to wrap: an audited SDK call (`spec`) or a helper built on one (`helper`). */
export interface PatchTarget {
  proto: any;
  method: string;
  spec?: OperationSpec;
  /** `llm_audit.action` for the calls the helper makes. */
  helper?: string;
}

/**
 * What differs between providers when patching: the module, the versions it supports, where the
 * SDK client sits on a resource object, and which methods to wrap. Everything else is shared.
 */
export interface ProviderPatch {
  moduleName: string;
  supports(major: number, minor: number): boolean;
  /** The supported range as people write it, for the warning about an unsupported version. */
  supportedRange: string;
  client(resource: any): { baseURL?: unknown } | undefined;
  /** Optional: how results are observed and requests held (./sdk-adapter.ts); default the Stainless adapter over `client`. */
  adapter?: SdkAdapter;
  /** Optional: `server.address` / `server.port` of a resource's calls; default from `client(resource).baseURL`. */
  server?(resource: any): ServerInfo;
  targets(moduleExports: any): PatchTarget[];
  /** Optional: runs the SDK method (see AuditedMethodOptions.invoke). */
  invoke?(original: (...args: any[]) => any, resource: any, args: any[]): unknown;
}

const warned = new Set<string>();

/**
 * True when `version` is in the provider's range. Otherwise one diag warning per module version,
 * so that an app on an unsupported SDK learns why it sees no audit spans instead of nothing.
 */
export function checkVersion(patch: Pick<ProviderPatch, 'moduleName' | 'supports' | 'supportedRange'>, version: string | undefined): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '');
  if (match !== null && patch.supports(Number(match[1]), Number(match[2]))) return true;
  const key = `${patch.moduleName}@${version}`;
  if (!warned.has(key)) {
    warned.add(key);
    diag.warn(
      `otel-llm-audit: ${patch.moduleName} ${version ?? '(unknown version)'} is outside the supported range ` +
        `${patch.supportedRange}; its calls are NOT audited. Install a supported version or upgrade otel-llm-audit.`,
    );
  }
  return false;
}
