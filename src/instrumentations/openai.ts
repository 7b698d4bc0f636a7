import type { Attributes } from '@opentelemetry/api';
import * as A from '../semconv';
import type { OperationSpec, OutputMessage, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../core/types';
import { withFinish, definedNumber, knownString, setNumber, setRequestSettings } from '../core/values';
import { AzureContentFilters, errorContentFilters } from './azure-content-filter';
import type { ProviderPatch } from '../core/provider';

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
    ];
  },
};

/** The client class: the CommonJS export's `OpenAI`, the ESM namespace's `default`, or auditClient()'s stand-in. */
function openaiRoot(moduleExports: any): any {
  return moduleExports?.OpenAI ?? moduleExports?.default ?? moduleExports;
}

// --- chat.completions.create --------------------------------------------------------------------

export const chatCompletions: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'chat.completions.create',
  byDeployment: true,
  requestKind: 'openai.chat',
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
  prompt(params) {
    const messages: unknown[] = Array.isArray(params?.messages) ? params.messages : [];
    let system: unknown[] | undefined;
    let input: unknown[] | undefined;
    for (const message of messages) {
      const role = (message as { role?: unknown } | null)?.role;
      if (role === 'system' || role === 'developer') (system ??= []).push(message);
      else (input ??= []).push(message);
    }
    return { system, input: input ?? [] };
  },
  summarize(data: any): ResponseSummary {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    const toolNames: string[] = [];
    const toolCallIds: string[] = [];
    for (const choice of Array.isArray(data?.choices) ? data.choices : []) {
      const message = choice?.message ?? {};
      const parts: OutputPart[] = [];
      if (typeof message.content === 'string') parts.push({ type: 'text', content: message.content });
      if (typeof message.refusal === 'string') parts.push({ type: 'text', content: message.refusal });
      for (const tool of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
        const name = tool?.function?.name ?? tool?.custom?.name;
        if (typeof name !== 'string') continue;
        parts.push({ type: 'tool_call', id: tool.id, name, arguments: tool.function?.arguments ?? tool.custom?.input });
        toolNames.push(name);
        toolCallIds.push(typeof tool.id === 'string' ? tool.id : '');
      }
      if (typeof choice?.finish_reason === 'string') finishReasons.push(choice.finish_reason);
      output.push(withFinish({ role: message.role ?? 'assistant', parts }, choice?.finish_reason));
    }
    const filters = new AzureContentFilters();
    filters.addResponse(data);
    return {
      id: knownString(data?.id),
      model: knownString(data?.model),
      finishReasons,
      usage: chatUsage(data?.usage),
      output,
      toolNames,
      toolCallIds,
      attributes: openaiResponseAttributes(data),
      guardrails: filters.results(),
    };
  },
  accumulator: () => new ChatStreamAccumulator(),
  errorGuardrails: errorContentFilters,
};

function chatUsage(usage: any): TokenUsage | undefined {
  if (usage === undefined || usage === null) return undefined;
  return {
    input: definedNumber(usage.prompt_tokens),
    output: definedNumber(usage.completion_tokens),
    cacheRead: definedNumber(usage.prompt_tokens_details?.cached_tokens),
    cacheCreation: definedNumber(usage.prompt_tokens_details?.cache_write_tokens),
    reasoning: definedNumber(usage.completion_tokens_details?.reasoning_tokens),
  };
}

interface ChoiceState {
  role: string;
  text: string;
  hasText: boolean;
  tools: { id?: string; name?: string; arguments: string }[];
  finish?: string;
}

/** Rebuilds choices from `chat.completion.chunk`s; usage comes in the last chunk, if asked for. */
class ChatStreamAccumulator implements StreamAccumulator {
  private id: string | undefined;
  private model: string | undefined;
  private usage: TokenUsage | undefined;
  private readonly choices: ChoiceState[] = [];
  private attributes: Attributes | undefined;
  private readonly filters = new AzureContentFilters();

