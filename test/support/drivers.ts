import { join } from 'node:path';
import type { Endpoint, FakeProvider } from './fake-provider';
import { repoRoot } from './harness';

export interface CallOptions {
  stream?: boolean;
  signal?: AbortSignal;
  /** OpenAI chat streams: ask for the final usage chunk (default true). */
  includeUsage?: boolean;
  system?: string;
  prompt?: string;
}

/**
 * One SDK method in one SDK version, driven the same way by the shared behaviour tests, so that
 * every promise the patch makes (return values untouched, one span per call, every path ends the
 * span) is checked against each of them.
 */
export interface SdkDriver {
  label: string;
  /** `gen_ai.provider.name`. */
  provider: string;
  /**
   * Stainless-generated (openai, @anthropic-ai/sdk): the APIPromise helpers (`withResponse()`,
   * `asResponse()`), the stream's `controller`, `tee()`. The other SDKs run the generic tests only.
   */
  stainless: boolean;
  endpoint: Endpoint;
  moduleId: string;
  /** Where to resolve `moduleId` from: the repo (current SDK) or a test/sdk-versions/<dir>. */
  fromDir: string;
  model: string;
  action: string;
  makeClient(sdk: any, fake: FakeProvider): any;
  call(client: any, options?: CallOptions): any;
  textOf(result: any): string;
  textOfChunk(chunk: any): string;
  /** The response id the SDK gives the app. */
  idOf(result: any): string;
  /** The class of the error a 429 answer gives. */
  rateLimitError(sdk: any): abstract new (...args: any[]) => Error;
  /** What the system prompt hash covers, for `system`; undefined when the operation has no system prompt (it is then part of the input). */
  systemHashed(system: string): unknown;
  /** Whether the provider reports cache reads (OpenAI, Anthropic, Gemini; not Mistral). */
  reportsCacheRead: boolean;
  /** Whether it reports cache writes (default: the Stainless SDKs do; not OpenAI's legacy completions). */
  reportsCacheWrite?: boolean;
  /** `gen_ai.operation.name` (default `chat`). */
  operationName?: string;
  apiKey: string;
}

/** What is the same for the Stainless SDKs' drivers. */
function stainless(apiKey: string, systemHashed: (system: string) => unknown): Pick<SdkDriver, 'stainless' | 'idOf' | 'rateLimitError' | 'systemHashed' | 'reportsCacheRead' | 'apiKey'> {
  return {
    stainless: true,
    idOf: (result) => result.id,
    rateLimitError: (sdk) => sdk.RateLimitError ?? sdk.default.RateLimitError,
    systemHashed,
    reportsCacheRead: true,
    apiKey,
  };
}

const asChatSystem = (system: string): unknown => [{ role: 'system', content: system }];
const asIs = (system: string): unknown => system;

const DEFAULT_PROMPT = 'Say hello to the auditors.';
const DEFAULT_SYSTEM = 'You are a terse assistant.';

function openaiChat(label: string, fromDir: string): SdkDriver {
  return {
    label,
    provider: 'openai',
    ...stainless('sk-test-key', asChatSystem),
    endpoint: 'chat',
    moduleId: 'openai',
    fromDir,
    model: 'gpt-4o-mini',
    action: 'chat.completions.create',
    makeClient: (sdk, fake) => new (sdk.OpenAI ?? sdk.default ?? sdk)({ apiKey: 'sk-test-key', baseURL: fake.openaiBaseURL, maxRetries: 0 }),
    call: (client, o = {}) =>
      client.chat.completions.create(
        {
          model: 'gpt-4o-mini',
          temperature: 0.2,
          max_tokens: 64,
          messages: [
            { role: 'system', content: o.system ?? DEFAULT_SYSTEM },
            { role: 'user', content: o.prompt ?? DEFAULT_PROMPT },
          ],
          ...(o.stream ? { stream: true, ...(o.includeUsage === false ? {} : { stream_options: { include_usage: true } }) } : {}),
        },
        o.signal ? { signal: o.signal } : undefined,
      ),
    textOf: (result) => result.choices[0].message.content,
    textOfChunk: (chunk) => chunk.choices?.[0]?.delta?.content ?? '',
  };
}

