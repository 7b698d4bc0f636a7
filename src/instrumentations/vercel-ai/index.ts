/**
 * The Vercel AI SDK (`ai` 5, 6 and 7, any `@ai-sdk/*` provider).
 *
 * The @ai-sdk providers call `fetch` themselves, so the openai / anthropic patches see none of
 * their calls. The seam is the model object the application passes: every model call of `ai` goes
 * through its `doGenerate` / `doStream` / `doEmbed` / `doRerank` (the specification `wrapLanguageModel`
 * middleware builds on), with telemetry on or off. The exported functions that take a model are
 * wrapped so that the model they get is a proxy whose `do*` methods are audited calls: one audit
 * record per model call (each step of a multi-step `generateText`, each retry, each chunk of
 * `embedMany`), the request held for the beforeRequest hook and redacted before the provider turns
 * it into its wire format. `ai` 7's `diagnostics_channel` `ai:telemetry` would only observe, and
 * nothing at all with telemetry switched off per call.
 *
 * `ai` 6 has a CommonJS build whose exports are getters that cannot be redefined: the patch then
 * returns a copy of the exports (require-in-the-middle hands that to `require`). Under the ESM
 * hook, the namespace import-in-the-middle gives is written in place.
 */
import { diag } from '@opentelemetry/api';
import { auditedMethod, ours, wrappedByUs, type AuditedMethodOptions } from '../../core/patch';
import { serverFromURL } from '../provider-hosts';
import type { AuditedCall, AuditServices, ServerInfo } from '../../core/audited-call';
import type { OperationSpec } from '../../core/types';
import { observeReadableStream } from '../../core/readable-stream';
import { promiseAdapter } from '../../core/sdk-adapter';
import { runInAuditedCall } from '../../audit/unaudited/audited-call-marker';
import { embeddingSpec, languageSpec, mediaSpec, providerName, type ModelInfo, type ModelKind } from './specs';
import { skillSpec, uploadSpec } from './files';
import { streamSpec, withStreamedInput } from './streams';

type Fn = (this: unknown, ...args: any[]) => any;

/**
 * The exported functions that take a model: a language model (`prepareStep` may return one too),
 * an embedding, image, speech, transcription, reranking or video model. Each version exports the
 * names it has (ai 5: the `experimental_` media functions; 6: `generateImage`, `rerank` and
 * `experimental_generateVideo` too; 7: also `generateSpeech`, `transcribe` and the asynchronous
 * `experimental_startVideo` / `experimental_getVideoStatus`).
 */
const ENTRY_POINTS: ReadonlyArray<readonly [string, ModelKind | UploadKind, 'model-first'?]> = [
  ['generateText', 'language'],
  ['streamText', 'language'],
  ['generateObject', 'language'],
  ['streamObject', 'language'],
  ['experimental_streamTextLowMemory', 'language'],
  ['experimental_streamLanguageModelCall', 'language'],
  ['embed', 'embedding'],
  ['embedMany', 'embedding'],
  ['generateImage', 'image'],
  ['experimental_generateImage', 'image'],
  ['generateSpeech', 'speech'],
  ['experimental_generateSpeech', 'speech'],
  ['transcribe', 'transcription'],
  ['experimental_transcribe', 'transcription'],
  ['experimental_streamTranscribe', 'transcription'],
  ['experimental_streamTranslate', 'translation'],
  ['experimental_streamSpeech', 'speech'],
  ['experimental_decide', 'decision'],
  ['experimental_evaluate', 'decision'],
  ['rerank', 'reranking'],
  ['experimental_extract', 'extraction'],
  ['experimental_generateVideo', 'video'],
  ['experimental_startVideo', 'video'],
  // (model, { operation }): the model is the first argument, not an option.
  ['experimental_getVideoStatus', 'video', 'model-first'],
  // ({ api, data }) / ({ api, files }): a provider's files or skills API, not a model (./files.ts).
  ['uploadFile', 'files'],
  ['uploadSkill', 'skills'],
];

