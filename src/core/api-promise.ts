import { diag } from '@opentelemetry/api';
import type { AuditedCall } from './audited-call';
import { observeData, type SdkAdapter } from './sdk-adapter';
import { isSdkStream, observeStream } from './stream';

/**
 * The adapter for Stainless-generated SDKs (openai 4-6, @anthropic-ai/sdk 0.3x-1.x): results are
 * observed through the APIPromise ({@link observeApiPromise}); requests are held through the
 * client's `post` ({@link withGate}). `client` finds the SDK client behind a resource object; a
 * client without `post` cannot be held (the call is then refused, see ./sdk-adapter.ts).
 */
export function stainlessAdapter(client: (resource: any) => any): SdkAdapter {
  return {
    hold(gate, run, resource) {
      const sdkClient = client(resource);
      if (typeof sdkClient?.post !== 'function') return undefined;
      return { result: withGate(sdkClient, gate, run) };
    },
    observe: observeApiPromise,
  };
}

/**
 * Runs the SDK method so that its HTTP request waits for `gate`. The SDK's `post(path, options)`
 * accepts a promise of options and awaits it before sending (openai 4-6, @anthropic-ai/sdk 0.3x-1.x),
 * so the method still returns its own APIPromise at once, while a rejected gate (a blocked call)
 * fails that promise before anything is sent.
 */
function withGate<T>(client: any, gate: Promise<void>, run: () => T): T {
  const own = Object.getOwnPropertyDescriptor(client, 'post');
  const post = client.post;
  client.post = function gatedPost(this: unknown, path: unknown, opts: unknown) {
    return post.call(this, path, gate.then(() => opts));
  };
  try {
    return run();
  } finally {
    if (own !== undefined) Object.defineProperty(client, 'post', own);
    else delete client.post;
  }
}

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
    if (!call.isEnded && isSdkStream(data)) {
      call.tag(data);
      return observeStream(data, call);
    }
  } catch (error) {
    diag.error('otel-llm-audit: could not observe the SDK stream', error);
    return data;
  }
  return observeData(data, call);
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
