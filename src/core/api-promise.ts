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
  let parsed = false;
  // The data reaches onParsed once, by whichever path parses first (see watchDerived).
  const seen = (data: unknown): unknown => {
    if (parsed) return data;
    parsed = true;
    return onParsed(data, call);
  };
  const requested = (): void => {
    parseRequested = true;
  };
  const failed = (error: unknown): never => {
    // A failure after the data was seen is the app's transform's (a helper's parse), not the call's.
    if (!parsed) call.fail(error);
    throw error;
  };
  const parse = result.parseResponse;
  result.parseResponse = function (this: unknown, ...args: unknown[]) {
    requested();
    return Promise.resolve(parse.apply(this, args)).then(seen, failed);
  };
  watchDerived(result, requested, seen, failed);
  watchOwnThen(result, requested, seen, failed);
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

/**
 * openai 7's client gives each APIPromise its own `_thenUnwrap`, which parses through a closure
 * rather than through the instance's `parseResponse` as openai 4-6 and @anthropic-ai/sdk do: a
 * promise derived from the call's (how `responses.stream()` and `responses.parse()` read
 * `responses.create`) would be parsed without the audit seeing it, and the call recorded as a
 * response nobody read. So the derived promise's transform sees the data first, and its
 * `parseResponse` says a parse was asked for; the same for promises derived from it. An inherited
 * `_thenUnwrap` (openai 4-6, Anthropic) goes through `parseResponse` already and is left alone.
 */
function watchDerived(promise: object, requested: () => void, seen: (data: unknown) => unknown, failed: (error: unknown) => never): void {
  const own = Object.getOwnPropertyDescriptor(promise, '_thenUnwrap');
  if (typeof own?.value !== 'function') return;
  const thenUnwrap: (transform: (data: unknown, ...rest: unknown[]) => unknown, ...rest: unknown[]) => unknown = own.value;
  Object.defineProperty(promise, '_thenUnwrap', {
    ...own,
    value(this: unknown, transform: (data: unknown, ...rest: unknown[]) => unknown, ...rest: unknown[]) {
      const derived = thenUnwrap.call(this, (data: unknown, ...more: unknown[]) => transform(seen(data), ...more), ...rest);
      if (isSdkApiPromise(derived)) {
        const parse = derived.parseResponse;
        derived.parseResponse = function (this: unknown, ...args: unknown[]) {
          requested();
          return Promise.resolve(parse.apply(this, args)).catch(failed);
        };
        watchDerived(derived, requested, seen, failed);
      }
      return derived;
    },
  });
}

/**
 * openai 7's list calls (`requestAPIList`: `batches.list()`...) return a PagePromise whose `then`
 * is an own property bound to another promise of the same request, which parses without the
 * instance's `parseResponse`: awaiting the page would leave the call recorded as a response nobody
 * read. So an own `then` shows its data (and its failure) to the audit first. Promises whose `then`
 * is the prototype's (every other call) are left alone.
 */
function watchOwnThen(promise: object, requested: () => void, seen: (data: unknown) => unknown, failed: (error: unknown) => never): void {
  const own = Object.getOwnPropertyDescriptor(promise, 'then');
  if (typeof own?.value !== 'function') return;
  const then: (onFulfilled?: (data: unknown) => unknown, onRejected?: (error: unknown) => unknown) => unknown = own.value;
  Object.defineProperty(promise, 'then', {
    ...own,
    value(this: unknown, onFulfilled?: (data: unknown) => unknown, onRejected?: (error: unknown) => unknown) {
      requested();
      return then.call(
        this,
        (data) => {
          const observed = seen(data);
          return typeof onFulfilled === 'function' ? onFulfilled(observed) : observed;
        },
        (error) => {
          try {
            failed(error);
          } catch {
            // failed() records the error and rethrows it: the application's handler gets it below.
          }
          if (typeof onRejected === 'function') return onRejected(error);
          throw error;
        },
      );
    },
  });
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
