/** The watcher's settings, from its options or the environment. */
import { BUILT_IN_LLM_HOSTS, parseHostList, parseHostPattern, type HostPattern } from './hosts';
import { onFailureFromEnv } from '../failure-policy';
import { parseProviderHosts } from '../../instrumentations/provider-hosts';

export interface WatcherSettings {
  /** The built-in hosts, then the operator's (LLM_AUDIT_LLM_HOSTS, then LLM_AUDIT_PROVIDER_HOSTS). */
  hosts: HostPattern[];
  /** Refuse unaudited requests (fail-closed). */
  block: boolean;
}

/**
 * `hosts` (comma-separated, added to the built-in ones) defaults to LLM_AUDIT_LLM_HOSTS (the hosts of
 * LLM_AUDIT_PROVIDER_HOSTS are added too), `block`
 * to LLM_AUDIT_ON_FAILURE=block. Throws an Error naming the bad entry: a watcher that silently
 * watches fewer hosts than the operator listed would be the worse failure.
 */
export function watcherSettings(options: { hosts?: string; block?: boolean }, env: NodeJS.ProcessEnv): WatcherSettings {
  const origin = options.hosts === undefined ? 'LLM_AUDIT_LLM_HOSTS' : 'hosts';
  return {
    hosts: [
      ...BUILT_IN_LLM_HOSTS.map((entry) => parseHostPattern(entry, 'built-in LLM hosts')),
      ...parseHostList(options.hosts ?? env.LLM_AUDIT_LLM_HOSTS, origin),
      // A host the operator names a provider for is an LLM API host.
      ...parseProviderHosts(undefined, env),
    ],
    block: options.block ?? failClosed(env),
  };
}

/** Whether the operator chose fail-closed (`LLM_AUDIT_ON_FAILURE=block`), as the failure policy reads it. */
export function failClosed(env: NodeJS.ProcessEnv): boolean {
  return onFailureFromEnv(env) === 'block';
}
