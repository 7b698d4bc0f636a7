/**
 * Watches the process's outgoing HTTP requests for LLM API requests made outside any audited
 * call: an SDK loaded before the instrumentation or bundled where the patch cannot reach it, a
 * client library the package does not instrument, a hand-written fetch. Each one is
 *   - reported on stderr, once per host and port (stderr rather than diag: diag is often not
 *     wired, and a gap in the audit trail must be seen);
 *   - counted in `llm_audit.unaudited.requests`;
 *   - recorded in the audit trail as a span of its own with `llm_audit.status=unaudited`: time,
 *     host, port, method, path (never the query string, which can hold keys, nor the body) and
 *     who made it (the audit context), so that the ledger shows the gap;
 *   - refused with LLM_AUDIT_ON_FAILURE=block: the request fails before a byte is sent.
 *
 * Two hooks cover Node's HTTP clients, both reached before a byte of the request is written and
 * in the async context of the code that made it, so the audited-call marker and the audit context
 * seen here are the caller's (test/audit/unaudited checks it with concurrent calls):
 *   - undici's `undici:request:create` channel: global fetch and the undici package;
 *   - `ClientRequest.prototype.onSocket`: node:http and node:https, so node-fetch, axios, got and
 *     the older SDKs built on them. Not the `http.client.request.start` channel: Node 20 publishes
 *     it from ClientRequest._finish, after the headers and body were handed to the socket, so on a
 *     kept-alive connection the request is already sent when it arrives (measured) and cannot be
 *     refused. onSocket is called for every request, whatever the agent, before anything is
 *     written; a request the agent queues gets it later but in its own context (the agent runs it
 *     in the request's AsyncResource).
 *   - `ClientHttp2Session.prototype.request`: node:http2, so the AWS SDK's default handler
 *     (NodeHttp2Handler) and any HTTP/2 client. A third hook because neither of the others sees
 *     HTTP/2. Not the `http2.client.stream.created` channel: Node 20 has none, and Node 24
 *     publishes it after `request` has handed the headers to a connected session (measured: a
 *     stream destroyed from it still reached the server). The prototype, not `http2.connect`: an ES module's
 *     `import { connect } from 'node:http2'` is bound before any patch of the CommonJS export.
 *     `request` submits the stream's headers synchronously on a connected session, so it is
 *     checked before the original runs, and refused through an already-aborted `signal`, which
 *     Node honours before the headers are submitted, connecting session or not (measured: the
 *     server sees no stream).
 *
 * WebSockets need no hook of their own: the handshake is an HTTP/1.1 request, made through
 * node:http by the `ws` package and through undici by the global `WebSocket` of Node 22+.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { ClientRequest } from 'node:http';
import { connect as connectHttp2, type ClientHttp2Session, type ClientSessionRequestOptions, type OutgoingHttpHeaders } from 'node:http2';
import { isIPv6 } from 'node:net';
import { Duplex } from 'node:stream';
import {
  context,
  diag,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Meter,
  type MeterProvider,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { getAuditContext } from '../../context';
import { auditContextAttributes } from '../../core/audited-call';
import { publishedServices } from '../../core/audit-client';
import { startCallSpans } from '../../core/audit-records';
import { auditMeter } from '../../util/audit-meter';
import * as A from '../../semconv';
import { PACKAGE_VERSION } from '../../version';
import { claimAuditedConnection, enableAuditedCallMarker, inAuditedCall } from './audited-call-marker';
import { watcherSettings } from './config';
import { hostMatcher, Memo, unbracket } from './hosts';
import { isContentFree } from './content-free';

export interface UnauditedWatcherOptions {
  /** Comma-separated `host` / `host:port` entries added to the built-in hosts. Default: LLM_AUDIT_LLM_HOSTS. */
  hosts?: string;
  /** Refuse the requests. Default: LLM_AUDIT_ON_FAILURE=block. */
  block?: boolean;
  /** Where the records go. Default: the global tracer provider. */
  tracerProvider?: TracerProvider;
  /** Where the counter goes. Default: the global meter provider, as it is when a request is seen. */
  meterProvider?: MeterProvider;
  /** Where the once-per-host warning goes. Default: stderr. */
  warn?: (line: string) => void;
  /** The variables it reads (LLM_AUDIT_LLM_HOSTS, _PROVIDER_HOSTS, _ON_FAILURE). Default: none; `register` passes the process's. */
  env?: NodeJS.ProcessEnv;
}

/** What an unaudited request fails with in block mode (as the `cause` of fetch's TypeError). */
export class UnauditedLlmRequestError extends Error {
  override name = 'UnauditedLlmRequestError';
}

interface Target {
  host: string;
  /** Undefined when it cannot be told (node:http with a Host header naming another host). */
  port: number | undefined;
}