/** How a provider resolves a model id of each kind, as `ai` does for a string model. */
const RESOLVERS: Readonly<Record<ModelKind, readonly string[]>> = {
  language: ['languageModel'],
  embedding: ['embeddingModel', 'textEmbeddingModel'],
  image: ['imageModel'],
  speech: ['speechModel'],
  transcription: ['transcriptionModel'],
  translation: ['speechTranslationModel'],
  decision: ['decisionModel', 'evaluationModel'],
  reranking: ['rerankingModel'],
  video: ['videoModel'],
  extraction: ['extractionModel'],
};

/** Marks our model proxies: a model passed on (a proxy handed back by prepareStep) is not wrapped twice. */
const AUDITED_MODEL = Symbol.for('otel-llm-audit.vercel-ai.model');

export const vercelAi = {
  moduleName: 'ai',
  /** 5.x (LanguageModelV2), 6.x (V3) and 7.x (V4); the shapes differ only in usage and finish reason. */
  tested: (major: number) => major >= 5 && major <= 7,
  testedRange: '5.x, 6.x, 7.x',
  /** The entry points whose model argument is wrapped; another major that still has them is patched. */
  needs: (moduleExports: any): Record<string, unknown> => ({
    generateText: moduleExports?.generateText,
    streamText: moduleExports?.streamText,
    embed: moduleExports?.embed,
  }),

  /**
   * Wraps the model-taking functions of `ai`'s exports. Returns the exports to hand to the
   * application: the same object when it could be written, else a copy.
   */
  patch(moduleExports: any, services: () => AuditServices | undefined): any {
    const replacements: Record<string, Fn> = {};
    for (const [name, kind, modelFirst] of ENTRY_POINTS) {
      const original = moduleExports?.[name];
      if (typeof original === 'function' && !wrappedByUs(original)) replacements[name] = entryPoint(original, name, kind, modelFirst !== undefined, moduleExports, services);
    }
    patchAgent(moduleExports, services);
    if (Object.keys(replacements).length === 0) {
      diag.warn('otel-llm-audit: found nothing to patch in ai; its calls are not audited');
      return moduleExports;
    }
    return withExports(moduleExports, replacements);
  },
};

/**
 * An agent calls ai's generateText / streamText from inside the module, not through the exports.
 * ai 6/7's ToolLoopAgent builds their arguments in `prepareCall`, which then gets the audited
 * model; ai 5's Agent (exported as Experimental_Agent) spreads `{...settings, ...options}`, so
 * its `generate` / `stream` get the audited model in their options.
 */
function patchAgent(exports: any, services: () => AuditServices | undefined): void {
  const agent = (exports?.ToolLoopAgent ?? exports?.Experimental_Agent)?.prototype;
  if (agent === undefined || agent === null) return;
  if (typeof agent.prepareCall === 'function') {
    if (wrappedByUs(agent.prepareCall)) return;
    const prepareCall: Fn = agent.prepareCall;
    agent.prepareCall = ours(async function auditedPrepareCall(this: unknown, ...args: any[]) {
      const prepared = await prepareCall.apply(this, args);
      return services() === undefined ? prepared : auditedOptions(prepared, 'ToolLoopAgent', 'language', exports, services);
    });
    return;
  }
  for (const method of ['generate', 'stream']) {
    const original: Fn | undefined = agent[method];
    if (typeof original !== 'function' || wrappedByUs(original)) continue;
    agent[method] = ours(function auditedAgentCall(this: { settings?: any }, options?: any, ...rest: any[]) {
      if (services() === undefined) return original.call(this, options, ...rest);
      const settings = this?.settings ?? {};
      const merged = { ...options, model: options?.model ?? settings.model };
      if ((options?.prepareStep ?? settings.prepareStep) !== undefined) merged.prepareStep = options?.prepareStep ?? settings.prepareStep;
      return original.call(this, auditedOptions(merged, 'Agent', 'language', exports, services), ...rest);
    });
  }
}

