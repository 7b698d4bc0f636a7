/**
 * The results of a Message Batch (`messages.batches.results(id)`, `beta.messages.batches.results`):
 * each result is a model call the provider ran, so each one the application reads becomes a record
 * of its own (operation `chat`, with the message's output hash, usage and cost), linked to the
 * batch by `llm_audit.batch.id` and to its request by `llm_audit.batch.custom_id` (whose hashes
 * the batch's create record lists) and, when the batch was created in this process, its request's
 * input hashes: recorded by src/core/batches.ts, which OpenAI's batch results share.
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
import { AuditedCall, IN_AUDITED_CALL, type AuditServices } from '../../core/audited-call';
import { ensureContextManager } from '../../util/context-manager';
import { batchResultSpec, recordBatchResult, type BatchRequestHash, type BatchResultLine } from '../../core/batches';
import type { AuditedMethodOptions } from '../../core/patch';
import { ours } from '../../core/patch';
import { runInAuditedCall } from '../../audit/unaudited/audited-call-marker';
import { anthropicMessagesSpec } from './specs';

type Obj = Record<string, unknown>;
type Method = (this: any, ...args: any[]) => any;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * One line (`{custom_id, result: {type, message | error}}`) in the shape core/batches.ts records:
 * a success's message is the answer `messages.create` would have given; an error's type is the
 * provider's (`error.error.type`), else the result type.
 */
function resultLine(line: unknown): BatchResultLine {
  const result = isObj(line) && isObj(line.result) ? line.result : {};
  const type = typeof result.type === 'string' ? result.type : 'unknown_result';
  const customId = isObj(line) && typeof line.custom_id === 'string' ? line.custom_id : undefined;
  if (type === 'succeeded') return { customId, type, body: result.message };
  const error = isObj(result.error) && isObj(result.error.error) ? result.error.error : undefined;
  return { customId, type, errorType: typeof error?.type === 'string' ? error.type : undefined };
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
  const spec = batchResultSpec(anthropicMessagesSpec, action);
  return (services, options) => (original) =>
    ours(function auditedBatchResults(this: any, ...args: any[]) {
      const shared = services();
      if (shared === undefined) return original.apply(this, args);
      let start: ((request: BatchRequestHash | undefined) => AuditedCall) | undefined;
      const batchId = typeof args[0] === 'string' ? args[0] : undefined;
      try {
        const parent = context.active();
        const server = options.server(this);
        start = (request) => new AuditedCall(shared, spec, request, action, server, parent);
      } catch (error) {
        diag.error(`otel-llm-audit: could not observe ${action}`, error);
      }
      // Its own requests (the batch lookup, the results file) are part of this audited operation,
      // and its own `retrieve` call is not one of the application's (IN_AUDITED_CALL).
      const run = () => (options.invoke !== undefined ? options.invoke(original, this, args) : original.apply(this, args));
      ensureContextManager();
      const result = runInAuditedCall(() => context.with(context.active().setValue(IN_AUDITED_CALL, true), run));
      if (start === undefined) return result;
      const begin = start;
      Promise.resolve(result).then(
        (decoder) => observeDecoder(decoder, (line) => recordBatchResult(begin, resultLine(line), { batchId })),
        (error: unknown) => {
          try {
            const call = begin(undefined);
            if (batchId !== undefined) call.span.setAttribute(A.ATTR_AUDIT_BATCH_ID, batchId);
            call.fail(error);
          } catch (failure) {
            diag.error(`otel-llm-audit: could not record the failure of ${action}`, failure);
          }
        },
      );
      return result;
    });
}
