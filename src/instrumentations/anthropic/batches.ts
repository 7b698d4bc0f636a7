/**
 * The results of a Message Batch (`messages.batches.results(id)`, `beta.messages.batches.results`):
 * each result is a model call the provider ran, so each one the application reads becomes a record
 * of its own (operation `chat`, with the message's output hash, usage and cost), linked to the
 * batch by `llm_audit.batch.id` and to its request by `llm_audit.batch.custom_id` (whose hashes
 * the batch's create record lists).
 *
 * `results()` is an async method that resolves to the SDK's JSONL decoder; the decoder is observed
 * in place: its iterator's `next` is wrapped on the iterator object the SDK returns, so the
 * application reads the SDK's own objects. Results nobody reads make no record. A `results()` that
 * fails (batch still processing, unknown id) is one record with the error.
 *
 * A result that did not succeed (`errored`, `canceled`, `expired`) is a record with status `error`
 * and the result type as `error.type`; the provider's error message is not copied, since nothing
 * of the request is at hand here to scrub it against.
 */
import { context, diag } from '@opentelemetry/api';
import * as A from '../../semconv';
import { AuditedCall, type AuditServices } from '../../core/audited-call';
import type { AuditedMethodOptions } from '../../core/patch';
import { ours } from '../../core/patch';
import { runInAuditedCall } from '../../audit/unaudited/audited-call-marker';
import type { OperationSpec } from '../../core/types';
import { anthropicMessagesSpec } from './specs';
import { summarizeMessage } from './response';

type Obj = Record<string, unknown>;
type Method = (this: any, ...args: any[]) => any;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A batch result that did not succeed, or a `results()` that failed before any result. */
class BatchResultError extends Error {
  constructor(readonly type: string) {
    super(`batch result ${type}`);
    this.name = type;
  }
}

/**
 * One result line. genai-prices (0.1.8) has no batch prices, and pricing a batch result at the
 * per-call rate would overstate it (Anthropic bills batches at half): `unpriced`, said explicitly.
 */
const resultSpec: OperationSpec = {
  ...anthropicMessagesSpec,
  action: 'messages.batches.results',
  isStream: () => false,
  requestAttributes: () => undefined,
  prompt: () => ({}),
  pricing: { unpriced: 'the price data has no batch prices' },
  summarize(line) {
    const result = isObj(line) && isObj(line.result) ? line.result : {};
    const summary = result.type === 'succeeded' ? summarizeMessage(result.message) : {};
    return { ...summary, attributes: { ...summary.attributes, ...lineAttributes(line) } };
  },
};

/** The result's `custom_id` and type, for its record. */
function lineAttributes(line: unknown): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (isObj(line) && typeof line.custom_id === 'string') attributes[A.ATTR_AUDIT_BATCH_CUSTOM_ID] = line.custom_id;
  const type = isObj(line) && isObj(line.result) ? line.result.type : undefined;
  if (typeof type === 'string') attributes[A.ATTR_AUDIT_BATCH_RESULT_TYPE] = type;
  return attributes;
}

/** Records one result line, never throwing into the application's loop. */
function recordLine(action: string, start: () => AuditedCall, line: unknown): void {
  try {
    const call = start();
    const result = isObj(line) && isObj(line.result) ? line.result : undefined;
    if (result?.type === 'succeeded') {
      call.completeWith(line);
      return;
    }
    for (const [key, value] of Object.entries(lineAttributes(line))) call.span.setAttribute(key, value);
    const error = isObj(result?.error) && isObj(result.error.error) ? result.error.error : undefined;
    call.fail(new BatchResultError(typeof error?.type === 'string' ? error.type : typeof result?.type === 'string' ? result.type : 'unknown_result'));
  } catch (error) {
    diag.error(`otel-llm-audit: could not record a result of ${action}`, error);
  }
}

/** Wraps the iterator the decoder hands out, so that each line read is recorded as it reaches the application. */
function observeDecoder(decoder: unknown, onLine: (line: unknown) => void): void {
  if (!isObj(decoder)) return;
  const iterate = (decoder as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator];
  if (typeof iterate !== 'function') return;
  Object.defineProperty(decoder, Symbol.asyncIterator, {
    configurable: true,
    writable: true,
    value: function (this: unknown) {
      const iterator = iterate.call(this) as AsyncIterator<unknown>;
      const next = iterator.next;
      iterator.next = function (...args: [] | [unknown]) {
        return next.apply(iterator, args).then((step) => {
          if (!step.done) onLine(step.value);
          return step;
        });
      };
      return iterator;
    },
  });
}

/** The wrapper of `Batches.prototype.results` (ProviderPatch target `wrap`); `action` names the beta variant. */
export function batchResults(action: string): (services: () => AuditServices | undefined, options: AuditedMethodOptions) => (original: Method) => Method {
  const spec: OperationSpec = { ...resultSpec, action };
  return (services, options) => (original) =>
    ours(function auditedBatchResults(this: any, ...args: any[]) {
      const shared = services();
      if (shared === undefined) return original.apply(this, args);
      let start: (() => AuditedCall) | undefined;
      try {
        const parent = context.active();
        const server = options.server(this);
        const batchId = typeof args[0] === 'string' ? args[0] : undefined;
        start = () => {
          const call = new AuditedCall(shared, spec, {}, action, server, parent);
          if (batchId !== undefined) call.span.setAttribute(A.ATTR_AUDIT_BATCH_ID, batchId);
          return call;
        };
      } catch (error) {
        diag.error(`otel-llm-audit: could not observe ${action}`, error);
      }
      // Its own requests (the batch lookup, the results file) are part of this audited operation.
      const result = runInAuditedCall(() => (options.invoke !== undefined ? options.invoke(original, this, args) : original.apply(this, args)));
      if (start === undefined) return result;
      const begin = start;
      Promise.resolve(result).then(
        (decoder) => observeDecoder(decoder, (line) => recordLine(action, begin, line)),
        (error: unknown) => {
          try {
            begin().fail(error);
          } catch (failure) {
            diag.error(`otel-llm-audit: could not record the failure of ${action}`, failure);
          }
        },
      );
      return result;
    });
}
