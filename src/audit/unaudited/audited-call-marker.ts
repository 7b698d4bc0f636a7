/**
 * Marks the asynchronous work of an audited SDK call, so that the watcher can tell the HTTP
 * requests the SDK sends for it from requests to the same host made outside any audited call.
 *
 * An AsyncLocalStorage of its own rather than a key in the OpenTelemetry context: the OTel
 * context only propagates when a context manager is registered, and an app whose own setup has
 * none (or one that is not async-aware) would then see every audited call reported, and refused
 * in block mode, as unaudited. The storage lives in a process-wide slot so that two copies of
 * this package in one process (a bundled copy beside the preloaded one) share it.
 *
 * It is created only by startUnauditedWatcher: without a watcher, runInAuditedCall is a plain
 * call and no storage is enabled (each enabled AsyncLocalStorage costs a little on every async
 * operation of the process).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const SLOT = Symbol.for('otel-llm-audit.audited-call');
type Slot = { [SLOT]?: AsyncLocalStorage<true> };

/** Runs `fn` (the SDK method of an audited call) so that the requests it sends count as audited. */
export function runInAuditedCall<T>(fn: () => T): T {
  const storage = (globalThis as Slot)[SLOT];
  return storage === undefined ? fn() : storage.run(true, fn);
}

/** True inside runInAuditedCall, including the async work it started. */
export function inAuditedCall(): boolean {
  return (globalThis as Slot)[SLOT]?.getStore() === true;
}

/** Called by the watcher: from now on runInAuditedCall marks its calls. */
export function enableAuditedCallMarker(): void {
  (globalThis as Slot)[SLOT] ??= new AsyncLocalStorage<true>();
}
