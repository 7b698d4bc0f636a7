import type { Attributes } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { OperationSpec } from '../../core/types';
import { setNumber, setRequestSettings } from '../../core/values';
import { errorContentFilters } from '../azure-content-filter';
import type { ProviderPatch } from '../../core/provider';
import {
  chatRequest,
  completionsRequest,
  embeddingsRequest,
  fileUploadRequest,
  idsOnlyRequest,
  imageEditRequest,
  imageGenerateRequest,
  moderationsRequest,
  responsesRequest,
  speechRequest,
  transcriptionRequest,
  type OpenAIRequest,
} from './request';
import {
  ChatStreamAccumulator,
  CompletionStreamAccumulator,
  ImageStreamAccumulator,
  ResponsesStreamAccumulator,
  TranscriptStreamAccumulator,
  settleSpeech,
  summarizeChat,
  summarizeCompletion,
  summarizeEmbeddings,
  summarizeImages,
  summarizeModeration,
  summarizeResponse,
  summarizeTranscript,
} from './response';
import { resultLineSpec, settleFileContent, settleUpload, summarizeBatch, summarizeBatchList, summarizeBatchStatus } from './batches';
import { settleWithUploads } from './uploads';
import { batchPollingSpec } from '../../core/batches';
import { realtimeNeeds, realtimeTargets } from './realtime';

/**
 * openai 4.x-7.x (and any later version of the same shape). Patched through the classes the
 * package's main export exposes (`OpenAI.Chat.Completions`, `OpenAI.Responses`, `OpenAI.Embeddings`),
 * so the CommonJS and the ESM builds are handled alike: each build's own classes are reached from
 * its own entry point. `Responses` is not a need: openai 4 has it only from 4.87.
 */
export const openaiPatch: ProviderPatch = {
  moduleName: 'openai',
  tested: (major) => major >= 4 && major <= 7,
  testedRange: '4.x-7.x',
  needs(moduleExports, file) {
    // A Realtime client file (openai/realtime/ws, openai/realtime/websocket): its client classes.
    if (file !== undefined) return realtimeNeeds(moduleExports);
    const OpenAI = openaiRoot(moduleExports);
    return {
      'OpenAI.Chat.Completions.prototype.create': OpenAI?.Chat?.Completions?.prototype?.create,
      'OpenAI.Embeddings.prototype.create': OpenAI?.Embeddings?.prototype?.create,
      'OpenAI.prototype.post': OpenAI?.prototype?.post,
    };
  },
  client: (resource) => resource?._client,
  // The Realtime clients are not reached from the main entry: each has a file of its own (the GA
  // protocol's, and the beta's under beta/realtime).
  files: ['', 'beta/'].flatMap((dir) => ['ws.js', 'ws.mjs', 'websocket.js', 'websocket.mjs'].map((file) => `${dir}realtime/${file}`)),
  targets(moduleExports) {
    const OpenAI = openaiRoot(moduleExports);
    return [
      { proto: OpenAI?.Chat?.Completions?.prototype, method: 'create', spec: chatCompletions },
      { proto: OpenAI?.Chat?.Completions?.prototype, method: 'parse', helper: 'chat.completions.parse' },
      { proto: OpenAI?.Chat?.Completions?.prototype, method: 'stream', helper: 'chat.completions.stream' },
      { proto: OpenAI?.Chat?.Completions?.prototype, method: 'runTools', helper: 'chat.completions.runTools' },
      { proto: OpenAI?.Responses?.prototype, method: 'create', spec: responses },
      { proto: OpenAI?.Responses?.prototype, method: 'parse', helper: 'responses.parse' },
      { proto: OpenAI?.Responses?.prototype, method: 'stream', helper: 'responses.stream' },
      { proto: OpenAI?.Embeddings?.prototype, method: 'create', spec: embeddings },
      { proto: OpenAI?.Completions?.prototype, method: 'create', spec: completions },
      { proto: OpenAI?.Moderations?.prototype, method: 'create', spec: moderations },
      { proto: OpenAI?.Images?.prototype, method: 'generate', spec: imagesGenerate },
      { proto: OpenAI?.Images?.prototype, method: 'edit', spec: imagesEdit },
      { proto: OpenAI?.Audio?.Transcriptions?.prototype, method: 'create', spec: transcriptions },
      { proto: OpenAI?.Audio?.Translations?.prototype, method: 'create', spec: translations },
      { proto: OpenAI?.Audio?.Speech?.prototype, method: 'create', spec: speech },
      { proto: OpenAI?.Files?.prototype, method: 'create', spec: filesCreate },
      { proto: OpenAI?.Files?.prototype, method: 'content', spec: filesContent },
      { proto: OpenAI?.Batches?.prototype, method: 'create', spec: batchesCreate },
      { proto: OpenAI?.Batches?.prototype, method: 'retrieve', spec: batchesRetrieve },
      { proto: OpenAI?.Batches?.prototype, method: 'list', spec: batchesList },
      { proto: OpenAI?.Batches?.prototype, method: 'cancel', spec: batchesCancel },
      ...realtimeTargets(moduleExports),
    ];
  },
};

