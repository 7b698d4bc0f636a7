import { diag } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { OperationSpec } from '../../core/types';
import type { ProviderPatch } from '../../core/provider';
import { promiseAdapter } from '../../core/sdk-adapter';
import { serverFromURL } from '../provider-hosts';
import { setNumber, setRequestSettings } from '../../core/values';
import { chatRequest, embedRequest, promptOf } from './request';
import { ChatStreamAccumulator, summarizeChat, summarizeEmbed } from './response';

/**
 * @mistralai/mistralai 2.x (ESM only; `require` works from Node 20.19). The SDK's `Chat` and
 * `Embeddings` classes are not exported; their prototypes are reached through a client made once
 * at patch time (no request, no I/O). `chat.complete`, `chat.stream` and `embeddings.create` are
 * `async` methods that send nothing before they run: the generic promise adapter holds them for the
 * beforeRequest hook, and observes the stream (an async iterable of `{ data }` events) in place.
 *
 * The SDK can emit its own spans (`MISTRAL_SDK_TELEMETRY`, or `registerTracerProvider` from its
 * observability module); they are off by default. Turned on beside this package, one call gives
 * two spans (docs/attributes.md).
 */
export const mistralPatch: ProviderPatch = {
  moduleName: '@mistralai/mistralai',
  tested: (major) => major === 2,
  testedRange: '2.x',
  needs(moduleExports) {
    const resources = probeResources(moduleExports?.Mistral);
    return {
      'Mistral chat.complete': (resources.chat as any)?.complete,
      'Mistral chat.stream': (resources.chat as any)?.stream,
      'Mistral embeddings.create': (resources.embeddings as any)?.create,
    };
  },
  client: () => undefined,
  adapter: promiseAdapter,
  server: (resource) => (resource?._baseURL !== undefined && resource._baseURL !== null ? serverFromURL(resource, resource._baseURL) : {}),
  targets(moduleExports) {
    const resources = probeResources(moduleExports?.Mistral);
    return [
      { proto: resources.chat, method: 'complete', spec: chatComplete },
      { proto: resources.chat, method: 'stream', spec: chatStream },
      { proto: resources.embeddings, method: 'create', spec: embeddingsCreate },
    ];
  },
};

function probeResources(Mistral: any): { chat?: object; embeddings?: object } {
  if (typeof Mistral !== 'function') return {};
  try {
    const probe = new Mistral({ apiKey: 'otel-llm-audit-probe' });
    return { chat: Object.getPrototypeOf(probe.chat), embeddings: Object.getPrototypeOf(probe.embeddings) };
  } catch (error) {
    diag.error('otel-llm-audit: could not reach the @mistralai/mistralai resource classes; its calls are not audited', error);
    return {};
  }
}

const chatComplete: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.mistral,
  operationName: 'chat',
  action: 'chat.complete',
  requestKind: chatRequest,
  isStream: () => false,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, {
      maxTokens: params?.maxTokens,
      temperature: params?.temperature,
      topP: params?.topP,
      frequencyPenalty: params?.frequencyPenalty,
      presencePenalty: params?.presencePenalty,
      seed: params?.randomSeed,
      choiceCount: params?.n,
      stop: params?.stop,
    });
    const format = params?.responseFormat?.type;
    if (format === 'json_object' || format === 'json_schema') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
    else if (format === 'text') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
  },
  prompt: promptOf,
  summarize: summarizeChat,
  accumulator: () => new ChatStreamAccumulator(),
};

const chatStream: OperationSpec = { ...chatComplete, action: 'chat.stream', isStream: () => true };

const embeddingsCreate: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.mistral,
  operationName: 'embeddings',
  action: 'embeddings.create',
  requestKind: embedRequest,
  isStream: () => false,
  requestAttributes(params, attributes) {
    setNumber(attributes, A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT, params?.outputDimension);
    if (typeof params?.outputDtype === 'string') attributes[A.ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [params.outputDtype];
  },
  prompt: (params) => ({ input: params?.inputs }),
  summarize: summarizeEmbed,
  accumulator: () => {
    throw new Error('embeddings do not stream');
  },
};
