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
 * What the abort listener and the finalizer hold of a stream's call: `call` until the call has
 * ended (then they let go of it), and the reads in progress.
 */
interface StreamWatch {
  call: AuditedCall | undefined;
  pending: number;
}

/**
 * Ends the span of a stream that nobody will ever read any more: the stream object (before it is
 * iterated) or the iterator (once it is) became unreachable without the stream finishing.
 */
const unreachable = new FinalizationRegistry<StreamWatch>((watch) => {
  const call = watch.call;
  watch.call = undefined;
  call?.endStream(STREAM_OUTCOME.notConsumed);
});

/**
 * Ends the span when the stream is aborted while nobody waits on it (before iteration, or between
 * chunks); otherwise the span would be left to the finalizer. While a read is pending, the SDK
 * itself aborts on its way out of an error, and the read's outcome (error or end) is the one to
 * record.
 *
 * The listener stays on the signal after the call ends (removing a listener from an AbortSignal
 * costs more than the rest of a stream's bookkeeping), so it is made here, apart from
 * observeStream's closures, and holds only the watch, which lets go of the call when it ends: the
 * signal can outlive the stream by far. openai 4-6 link each request's controller to a signal
 * passed with the request and never unlink it, so one long-lived signal shared by many requests
 * keeps every one of their controllers, and their listeners, alive (when the listener held the
 * call, that kept 9.6 KB more per streamed call than the SDK alone; now 0.4 KB,
 * test/instrumentation/shared-signal.test.ts).
 */
function abortListener(watch: StreamWatch, token: object): () => void {
  return () => {
    const call = watch.call;
    if (call === undefined || watch.pending > 0 || call.isEnded) return;
    watch.call = undefined;
    unreachable.unregister(token);
    call.endStream(STREAM_OUTCOME.aborted);
  };
}

/** What every stream observer shares (here, and readable-stream.ts): the finalizer, the abort listener, and how to let go. */
export function watchStream(target: object, call: AuditedCall, signal: AbortSignal | undefined): { watch: StreamWatch; token: object; settle: () => void } {
  const token = {};
  const watch: StreamWatch = { call, pending: 0 };
  unreachable.register(target, watch, token);
  signal?.addEventListener('abort', abortListener(watch, token), { once: true });
  // Once the call has ended, drop the finalizer and the watch's hold on the call.
  const settle = (): void => {
    unreachable.unregister(token);
    watch.call = undefined;
  };
  return { watch, token, settle };
}

/** Instruments `stream` in place for `call` and returns it. */
export function observeStream(stream: SdkStream, call: AuditedCall): SdkStream {
  const signal = stream.controller?.signal;
  const { watch, token, settle } = watchStream(stream, call, signal);
  stream.iterator = firstIteration(stream.iterator, call, signal, watch, token, settle);
  return stream;
}

/**
 * Instruments any async iterable in place for `call` (the generic adapter's streams: an async
 * generator, or an object whose `[Symbol.asyncIterator]()` makes the iterator) and returns it. The
 * object stays the SDK's own (identity, class, other fields): an iterator gets own `next`,
 * `return` and `throw` that pass through to its class's; an iterable gets its own
 * `[Symbol.asyncIterator]`. `signal`, when the SDK call had one, ends the span on an abort while
 * nobody reads.
 */
export function observeAsyncIterable<T extends object>(iterable: T, call: AuditedCall, signal?: AbortSignal): T {
  const { watch, token, settle } = watchStream(iterable, call, signal);
  const self = iterable as T & Partial<AsyncIterator<unknown>> & { [Symbol.asyncIterator]?: () => AsyncIterator<unknown> };
  if (typeof self.next === 'function') {
    const { next, return: ret, throw: thr } = self;
    const inner: AsyncIterator<unknown> = {
      next: (...args: [] | [unknown]) => next.apply(self, args),
      return: ret === undefined ? undefined : (value?: unknown) => ret.call(self, value),
      throw: thr === undefined ? undefined : (error?: unknown) => thr.call(self, error),
    };
    const wrapped = wrapIterator(inner, call, signal, settle, watch);
    for (const key of ['next', 'return', 'throw'] as const) {
      Object.defineProperty(self, key, { value: wrapped[key], configurable: true, writable: true, enumerable: false });
    }
    return iterable;
  }
  const source = self[Symbol.asyncIterator];
  if (typeof source === 'function') {
    Object.defineProperty(self, Symbol.asyncIterator, {
      value: firstIteration(source, call, signal, watch, token, settle),
      configurable: true,
      writable: true,
      enumerable: false,
    });
  }
  return iterable;
}

/** Wraps a function that makes the iterator: the first iterator made owns the span. */
function firstIteration(
  source: (...args: unknown[]) => AsyncIterator<unknown>,
  call: AuditedCall,
  signal: AbortSignal | undefined,
  watch: StreamWatch,
  token: object,
  settle: () => void,
): (...args: unknown[]) => AsyncIterator<unknown> {
  let iterated = false;
  return function (this: unknown, ...args: unknown[]) {
    const inner = source.apply(this, args);
    // A second iteration is the SDK's own error ("Cannot iterate over a consumed stream"): let it
    // through untouched; the first iteration owns the span.
    if (iterated) return inner;
    iterated = true;
    unreachable.unregister(token);
    const wrapped = wrapIterator(inner, call, signal, settle, watch);
    unreachable.register(wrapped, watch, token);
    return wrapped;
  };
}

function wrapIterator(
  inner: AsyncIterator<unknown>,
  call: AuditedCall,
  signal: AbortSignal | undefined,
  settle: () => void,
  reads: StreamWatch,
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
