import type { PatchTarget, ProviderPatch } from '../../core/provider';
import { batchResults } from './batches';
import { anthropicMessagesSpec, batchCreateSpec, batchPollingSpecs, betaBatchCreateSpec, betaCountTokensSpec, betaMessagesSpec, countTokensSpec } from './specs';

export { anthropicMessagesSpec } from './specs';
export { anthropicUsage } from './response';

/**
 * @anthropic-ai/sdk 0.30-0.x and 1.x, patched through `Anthropic.Messages` on the main export. The
 * provider's folder: ./request.ts (the one walk over a request: redaction, hashes, encrypted
 * content), ./response.ts (messages and stream events), ./specs.ts (the operations), ./batches.ts
 * (a batch's results).
 *
 * From 0.137 the SDK starts its own `anthropic.messages.create` span whenever a tracer provider is
 * registered. One call must make one GenAI span, and ours carries the audit attributes, so the
 * SDK's span is suppressed for the calls we audit (see docs/attributes.md): the client's tracer is
 * hidden while the SDK method runs its synchronous part, which is where the SDK decides whether to
 * trace. Trace-context propagation is unaffected, because our span is the active one.
 */
export const anthropicPatch: ProviderPatch = {
  moduleName: '@anthropic-ai/sdk',
  tested: (major, minor) => (major === 0 && minor >= 30) || major === 1,
  testedRange: '0.30-0.x, 1.x',
  needs(moduleExports, file) {
    const Anthropic = anthropicRoot(moduleExports);
    // A resources file (the Bedrock and Vertex SDKs' way in) has Messages but not the client, whose
    // `post` is checked where the client class is loaded.
    if (file !== undefined) return { 'Messages.prototype.create': Anthropic?.Messages?.prototype?.create };
    return {
      'Anthropic.Messages.prototype.create': Anthropic?.Messages?.prototype?.create,
      'Anthropic.prototype.post': Anthropic?.prototype?.post,
    };
  },
  client: (resource) => resource?._client,
  // `{ Messages }`, which targets() reads like the main export's `Anthropic.Messages` (CommonJS and
  // ESM builds; the loader hook routes the latter, see sdk/hooked-modules.ts).
  files: ['resources/messages/messages.js', 'resources/messages/messages.mjs'],
  targets(moduleExports) {
    const Anthropic = anthropicRoot(moduleExports);
    const messages = Anthropic?.Messages?.prototype;
    // `client.beta.messages`: the same requests and answers, the way in to newer features.
    const beta = Anthropic?.Beta?.Messages?.prototype;
    return [
      { proto: messages, method: 'create', spec: anthropicMessagesSpec },
      { proto: messages, method: 'stream', helper: 'messages.stream' },
      { proto: messages, method: 'parse', helper: 'messages.parse' },
      { proto: messages, method: 'countTokens', spec: countTokensSpec },
      { proto: Anthropic?.Messages?.Batches?.prototype, method: 'create', spec: batchCreateSpec },
      { proto: Anthropic?.Messages?.Batches?.prototype, method: 'results', wrap: batchResults('messages.batches.results') },
      ...polling(Anthropic?.Messages?.Batches?.prototype, ''),
      { proto: beta, method: 'create', spec: betaMessagesSpec },
      { proto: beta, method: 'stream', helper: 'beta.messages.stream' },
      { proto: beta, method: 'parse', helper: 'beta.messages.parse' },
      { proto: beta, method: 'countTokens', spec: betaCountTokensSpec },
      { proto: Anthropic?.Beta?.Messages?.Batches?.prototype, method: 'create', spec: betaBatchCreateSpec },
      { proto: Anthropic?.Beta?.Messages?.Batches?.prototype, method: 'results', wrap: batchResults('beta.messages.batches.results') },
      ...polling(Anthropic?.Beta?.Messages?.Batches?.prototype, 'beta.'),
    ];
  },
  invoke(original, resource, args) {
    const restore = hideSdkTracer(resource?._client);
    try {
      return original.apply(resource, args);
    } finally {
      restore?.();
    }
  },
};

/** `retrieve`, `list`, `cancel`, `delete` of a batches resource: light records (./specs.ts). */
function polling(proto: any, prefix: '' | 'beta.'): PatchTarget[] {
  return Object.entries(batchPollingSpecs(prefix)).map(([method, spec]) => ({ proto, method, spec }));
}

/** The client class: the CommonJS export's `Anthropic`, the ESM namespace's `default`, or auditClient()'s stand-in. */
function anthropicRoot(moduleExports: any): any {
  return moduleExports?.Anthropic ?? moduleExports?.default ?? moduleExports;
}

/** Hides the client's own tracer, if it has one we can set; returns how to put it back. */
function hideSdkTracer(client: any): (() => void) | undefined {
  const own = client ? Object.getOwnPropertyDescriptor(client, '_tracer') : undefined;
  if (own === undefined || !own.writable || own.value === undefined) return undefined;
  client._tracer = undefined;
  return () => {
    client._tracer = own.value;
  };
}
