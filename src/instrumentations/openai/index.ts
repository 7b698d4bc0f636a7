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
  imageEditRequest,
  imageGenerateRequest,
  moderationsRequest,
  responsesRequest,
  speechRequest,
  transcriptionRequest,
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
import { settleFileContent, settleUpload, summarizeBatch } from './batches';

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
  needs(moduleExports) {
    const OpenAI = openaiRoot(moduleExports);
    return {
      'OpenAI.Chat.Completions.prototype.create': OpenAI?.Chat?.Completions?.prototype?.create,
      'OpenAI.Embeddings.prototype.create': OpenAI?.Embeddings?.prototype?.create,
      'OpenAI.prototype.post': OpenAI?.prototype?.post,
    };
  },
  client: (resource) => resource?._client,
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
    ];
  },
};

/** The client class: the CommonJS export's `OpenAI`, the ESM namespace's `default`, or auditClient()'s stand-in. */
function openaiRoot(moduleExports: any): any {
  return moduleExports?.OpenAI ?? moduleExports?.default ?? moduleExports;
}

const notStreamed = (): never => {
  throw new Error('this operation does not stream');
};

// --- chat.completions.create --------------------------------------------------------------------

const chatCompletions: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'chat.completions.create',
  byDeployment: true,
  requestKind: chatRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, {
      maxTokens: params.max_completion_tokens ?? params.max_tokens,
      temperature: params.temperature,
      topP: params.top_p,
      frequencyPenalty: params.frequency_penalty,
      presencePenalty: params.presence_penalty,
      seed: params.seed,
      choiceCount: params.n,
      stop: params.stop,
    });
    outputType(params.response_format?.type, attributes);
  },
  prompt: chatRequest.prompt,
  summarize: summarizeChat,
  accumulator: () => new ChatStreamAccumulator(),
  errorGuardrails: errorContentFilters,
};

// --- responses.create ---------------------------------------------------------------------------

const responses: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'responses.create',
  requestKind: responsesRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { maxTokens: params.max_output_tokens, temperature: params.temperature, topP: params.top_p });
    outputType(params.text?.format?.type, attributes);
    if (typeof params.conversation === 'string') attributes[A.ATTR_GEN_AI_CONVERSATION_ID] = params.conversation;
  },
  prompt: responsesRequest.prompt,
  summarize: summarizeResponse,
  accumulator: () => new ResponsesStreamAccumulator(),
  errorGuardrails: errorContentFilters,
};

// --- embeddings.create --------------------------------------------------------------------------

const embeddings: OperationSpec = {
  provider: 'openai',
  operationName: 'embeddings',
  action: 'embeddings.create',
  byDeployment: true,
  requestKind: embeddingsRequest,
  isStream: () => false,
  requestAttributes(params, attributes) {
    if (typeof params.encoding_format === 'string') {
      attributes[A.ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [params.encoding_format];
    }
    setNumber(attributes, A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT, params.dimensions);
  },
  prompt: embeddingsRequest.prompt,
  summarize: summarizeEmbeddings,
  accumulator: notStreamed,
};

// --- completions.create (legacy) ------------------------------------------------------------------

const completions: OperationSpec = {
  provider: 'openai',
  operationName: 'text_completion',
  action: 'completions.create',
  byDeployment: true,
  requestKind: completionsRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, {
      maxTokens: params.max_tokens,
      temperature: params.temperature,
      topP: params.top_p,
      frequencyPenalty: params.frequency_penalty,
      presencePenalty: params.presence_penalty,
      seed: params.seed,
      choiceCount: params.n,
      stop: params.stop,
    });
  },
  prompt: completionsRequest.prompt,
  summarize: summarizeCompletion,
  accumulator: () => new CompletionStreamAccumulator(),
  errorGuardrails: errorContentFilters,
};

// --- moderations.create ---------------------------------------------------------------------------