/** `exports` with `replacements`: written in place when it can be (an ESM namespace under the hook), else a copy. */
function withExports(exports: any, replacements: Record<string, Fn>): any {
  let inPlace = true;
  for (const name of Object.keys(replacements)) {
    try {
      exports[name] = replacements[name];
    } catch {
      // a getter without a setter, in strict mode
    }
    if (exports[name] !== replacements[name]) inPlace = false;
  }
  if (inPlace) return exports;
  // The CommonJS build: every other export stays a live getter onto the original.
  const copy: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(exports)) {
    if (key in replacements) continue;
    const enumerable = Object.getOwnPropertyDescriptor(exports, key)?.enumerable ?? true;
    Object.defineProperty(copy, key, { enumerable, configurable: true, get: () => exports[key] });
  }
  for (const name of Object.keys(replacements)) Object.defineProperty(copy, name, { enumerable: true, configurable: true, writable: true, value: replacements[name] });
  return copy;
}

function entryPoint(original: Fn, action: string, kind: ModelKind | UploadKind, modelFirst: boolean, exports: any, services: () => AuditServices | undefined): Fn {
  return ours(function auditedAiFunction(this: unknown, ...args: any[]) {
    if (services() === undefined) return original.apply(this, args);
    let first: unknown;
    if (kind === 'files' || kind === 'skills') first = auditedUploadOptions(args[0], UPLOADS[kind], services);
    else if (modelFirst) first = auditedArgument(args[0], action, kind, exports, services);
    else first = auditedOptions(args[0], action, kind, exports, services);
    return original.apply(this, [first, ...args.slice(1)]);
  });
}

/** The two uploads: the API's method, the provider's factory of that API, the spec. */
type UploadKind = 'files' | 'skills';
const UPLOADS: Readonly<Record<UploadKind, { method: string; factory: string; spec: (api: ModelInfo) => OperationSpec }>> = {
  files: { method: 'uploadFile', factory: 'files', spec: uploadSpec },
  skills: { method: 'uploadSkill', factory: 'skills', spec: skillSpec },
};

/**
 * `uploadFile` / `uploadSkill`'s options with its `api` audited: a files (skills) API gets an
 * audited `uploadFile` (`uploadSkill`), a provider a `files()` (`skills()`) that returns such an API.
 */
function auditedUploadOptions(options: any, upload: (typeof UPLOADS)[UploadKind], services: () => AuditServices | undefined): any {
  try {
    const api = options?.api;
    // A provider is a function with members (createOpenAI's), an API an object.
    if ((typeof api !== 'object' && typeof api !== 'function') || api === null) return options;
    return { ...options, api: typeof api[upload.method] === 'function' ? auditedUploadApi(api, upload, services) : auditedProviderUploads(api, upload, services) };
  } catch (error) {
    diag.error(`otel-llm-audit: could not audit the API of this ${upload.method} call; its upload is NOT audited`, error);
    return options;
  }
}

function auditedUploadApi(api: any, upload: (typeof UPLOADS)[UploadKind], services: () => AuditServices | undefined): unknown {
  const method = auditedMethod(services, upload.spec({ provider: providerName(api.provider), modelId: undefined }), MODEL_OPTIONS)(api[upload.method]);
  return withMembers(api, { [upload.method]: (...args: unknown[]) => method.apply(api, args) });
}

function auditedProviderUploads(provider: any, upload: (typeof UPLOADS)[UploadKind], services: () => AuditServices | undefined): unknown {
  if (typeof provider[upload.factory] !== 'function') return provider;
  return withMembers(provider, { [upload.factory]: (...args: unknown[]) => auditedUploadApi(provider[upload.factory](...args), upload, services) });
}

/** `target` with `members` in place of its own (the rest read from it, getters with it as `this`). */
function withMembers(target: object, members: Record<string | symbol, unknown>): unknown {
  return new Proxy(target, {
    get: (object, key) => (Object.prototype.hasOwnProperty.call(members, key) ? members[key] : Reflect.get(object, key, object)),
  });
}

