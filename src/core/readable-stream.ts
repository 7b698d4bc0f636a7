import { diag } from '@opentelemetry/api';
import { STREAM_OUTCOME } from '../semconv';
import type { AuditedCall } from './audited-call';

/** What the finalizer holds of a stream's call: the call until it has ended. */
interface Watch {
  call: AuditedCall | undefined;
}

/** Ends the span of a stream nobody read to its end and nobody can read any more. */
const unreachable = new FinalizationRegistry<Watch>((watch) => {
  const call = watch.call;
  watch.call = undefined;
  call?.endStream(STREAM_OUTCOME.notConsumed);
});

/**
 * A web ReadableStream that hands on `source`'s chunks one by one, as they are asked for, and
 * records them on `call`: for SDKs whose streaming result is a plain ReadableStream (the Vercel AI
 * SDK's `doStream`) rather than a Stainless `Stream`. The span ends once, on the first of: the
 * source finished (`completed`), failed (`errored`), was aborted by the application (`aborted`), the
 * reader cancelled (`abandoned`), or the stream became unreachable unread or half read
 * (`not_consumed`).
 *
 * `failure(chunk)` names a chunk that reports a failure in band (a provider error event): the
 * stream goes on as the SDK sends it, and the call is recorded as failed with it at the end.
 */
export function observeReadableStream<T>(source: ReadableStream<T>, call: AuditedCall, failure?: (chunk: T) => unknown): ReadableStream<T> {
  const reader = source.getReader();
  const watch: Watch = { call };
  let failed: { error: unknown } | undefined;
  const settle = (): AuditedCall | undefined => {
    const current = watch.call;
    watch.call = undefined;
    unreachable.unregister(watch);
    return current;
  };
  const observed = new ReadableStream<T>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          // The application's abort signal ends the source with an AbortError: its choice, as the
          // SDK streams' quiet end on abort (core/stream.ts), not a provider failure.
          if ((error as { name?: unknown } | null)?.name === 'AbortError') settle()?.endStream(STREAM_OUTCOME.aborted);
          else settle()?.fail(error, STREAM_OUTCOME.errored);
          controller.error(error);
          return;
        }
        if (result.done) {
          const ended = settle();
          if (failed !== undefined) ended?.fail(failed.error, STREAM_OUTCOME.errored);
          else ended?.endStream(STREAM_OUTCOME.completed);
          controller.close();
          return;
        }
        try {
          call.onChunk(result.value);
          const error = failure?.(result.value);
          if (error !== undefined) failed ??= { error };
        } catch (error) {
          diag.error('otel-llm-audit: stream observation failed', error);
        }
        controller.enqueue(result.value);
      },
      cancel(reason) {
        settle()?.endStream(STREAM_OUTCOME.abandoned);
        return reader.cancel(reason);
      },
    },
    // Nothing is read ahead: a chunk is taken from the source only when the reader asks for it.
    { highWaterMark: 0 },
  );
  unreachable.register(observed, watch, watch);
  return observed;
}
