import { diag } from '@opentelemetry/api';
import { STREAM_OUTCOME } from '../semconv';
import type { AuditedCall } from './audited-call';
import { watchStream } from './stream';

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
  let failed: { error: unknown } | undefined;
  // The span ends once: whoever settles first gets the call, later ones nothing.
  let tracked: ReturnType<typeof watchStream> | undefined;
  const settle = (): AuditedCall | undefined => {
    const current = tracked?.watch.call;
    tracked?.settle();
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
  // The finalizer of the SDK streams: unreachable unread or half read, the call ends as not_consumed.
  tracked = watchStream(observed, call, undefined);
  return observed;
}