/** Legacy `completions.create`: one prompt string (the system text is part of it: no system prompt). */
function openaiCompletions(label: string, fromDir: string): SdkDriver {
  return {
    label,
    provider: 'openai',
    ...stainless('sk-test-key', () => undefined),
    reportsCacheRead: false,
    reportsCacheWrite: false,
    operationName: 'text_completion',
    endpoint: 'completions',
    moduleId: 'openai',
    fromDir,
    model: 'gpt-3.5-turbo-instruct',
    action: 'completions.create',
    makeClient: (sdk, fake) => new (sdk.OpenAI ?? sdk.default ?? sdk)({ apiKey: 'sk-test-key', baseURL: fake.openaiBaseURL, maxRetries: 0 }),
    call: (client, o = {}) =>
      client.completions.create(
        {
          model: 'gpt-3.5-turbo-instruct',
          temperature: 0.2,
          max_tokens: 64,
          prompt: `${o.system ?? DEFAULT_SYSTEM}\n\n${o.prompt ?? DEFAULT_PROMPT}`,
          ...(o.stream ? { stream: true, ...(o.includeUsage === false ? {} : { stream_options: { include_usage: true } }) } : {}),
        },
        o.signal ? { signal: o.signal } : undefined,
      ),
    textOf: (result) => result.choices[0].text,
    textOfChunk: (chunk) => chunk.choices?.[0]?.text ?? '',
  };
}

function openaiResponses(label: string, fromDir: string): SdkDriver {
  return {
    label,
    provider: 'openai',
    ...stainless('sk-test-key', asIs),
    endpoint: 'responses',
    moduleId: 'openai',
    fromDir,
    model: 'gpt-4.1-mini',
    action: 'responses.create',
    makeClient: (sdk, fake) => new (sdk.OpenAI ?? sdk.default ?? sdk)({ apiKey: 'sk-test-key', baseURL: fake.openaiBaseURL, maxRetries: 0 }),
    call: (client, o = {}) =>
      client.responses.create(
        {
          model: 'gpt-4.1-mini',
          instructions: o.system ?? DEFAULT_SYSTEM,
          input: o.prompt ?? DEFAULT_PROMPT,
          max_output_tokens: 64,
          ...(o.stream ? { stream: true } : {}),
        },
        o.signal ? { signal: o.signal } : undefined,
      ),
    textOf: (result) => result.output_text,
    textOfChunk: (event) => (event.type === 'response.output_text.delta' ? event.delta : ''),
  };
}

/** `messages.create`, or `beta.messages.create` (the same request and answer, audited as its own action). */
function anthropicMessages(label: string, fromDir: string, resource: 'messages' | 'beta.messages' = 'messages'): SdkDriver {
  return {
    label,
    provider: 'anthropic',
    ...stainless('sk-ant-test-key', asIs),
    endpoint: 'messages',
    moduleId: '@anthropic-ai/sdk',
    fromDir,
    model: 'claude-haiku-4-5',
    action: `${resource}.create`,
    makeClient: (sdk, fake) =>
      new (sdk.Anthropic ?? sdk.default ?? sdk)({ apiKey: 'sk-ant-test-key', baseURL: fake.anthropicBaseURL, maxRetries: 0 }),
    call: (client, o = {}) =>
      (resource === 'messages' ? client.messages : client.beta.messages).create(
        {
          model: 'claude-haiku-4-5',
          max_tokens: 64,
          temperature: 0.2,
          system: o.system ?? DEFAULT_SYSTEM,
          messages: [{ role: 'user', content: o.prompt ?? DEFAULT_PROMPT }],
          ...(o.stream ? { stream: true } : {}),
        },
        o.signal ? { signal: o.signal } : undefined,
      ),
    textOf: (result) => result.content.filter((b: any) => b.type === 'text').map((b: any) => b.text).join(''),
    textOfChunk: (event) => (event.type === 'content_block_delta' && event.delta?.type === 'text_delta' ? event.delta.text : ''),
  };
}

/** A fixture folder test/sdk-versions/<dir> (its own package.json and lockfile). */
export const sdkVersionDir = (dir: string) => join(repoRoot, 'test', 'sdk-versions', dir);
const versions = sdkVersionDir;

/**
 * openai 7 needs Node >= 22 (engines); the test:node24 leg runs it (CI: .ci/run). On an older Node
 * it is left out rather than run on a runtime it does not support.
 */
