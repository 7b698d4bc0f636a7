import type { Attributes } from '@opentelemetry/api';
import type { OutputMessage } from './types';

/** `value` when it is a finite number, else undefined: a missing count stays missing, never 0. */
export function definedNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function setNumber(attributes: Attributes, key: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) attributes[key] = value;
}

/** A string or an array of strings as a string array (stop sequences and the like). */
export function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string')) return value;
  return undefined;
}

/** Adds two counts where either may be missing; missing only when both are. */
export function sumCounts(...values: (number | undefined)[]): number | undefined {
  let total: number | undefined;
  for (const value of values) if (value !== undefined) total = (total ?? 0) + value;
  return total;
}

/** Sets the message's `finish_reason` when the provider gave one as a string. */
export function withFinish(message: OutputMessage, finish: unknown): OutputMessage {
  if (typeof finish === 'string') message.finish_reason = finish;
  return message;
}