/** A model given as the function's first argument, audited; as it was when that fails. */
function auditedArgument(model: any, action: string, kind: ModelKind, exports: any, services: () => AuditServices | undefined): any {
  try {
    return auditedModel(model, kind, action, exports, services);
  } catch (error) {
    diag.error(`otel-llm-audit: could not audit the model of this ${action} call; its model calls are NOT audited`, error);
    return model;
  }
}

/** The options of an ai call with the model (and any model prepareStep returns) audited; as they were when that fails. */
function auditedOptions(options: any, action: string, kind: ModelKind, exports: any, services: () => AuditServices | undefined): any {
  if (typeof options !== 'object' || options === null) return options;
  try {
    const audited = { ...options, model: auditedModel(options.model, kind, action, exports, services) };
    if (kind === 'language' && typeof options.prepareStep === 'function') audited.prepareStep = auditedPrepareStep(options.prepareStep, action, exports, services);
    return audited;
  } catch (error) {
    diag.error(`otel-llm-audit: could not audit the model of this ${action} call; its model calls are NOT audited`, error);
    return options;
  }
}

/** A `prepareStep` whose step model (when it names one) is audited like the call's own. */
function auditedPrepareStep(prepareStep: Fn, action: string, exports: any, services: () => AuditServices | undefined): Fn {
  return async function (this: unknown, ...args: any[]) {
    const result = await prepareStep.apply(this, args);
    if (result === null || typeof result !== 'object' || result.model === undefined) return result;
    return { ...result, model: auditedModel(result.model, 'language', action, exports, services) };
  };
}

/**
 * The model as an audited proxy. A string id is resolved the way `ai` resolves it (the global
 * default provider, else the AI Gateway) so that its calls are audited too.
 */
