import { BUILT_IN_PROVIDER_HOSTS, hostMatcher, parseHostPattern, type HostPattern } from '../audit/unaudited/hosts';
import { diag } from '@opentelemetry/api';
import type { ServerInfo } from '../core/audited-call';
import * as A from '../semconv';
import type { KnownProviderName } from '../semconv';

/**
 * Who receives a call: `gen_ai.provider.name` is the recipient of the data (for a record of
 * processing, the point of the record), not the SDK that sent it. The same `openai` package talks to
 * OpenAI, Azure OpenAI, Groq, a self-hosted vLLM...; the same Anthropic client class is subclassed
 * for Bedrock and Vertex AI. The provider is taken, in this order, from the operator's host map
 * (`LLM_AUDIT_PROVIDER_HOSTS` / `providerHosts`), the client class (AzureOpenAI, AnthropicBedrock,
 * AnthropicVertex), the built-in hosts (BUILT_IN_PROVIDER_HOSTS, which the unaudited-request watcher
 * watches too), and last the SDK's own provider.
 */

/** Maps a server address (and port) to a provider name; undefined when no entry matches. */
export type ProviderHostMap = (address: string, port: number | undefined) => string | undefined;

export interface ProviderHost extends HostPattern {
  provider: string;
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]*$/;

function mapFrom(entries: readonly ProviderHost[]): ProviderHostMap | undefined {
  if (entries.length === 0) return undefined;
  const match = hostMatcher(entries);
  return (address, port) => (match(address, port) as ProviderHost | undefined)?.provider;
}

const builtIn = mapFrom(BUILT_IN_PROVIDER_HOSTS.map(([host, provider]) => ({ ...parseHostPattern(host, 'built-in provider hosts'), provider })))!;

/**
 * The operator's map, from the `providerHosts` option (`{ 'vllm.internal:8000': 'vllm' }`) or else
 * `LLM_AUDIT_PROVIDER_HOSTS` (`vllm.internal:8000=vllm,llm.corp=litellm`). Undefined when neither
 * is set.
 *
 * @throws Error naming the entry when a host is not a host or host:port, or a provider name is
 *   empty or not lowercase letters, digits, `.`, `_` and `-`: a typo would otherwise silently
 *   record the wrong recipient.
 */
export function providerHostMap(option: Record<string, string> | undefined, env: NodeJS.ProcessEnv): ProviderHostMap | undefined {
  return mapFrom(parseProviderHosts(option, env));
}

/**
 * The entries of the operator's map (see providerHostMap; none when it is not set). The
 * unaudited-request watcher watches these hosts too: the operator said an LLM provider is there.
 */
export function parseProviderHosts(option: Record<string, string> | undefined, env: NodeJS.ProcessEnv): ProviderHost[] {
  const origin = option !== undefined ? 'providerHosts' : 'LLM_AUDIT_PROVIDER_HOSTS';
  let pairs: [string, unknown][];
  if (option !== undefined) {
    if (typeof option !== 'object' || option === null || Array.isArray(option)) {
      throw new Error('providerHosts must be an object mapping host or host:port to a provider name');
    }
    pairs = Object.entries(option);
  } else {
    const value = env.LLM_AUDIT_PROVIDER_HOSTS;
    if (value === undefined || value.trim() === '') return [];
    pairs = value.split(',').map((entry) => {
      const at = entry.lastIndexOf('=');
      if (at < 0) throw new Error(`${origin}: "${entry.trim()}" is not host=provider; write e.g. vllm.internal:8000=vllm`);
      return [entry.slice(0, at), entry.slice(at + 1)];
    });
  }
  return pairs.map(([host, provider]) => {
    const name = typeof provider === 'string' ? provider.trim() : '';
    if (!PROVIDER_NAME.test(name)) {
      throw new Error(
        `${origin}: the provider name for "${host.trim()}" is ${JSON.stringify(provider)}; ` +
          'write a gen_ai.provider.name value such as groq, mistral_ai or vllm (lowercase letters, digits, . _ -)',
      );
    }
    return { ...parseHostPattern(host, origin), provider: name };
  });
}

// The platform clients' classes. Anthropic's (1.x) also name their provider on the instance
// (`_genAIProviderName`), which still holds when a bundler renamed the class.
const CLASS_PROVIDERS: Readonly<Record<string, KnownProviderName>> = {
  AzureOpenAI: A.GEN_AI_PROVIDER.azureOpenai,
  AnthropicBedrock: A.GEN_AI_PROVIDER.bedrock,
  AnthropicVertex: A.GEN_AI_PROVIDER.vertexAi,
};

