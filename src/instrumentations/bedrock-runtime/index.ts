/**
 * @aws-sdk/client-bedrock-runtime 3.x. Every call of an AWS SDK v3 client goes through
 * `client.send(command)` (the aggregated `BedrockRuntime` class's `converse()` & co. call it too),
 * so `BedrockRuntimeClient.prototype.send` is wrapped, and each call is audited as the operation
 * its command names: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream,
 * CountTokens, ApplyGuardrail and InvokeGuardrailChecks (./operations.ts), StartAsyncInvoke
 * (./async-invoke.ts). GetAsyncInvoke and ListAsyncInvokes only poll: they pass through without a
 * record, marked as audited for the unaudited-request watcher. InvokeModelWithBidirectionalStream
 * (speech to speech over an HTTP/2 event stream both ways): one record per session, its input
 * iterable read through the audit as it is sent (./bidirectional.ts).
 *
 * `send` returns a plain promise, so a request is held for the guardrail hooks by calling `send`
 * only once they have decided (core/sdk-adapter.ts promiseAdapter): nothing is serialized, signed
 * or sent before. A redacted request is sent as a command object that inherits from the
 * application's own (same class, same middleware stack) with the redacted `input`; the
 * application's command is never changed.
 */
import { context, diag, trace } from '@opentelemetry/api';
import { IN_HOOK, type AuditedCall, type ServerInfo } from '../../core/audited-call';
import * as A from '../../semconv';
import type { AuditedMethodOptions, MethodRoute } from '../../core/patch';
import type { ProviderPatch } from '../../core/provider';
import { observeAsyncIterable, promiseAdapter, type SdkAdapter } from '../../core/sdk-adapter';
import { promptFromContent } from '../../core/request-walk';
import type { OperationSpec } from '../../core/types';
import { ConverseStreamAccumulator, converseRequestAttributes, converseWalker, isObj, summarizeConverse, type Obj } from './converse';
import { InvokeStreamAccumulator, bodyReadable, invokeModelRequest, invokeRequestAttributes, summarizeInvoke } from './invoke-model';
import {
  applyGuardrailRequest,
  countTokensRequest,
  guardrailChecksRequest,
  guardrailRequestAttributes,
  summarizeApplyGuardrail,
  summarizeCountTokens,
  summarizeGuardrailChecks,
} from './operations';
import { bidirectionalSessionOf, bidirectionalStream } from './bidirectional';
import { ASYNC_INVOKE_POLLS, asyncInvokeRequest, asyncInvokeRequestAttributes, summarizeStartAsyncInvoke } from './async-invoke';

// What the hashes cover: the request's content as each walker reads it (core/request-walk.ts).

const modelId = (params: any): string | undefined => (typeof params?.modelId === 'string' ? params.modelId : undefined);

const converse: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.bedrock,
  operationName: 'chat',
  action: 'Converse',
  requestKind: converseWalker,
  isStream: () => false,
  requestModel: modelId,
  requestAttributes: converseRequestAttributes,
  prompt: promptFromContent(converseWalker),
  summarize: summarizeConverse,
  accumulator: () => new ConverseStreamAccumulator(),
};

const converseStream: OperationSpec = { ...converse, action: 'ConverseStream', isStream: () => true };

const invokePrompt = promptFromContent(invokeModelRequest);

const invokeModel: OperationSpec = {
  ...converse,
  action: 'InvokeModel',
  requestKind: invokeModelRequest,
  requestAttributes: invokeRequestAttributes,
  prompt: (params) => (bodyReadable(params) ? invokePrompt(params) : {}),
  summarize: summarizeInvoke,
  accumulator: () => new InvokeStreamAccumulator(),
};

const invokeModelStream: OperationSpec = { ...invokeModel, action: 'InvokeModelWithResponseStream', isStream: () => true };

/** CountTokens and ApplyGuardrail: content leaves, no model generates (./operations.ts). */
const countTokens: OperationSpec = {
  ...converse,
  operationName: 'count_tokens',
  action: 'CountTokens',
  requestKind: countTokensRequest,
  requestAttributes: () => undefined,
  prompt: promptFromContent(countTokensRequest),
  pricing: 'free',
  summarize: summarizeCountTokens,
};

const applyGuardrail: OperationSpec = {
  ...converse,
  operationName: 'apply_guardrail',
  action: 'ApplyGuardrail',
  requestKind: applyGuardrailRequest,
  requestModel: () => undefined,
  requestAttributes: guardrailRequestAttributes,
  prompt: promptFromContent(applyGuardrailRequest),
  pricing: { unpriced: 'ApplyGuardrail is billed per text unit of each policy' },
  summarize: summarizeApplyGuardrail,
};