  onChunk(chunk: any): void {
    // The first non-empty value: Azure's first chunk (its prompt filter results) has '' for both.
    this.id ??= knownString(chunk?.id);
    this.model ??= knownString(chunk?.model);
    this.filters.addResponse(chunk);
    if (chunk?.usage) this.usage = chatUsage(chunk.usage);
    // Every chunk repeats these; read them once.
    if (this.attributes === undefined && (chunk?.service_tier || chunk?.system_fingerprint)) {
      this.attributes = openaiResponseAttributes(chunk);
    }
    if (!Array.isArray(chunk?.choices)) return;
    for (const choice of chunk.choices) {
      const index = typeof choice?.index === 'number' ? choice.index : 0;
      const state = (this.choices[index] ??= { role: 'assistant', text: '', hasText: false, tools: [] });
      const delta = choice.delta ?? {};
      if (typeof delta.role === 'string') state.role = delta.role;
      if (typeof delta.content === 'string') {
        state.text += delta.content;
        state.hasText = true;
      }
      if (typeof delta.refusal === 'string') {
        state.text += delta.refusal;
        state.hasText = true;
      }
      if (Array.isArray(delta.tool_calls)) {
        for (const tool of delta.tool_calls) {
          const slot = (state.tools[typeof tool?.index === 'number' ? tool.index : state.tools.length] ??= { arguments: '' });
          if (typeof tool?.id === 'string') slot.id = tool.id;
          if (typeof tool?.function?.name === 'string') slot.name = tool.function.name;
          if (typeof tool?.function?.arguments === 'string') slot.arguments += tool.function.arguments;
        }
      }
      if (typeof choice.finish_reason === 'string') state.finish = choice.finish_reason;
    }
  }

  summary(): ResponseSummary {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    const toolNames: string[] = [];
    const toolCallIds: string[] = [];
    for (const state of this.choices) {
      if (state === undefined) continue;
      const parts: OutputPart[] = [];
      if (state.hasText) parts.push({ type: 'text', content: state.text });
      for (const tool of state.tools) {
        if (tool === undefined || tool.name === undefined) continue;
        parts.push({ type: 'tool_call', id: tool.id, name: tool.name, arguments: tool.arguments });
        toolNames.push(tool.name);
        toolCallIds.push(tool.id ?? '');
      }
      if (state.finish !== undefined) finishReasons.push(state.finish);
      output.push(withFinish({ role: state.role, parts }, state.finish));
    }
    return {
      id: this.id,
      model: this.model,
      usage: this.usage,
      output,
      finishReasons,
      toolNames,
      toolCallIds,
      attributes: this.attributes,
      guardrails: this.filters.results(),
    };
  }
}

// --- responses.create ---------------------------------------------------------------------------

export const responses: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'responses.create',
  requestKind: 'openai.responses',
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { maxTokens: params.max_output_tokens, temperature: params.temperature, topP: params.top_p });
    outputType(params.text?.format?.type, attributes);
    if (typeof params.conversation === 'string') attributes[A.ATTR_GEN_AI_CONVERSATION_ID] = params.conversation;
  },
  prompt: (params) => ({ system: params?.instructions ?? undefined, input: params?.input }),
  summarize: (data) => summarizeResponse(data),
  accumulator: () => new ResponsesStreamAccumulator(),
  errorGuardrails: errorContentFilters,
};