const moderations: OperationSpec = {
  provider: 'openai',
  // No operation name of the conventions fits a classifier.
  operationName: 'moderation',
  action: 'moderations.create',
  requestKind: moderationsRequest,
  isStream: () => false,
  requestAttributes: () => undefined,
  prompt: moderationsRequest.prompt,
  summarize: summarizeModeration,
  accumulator: notStreamed,
};

// --- images -------------------------------------------------------------------------------------

function imageAttributes(params: any, attributes: Attributes): void {
  setRequestSettings(attributes, { choiceCount: params.n });
  attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'image';
}

const imagesGenerate: OperationSpec = {
  provider: 'openai',
  operationName: 'generate_content',
  action: 'images.generate',
  byDeployment: true,
  requestKind: imageGenerateRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes: imageAttributes,
  prompt: imageGenerateRequest.prompt,
  summarize: summarizeImages,
  accumulator: () => new ImageStreamAccumulator(),
};

const imagesEdit: OperationSpec = {
  ...imagesGenerate,
  action: 'images.edit',
  requestKind: imageEditRequest,
  prompt: imageEditRequest.prompt,
};

// --- audio --------------------------------------------------------------------------------------

const transcriptions: OperationSpec = {
  provider: 'openai',
  // No operation name of the conventions fits speech recognition.
  operationName: 'transcription',
  action: 'audio.transcriptions.create',
  byDeployment: true,
  requestKind: transcriptionRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { temperature: params.temperature });
    attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
  },
  prompt: transcriptionRequest.prompt,
  summarize: summarizeTranscript,
  accumulator: () => new TranscriptStreamAccumulator(),
};

const translations: OperationSpec = {
  ...transcriptions,
  operationName: 'translation',
  action: 'audio.translations.create',
  isStream: () => false,
  accumulator: notStreamed,
};

/** Text to speech: the text is hashed (input), the voice made of it digested (output), neither kept. */
const speech: OperationSpec = {
  provider: 'openai',
  operationName: 'generate_content',
  action: 'audio.speech.create',
  byDeployment: true,
  requestKind: speechRequest,
  isStream: () => false,
  requestAttributes(_params, attributes) {
    attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'speech';
  },
  prompt: speechRequest.prompt,
  summarize: () => ({}),
  settle: (data) => settleSpeech(data),
  accumulator: notStreamed,
};

// --- files and batches (see ./batches.ts for how a batch is linked to its requests) ----------------

const filesCreate: OperationSpec = {
  provider: 'openai',
  operationName: 'upload_file',
  action: 'files.create',
  requestKind: fileUploadRequest,
  isStream: () => false,
  requestAttributes: () => undefined,
  prompt: fileUploadRequest.prompt,
  summarize: () => ({}),
  settle: settleUpload,
  accumulator: notStreamed,
};

/** `files.content(fileId)`: the parameter is the file id. */
const filesContent: OperationSpec = {
  provider: 'openai',
  operationName: 'retrieve_file',
  action: 'files.content',
  requestKind: { sanitize: (_w, params) => params, content: () => ({ input_messages: [] }) },
  isStream: () => false,
  requestModel: () => undefined,
  requestAttributes(fileId, attributes) {
    if (typeof fileId === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = fileId;
  },
  prompt: () => ({}),
  summarize: () => ({}),
  settle: (data, fileId) => settleFileContent(data, fileId),
  accumulator: notStreamed,
};

const batchesCreate: OperationSpec = {
  provider: 'openai',
  operationName: 'create_batch',
  action: 'batches.create',
  requestKind: { sanitize: (_w, params) => params, content: () => ({ input_messages: [] }) },
  isStream: () => false,
  requestAttributes(params, attributes) {
    if (typeof params.input_file_id === 'string') attributes[A.ATTR_AUDIT_FILE_ID] = params.input_file_id;
  },
  prompt: () => ({}),
  summarize: () => ({}),
  settle: (data, params) => Promise.resolve(summarizeBatch(data, params)),
  accumulator: notStreamed,
};

// --- shared ---------------------------------------------------------------------------------

function outputType(format: unknown, attributes: Attributes): void {
  if (format === 'json_object' || format === 'json_schema') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
  else if (format === 'text') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
}