const guardrailChecks: OperationSpec = {
  ...applyGuardrail,
  action: 'InvokeGuardrailChecks',
  requestKind: guardrailChecksRequest,
  requestAttributes: () => undefined,
  prompt: promptFromContent(guardrailChecksRequest),
  pricing: { unpriced: 'InvokeGuardrailChecks is billed per text unit of each check' },
  summarize: summarizeGuardrailChecks,
};

/** StartAsyncInvoke: the content leaves now, the output goes to S3 (./async-invoke.ts). */
const startAsyncInvoke: OperationSpec = {
  ...converse,
  operationName: 'start_async_invoke',
  action: 'StartAsyncInvoke',
  requestKind: asyncInvokeRequest,
  requestAttributes: asyncInvokeRequestAttributes,
  prompt: promptFromContent(asyncInvokeRequest),
  pricing: { unpriced: 'asynchronous invocations are billed per generated output (seconds of video, images), which the price data does not cover' },
  summarize: summarizeStartAsyncInvoke,
};

/** The operations by command class name, with where a stream's events sit in the command's output. */
const OPERATIONS: Readonly<Record<string, { spec: OperationSpec; stream?: 'stream' | 'body' }>> = {
  ConverseCommand: { spec: converse },
  ConverseStreamCommand: { spec: converseStream, stream: 'stream' },
  InvokeModelCommand: { spec: invokeModel },
  InvokeModelWithResponseStreamCommand: { spec: invokeModelStream, stream: 'body' },
  CountTokensCommand: { spec: countTokens },
  ApplyGuardrailCommand: { spec: applyGuardrail },
  InvokeGuardrailChecksCommand: { spec: guardrailChecks },
  StartAsyncInvokeCommand: { spec: startAsyncInvoke },
  InvokeModelWithBidirectionalStreamCommand: { spec: bidirectionalStream, stream: 'body' },
};

/**
 * Holds requests as promiseAdapter does; observes the output of `send`: a whole response
 * completes the call, a stream operation's event stream (`output.stream`, `output.body`) is
 * observed in place, so the application iterates the SDK's own object.
 */
function bedrockAdapter(stream: 'stream' | 'body' | undefined): SdkAdapter {
  return {
    hold: promiseAdapter.hold,
    observe(result, call) {
      (result as PromiseLike<unknown>).then(
        (output) => {
          try {
            if (call.isEnded) return;
            onResponse(call, output);
            call.tag(output);
            const events = stream !== undefined && isObj(output) ? output[stream] : undefined;
            if (typeof (events as { [Symbol.asyncIterator]?: unknown } | undefined)?.[Symbol.asyncIterator] === 'function') {
              // The signal lets an abort while nobody reads end the call as aborted.
              observeAsyncIterable(events as object, call, sent.get(call.traceSpan)?.signal);
              bidirectionalSessionOf(call)?.guardAnswer(events as object);
            } else {
              call.completeWith(output);
            }
          } catch (error) {
            diag.error('otel-llm-audit: could not observe the Bedrock response', error);
          }
        },
        (error: unknown) => {
          if (!call.isEnded) onResponse(call, error);
          call.fail(error);
        },
      );
      return result;
    },
  };
}

/**
 * Where each client sends its requests. The AWS SDK resolves its endpoint (and region)
 * asynchronously, so a call cannot know it when it starts: the first sight of a client starts the
 * resolution, the calls made once it is known carry `server.address` / `server.port` from their
 * start, and a call made before gets them when its response arrives (see onResponse).
 */
const servers = new WeakMap<object, ServerInfo | Promise<void>>();
/** The client and abort signal of each call, by the call's trace span (the active span while `send` runs). */
const sent = new WeakMap<object, { client: object; signal: AbortSignal | undefined }>();

function learnServer(client: any): void {
  if (!isObj(client) || servers.has(client)) return;
  const config = client['config'] as { endpoint?: () => Promise<any>; region?: () => Promise<unknown> } | undefined;
  const resolve = async (): Promise<ServerInfo> => {
    const endpoint = typeof config?.endpoint === 'function' ? await config.endpoint() : undefined;
    if (isObj(endpoint) && typeof endpoint['hostname'] === 'string') {
      const port = typeof endpoint['port'] === 'number' ? endpoint['port'] : endpoint['protocol'] === 'http:' ? 80 : 443;
      return { address: endpoint['hostname'], port };
    }
    const region = typeof config?.region === 'function' ? await config.region() : undefined;
    return typeof region === 'string' ? { address: `bedrock-runtime.${region}.amazonaws.com`, port: 443 } : {};
  };
  servers.set(
    client,
    resolve().then(
      (info) => void servers.set(client, info),
      () => void servers.set(client, {}),
    ),
  );
}

function bedrockServer(client: any): ServerInfo {
  const info = isObj(client) ? servers.get(client) : undefined;
  return info === undefined || info instanceof Promise ? {} : info;
}

/**
 * What the response (or the error) tells of the call: `aws.request_id`, and the server attributes
 * of a call that started before its client's endpoint was known.
 */