export const NEWER_NODE = Number(process.versions.node.split('.')[0]) >= 22;

function googleGenerate(label: string, fromDir: string): SdkDriver {
  return {
    label,
    provider: 'gcp.gemini',
    stainless: false,
    endpoint: 'gemini',
    moduleId: '@google/genai',
    fromDir,
    model: 'gemini-2.5-flash',
    action: 'models.generateContent',
    makeClient: (sdk, fake) => new sdk.GoogleGenAI({ apiKey: 'AIza-test-key', httpOptions: { baseUrl: fake.googleBaseURL } }),
    call: (client, o = {}) =>
      client.models[o.stream ? 'generateContentStream' : 'generateContent']({
        model: 'gemini-2.5-flash',
        contents: o.prompt ?? DEFAULT_PROMPT,
        config: { systemInstruction: o.system ?? DEFAULT_SYSTEM, temperature: 0.2, maxOutputTokens: 64, ...(o.signal ? { abortSignal: o.signal } : {}) },
      }),
    textOf: (result) => result.text,
    textOfChunk: (chunk) => chunk.text ?? '',
    idOf: (result) => result.responseId,
    rateLimitError: (sdk) => sdk.ApiError,
    systemHashed: asIs,
    reportsCacheRead: true,
    apiKey: 'AIza-test-key',
  };
}

function mistralChat(label: string, fromDir: string): SdkDriver {
  return {
    label,
    provider: 'mistral_ai',
    stainless: false,
    endpoint: 'mistral',
    moduleId: '@mistralai/mistralai',
    fromDir,
    model: 'mistral-small-latest',
    action: 'chat.complete',
    makeClient: (sdk, fake) => new sdk.Mistral({ apiKey: 'mistral-test-key', serverURL: fake.mistralBaseURL }),
    call: (client, o = {}) =>
      client.chat[o.stream ? 'stream' : 'complete'](
        {
          model: 'mistral-small-latest',
          temperature: 0.2,
          maxTokens: 64,
          messages: [
            { role: 'system', content: o.system ?? DEFAULT_SYSTEM },
            { role: 'user', content: o.prompt ?? DEFAULT_PROMPT },
          ],
        },
        o.signal ? { fetchOptions: { signal: o.signal } } : undefined,
      ),
    textOf: (result) => result.choices[0].message.content,
    textOfChunk: (event) => event.data?.choices?.[0]?.delta?.content ?? '',
    idOf: (result) => result.id,
    rateLimitError: (sdk) => sdk.SDKError ?? Error,
    systemHashed: asChatSystem,
    reportsCacheRead: false,
    apiKey: 'mistral-test-key',
  };
}


/** Every SDK method and version the behaviour tests cover. */
export const drivers: SdkDriver[] = [
  ...(NEWER_NODE ? [openaiChat('openai 7 chat.completions', versions('openai-7')), openaiResponses('openai 7 responses', versions('openai-7'))] : []),
  openaiChat('openai 6 chat.completions', repoRoot),
  openaiChat('openai 5 chat.completions', versions('openai-5')),
  openaiChat('openai 4 chat.completions', versions('openai-4')),
  openaiResponses('openai 6 responses', repoRoot),
  ...(NEWER_NODE ? [openaiCompletions('openai 7 completions (legacy)', versions('openai-7'))] : []),
  openaiCompletions('openai 6 completions (legacy)', repoRoot),
  openaiCompletions('openai 5 completions (legacy)', versions('openai-5')),
  openaiCompletions('openai 4 completions (legacy)', versions('openai-4')),
  anthropicMessages('anthropic 1.17 messages', versions('anthropic-1-latest')),
  anthropicMessages('anthropic 1.12 messages', repoRoot),
  anthropicMessages('anthropic 1.17 beta.messages', versions('anthropic-1-latest'), 'beta.messages'),
  anthropicMessages('anthropic 0.39 messages', versions('anthropic-0')),
  googleGenerate('@google/genai 2.32 models.generateContent', repoRoot),
  googleGenerate('@google/genai 3.6 models.generateContent', versions('google-genai-3')),
  mistralChat('@mistralai/mistralai 2.7 chat', versions('mistral')),
];