/** The client class: the CommonJS export's `OpenAI`, the ESM namespace's `default`, or auditClient()'s stand-in. */
function openaiRoot(moduleExports: any): any {
  return moduleExports?.OpenAI ?? moduleExports?.default ?? moduleExports;
}

/**
 * An OpenAI operation: its request shape gives the sanitizer's and the envelope's walk and what
 * the hashes cover alike; `streams` when `stream: true` in the request makes the call a stream.
 */
function operation(
  request: OpenAIRequest,
  fields: Pick<OperationSpec, 'operationName' | 'action' | 'summarize'> & Partial<OperationSpec> & { streams?: boolean },
): OperationSpec {
  const { streams, ...rest } = fields;
  return {
    provider: A.GEN_AI_PROVIDER.openai,
    requestKind: request,
    prompt: request.prompt,
    isStream: streams === true ? (params) => params?.stream === true : () => false,
    requestAttributes: () => undefined,
    accumulator: () => {
      throw new Error(`${fields.action} does not stream`);
    },
    ...rest,
  };
}

// --- chat.completions, responses, embeddings ----------------------------------------------------

export const chatCompletions = operation(chatRequest, {
  operationName: 'chat',
  action: 'chat.completions.create',
  byDeployment: true,
  streams: true,
  requestAttributes(params, attributes) {
    samplingSettings(params, params.max_completion_tokens ?? params.max_tokens, attributes);
    outputType(params.response_format?.type, attributes);
  },
  summarize: summarizeChat,
  accumulator: () => new ChatStreamAccumulator(),
  errorGuardrails: errorContentFilters,
});

export const responses = operation(responsesRequest, {
  operationName: 'chat',
  action: 'responses.create',
  streams: true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { maxTokens: params.max_output_tokens, temperature: params.temperature, topP: params.top_p });
    outputType(params.text?.format?.type, attributes);
    if (typeof params.conversation === 'string') attributes[A.ATTR_GEN_AI_CONVERSATION_ID] = params.conversation;
  },
  summarize: summarizeResponse,
  accumulator: () => new ResponsesStreamAccumulator(),
  errorGuardrails: errorContentFilters,
});

const embeddings = operation(embeddingsRequest, {
  operationName: 'embeddings',
  action: 'embeddings.create',
  byDeployment: true,
  requestAttributes(params, attributes) {
    if (typeof params.encoding_format === 'string') {
      attributes[A.ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [params.encoding_format];
    }
    setNumber(attributes, A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT, params.dimensions);
  },
  summarize: summarizeEmbeddings,
});

// --- completions (legacy), moderations --------------------------------------------------------------

const completions = operation(completionsRequest, {
  operationName: 'text_completion',
  action: 'completions.create',
  byDeployment: true,
  streams: true,
  requestAttributes: (params, attributes) => samplingSettings(params, params.max_tokens, attributes),
  summarize: summarizeCompletion,
  accumulator: () => new CompletionStreamAccumulator(),
  errorGuardrails: errorContentFilters,
});

// No operation name of the conventions fits a classifier.
const moderations = operation(moderationsRequest, { operationName: 'moderation', action: 'moderations.create', summarize: summarizeModeration });

// --- images -------------------------------------------------------------------------------------

function imageAttributes(params: any, attributes: Attributes): void {
  setRequestSettings(attributes, { choiceCount: params.n });
  attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'image';
}

const images = {
  operationName: 'generate_content',
  byDeployment: true,
  streams: true,
  requestAttributes: imageAttributes,
  summarize: summarizeImages,
  accumulator: () => new ImageStreamAccumulator(),
};
const imagesGenerate = operation(imageGenerateRequest, { ...images, action: 'images.generate' });
const imagesEdit = operation(imageEditRequest, { ...images, action: 'images.edit', settle: settleWithUploads(summarizeImages, ['image', 'mask']) });

// --- audio --------------------------------------------------------------------------------------

// No operation name of the conventions fits speech recognition.
const transcriptions = operation(transcriptionRequest, {
  operationName: 'transcription',
  action: 'audio.transcriptions.create',
  byDeployment: true,
  streams: true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { temperature: params.temperature });
    attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
  },
  summarize: summarizeTranscript,
  settle: settleWithUploads(summarizeTranscript, ['file']),
  accumulator: () => new TranscriptStreamAccumulator(),
});

