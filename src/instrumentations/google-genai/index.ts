import type { Attributes } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { OperationSpec } from '../../core/types';
import type { ProviderPatch } from '../../core/provider';
import { promiseAdapter } from '../../core/sdk-adapter';
import { serverFromURL } from '../provider-hosts';
import { setNumber, setRequestSettings } from '../../core/values';
import { embedRequest, generateRequest, promptOf } from './request';
import { GenerateStreamAccumulator, summarizeEmbed, summarizeGenerate } from './response';

/**
 * @google/genai 1.x-3.x (Gemini API and Vertex AI), patched through the `Models` class both builds
 * export. Its public methods (`generateContent`, `generateContentStream`, `embedContent`) are
 * per-instance arrow functions, so the patch wraps the prototype methods they end in, one per HTTP
 * request: `generateContentInternal`, `generateContentStreamInternal`, `embedContentInternal`.
 * That gives one record per request the SDK sends: a chat's `sendMessage` (which calls
 * `models.generateContent`) is one record, named `chats.sendMessage`; automatic function calling
 * and automatic continuation, which send several requests for one method call, give one record
 * each.
 *
 * The methods are `async` and send nothing before they are called, so the generic promise adapter
 * holds a request for the beforeRequest hook by calling the method once the hook has decided.
 */
export const googleGenaiPatch: ProviderPatch = {
  moduleName: '@google/genai',
  tested: (major) => major === 2 || major === 3,
  testedRange: '2.x, 3.x',
  needs(moduleExports) {
    const Models = moduleExports?.Models?.prototype;
    return {
      'Models.prototype.generateContentInternal': Models?.generateContentInternal,
      'Models.prototype.generateContentStreamInternal': Models?.generateContentStreamInternal,
      'Models.prototype.embedContentInternal': Models?.embedContentInternal,
    };
  },
  client: (resource) => resource?.apiClient,
  adapter: promiseAdapter,
  server(resource) {
    const client = resource?.apiClient;
    if (typeof client?.getBaseUrl !== 'function') return {};
    // One SDK for two services: the client says which (kept with its cached endpoint).
    const info = serverFromURL(client, client.getBaseUrl());
    info.provider ??= client.isVertexAI?.() === true ? A.GEN_AI_PROVIDER.vertexAi : A.GEN_AI_PROVIDER.gemini;
    return info;
  },
  targets(moduleExports) {
    const Models = moduleExports?.Models?.prototype;
    const Chat = moduleExports?.Chat?.prototype;
    return [
      { proto: Models, method: 'generateContentInternal', spec: generateContent },
      { proto: Models, method: 'generateContentStreamInternal', spec: generateContentStream },
      { proto: Models, method: 'embedContentInternal', spec: embedContent },
      { proto: Chat, method: 'sendMessage', helper: 'chats.sendMessage' },
      { proto: Chat, method: 'sendMessageStream', helper: 'chats.sendMessageStream' },
    ];
  },
};

function generationAttributes(params: any, attributes: Attributes): void {
  const config = params?.config;
  if (config === undefined || config === null) return;
  setRequestSettings(attributes, {
    maxTokens: config.maxOutputTokens,
    temperature: config.temperature,
    topP: config.topP,
    topK: config.topK,
    frequencyPenalty: config.frequencyPenalty,
    presencePenalty: config.presencePenalty,
    seed: config.seed,
    choiceCount: config.candidateCount,
    stop: config.stopSequences,
  });
  if (config.responseMimeType === 'application/json') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
  else if (config.responseMimeType === 'text/plain') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
}

const generateContent: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.gemini,
  operationName: 'chat',
  action: 'models.generateContent',
  requestKind: generateRequest,
  isStream: () => false,
  requestAttributes: generationAttributes,
  prompt: promptOf,
  summarize: summarizeGenerate,
  accumulator: () => new GenerateStreamAccumulator(),
  signal: (params) => (params?.config?.abortSignal instanceof AbortSignal ? params.config.abortSignal : undefined),
};

const generateContentStream: OperationSpec = {
  ...generateContent,
  action: 'models.generateContentStream',
  isStream: () => true,
};

const embedContent: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.gemini,
  operationName: 'embeddings',
  action: 'models.embedContent',
  requestKind: embedRequest,
  isStream: () => false,
  requestAttributes(params, attributes) {
    setNumber(attributes, A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT, params?.config?.outputDimensionality);
  },
  prompt: (params) => ({ input: params?.contents }),
  summarize: summarizeEmbed,
  accumulator: () => {
    throw new Error('embeddings do not stream');
  },
};
