/**
 * What the providers' request walkers (src/instrumentations/<provider>/request.ts) share. A walker
 * is written once against a visitor; the sanitizer runs it with the sanitizer's TextWalk (which
 * rewrites copy-on-write), the envelope with {@link readOnly} and a {@link MessageCollector}.
 */
import { contentParts, type GenAIInputMessage, type GenAIPart } from '../audit/content/genai-messages';
import type { OperationSpec, RequestWalker } from './types';

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

/** The default part builders (binary data as digests), whatever the envelope's options: the hashes do not depend on them. */
const hashParts = contentParts();

/**
 * What the hashes cover, for a request whose shape is not a message list of its own (binary input,
 * nested requests): its content as the walker reads it, in the GenAI conventions' shapes (what an
 * encrypted envelope holds, binary data as digests), so that a decrypted envelope lets an auditor
 * recompute the hashes.
 */
export function promptFromContent(request: RequestWalker): OperationSpec['prompt'] {
  return (params) => {
    const content = request.content(typeof params === 'object' && params !== null && !Array.isArray(params) ? params : {}, hashParts);
    return { system: content.system_instructions, input: content.input_messages };
  };
}
