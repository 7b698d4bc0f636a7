import type { OperationSpec, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../core/types';
import { withFinish, definedNumber, knownString, sumCounts, setRequestSettings } from '../core/values';
import type { ProviderPatch } from '../core/provider';

/**
 * @anthropic-ai/sdk 0.30-0.x and 1.x, patched through `Anthropic.Messages` on the main export.
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
    return [
      { proto: Anthropic?.Messages?.prototype, method: 'create', spec: anthropicMessagesSpec },
      { proto: Anthropic?.Messages?.prototype, method: 'stream', helper: 'messages.stream' },
      { proto: Anthropic?.Messages?.prototype, method: 'parse', helper: 'messages.parse' },
      // `client.beta.messages`: the same request and answer, the way in to newer features.
      { proto: Anthropic?.Beta?.Messages?.prototype, method: 'create', spec: betaMessagesSpec },
      { proto: Anthropic?.Beta?.Messages?.prototype, method: 'stream', helper: 'beta.messages.stream' },
      { proto: Anthropic?.Beta?.Messages?.prototype, method: 'parse', helper: 'beta.messages.parse' },
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

/** `messages.create`; its request attributes and response mapping serve Claude on Bedrock too (InvokeModel). */
export const anthropicMessagesSpec: OperationSpec = {
  provider: 'anthropic',
  operationName: 'chat',
  action: 'messages.create',
  requestKind: 'anthropic.messages',
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { maxTokens: params.max_tokens, temperature: params.temperature, topP: params.top_p, topK: params.top_k, stop: params.stop_sequences });
  },
  prompt: (params) => ({ system: params?.system ?? undefined, input: params?.messages }),
  summarize: summarizeMessage,
  accumulator: () => new MessageStreamAccumulator(),
};

/** `beta.messages.create`: the messages API with beta features switched on, recorded as its own action. */
const betaMessagesSpec: OperationSpec = { ...anthropicMessagesSpec, action: 'beta.messages.create' };

/** A whole Anthropic message. */
function summarizeMessage(data: any): ResponseSummary {
  const parts: OutputPart[] = [];
  const tools: ToolLists = { names: [], ids: [] };
  for (const block of Array.isArray(data?.content) ? data.content : []) {
    addBlock(parts, tools, block?.type, block, block?.type === 'tool_use' ? JSON.stringify(block.input ?? {}) : undefined);
  }
  return {
    id: knownString(data?.id),
    model: knownString(data?.model),
    finishReasons: typeof data?.stop_reason === 'string' ? [data.stop_reason] : [],
    usage: anthropicUsage(data?.usage),
    output: [withFinish({ role: data?.role ?? 'assistant', parts }, data?.stop_reason)],
    toolNames: tools.names,
    toolCallIds: tools.ids,
  };
}

/**
 * Anthropic reports `input_tokens` without the cached part; the conventions' input count includes
 * cache reads and cache writes, so the three are added.
 */
export function anthropicUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  const cacheRead = definedNumber(usage.cache_read_input_tokens);
  const cacheCreation = definedNumber(usage.cache_creation_input_tokens);
  return {
    input: sumCounts(definedNumber(usage.input_tokens), cacheRead, cacheCreation),
    output: definedNumber(usage.output_tokens),
    cacheRead,
    cacheCreation,
    reasoning: definedNumber(usage.output_tokens_details?.thinking_tokens),
  };
}

interface ToolLists {
  names: string[];
  ids: string[];
}

function addBlock(parts: OutputPart[], tools: ToolLists, type: unknown, block: any, toolArguments: string | undefined): void {
  if (type === 'text' && typeof block.text === 'string') parts.push({ type: 'text', content: block.text });
  else if (type === 'thinking' && typeof block.thinking === 'string') parts.push({ type: 'reasoning', content: block.thinking });
  else if (type === 'tool_use' && typeof block.name === 'string') {
    parts.push({ type: 'tool_call', id: block.id, name: block.name, arguments: toolArguments });
    tools.names.push(block.name);
    tools.ids.push(typeof block.id === 'string' ? block.id : '');
  }
}

interface BlockState {
  type: string;
  id?: string;
  name?: string;
  text: string;
}

/**
 * Folds the raw stream events (`message_start`, `content_block_*`, `message_delta`) into the same
 * summary a whole message gives. Usage arrives in two places: `message_start` has the input side,
 * `message_delta` the final output count (and, in newer API versions, updated input counts).
 */
class MessageStreamAccumulator implements StreamAccumulator {
  private id: string | undefined;
  private model: string | undefined;
  private role = 'assistant';
  private stopReason: string | undefined;
  private usage: Record<string, unknown> | undefined;
  private readonly blocks: BlockState[] = [];

  onChunk(event: any): void {
    switch (event?.type) {
      case 'message_start': {
        const message = event.message ?? {};
        this.id = knownString(message.id);
        this.model = knownString(message.model);
        if (typeof message.role === 'string') this.role = message.role;
        if (message.usage) this.usage = { ...message.usage };
        break;
      }
      case 'content_block_start': {
        const block = event.content_block ?? {};
        this.blocks[event.index ?? this.blocks.length] = {
          type: block.type,
          id: block.id,
          name: block.name,
          text: typeof block.text === 'string' ? block.text : typeof block.thinking === 'string' ? block.thinking : '',
        };
        break;
      }
      case 'content_block_delta': {
        const state = this.blocks[event.index];
        const delta = event.delta ?? {};
        if (state === undefined) break;
        if (delta.type === 'text_delta') state.text += delta.text ?? '';
        else if (delta.type === 'thinking_delta') state.text += delta.thinking ?? '';
        else if (delta.type === 'input_json_delta') state.text += delta.partial_json ?? '';
        break;
      }
      case 'message_delta': {
        if (typeof event.delta?.stop_reason === 'string') this.stopReason = event.delta.stop_reason;
        if (event.usage) {
          // Later counts replace earlier ones; a null in the delta means "unchanged".
          this.usage ??= {};
          for (const key of Object.keys(event.usage)) {
            if (event.usage[key] !== null && event.usage[key] !== undefined) this.usage[key] = event.usage[key];
          }
        }
        break;
      }
    }
  }

  summary(): ResponseSummary {
    const parts: OutputPart[] = [];
    const tools: ToolLists = { names: [], ids: [] };
    for (const block of this.blocks) {
      if (block === undefined) continue;
      const payload = block.type === 'thinking' ? { thinking: block.text } : { text: block.text, name: block.name, id: block.id };
      addBlock(parts, tools, block.type, payload, block.type === 'tool_use' ? normaliseJson(block.text) : undefined);
    }
    return {
      id: this.id,
      model: this.model,
      finishReasons: this.stopReason !== undefined ? [this.stopReason] : [],
      usage: anthropicUsage(this.usage),
      output: [withFinish({ role: this.role, parts }, this.stopReason)],
      toolNames: tools.names,
      toolCallIds: tools.ids,
    };
  }
}

/**
 * Streamed tool input arrives as JSON text in fragments; a whole message has it as an object. Both
 * are brought to `JSON.stringify` of the parsed value so that the output hash is the same.
 */
function normaliseJson(text: string): string {
  if (text === '') return '{}';
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text; // an incomplete fragment (stream cut short): hash what arrived
  }
}
