/**
 * Anthropic's answers (a whole `Message`, or the raw stream events of `messages.create` with
 * `stream: true`) as the shared ResponseSummary: output parts, finish reason, tool calls and usage.
 * Claude on Bedrock (InvokeModel) answers in the same shapes and is mapped here too.
 */
import type { OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { withFinish, definedNumber, knownString, sumCounts } from '../../core/values';

/** A whole Anthropic message. */
export function summarizeMessage(data: any): ResponseSummary {
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
export class MessageStreamAccumulator implements StreamAccumulator {
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
