/**
 * What the providers' request walkers (src/instrumentations/<provider>/request.ts) share. A walker
 * is written once against a visitor; the sanitizer runs it with the sanitizer's TextWalk (which
 * rewrites copy-on-write), the envelope with {@link readOnly} and a {@link MessageCollector}.
 */
import type { GenAIInputMessage, GenAIPart } from '../audit/content/genai-messages';

type Obj = Record<string, unknown>;

/** How a walk descends: into a field of an object, over an array. Each returns what to send. */
export interface Traversal {
  field<T extends Obj>(obj: T, key: string, fn: (value: unknown) => unknown): T;
  array(items: readonly unknown[], fn: (item: unknown, index: number) => unknown): readonly unknown[];
}

/** A traversal that only reads: every value is visited, nothing is rewritten. */
export const readOnly: Traversal = {
  field(obj, key, fn) {
    if (Object.prototype.hasOwnProperty.call(obj, key)) fn(obj[key]);
    return obj;
  },
  array(items, fn) {
    items.forEach(fn);
    return items;
  },
};

/**
 * Builds the conventions' system instructions and input messages as a walk meets them: a
 * `system` message's parts go to the system instructions, every other message is an input
 * message of its role (renamed through `roles`, e.g. Gemini's `model` to `assistant`).
 */
export class MessageCollector {
  private system: GenAIPart[] | undefined;
  private readonly input: GenAIInputMessage[] = [];
  private current: GenAIPart[] = [];

  constructor(private readonly roles: Readonly<Record<string, string>> = {}) {}

  message(role: string): void {
    if (role === 'system') {
      this.current = this.system ??= [];
    } else {
      this.current = [];
      this.input.push({ role: this.roles[role] ?? role, parts: this.current });
    }
  }

  push(...parts: GenAIPart[]): void {
    this.current.push(...parts);
  }

  result(): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
    return this.system === undefined ? { input_messages: this.input } : { system_instructions: this.system, input_messages: this.input };
  }
}