function auditedModel(model: any, kind: ModelKind, action: string, exports: any, services: () => AuditServices | undefined): unknown {
  if (typeof model === 'string') {
    const provider = (globalThis as { AI_SDK_DEFAULT_PROVIDER?: any }).AI_SDK_DEFAULT_PROVIDER ?? exports?.gateway;
    const resolve = RESOLVERS[kind].map((name) => provider?.[name]).find((fn) => typeof fn === 'function');
    if (resolve === undefined) throw new Error(`cannot resolve the model id "${model}" as ai does`);
    model = resolve.call(provider, model);
  }
  if (typeof model !== 'object' || model === null || model[AUDITED_MODEL] === true) return model;
  const info: ModelInfo = { provider: providerName(model.provider), modelId: typeof model.modelId === 'string' ? model.modelId : undefined };
  const methods: Record<string, Fn> = {};
  const fields: Record<string, unknown> = {};
  if (kind === 'extraction') {
    // ai 7's extraction models as @ai-sdk/openai and /anthropic 4 build them (provider-utils'
    // ExtractionLanguageModel): `doExtract` calls `this.model.doGenerate`, so that language model
    // is audited, one record per request it makes (each group of `maxFieldsPerCall` fields).
    const inner = model.model;
    if (typeof inner?.doGenerate === 'function') fields['model'] = auditedModel(inner, 'language', action, exports, services);
    else diag.warn(`otel-llm-audit: the extraction model of this ${action} call is not built on a language model; its calls are NOT audited`);
  } else if (kind === 'language') {
    if (typeof model.doGenerate === 'function') methods.doGenerate = auditedMethod(services, languageSpec(info, action, false), MODEL_OPTIONS)(model.doGenerate);
    if (typeof model.doStream === 'function') methods.doStream = auditedMethod(services, languageSpec(info, action, true), MODEL_OPTIONS)(model.doStream);
  } else if (kind === 'embedding') {
    if (typeof model.doEmbed === 'function') methods.doEmbed = auditedMethod(services, embeddingSpec(info, action), MODEL_OPTIONS)(model.doEmbed);
  } else if (kind === 'reranking') {
    if (typeof model.doRerank === 'function') methods.doRerank = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model.doRerank);
  } else if (kind === 'video') {
    // ai 7's asynchronous flow: doStart sends the content (a record, without output: it answers
    // with an operation to poll); doStatus only polls by that operation, so it makes no record but
    // counts as audited traffic for the unaudited-request watcher.
    if (typeof model.doGenerate === 'function') methods.doGenerate = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model.doGenerate);
    if (typeof model.doStart === 'function') methods.doStart = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model.doStart);
    if (typeof model.doStatus === 'function') {
      const doStatus: Fn = model.doStatus;
      methods.doStatus = function (this: unknown, ...args: unknown[]) {
        return runInAuditedCall(() => doStatus.apply(this, args));
      };
    }
  } else if (kind === 'transcription' || kind === 'translation' || kind === 'speech') {
    // ai 7's streamed audio and speech (./streams.ts): the input the provider reads is kept (digested) on its way.
    if (kind !== 'translation' && typeof model.doGenerate === 'function') methods.doGenerate = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model.doGenerate);
    if (typeof model.doStream === 'function') {
      const doStream = auditedMethod(services, streamSpec(kind, info, action), MODEL_OPTIONS)(model.doStream);
      const field = kind === 'speech' ? 'text' : 'audio';
      methods.doStream = function (this: unknown, options: unknown, ...rest: unknown[]) {
        return doStream.call(this, withStreamedInput(options, field), ...rest);
      };
    }
  } else if (kind === 'decision') {
    // Experimental_DecisionModelV4; a model of ai 7's first decision releases has `doEvaluate` instead.
    for (const name of ['doDecide', 'doEvaluate']) {
      if (typeof model[name] === 'function') methods[name] = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model[name]);
    }
  } else if (typeof model.doGenerate === 'function') {
    methods.doGenerate = auditedMethod(services, mediaSpec(kind, info, action), MODEL_OPTIONS)(model.doGenerate);
  }
  // The audited methods run on the model itself (its private fields), whatever `this` ai uses.
  const members: Record<string | symbol, unknown> = { ...fields, [AUDITED_MODEL]: true };
  for (const [name, method] of Object.entries(methods)) members[name] = (...args: unknown[]) => method.apply(model, args);
  return withMembers(model, members);
}

/**
 * How a model's `do*` call is held and observed: it returns a plain promise, so the generic
 * adapter holds it (core/sdk-adapter.ts: the method is called only once the gate opens); a
 * `doStream` result's `stream`, a web ReadableStream inside the result object, is replaced by an
 * observed stream that hands on the same parts.
 */
const MODEL_OPTIONS: AuditedMethodOptions = {
  server: serverOf,
  adapter: { hold: promiseAdapter.hold, observe: observeModelResult },
};

function observeModelResult(result: unknown, call: AuditedCall): unknown {
  return Promise.resolve(result).then(
    (value: any) => {
      try {
        if (typeof value?.stream?.getReader === 'function') {
          return { ...value, stream: observeReadableStream(value.stream, call, (part: any) => (part?.type === 'error' ? (part.error ?? 'stream error part') : undefined)) };
        }
        call.tag(value);
        call.completeWith(value);
      } catch (error) {
        diag.error('otel-llm-audit: could not observe the model result', error);
      }
      return value;
    },
    (error: unknown) => {
      call.fail(error);
      throw error;
    },
  );
}

/** `server.*` from the provider's configured base URL (`config.baseURL`, or `config.url()` of the OpenAI models). */
function serverOf(model: any): ServerInfo {
  if (typeof model !== 'object' || model === null) return {};
  let baseURL: unknown;
  try {
    const config = model.config;
    baseURL = typeof config?.baseURL === 'string' ? config.baseURL : typeof config?.url === 'function' ? config.url({ path: '', modelId: model.modelId }) : undefined;
  } catch {
    baseURL = undefined;
  }
  return serverFromURL(model, baseURL);
}
