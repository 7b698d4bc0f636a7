/**
 * Which outgoing requests are LLM API requests: the providers' public hosts, plus the operator's
 * own (`LLM_AUDIT_LLM_HOSTS`: a gateway, a self-hosted model, a proxy).
 *
 * Pattern syntax, for the built-in list and the variable alike: `host` (any port) or `host:port`;
 * a `*` stands for one or more letters, digits or hyphens inside one DNS label, so
 * `*.openai.azure.com` matches `myres.openai.azure.com` but not `a.b.openai.azure.com`. IPv6
 * addresses are written in brackets: `[::1]:8080`. Host names compare case-insensitively.
 */
import { GEN_AI_PROVIDER as P, type KnownProviderName } from '../../semconv';

/**
 * The providers' public API hosts, matched on any port, each with the `gen_ai.provider.name` of the
 * calls it receives (src/instrumentations/provider-hosts.ts): the conventions' name where they list
 * the provider, else the provider's id in @pydantic/genai-prices, so that the call is priced with
 * that provider's prices.
 */
export const BUILT_IN_PROVIDER_HOSTS: readonly (readonly [host: string, provider: KnownProviderName])[] = [
  ['api.openai.com', P.openai],
  ['*.openai.azure.com', P.azureOpenai], // Azure OpenAI
  ['*.cognitiveservices.azure.com', P.azureOpenai], // Azure AI Services (Azure OpenAI under the multi-service endpoint)
  ['api.anthropic.com', P.anthropic],
  ['generativelanguage.googleapis.com', P.gemini], // Gemini API
  ['aiplatform.googleapis.com', P.vertexAi], // Vertex AI, global endpoint
  ['*-aiplatform.googleapis.com', P.vertexAi], // Vertex AI, regional endpoints
  ['aiplatform.*.rep.googleapis.com', P.vertexAi], // Vertex AI, multi-region endpoints (us, eu)
  ['bedrock-runtime.*.amazonaws.com', P.bedrock],
  ['bedrock-runtime-fips.*.amazonaws.com', P.bedrock],
  ['api.mistral.ai', P.mistral],
  ['api.groq.com', P.groq],
  ['api.deepseek.com', P.deepseek],
  ['api.x.ai', P.xai],
  ['api.perplexity.ai', P.perplexity],
  ['openrouter.ai', P.openrouter],
  ['api.together.xyz', P.together],
  ['api.together.ai', P.together],
  ['api.fireworks.ai', P.fireworks],
  ['api.cerebras.ai', P.cerebras],
];

/** The providers' API hosts, matched on any port. */
export const BUILT_IN_LLM_HOSTS: readonly string[] = BUILT_IN_PROVIDER_HOSTS.map(([host]) => host);

export interface HostPattern {
  /** The entry as written. */
  source: string;
  host: RegExp;
  /** Undefined: any port. */
  port?: number;
}

const LABEL = /^[a-z0-9*-]+$/;

/**
 * Parses one entry. Throws an Error naming the entry (and `origin`, the setting it came from)
 * when it is not a host or host:port: a scheme, a path, an empty label or a bad port would
 * otherwise silently watch nothing.
 */
export function parseHostPattern(entry: string, origin = 'LLM_AUDIT_LLM_HOSTS'): HostPattern {
  const bad = (why: string) =>
    new Error(`${origin}: "${entry.trim()}" is not a host or host:port (${why}); write e.g. llm.internal, llm.internal:8443 or *.example-llm.com`);
  const text = entry.trim().toLowerCase();
  if (text === '') throw bad('empty entry');
  if (text.includes('/')) throw bad('a URL or path: write only the host and port');
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw bad('unclosed [');
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad('unexpected text after ]');
    portText = rest === '' ? undefined : rest.slice(1);
    if (!/^[0-9a-f:.]+$/.test(host) || !host.includes(':')) throw bad('not an IPv6 address');
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw bad('IPv6 addresses go in brackets, e.g. [::1]:8080');
    [host, portText] = parts;
    const labels = host.split('.');
    if (labels.some((label) => label === '')) throw bad('empty label');
    const invalid = labels.find((label) => !LABEL.test(label));
    if (invalid !== undefined) throw bad(`"${invalid}" has characters a host name cannot have`);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw bad(`port "${portText}" is not 1-65535`);
  }
  const escaped = host.replace(/[.]/g, '\\.').replace(/\*/g, '[a-z0-9-]+');
  return { source: entry.trim(), host: new RegExp(`^${escaped}$`), port };
}

/** The entries of a comma-separated list (an unset or blank variable: none). */
export function parseHostList(value: string | undefined, origin = 'LLM_AUDIT_LLM_HOSTS'): HostPattern[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((entry) => parseHostPattern(entry, origin));
}

/**
 * Tells whether `host`:`port` is an LLM API host. `port` undefined (not known for this request)
 * matches every port of the host: reporting a request too many is the safe side for an audit.
 */
export function hostMatcher(patterns: readonly HostPattern[]): (host: string, port: number | undefined) => HostPattern | undefined {
  const match = (host: string, port: number | undefined) => {
    // `api.openai.com.` (the fully qualified form) reaches the same server.
    const name = unbracket(host).toLowerCase().replace(/\.$/, '');
    return patterns.find((p) => p.host.test(name) && (p.port === undefined || port === undefined || p.port === port));
  };
  // Asked for every outgoing request of the process, which go to few distinct hosts. By host,
  // then port: a key made of both would be a new string to hash at every request.
  const byHost = new Memo<Memo<HostPattern | undefined, number | undefined>>();
  return (host, port) => byHost.get(host, () => new Memo()).get(port, () => match(host, port));
}

/**
 * Values remembered by key for the last MEMO_SIZE distinct keys (emptied when full: an app that
 * talks to more hosts than that only loses the speed-up).
 */
export class Memo<R, K = string> {
  private readonly values = new Map<K, { value: R }>();

  get(key: K, compute: () => R): R {
    let entry = this.values.get(key);
    if (entry === undefined) {
      entry = { value: compute() };
      if (this.values.size >= MEMO_SIZE) this.values.clear();
      this.values.set(key, entry);
    }
    return entry.value;
  }
}
const MEMO_SIZE = 1000;

/** `[::1]` (as URL.hostname writes it) and `::1` (as node:http does) name the same host. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