function onResponse(call: AuditedCall, outcome: unknown): void {
  const client = sent.get(call.traceSpan)?.client;
  const info = client === undefined ? undefined : bedrockServer(client);
  const metadata = isObj(outcome) ? outcome['$metadata'] : undefined;
  const requestId = isObj(metadata) ? metadata['requestId'] : undefined;
  for (const span of call.span === call.traceSpan ? [call.span] : [call.span, call.traceSpan]) {
    if (info?.address !== undefined) span.setAttribute(A.ATTR_SERVER_ADDRESS, info.address);
    if (info?.port !== undefined) span.setAttribute(A.ATTR_SERVER_PORT, info.port);
    if (typeof requestId === 'string') span.setAttribute(A.ATTR_AWS_REQUEST_ID, requestId);
  }
}

/** Which of `names` (command class names) `command` is an instance of, if any. */
function commandNamed(moduleExports: any, command: unknown, names: readonly string[]): string | undefined {
  if (!isObj(command)) return undefined;
  for (const name of names) {
    const Command = moduleExports?.[name];
    if (typeof Command === 'function' && command instanceof Command) return name;
  }
  // A command of another copy of the package (the ESM and the CommonJS build side by side).
  const name = (command.constructor as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && names.includes(name) ? name : undefined;
}

const OPERATION_NAMES = Object.keys(OPERATIONS);

function route(moduleExports: any): MethodRoute {
  const options = new Map<OperationSpec, AuditedMethodOptions>();
  for (const operation of Object.values(OPERATIONS)) {
    options.set(operation.spec, { server: bedrockServer, adapter: bedrockAdapter(operation.stream) });
  }
  return {
    pick(args, client) {
      const name = commandNamed(moduleExports, args[0], OPERATION_NAMES);
      if (name === undefined) return undefined;
      const operation = OPERATIONS[name]!;
      learnServer(client);
      const callback = typeof args[1] === 'function' ? args[1] : typeof args[2] === 'function' ? args[2] : undefined;
      return { spec: operation.spec, params: (args[0] as Obj)['input'], callback };
    },
    send(original, client, args, params) {
      const command = args[0] as Obj;
      const sendOptions = typeof args[1] === 'function' ? undefined : args[1];
      const span = trace.getActiveSpan();
      const signal = isObj(sendOptions) ? sendOptions['abortSignal'] : undefined;
      if (span !== undefined && isObj(client)) {
        sent.set(span, { client, signal: typeof (signal as AbortSignal | undefined)?.addEventListener === 'function' ? (signal as AbortSignal) : undefined });
      }
      // A bidirectional stream's body is the application's own iterable: the copy of the params
      // (core/snapshot.ts) keeps no Symbol.asyncIterator of a plain object.
      const input = command['input'];
      const body = isObj(input) ? input['body'] : undefined;
      const iterable = body !== null && typeof (body as { [Symbol.asyncIterator]?: unknown } | undefined)?.[Symbol.asyncIterator] === 'function';
      const session = isObj(params) ? bidirectionalSessionOf(params) : undefined;
      if (session !== undefined) {
        if (iterable) params = { ...(params as Obj), body: session.wrapInput(body as AsyncIterable<unknown>, context.active().getValue(IN_HOOK) === true) };
        const own = session.controller.signal;
        const abortSignal = typeof (signal as AbortSignal | undefined)?.addEventListener === 'function' ? AbortSignal.any([signal as AbortSignal, own]) : own;
        const options = isObj(sendOptions) ? { ...sendOptions, abortSignal } : { abortSignal };
        return original.call(client, Object.create(command, { input: { value: params, enumerable: true, writable: true, configurable: true } }), options);
      }
      // Not followed (the audit failed to start): the stream goes as the application gave it.
      if (iterable && isObj(params) && params['body'] !== body) params = { ...params, body };
      // The params as read once (core/snapshot.ts), redacted or not, are what is serialized.
      const outgoing = params === command['input'] ? command : Object.create(command, { input: { value: params, enumerable: true, writable: true, configurable: true } });
      return original.call(client, outgoing, sendOptions);
    },
    options: (spec) => options.get(spec)!,
    contentFree: (args) => commandNamed(moduleExports, args[0], ASYNC_INVOKE_POLLS) !== undefined,
  };
}

export const bedrockRuntimePatch: ProviderPatch = {
  moduleName: '@aws-sdk/client-bedrock-runtime',
  tested: (major) => major === 3,
  testedRange: '3.x',
  needs: (moduleExports) => ({ 'BedrockRuntimeClient.prototype.send': moduleExports?.BedrockRuntimeClient?.prototype?.send }),
  client: () => undefined,
  server: bedrockServer,
  targets(moduleExports) {
    return [{ proto: moduleExports?.BedrockRuntimeClient?.prototype, method: 'send', route: route(moduleExports) }];
  },
};