const translations = operation(transcriptionRequest, {
  operationName: 'translation',
  action: 'audio.translations.create',
  byDeployment: true,
  requestAttributes: transcriptions.requestAttributes,
  summarize: summarizeTranscript,
  settle: transcriptions.settle,
});

/** Text to speech: the text is hashed (input), the voice made of it digested (output), neither kept. */
const speech = operation(speechRequest, {
  operationName: 'generate_content',
  action: 'audio.speech.create',
  byDeployment: true,
  requestAttributes(_params, attributes) {
    attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'speech';
  },
  summarize: () => ({}),
  settle: (data) => settleSpeech(data),
});

// --- files and batches (see ./batches.ts for how a batch is linked to its requests) ----------------

const filesCreate = operation(fileUploadRequest, { operationName: 'upload_file', action: 'files.create', summarize: () => ({}), settle: settleUpload });

/**
 * `files.content(fileId)`: the parameter is the file id. A batch output or error file gives one
 * record per result line after the download's own (./batches.ts).
 */
const filesContent = operation(idsOnlyRequest, {
  operationName: 'retrieve_file',
  action: 'files.content',
  requestModel: () => undefined,
  requestAttributes(fileId, attributes) {
    if (typeof fileId === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = fileId;
  },
  summarize: () => ({}),
  settle: (data, fileId) => settleFileContent(data, fileId),
  batchResults: resultLineSpec({ chat: chatCompletions, responses, embeddings, completions }),
});

const batchesCreate = operation(idsOnlyRequest, {
  operationName: 'create_batch',
  action: 'batches.create',
  requestAttributes(params, attributes) {
    if (typeof params.input_file_id === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = params.input_file_id;
  },
  summarize: () => ({}),
  settle: (data, params) => Promise.resolve(summarizeBatch(data, params)),
});

/**
 * Polling and cancelling a batch: light records (core/batches.ts batchPollingSpec). `list` fetches
 * its later pages outside the call (the SDK's page iterator): those plain reads are let through by
 * the unaudited-request watcher as content-free (src/audit/unaudited/content-free.ts).
 */
const ids = { provider: batchesCreate.provider, requestKind: idsOnlyRequest, accumulator: batchesCreate.accumulator };
const batchesRetrieve = batchPollingSpec(ids, 'retrieve_batch', 'batches.retrieve', summarizeBatchStatus);
const batchesList = batchPollingSpec(ids, 'list_batches', 'batches.list', summarizeBatchList);
const batchesCancel = batchPollingSpec(ids, 'cancel_batch', 'batches.cancel', summarizeBatchStatus);

// --- shared ---------------------------------------------------------------------------------

/** The sampling settings chat and legacy completions share (the same request fields). */
function samplingSettings(params: any, maxTokens: unknown, attributes: Attributes): void {
  setRequestSettings(attributes, {
    maxTokens,
    temperature: params.temperature,
    topP: params.top_p,
    frequencyPenalty: params.frequency_penalty,
    presencePenalty: params.presence_penalty,
    seed: params.seed,
    choiceCount: params.n,
    stop: params.stop,
  });
}

function outputType(format: unknown, attributes: Attributes): void {
  if (format === 'json_object' || format === 'json_schema') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
  else if (format === 'text') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
}
