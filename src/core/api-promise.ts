import { diag } from '@opentelemetry/api';
import type { AuditedCall } from './audited-call';
import { isSdkStream, observeStream } from './stream';

/**
 * The shape shared by the `APIPromise` of openai 4-6 and @anthropic-ai/sdk 0.3x-1.x: a lazy
 * promise whose `responsePromise` settles with the HTTP response and whose `parseResponse` turns
 * it into data, only when someone asks for data (`await`, `.then`, `withResponse()`, or a helper's
 * `_thenUnwrap`). `asResponse()` never parses.
 */
interface SdkApiPromise {
  responsePromise: Promise<{ response?: { status?: number; headers?: { get(name: string): string | null } } }>;
  parseResponse: (...args: unknown[]) => unknown;
  then: unknown;
}

function isSdkApiPromise(value: unknown): value is SdkApiPromise {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SdkApiPromise).parseResponse === 'function' &&
    typeof (value as SdkApiPromise).responsePromise?.then === 'function'
  );
}

/**
 * Attaches `call` to what an SDK method returned, without replacing it: the application gets the
 * very object the SDK made, so `withResponse()`, `asResponse()`, `_thenUnwrap` helpers, private
 * fields and `instanceof` all behave as before.
 *
 * Only the instance's `parseResponse` is swapped (it is an instance field, called once per parse)
 * to see the parsed data or the stream; the response promise is watched to catch failures and
 * responses that nobody parses.
 */
export function observeApiPromise<T>(result: T, call: AuditedCall): T {
  if (!isSdkApiPromise(result)) {
    observePlainResult(result, call);
    return result;
  }
  let parseRequested = false;
  const parse = result.parseResponse;
  result.parseResponse = function (this: unknown, ...args: unknown[]) {
    parseRequested = true;
    return Promise.resolve(parse.apply(this, args)).then(
      (data) => onParsed(data, call),
      (error: unknown) => {
        call.fail(error);
        throw error;
      },
    );
  };
  result.responsePromise.then(
    (props) => {
      // The SDK's own parse reaction (registered when the application awaited) runs right after
      // this one; look once it has had its turn.
      queueMicrotask(() => {
        if (!parseRequested) {
          call.tag(props?.response);
          call.endUnparsed(props?.response);
        }
      });
    },
    (error: unknown) => call.fail(error),
  );
  return result;
}

function onParsed(data: unknown, call: AuditedCall): unknown {
  try {
    if (call.isEnded) return data;
    call.tag(data);
    if (isSdkStream(data)) return observeStream(data, call);
    call.completeWith(data);
  } catch (error) {
    diag.error('otel-llm-audit: could not observe the SDK response', error);
  }
  return data;
}

/** An SDK return value of an unknown shape (a future major): observe it without changing it. */
function observePlainResult(result: unknown, call: AuditedCall): void {
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    diag.debug('otel-llm-audit: SDK method returned a plain thenable; observing it with then()');
    (result as PromiseLike<unknown>).then(
      (data) => onParsed(data, call),
      (error: unknown) => call.fail(error),
    );
  } else {
    onParsed(result, call);
  }
}