const endpoints = new WeakMap<object, { baseURL: unknown; endpoint: ServerInfo }>();

/**
 * Where an SDK client sends its calls (`server.address`, `server.port` from its `baseURL`) and who
 * that is, worked out once per client (again if its baseURL changes).
 */
export function endpointOf(client: any): ServerInfo {
  if (client === undefined || client === null || typeof client !== 'object') return {};
  const cached = endpoints.get(client);
  if (cached !== undefined && cached.baseURL === client.baseURL) return cached.endpoint;
  const endpoint = serverFrom(client.baseURL);
  // The name a client gives itself comes after the host: a plain client may call itself `openai`
  // or `anthropic` whatever host it is pointed at.
  const provider =
    CLASS_PROVIDERS[client.constructor?.name] ??
    (isAzureOpenAI(client) ? A.GEN_AI_PROVIDER.azureOpenai : undefined) ??
    (endpoint.address !== undefined ? builtIn(endpoint.address, endpoint.port) : undefined) ??
    (typeof client._genAIProviderName === 'string' ? client._genAIProviderName : undefined);
  if (provider !== undefined) endpoint.provider = provider;
  if (provider === A.GEN_AI_PROVIDER.azureOpenai) {
    const apiVersion = nonEmpty(client.apiVersion) ?? nonEmpty(client._options?.defaultQuery?.['api-version']);
    if (apiVersion !== undefined) endpoint.attributes = { [A.ATTR_AUDIT_AZURE_OPENAI_API_VERSION]: apiVersion };
    // The deployment is the client's, else the one its baseURL names (`.../deployments/<name>`),
    // else the request's model (the SDK puts that in the path).
    endpoint.deployment =
      nonEmpty(client.deploymentName) ?? deploymentInPath(typeof client.baseURL === 'string' ? client.baseURL : '');
  }
  endpoints.set(client, { baseURL: client.baseURL, endpoint });
  return endpoint;
}

/** AzureOpenAI (openai 4-6) keeps `apiVersion` and `deploymentName` on the instance, also when a bundler renamed the class. */
function isAzureOpenAI(client: any): boolean {
  return typeof client.apiVersion === 'string' && 'deploymentName' in client;
}

/** `server.address` and `server.port` of a base URL (a string or a URL). */
function serverFrom(baseURL: unknown): ServerInfo {
  const text = typeof baseURL === 'string' ? baseURL : baseURL instanceof URL ? baseURL.href : undefined;
  if (text === undefined) return {};
  try {
    const url = new URL(text);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined;
    return { address: url.hostname, port };
  } catch {
    diag.debug(`otel-llm-audit: SDK baseURL is not a URL: ${text}`);
    return {};
  }
}

const servers = new WeakMap<object, { baseURL: unknown; info: ServerInfo }>();

/**
 * `server.address` and `server.port` of the base URL that `owner` (an SDK client that is not a
 * Stainless one: Google GenAI's API client, Mistral's) sends to, parsed once per owner and URL.
 */
export function serverFromURL(owner: object, baseURL: unknown): ServerInfo {
  const key = baseURL instanceof URL ? baseURL.href : baseURL;
  const cached = servers.get(owner);
  if (cached !== undefined && cached.baseURL === key) return cached.info;
  const info = serverFrom(baseURL);
  servers.set(owner, { baseURL: key, info });
  return info;
}

function deploymentInPath(baseURL: string): string | undefined {
  const match = /\/deployments\/([^/?#]+)/.exec(baseURL);
  if (match === null) return undefined;
  try {
    return nonEmpty(decodeURIComponent(match[1]!));
  } catch {
    return match[1];
  }
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The provider of one call: the operator's map wins (a gateway in front of Azure is still the
 * recipient the operator names), then what the client says, then the SDK's own provider.
 */
export function providerOf(endpoint: ServerInfo, operatorMap: ProviderHostMap | undefined, sdkProvider: string): string {
  const mapped = operatorMap !== undefined && endpoint.address !== undefined ? operatorMap(endpoint.address, endpoint.port) : undefined;
  return mapped ?? endpoint.provider ?? sdkProvider;
}