interface OutgoingRequest extends Target {
  method: string;
  path: string;
}

/** The fields of undici's Request that are read here (stable across undici 5-7). */
interface UndiciRequest {
  origin?: unknown;
  method?: unknown;
  path?: unknown;
  /** Set before the request is connected, undici aborts it with this error before writing it. */
  error?: unknown;
}

const UNDICI_CREATE = 'undici:request:create';
type OnSocket = (this: ClientRequest, socket: unknown, error?: unknown) => unknown;

/**
 * Starts watching; returns the function that stops. Throws (before anything is watched) when
 * LLM_AUDIT_LLM_HOSTS, or `options.hosts`, has an entry that is not a host or host:port.
 */
export function startUnauditedWatcher(options: UnauditedWatcherOptions = {}): () => void {
  const settings = watcherSettings(options, options.env ?? {});
  const isLlmHost = hostMatcher(settings.hosts);
  const llmTarget = (target: Target | undefined) => (target !== undefined && isLlmHost(target.host, target.port) ? target : undefined);
  // undici gives the origin as a string: parsed and matched once per origin.
  const origins = new Memo<Target | undefined>();
  // At each request, not once: the application's SDK may register its provider after this starts.
  const tracer = (): Tracer => (options.tracerProvider ?? trace.getTracerProvider()).getTracer(A.INSTRUMENTATION_NAME, PACKAGE_VERSION);
  const warn = options.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  const warned = new Set<string>();
  let meter: Meter | undefined;
  let counter: Counter | undefined;
  enableAuditedCallMarker();

  const count = (attributes: Attributes): void => {
    // The global meter provider may be set after the watcher starts (the SDK starts it later).
    const current = options.meterProvider?.getMeter(A.INSTRUMENTATION_NAME, PACKAGE_VERSION) ?? auditMeter();
    if (current !== meter || counter === undefined) {
      meter = current;
      counter = current.createCounter(A.METRIC_AUDIT_UNAUDITED_REQUESTS, {
        description: 'LLM API requests sent outside any audited call',
        unit: '{request}',
      });
    }
    counter.add(1, attributes);
  };

  const record = (request: OutgoingRequest, refusal: Error | undefined): void => {
    const active = context.active();
    const where: Attributes = { [A.ATTR_SERVER_ADDRESS]: request.host, [A.ATTR_HTTP_REQUEST_METHOD]: request.method };
    if (request.port !== undefined) where[A.ATTR_SERVER_PORT] = request.port;
    const attributes: Attributes = { [A.ATTR_AUDIT_STATUS]: A.AUDIT_STATUS_UNAUDITED, ...where, [A.ATTR_URL_PATH]: request.path };
    const audit = getAuditContext(active);
    if (audit !== undefined) Object.assign(attributes, auditContextAttributes(audit, publishedServices()));
    if (refusal !== undefined) {
      attributes[A.ATTR_ERROR_TYPE] = refusal.name;
      attributes[A.ATTR_AUDIT_ERROR_MESSAGE] = refusal.message;
    }
    // Under the caller's span for the trace, but never under its suppression or its absence of
    // one: the record of the gap must be made whatever the caller's context says.
    const parent = trace.getSpan(active);
    // Through the audit record pipeline when one is installed (register): the record is then
    // neither sampled nor cut, like a call's.
    const span = startCallSpans(tracer(), `unaudited ${request.method}`, attributes, parent === undefined ? ROOT_CONTEXT : trace.setSpan(ROOT_CONTEXT, parent)).record;
    if (refusal !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: refusal.message });
    span.end();
    count(where);

    const target = targetName(request);
    if (warned.has(target)) return;
    warned.add(target);
    warn(
      `otel-llm-audit: WARNING: an LLM API request to ${target} (${request.method} ${request.path}) was made outside any audited call` +
        (refusal !== undefined ? ' and refused (LLM_AUDIT_ON_FAILURE=block)' : '') +
        `: the code that made it is not instrumented (an SDK loaded before otel-llm-audit or bundled, another client, a bare fetch). ` +
        `It is recorded in the audit trail with llm_audit.status=unaudited (no content); ` +
        `further ones to this host are recorded and counted in ${A.METRIC_AUDIT_UNAUDITED_REQUESTS} without this warning.`,
    );
  };

  /**
   * Called for every outgoing request, in its caller's context. `target` says where it goes when
   * that is an LLM host; `details` is read only then. Never throws: a diagnostics_channel
   * subscriber's throw would become an uncaught exception, and onSocket's would break the request.
   */
  const seen = (target: () => Target | undefined, details: () => { method: string; path: string }, refuse: (error: Error) => void): void => {
    try {
      const where = target();
      if (where === undefined || inAuditedCall()) return;
      const request: OutgoingRequest = { ...where, ...details() };
      if (isContentFree(request.method, request.path)) return;
      // An audited client's WebSocket handshake (an OpenAI Realtime session), announced by it.
      if (claimAuditedConnection(request.host, request.port, request.path)) return;
      let refusal: Error | undefined;
      if (settings.block) {
        refusal = new UnauditedLlmRequestError(
          `otel-llm-audit refused ${request.method} ${targetName(request)}${request.path}: it is an LLM API request outside any audited call, and LLM_AUDIT_ON_FAILURE=block allows only audited ones`,
        );
        // First, so that a failure to record cannot let the request through.
        refuse(refusal);
      }
      record(request, refusal);
    } catch (error) {
      diag.error('otel-llm-audit: could not check an outgoing request for an unaudited LLM call', error);
    }
  };

  const onUndiciRequest = (message: unknown): void => {
    const request = (message as { request?: UndiciRequest } | undefined)?.request;
    if (request === undefined) return;
    seen(
      () => {
        const origin = String(request.origin);
        return origins.get(origin, () => llmTarget(parseOrigin(origin)));
      },
      () => ({ method: String(request.method), path: withoutQuery(request.path) }),
      (error) => {
        request.error = error;
      },
    );
  };

  let stopped = false;
  const prototype = ClientRequest.prototype as unknown as { onSocket: OnSocket };
  const onSocket = prototype.onSocket;
  // A destroyed request is not written: onSocket's own continuation hands the socket back.
  const watchedOnSocket: OnSocket = function (this: ClientRequest, socket, error) {
    if (!stopped && error === undefined && !this.destroyed) {
      seen(
        () => llmTarget({ host: unbracket(this.host), port: httpPort(this) }),
        () => ({ method: this.method, path: withoutQuery(this.path) }),
        (refusal) => this.destroy(refusal),
      );
    }
    return onSocket.call(this, socket, error);
  };

  const http2 = http2SessionPrototype();
  const http2Request = http2?.request;
  const watchedHttp2Request: Http2Request = function (this: ClientHttp2Session, headers, options) {
    let refusal: Error | undefined;
    if (!stopped && !this.destroyed && !this.closed && !madeByUndici(this)) {
      seen(
        () => {
          const match = (origin: string) => origins.get(origin, () => llmTarget(parseOrigin(origin)));
          const session = http2Origin(this);
          // The bytes go where the session is connected, whatever `:authority` the caller wrote;
          // a request naming an LLM host in it is watched too (the server may route by it).
          const asked = http2Header(headers, ':authority');
          const named = asked === undefined ? undefined : `${session?.scheme ?? 'https:'}//${asked}`;
          return (session === undefined ? undefined : match(session.origin)) ?? (named === undefined || named === session?.origin ? undefined : match(named));
        },
        () => ({ method: http2Header(headers, ':method') ?? 'GET', path: withoutQuery(http2Header(headers, ':path') ?? '/') }),
        (error) => {
          refusal = error;
        },
      );
    }
    if (refusal === undefined) return http2Request!.call(this, headers, options);
    // The stream is destroyed before its headers are submitted; its 'error' is an AbortError whose
    // cause is the refusal (as fetch's TypeError), the caller's own signal replaced.
    return http2Request!.call(this, headers, { ...options, signal: AbortSignal.abort(refusal) });
  };

  subscribe(UNDICI_CREATE, onUndiciRequest);
  if (typeof onSocket === 'function') prototype.onSocket = watchedOnSocket;
  else warn('otel-llm-audit: WARNING: this Node version has no ClientRequest.prototype.onSocket: LLM API requests sent through node:http and node:https are not watched (fetch still is)');
  if (typeof http2Request === 'function') http2!.request = watchedHttp2Request;
  else warn('otel-llm-audit: WARNING: could not reach ClientHttp2Session.prototype.request on this Node version: LLM API requests sent through node:http2 (the AWS SDK\'s default) are not watched');
  return () => {
    if (stopped) return;
    stopped = true;
    unsubscribe(UNDICI_CREATE, onUndiciRequest);
    // Put back only if nothing wrapped it since; otherwise the wrapper stays, inert (stopped).
    if (prototype.onSocket === watchedOnSocket) prototype.onSocket = onSocket;
    if (http2 !== undefined && http2.request === watchedHttp2Request) http2.request = http2Request!;
  };
}