function summarizeResponse(data: any): ResponseSummary {
  const parts: OutputPart[] = [];
  const toolNames: string[] = [];
  const toolCallIds: string[] = [];
  for (const item of Array.isArray(data?.output) ? data.output : []) {
    if (item?.type === 'message') {
      for (const content of Array.isArray(item.content) ? item.content : []) {
        if (content?.type === 'output_text') parts.push({ type: 'text', content: content.text });
        else if (content?.type === 'refusal') parts.push({ type: 'text', content: content.refusal });
      }
    } else if (item?.type === 'function_call' || item?.type === 'custom_tool_call') {
      parts.push({ type: 'tool_call', id: item.call_id, name: item.name, arguments: item.arguments ?? item.input });
      toolNames.push(item.name);
      toolCallIds.push(typeof item.call_id === 'string' ? item.call_id : '');
    }
  }
  const finish = data?.incomplete_details?.reason ?? data?.status;
  const usage = data?.usage;
  return {
    id: knownString(data?.id),
    model: knownString(data?.model),
    finishReasons: typeof finish === 'string' ? [finish] : [],
    usage:
      usage === undefined || usage === null
        ? undefined
        : {
            input: definedNumber(usage.input_tokens),
            output: definedNumber(usage.output_tokens),
            cacheRead: definedNumber(usage.input_tokens_details?.cached_tokens),
            cacheCreation: definedNumber(usage.input_tokens_details?.cache_write_tokens),
            reasoning: definedNumber(usage.output_tokens_details?.reasoning_tokens),
          },
    output: [withFinish({ role: 'assistant', parts }, finish)],
    toolNames,
    toolCallIds,
    attributes: openaiResponseAttributes(data),
  };
}

/**
 * Responses streams are typed events; the terminal one (`response.completed`, `.incomplete` or
 * `.failed`) carries the whole response with usage. Text deltas are kept only for a stream that
 * ends before it.
 */
class ResponsesStreamAccumulator implements StreamAccumulator {
  private final: ResponseSummary | undefined;
  private id: string | undefined;
  private model: string | undefined;
  private text = '';

  onChunk(event: any): void {
    switch (event?.type) {
      case 'response.created':
        this.id = knownString(event.response?.id);
        this.model = knownString(event.response?.model);
        break;
      case 'response.output_text.delta':
        if (typeof event.delta === 'string') this.text += event.delta;
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        this.final = summarizeResponse(event.response);
        break;
    }
  }

  summary(): ResponseSummary {
    if (this.final !== undefined) return this.final;
    const parts: OutputPart[] = this.text !== '' ? [{ type: 'text', content: this.text }] : [];
    return { id: this.id, model: this.model, output: [{ role: 'assistant', parts }] };
  }
}

// --- embeddings.create --------------------------------------------------------------------------

const embeddings: OperationSpec = {
  provider: 'openai',
  operationName: 'embeddings',
  action: 'embeddings.create',
  byDeployment: true,
  requestKind: 'openai.embeddings',
  isStream: () => false,
  requestAttributes(params, attributes) {
    if (typeof params.encoding_format === 'string') {
      attributes[A.ATTR_GEN_AI_REQUEST_ENCODING_FORMATS] = [params.encoding_format];
    }
    setNumber(attributes, A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT, params.dimensions);
  },
  prompt: (params) => ({ input: params?.input }),
  summarize(data: any): ResponseSummary {
    // Vectors are derived data, not content anyone reads: no output hash (see docs/attributes.md).
    const first = Array.isArray(data?.data) ? data.data[0]?.embedding : undefined;
    const usage = data?.usage;
    return {
      model: knownString(data?.model),
      usage: usage === undefined || usage === null ? undefined : { input: definedNumber(usage.prompt_tokens) },
      attributes: Array.isArray(first) ? { [A.ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT]: first.length } : undefined,
    };
  },
  accumulator: () => {
    throw new Error('embeddings do not stream');
  },
};

// --- shared ---------------------------------------------------------------------------------

function outputType(format: unknown, attributes: Attributes): void {
  if (format === 'json_object' || format === 'json_schema') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'json';
  else if (format === 'text') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
}

function openaiResponseAttributes(data: any): Attributes | undefined {
  let attributes: Attributes | undefined;
  if (typeof data?.service_tier === 'string') {
    (attributes ??= {})[A.ATTR_GEN_AI_OPENAI_RESPONSE_SERVICE_TIER] = data.service_tier;
  }
  if (typeof data?.system_fingerprint === 'string') {
    (attributes ??= {})[A.ATTR_GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = data.system_fingerprint;
  }
  return attributes;
}
