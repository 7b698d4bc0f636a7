import { diag } from '@opentelemetry/api';
import { STREAM_OUTCOME } from '../semconv';
import type { AuditedCall } from './audited-call';

/**
 * The SDKs' `Stream` (openai 4-6, @anthropic-ai/sdk 0.3x-1.x) keeps its source in an instance
 * field `iterator`, a function returning a fresh async iterator. `[Symbol.asyncIterator]()`,
 * `tee()` and `toReadableStream()` all go through it, so wrapping that one field observes every way
 * of reading the stream while the object, its class and its other methods stay the SDK's own.
 */
interface SdkStream {
  iterator: (...args: unknown[]) => AsyncIterator<unknown>;
  controller?: AbortController;
}

export function isSdkStream(value: unknown): value is SdkStream {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SdkStream).iterator === 'function' &&
    typeof (value as { tee?: unknown }).tee === 'function'
  );
}

/**
 * Ends the span of a stream that nobody will ever read any more: the stream object (before it is
 * iterated) or the iterator (once it is) became unreachable without the stream finishing.
 */
const unreachable = new FinalizationRegistry<AuditedCall>((call) => {
  call.endStream(STREAM_OUTCOME.notConsumed);
});

/** Instruments `stream` in place for `call` and returns it. */
export function observeStream(stream: SdkStream, call: AuditedCall): SdkStream {
  const source = stream.iterator;
  const signal = stream.controller?.signal;
  let iterated = false;
  const token = {};
  unreachable.register(stream, call, token);
  const reads = { pending: 0 };

  // An abort while nobody is waiting on the stream (before iteration, or between chunks) would
  // otherwise leave the span to the finalizer. While a read is pending, the SDK itself aborts on
  // its way out of an error, and the read's outcome (error or end) is the one to record.
  // The listener stays registered after the call ends (an abort then finds the call ended and
  // does nothing): removing a listener from an AbortSignal costs more than the rest of a stream's
  // bookkeeping, and the signal, owned by the stream's controller, goes when the stream goes.
  const onAbort = (): void => {
    if (reads.pending > 0 || call.isEnded) return;
    unreachable.unregister(token);
    call.endStream(STREAM_OUTCOME.aborted);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  // Once the call has ended, drop the finalizer: it would only keep the call (and its span) alive
  // until the stream is collected.
  const settle = (): void => {
    unreachable.unregister(token);
  };

  stream.iterator = function (this: unknown, ...args: unknown[]) {
    const inner = source.apply(this, args);
    // A second iteration is the SDK's own error ("Cannot iterate over a consumed stream"): let it
    // through untouched; the first iteration owns the span.
    if (iterated) return inner;
    iterated = true;
    unreachable.unregister(token);
    const wrapped = wrapIterator(inner, call, signal, settle, reads);
    unreachable.register(wrapped, call, token);
    return wrapped;
  };
  return stream;
}

function wrapIterator(
  inner: AsyncIterator<unknown>,
  call: AuditedCall,
  signal: AbortSignal | undefined,
  settle: () => void,
  reads: { pending: number },
): AsyncIterableIterator<unknown> {
  const onResult = (result: IteratorResult<unknown>): IteratorResult<unknown> => {
    reads.pending--;
    try {
      if (result.done) {
        settle();
        // The SDK turns an abort during iteration into a quiet end of the stream.
        call.endStream(signal?.aborted ? STREAM_OUTCOME.aborted : STREAM_OUTCOME.completed);
      } else {
        call.onChunk(result.value);
      }
    } catch (error) {
      diag.error('otel-llm-audit: stream observation failed', error);
    }
    return result;
  };
  const onError = (error: unknown): never => {
    reads.pending--;
    settle();
    call.fail(error, STREAM_OUTCOME.errored);
    throw error;
  };
  const wrapped: AsyncIterableIterator<unknown> = {
    next: (...args: [] | [unknown]) => {
      reads.pending++;
      return inner.next(...args).then(onResult, onError);
    },
    return: (value?: unknown) => {
      // `break` out of `for await`, or an explicit return(): the application stopped early.
      settle();
      call.endStream(STREAM_OUTCOME.abandoned);
      return inner.return ? inner.return(value) : Promise.resolve({ done: true, value });
    },
    throw: (error?: unknown) => {
      settle();
      call.fail(error, STREAM_OUTCOME.errored);
      return inner.throw ? inner.throw(error) : Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return wrapped;
    },
  };
  return wrapped;
}