type Http2Request = (this: ClientHttp2Session, headers?: OutgoingHttpHeaders | readonly unknown[] | null, options?: ClientSessionRequestOptions) => unknown;

/**
 * node:http2 does not export ClientHttp2Session: its prototype is taken from a session over a
 * stream that goes nowhere (no socket is opened, nothing is written), destroyed at once. Also
 * looks up the session's own `authority` and `protocol` slots (Node keeps the `http2.connect`
 * URL's host:port and scheme there, Node 20 to 24), which `request` fills a stream's headers from.
 */
function http2SessionPrototype(): { request: Http2Request } | undefined {
  try {
    const session = connectHttp2('http://unaudited-watcher.invalid', {
      createConnection: () => new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() }),
    });
    session.on('error', () => undefined);
    const symbols = Object.getOwnPropertySymbols(session);
    http2Slots.authority = symbols.find((symbol) => symbol.description === 'authority');
    http2Slots.protocol = symbols.find((symbol) => symbol.description === 'protocol');
    session.destroy();
    return Object.getPrototypeOf(session) as { request: Http2Request };
  } catch (error) {
    diag.error('otel-llm-audit: could not reach node:http2 sessions to watch them', error);
    return undefined;
  }
}

const http2Slots: { authority?: symbol; protocol?: symbol } = {};

