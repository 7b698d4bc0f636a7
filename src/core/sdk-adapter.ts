/**
 * The seam between the shared call machinery (./patch.ts) and one SDK's way of returning results
 * and sending requests. Each ProviderPatch names its adapter (`ProviderPatch.adapter`); without
 * one, the Stainless adapter of ./api-promise.ts is used (openai, @anthropic-ai/sdk).
 *
 * For another SDK, `promiseAdapter` fits any method that returns a plain promise (an `async`
 * method: @google/genai, the AWS SDK's `client.send`): the request is held by calling the method
 * only once the gate has opened, and the result is observed with a side `then`, its data being
 * either the whole response (-> `call.completeWith`) or an async iterable of chunks (observed in
 * place with {@link observeAsyncIterable}). An SDK whose stream sits inside the response (AWS
 * ConverseStream's `output.stream`) writes its own `observe` with the same two helpers.
 *
 * Where an adapter cannot hold a request (`hold` missing, or returning undefined), a call that has
 * a gate (a guardrail `beforeRequest` hook still deciding or having blocked, a sanitizer that
 * failed in redact mode, LLM_AUDIT_ON_FAILURE=block) is REFUSED: the application gets a rejected
 * promise (the gate's own error, or LlmRequestBlockedError saying the request cannot be held) and
 * nothing is sent. Failing open would send what a guardrail may be about to forbid.
 */
import { diag } from '@opentelemetry/api';
import type { AuditedCall } from './audited-call';
import { observeAsyncIterable } from './stream';

export { observeAsyncIterable };

export interface SdkAdapter {
  /**
   * Runs the SDK method (`run`) so that its request waits for `gate`, and is never sent when the
   * gate rejects; returns `{ result }`, what the method returns (a rejection of `gate` must reach
   * the application through it). Returns undefined (or is absent) when this SDK's request cannot
   * be held for `resource`: the call is then refused.
   */
  hold?(gate: Promise<void>, run: () => unknown, resource: any): { result: unknown } | undefined;
  /**
   * Attaches `call` to what the method returned and returns what the application gets: the very
   * same object wherever possible. Must end the call on every path (data, stream end, error) and
   * never throw.
   */
  observe(result: unknown, call: AuditedCall): unknown;
}

/** The generic adapter for methods that return a plain promise (of a response or of an async iterable of chunks). */
export const promiseAdapter: SdkAdapter = {
  // Deferring the call itself: an `async` SDK method sends nothing before it is called. The
  // application gets another promise than the SDK's, which for a native promise is no difference.
  hold: (gate, run) => ({ result: gate.then(run) }),
  observe: (result, call) => {
    observeResult(result, call);
    return result;
  },
};

/**
 * Observes a return value without changing it: a thenable through a side `then` (registered first,
 * so a stream is instrumented before the application can read it), then the data as in
 * {@link observeData}.
 */
export function observeResult(result: unknown, call: AuditedCall): void {
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    (result as PromiseLike<unknown>).then(
      (data) => observeData(data, call, call.signal),
      (error: unknown) => call.fail(error),
    );
  } else {
    observeData(result, call, call.signal);
  }
}

/** Settled data: an async iterable is observed as a stream, anything else completes the call. */
export function observeData(data: unknown, call: AuditedCall, signal?: AbortSignal): unknown {
  try {
    if (call.isEnded) return data;
    call.tag(data);
    // A page of a list (Stainless SDKs: `batches.list()`) iterates over its items, not chunks of an answer.
    if (isAsyncIterable(data) && !isListPage(data)) return observeAsyncIterable(data, call, signal);
    call.completeWith(data);
  } catch (error) {
    diag.error('otel-llm-audit: could not observe the SDK response', error);
  }
  return data;
}

function isListPage(value: object): boolean {
  return typeof (value as { getNextPage?: unknown }).getNextPage === 'function' && Array.isArray((value as { data?: unknown }).data);
}

function isAsyncIterable(value: unknown): value is object {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}
