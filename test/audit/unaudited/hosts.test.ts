import { describe, expect, it } from 'vitest';
import { failClosed, watcherSettings } from '../../../src/audit/unaudited/config';
import { BUILT_IN_LLM_HOSTS, hostMatcher, parseHostList, parseHostPattern } from '../../../src/audit/unaudited/hosts';

const builtIn = hostMatcher(watcherSettings({}, {}).hosts);
const isLlm = (host: string, port: number | undefined = 443) => builtIn(host, port) !== undefined;

describe('built-in LLM hosts', () => {
  it.each([
    'api.openai.com',
    'API.OpenAI.com',
    'api.openai.com.',
    'my-resource.openai.azure.com',
    'my-resource.cognitiveservices.azure.com',
    'api.anthropic.com',
    'generativelanguage.googleapis.com',
    'aiplatform.googleapis.com',
    'us-central1-aiplatform.googleapis.com',
    'bedrock-runtime.us-east-1.amazonaws.com',
    'bedrock-runtime-fips.us-gov-west-1.amazonaws.com',
    'api.mistral.ai',
  ])('%s is an LLM host', (host) => {
    expect(isLlm(host)).toBe(true);
  });

  it.each([
    'openai.com',
    'platform.openai.com',
    'api.openai.com.attacker.example',
    'evil-api.openai.com',
    'a.b.openai.azure.com', // a wildcard stands for one label only
    'openai.azure.com',
    'bedrock.us-east-1.amazonaws.com', // the control plane, not model calls
    's3.us-east-1.amazonaws.com',
    'storage.googleapis.com',
    'mistral.ai',
  ])('%s is not', (host) => {
    expect(isLlm(host)).toBe(false);
  });

  it('matches the built-in hosts on any port', () => {
    expect(isLlm('api.openai.com', 8443)).toBe(true);
    expect(BUILT_IN_LLM_HOSTS).toHaveLength(20);
    expect(isLlm('api.groq.com', 443)).toBe(true);
    expect(isLlm('aiplatform.eu.rep.googleapis.com', 443)).toBe(true);
  });
});

describe('LLM_AUDIT_PROVIDER_HOSTS', () => {
  it('its hosts are watched too, a bad entry is an error naming it', () => {
    const match = hostMatcher(watcherSettings({}, { LLM_AUDIT_PROVIDER_HOSTS: 'vllm.internal:8000=vllm' }).hosts);
    expect(match('vllm.internal', 8000)?.source).toBe('vllm.internal:8000');
    expect(match('vllm.internal', 8001)).toBeUndefined();
    expect(() => watcherSettings({}, { LLM_AUDIT_PROVIDER_HOSTS: 'vllm.internal' })).toThrow(/LLM_AUDIT_PROVIDER_HOSTS: "vllm.internal" is not host=provider/);
  });
});

describe('LLM_AUDIT_LLM_HOSTS', () => {
  it('adds host, host:port, wildcard and bracketed IPv6 entries to the built-in ones', () => {
    const match = hostMatcher(watcherSettings({}, { LLM_AUDIT_LLM_HOSTS: ' llm.internal , 10.0.0.5:8080,*.gw.example,[::1]:9000' }).hosts);
    expect(match('api.openai.com', 443)?.source).toBe('api.openai.com');
    expect(match('LLM.internal', 1234)?.source).toBe('llm.internal');
    expect(match('10.0.0.5', 8080)?.source).toBe('10.0.0.5:8080');
    expect(match('10.0.0.5', 8081)).toBeUndefined();
    expect(match('eu.gw.example', 443)?.source).toBe('*.gw.example');
    expect(match('gw.example', 443)).toBeUndefined();
    expect(match('::1', 9000)?.source).toBe('[::1]:9000');
    expect(match('[::1]', 9000)?.source).toBe('[::1]:9000');
    expect(match('::1', 9001)).toBeUndefined();
  });

  it('matches a host:port entry on any port when the request port is unknown', () => {
    expect(hostMatcher(parseHostList('10.0.0.5:8080'))('10.0.0.5', undefined)).toBeDefined();
  });

  it('treats unset or blank as no extra hosts', () => {
    expect(parseHostList(undefined)).toEqual([]);
    expect(parseHostList('  ')).toEqual([]);
  });

  it.each([
    ['https://llm.internal', 'a URL or path'],
    ['llm.internal/v1', 'a URL or path'],
    ['llm.internal:0', 'port "0" is not 1-65535'],
    ['llm.internal:65536', 'port "65536" is not 1-65535'],
    ['llm.internal:http', 'port "http" is not 1-65535'],
    ['llm..internal', 'empty label'],
    ['llm_internal', '"llm_internal" has characters a host name cannot have'],
    ['::1', 'IPv6 addresses go in brackets'],
    ['[::1', 'unclosed ['],
    ['[llm]:80', 'not an IPv6 address'],
  ])('rejects %s, naming it', (entry, why) => {
    expect(() => parseHostPattern(entry)).toThrow(`LLM_AUDIT_LLM_HOSTS: "${entry}" is not a host or host:port (${why}`);
  });

  it('rejects an empty entry in the list', () => {
    expect(() => parseHostList('llm.internal,,other.internal')).toThrow('LLM_AUDIT_LLM_HOSTS: "" is not a host or host:port (empty entry');
  });

  it('names the option instead of the variable when the hosts come from the options', () => {
    expect(() => watcherSettings({ hosts: 'x:99999' }, {})).toThrow(/^hosts: "x:99999"/);
  });
});

describe('LLM_AUDIT_ON_FAILURE', () => {
  it('blocks only with block', () => {
    expect(failClosed({ LLM_AUDIT_ON_FAILURE: 'block' })).toBe(true);
    expect(failClosed({ LLM_AUDIT_ON_FAILURE: ' BLOCK ' })).toBe(true);
    expect(failClosed({})).toBe(false);
    expect(watcherSettings({ block: false }, { LLM_AUDIT_ON_FAILURE: 'block' }).block).toBe(false);
  });
});
