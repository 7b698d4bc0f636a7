import type { OutputMessage, OutputPart, ResponseSummary, TokenUsage } from './types';
import { appendOutputPart, withFinish } from './values';

interface Slot {
  role: string;
  parts: OutputPart[];
  finish?: string;
}

/**
 * Folds the choices / candidates of a response, whole or streamed chunk by chunk, into the output
 * messages of a ResponseSummary: one message per index, text and reasoning fragments merged (so a
 * streamed answer and the same answer whole give the same output and hash), tool calls listed.
 * Each provider's response mapping says what a choice holds; the folding is shared.
 */
export class OutputFold {
  private readonly slots = new Map<number, Slot>();
  private readonly toolNames: string[] = [];
  private readonly toolCallIds: string[] = [];

  /** The message at `index`, made on first use. */
  private slot(index: number): Slot {
    let slot = this.slots.get(index);
    if (slot === undefined) this.slots.set(index, (slot = { role: 'assistant', parts: [] }));
    return slot;
  }

  role(index: number, role: unknown): void {
    if (typeof role === 'string') this.slot(index).role = role;
  }

  finish(index: number, reason: unknown): void {
    if (typeof reason === 'string') this.slot(index).finish = reason;
  }

  /** A text or reasoning fragment (empty ones are dropped). */
  text(index: number, type: 'text' | 'reasoning', content: unknown): void {
    if (typeof content === 'string' && content !== '') appendOutputPart(this.slot(index).parts, { type, content });
  }

  toolCall(index: number, id: unknown, name: string, args: string): void {
    const callId = typeof id === 'string' ? id : undefined;
    this.slot(index).parts.push({ type: 'tool_call', id: callId, name, arguments: args });
    this.toolNames.push(name);
    this.toolCallIds.push(callId ?? '');
  }

  summary(id: unknown, model: unknown, usage: TokenUsage | undefined): ResponseSummary {
    const output: OutputMessage[] = [];
    const finishReasons: string[] = [];
    for (const index of [...this.slots.keys()].sort((a, b) => a - b)) {
      const slot = this.slots.get(index)!;
      if (slot.finish !== undefined) finishReasons.push(slot.finish);
      output.push(withFinish({ role: slot.role, parts: slot.parts }, slot.finish));
    }
    return {
      id: typeof id === 'string' ? id : undefined,
      model: typeof model === 'string' ? model : undefined,
      finishReasons,
      usage,
      output,
      toolNames: this.toolNames,
      toolCallIds: this.toolCallIds,
    };
  }
}

/** The index of a choice / candidate: its own `index`, else its position. */
export function indexOf(item: any, position: number): number {
  return typeof item?.index === 'number' ? item.index : position;
}