const undiciSessions = new WeakMap<object, boolean>();

/**
 * A session undici opened (`allowH2`): its requests were checked, in their callers' context, at
 * `undici:request:create`. Checked again here they would be counted twice, and in the wrong
 * context: undici writes a request queued while the session connects from the connect callback,
 * in the context of whoever opened it. undici marks its sessions with its `client` and
 * `open streams` slots (undici 6, and the 7 bundled in Node 24); both are required, so that
 * another library's session is not let through unwatched for having one of them.
 */
function madeByUndici(session: ClientHttp2Session): boolean {
  let made = undiciSessions.get(session);
  if (made === undefined) {
    const slots = new Set(Object.getOwnPropertySymbols(session).map((symbol) => symbol.description));
    made = slots.has('client') && slots.has('open streams');
    undiciSessions.set(session, made);
  }
  return made;
}

/**
 * Where an HTTP/2 session is connected, as an origin (`http://host:port`, matched once per origin
 * like undici's): the `http2.connect` URL's scheme and host:port, as the session keeps them. A
 * session whose slots cannot be read (a Node that keeps them elsewhere) is matched by its socket's
 * remote address and port.
 */
function http2Origin(session: ClientHttp2Session): { origin: string; scheme: string } | undefined {
  const slots = session as unknown as Record<symbol, unknown>;
  // `http:` / `https:`.
  const scheme = http2Slots.protocol !== undefined ? String(slots[http2Slots.protocol]) : 'https:';
  const authority = http2Slots.authority !== undefined ? slots[http2Slots.authority] : undefined;
  if (typeof authority === 'string') return { origin: `${scheme}//${authority}`, scheme };
  const socket = session.socket;
  if (socket?.remoteAddress === undefined) return undefined;
  return { origin: `${scheme}//${isIPv6(socket.remoteAddress) ? `[${socket.remoteAddress}]` : socket.remoteAddress}:${socket.remotePort ?? ''}`, scheme };
}

/** A header of `session.request`'s headers: an object, or (Node >= 22) raw `[name, value, ...]` pairs. */
function http2Header(headers: OutgoingHttpHeaders | readonly unknown[] | undefined | null, name: string): string | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (!Array.isArray(headers)) {
    const value = (headers as OutgoingHttpHeaders)[name];
    return value === undefined ? undefined : String(value);
  }
  for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
  return undefined;
}

/** undici's origin (`https://api.openai.com`), parsed once per origin. */
function parseOrigin(origin: string): Target | undefined {
  const url = URL.canParse(origin) ? new URL(origin) : undefined;
  return url === undefined ? undefined : { host: unbracket(url.hostname), port: portOf(url.port, url.protocol) };
}

function targetName(target: Target): string {
  return target.port === undefined ? target.host : `${target.host}:${target.port}`;
}

function portOf(port: string, protocol: string): number | undefined {
  if (port !== '') return Number(port);
  return protocol === 'https:' ? 443 : protocol === 'http:' ? 80 : undefined;
}

function withoutQuery(path: unknown): string {
  const text = typeof path === 'string' ? path : '';
  const end = text.search(/[?#]/);
  return end < 0 ? text : text.slice(0, end);
}

/**
 * node:http does not keep the port on the request; it writes it into the Host header (omitted
 * when it is the protocol's default). No Host header (`setHost: false`), or one the application
 * set to another name, leaves the port unknown.
 */
function httpPort(request: ClientRequest): number | undefined {
  const header = request.getHeader('host');
  const protocol = (request as ClientRequest & { protocol?: string }).protocol ?? 'http:';
  if (typeof header !== 'string') return undefined;
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(header.trim());
  if (match === null || unbracket(match[1]).toLowerCase() !== unbracket(request.host).toLowerCase()) return undefined;
  return portOf(match[2] ?? '', protocol);
}
