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

/**
 * WebSocket handshakes an audited client is about to send (an OpenAI Realtime session), by
 * `host:port/path`, oldest first. A Realtime client opens its socket inside its own constructor,
 * which the audit cannot run inside runInAuditedCall (the SDK's static `create()` constructs the
 * class by its own binding), so the instrumentation announces the request instead, just before the
 * socket is created, and the watcher takes the announcement when it sees the request. The query
 * string is not part of the key: an Azure client adds its key to it after the URL is built.
 */
const EXPECTED = Symbol.for('otel-llm-audit.audited-connections');
type ExpectedSlot = { [EXPECTED]?: Map<string, object[]> };

function connectionKey(host: string, port: number | undefined, path: string): string {
  return `${host.toLowerCase()}:${port ?? ''}${path}`;
}

/**
 * Announces the handshake of an audited connection to `url` (ws:, wss:, http: or https:). Returns
 * the function that withdraws the announcement if the watcher has not taken it (the socket was
 * never opened). Nothing is kept while no watcher runs.
 */
export function expectAuditedConnection(url: URL): () => void {
  const slot = globalThis as Slot & ExpectedSlot;
  if (slot[SLOT] === undefined) return () => undefined;
  const secure = url.protocol === 'wss:' || url.protocol === 'https:';
  const key = connectionKey(url.hostname.replace(/^\[|\]$/g, ''), url.port !== '' ? Number(url.port) : secure ? 443 : 80, url.pathname);
  const expected = (slot[EXPECTED] ??= new Map());
  const token = {};
  const queue = expected.get(key) ?? [];
  queue.push(token);
  expected.set(key, queue);
  return () => {
    const current = expected.get(key);
    const index = current?.indexOf(token) ?? -1;
    if (index < 0) return;
    current!.splice(index, 1);
    if (current!.length === 0) expected.delete(key);
  };
}

/** True (and the oldest announcement is taken) when the request is an announced audited handshake. */
export function claimAuditedConnection(host: string, port: number | undefined, path: string): boolean {
  const expected = (globalThis as ExpectedSlot)[EXPECTED];
  if (expected === undefined || expected.size === 0) return false;
  const key = connectionKey(host, port, path);
  const queue = expected.get(key);
  if (queue === undefined) return false;
  queue.shift();
  if (queue.length === 0) expected.delete(key);
  return true;
}
