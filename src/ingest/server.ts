/**
 * The OTLP/HTTP receiver of `llm-audit serve`: `POST /v1/traces` in protobuf or JSON, gzip or not,
 * as the OTLP specification defines it; every audit span becomes one ledger record. See
 * docs/server.md for the endpoints, the status codes and the limits.
 *
 * Memory is bounded: at most `maxInflight` export requests are handled at once and at most
 * `maxQueuedBytes` of (decompressed) bodies are held; past either bound the answer is 503 with
 * Retry-After, which an OpenTelemetry Collector's exporter retries with back-off. Nothing queues
 * without bound.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createGunzip } from 'node:zlib';
import { isLedgerError } from '../ledger/errors';
import {
  MalformedBody,
  RPC_CODE,
  decodeJsonRequest,
  decodeProtobufRequest,
  encodeExportResponse,
  encodeStatus,
  type DecodedSpan,
  type Encoding,
} from './otlp';
import { recordsOf } from './records';
import type { TenantScope } from './tokens';
import type { IngestStore } from './store';

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 4319,
  maxBodyBytes: 16 * 1024 * 1024,
  maxInflight: 64,
  maxQueuedBytes: 256 * 1024 * 1024,
  maxRecordBytes: 1024 * 1024,
  retryAfterSeconds: 2,
  shutdownTimeoutMs: 30_000,
} as const;

export interface IngestServerOptions {
  store: IngestStore;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Requests must carry `Authorization: Bearer <token>` when set (this token writes every tenant). */
  token?: string;
  /**
   * Tokens bound to tenants (LLM_AUDIT_INGEST_TOKENS, src/ingest/tokens.ts): a request with one of
   * them is accepted, and each of its spans is stored only when the token's scope covers the
   * span's tenant. With `token` too, either kind is accepted.
   */
  tenantTokens?: ReadonlyMap<string, TenantScope>;
  /** Largest body accepted, checked while streaming, both as sent and after gunzip. */
  maxBodyBytes?: number;
  /** Export requests handled at once (reading, decoding, appending); more get 503. */
  maxInflight?: number;
  /** Decompressed body bytes held at once by all requests; past it, 503. */
  maxQueuedBytes?: number;
  /** A span whose record would be larger is rejected (partial success). */
  maxRecordBytes?: number;
  retryAfterSeconds?: number;
  /**
   * HTTPS. With `clientCa`, a client must present a certificate signed by that CA (mutual TLS, as
   * the Collector's otlphttp exporter can): one without, or with another CA's, is refused in the
   * handshake, before any request is read.
   */
  tls?: { cert: Buffer | string; key: Buffer | string; clientCa?: Buffer | string };
  /** One line per notable event (store failures, shutdown). */
  log?: (line: string) => void;
}

export interface IngestStats {
  requests: number;
  spans: number;
  stored: number;
  duplicates: number;
  ignored: number;
  rejected: number;
  /** Of `rejected`: spans that claimed to be operation records (`content.shred`...). */
  rejected_operations: number;
  /** Of `rejected`: spans of a tenant the request's token may not write. */
  rejected_tenant: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
}

export interface IngestServer {
  readonly url: string;
  readonly port: number;
  readonly stats: IngestStats;
  /** Stops accepting, finishes the requests in flight (up to `timeoutMs`), then closes the store. */
  close(timeoutMs?: number): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly rpcCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The most of an unwanted body read (and dropped) before an early answer. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

const CONTENT_TYPES: Record<string, Encoding> = {
  'application/x-protobuf': 'protobuf',
  'application/json': 'json',
};

function contentTypeOf(encoding: Encoding): string {
  return encoding === 'json' ? 'application/json' : 'application/x-protobuf';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export async function startIngestServer(options: IngestServerOptions): Promise<IngestServer> {
  const store = options.store;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const maxInflight = options.maxInflight ?? DEFAULTS.maxInflight;
  const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes;
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULTS.maxRecordBytes;
  const retryAfter = String(options.retryAfterSeconds ?? DEFAULTS.retryAfterSeconds);
  const log = options.log ?? (() => {});
  // Each accepted Authorization header, as a digest (compared in constant time), with its scope.
  const credentials: { auth: Buffer; scope: TenantScope }[] = [];
  if (options.token) credentials.push({ auth: digest(`Bearer ${options.token}`), scope: '*' });
  for (const [token, scope] of options.tenantTokens ?? []) credentials.push({ auth: digest(`Bearer ${token}`), scope });
  const authRequired = credentials.length > 0;
  /** The scope of the request's token; undefined when a token is required and this one is not known. */
  const scopeOf = (req: IncomingMessage): TenantScope | undefined => {
    if (!authRequired) return '*';
    const given = digest(String(req.headers.authorization ?? ''));
    let scope: TenantScope | undefined;
    // Every credential is compared, so the time does not tell which one (or whether one) matched.
    for (const credential of credentials) if (timingSafeEqual(given, credential.auth)) scope ??= credential.scope;
    return scope;
  };

  const stats: IngestStats = {
    requests: 0,
    spans: 0,
    stored: 0,
    duplicates: 0,
    ignored: 0,
    rejected: 0,
    rejected_operations: 0,
    rejected_tenant: 0,
    statuses: {},
  };
  let inflight = 0;
  let queuedBytes = 0;
  let shuttingDown = false;
  const pending = new Set<Promise<void>>();

  const busy = (why: string): HttpError =>
    new HttpError(503, RPC_CODE.unavailable, `${why}; retry later`, { 'retry-after': retryAfter });

  function send(res: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string> = {}): void {
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': type, 'content-length': String(body.length), ...headers, ...(shuttingDown ? { connection: 'close' } : {}) });
    res.end(body);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, encoding: Encoding, error: HttpError, bodyUnread: boolean): void {
    const answer = (): void => send(res, error.status, contentTypeOf(encoding), encodeStatus(encoding, error.rpcCode, error.message), error.headers);
    if (bodyUnread && !req.complete) drainThen(req, answer);
    else answer();
  }

  /**
   * An early answer (401, 413, 415, 503...) is sent once the rest of the body has been read and
   * thrown away: a client still writing its body when the server closes the connection sees a
   * reset instead of the answer. Draining is bounded (64 MiB, 2 s); past that the answer goes out
   * and the connection is closed.
   */
  function drainThen(req: IncomingMessage, answer: () => void): void {
    let dropped = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      answer();
    };
    const timer = setTimeout(finish, 2_000);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > DRAIN_LIMIT) finish();
    });
    req.on('end', finish);
    req.on('error', () => {
      done = true;
      clearTimeout(timer);
    });
    req.resume();
  }

  /** Streams the body, gunzipping when asked; enforces the size bounds while reading. */
  function readBody(req: IncomingMessage, gzip: boolean, held: { bytes: number }): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let raw = 0;
      let size = 0;
      let done = false;
      const gunzip = gzip ? createGunzip() : undefined;
      const fail = (error: HttpError): void => {
        if (done) return;
        done = true;
        if (gunzip) {
          req.unpipe(gunzip);
          gunzip.destroy();
        }
        reject(error);
      };
      const take = (chunk: Buffer): void => {
        if (done) return;
        size += chunk.length;
        if (size > maxBodyBytes) {
          fail(new HttpError(413, RPC_CODE.invalidArgument, `the ${gzip ? 'decompressed ' : ''}body is larger than ${maxBodyBytes} bytes`));
          return;
        }
        if (queuedBytes + chunk.length > maxQueuedBytes) {
          fail(busy(`the server holds ${queuedBytes} bytes of requests (limit ${maxQueuedBytes})`));
          return;
        }
        queuedBytes += chunk.length;
        held.bytes += chunk.length;
        chunks.push(chunk);
      };
      req.on('data', (chunk: Buffer) => {
        raw += chunk.length;
        if (raw > maxBodyBytes) fail(new HttpError(413, RPC_CODE.invalidArgument, `the body is larger than ${maxBodyBytes} bytes`));
        else if (!gunzip) take(chunk);
      });
      req.on('error', () => fail(new HttpError(400, RPC_CODE.invalidArgument, 'the request was aborted')));
      req.on('aborted', () => fail(new HttpError(400, RPC_CODE.invalidArgument, 'the request was aborted')));
      if (gunzip) {
        gunzip.on('data', take);
        gunzip.on('error', (error) => fail(new HttpError(400, RPC_CODE.invalidArgument, `the gzip body is invalid: ${error.message}`)));
        gunzip.on('end', () => {
          if (done) return;
          done = true;
          resolve(Buffer.concat(chunks, size));
        });
        req.pipe(gunzip);
      } else {
        req.on('end', () => {
          if (done) return;
          done = true;
          resolve(Buffer.concat(chunks, size));
        });
      }
    });
  }

  async function handleExport(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const typeHeader = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    const encoding = CONTENT_TYPES[typeHeader];
    // Errors before the type is known are answered in JSON.
    const answerAs: Encoding = encoding ?? 'json';
    const scope = scopeOf(req);
    if (scope === undefined) {
      sendError(req, res, answerAs, new HttpError(401, RPC_CODE.unauthenticated, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' }), true);
      return;
    }
    if (!encoding) {
      sendError(req, res, 'json', new HttpError(415, RPC_CODE.invalidArgument, `unsupported content type ${JSON.stringify(typeHeader)}: use application/x-protobuf or application/json`), true);
      return;
    }
    const contentEncoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (contentEncoding !== 'gzip' && contentEncoding !== 'identity' && contentEncoding !== '') {
      sendError(req, res, encoding, new HttpError(415, RPC_CODE.invalidArgument, `unsupported content encoding ${JSON.stringify(contentEncoding)}: use gzip or none`), true);
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      sendError(req, res, encoding, new HttpError(413, RPC_CODE.invalidArgument, `the body is larger than ${maxBodyBytes} bytes`), true);
      return;
    }
    if (shuttingDown) {
      sendError(req, res, encoding, busy('the server is shutting down'), true);
      return;
    }
    if (inflight >= maxInflight) {
      sendError(req, res, encoding, busy(`${inflight} export requests are in progress (limit ${maxInflight})`), true);
      return;
    }
    inflight++;
    const held = { bytes: 0 };
    let bodyRead = false;
    try {
      const body = await readBody(req, contentEncoding === 'gzip', held);
      bodyRead = true;
      let spans: DecodedSpan[];
      try {
        spans = encoding === 'json' ? decodeJsonRequest(body) : decodeProtobufRequest(body);
      } catch (error) {
        if (error instanceof MalformedBody) throw new HttpError(400, RPC_CODE.invalidArgument, error.message);
        if (error instanceof RangeError) throw new HttpError(400, RPC_CODE.invalidArgument, `the body cannot be decoded: ${error.message}`);
        throw error;
      }
      stats.spans += spans.length;
      const conversion = recordsOf(spans, maxRecordBytes, scope);
      stats.ignored += conversion.ignored;
      stats.rejected += conversion.rejected;
      stats.rejected_operations += conversion.rejectedOperations;
      stats.rejected_tenant += conversion.rejectedTenant;
      // Forged operation records and writes outside a token's tenants are attempts, not glitches:
      // each request with some is logged (the counts are in /healthz).
      if (conversion.rejectedOperations > 0 || conversion.rejectedTenant > 0) {
        log(`rejected ${conversion.rejected} span${conversion.rejected === 1 ? '' : 's'} from ${req.socket.remoteAddress ?? 'unknown'}: ${conversion.reasons.join('; ')}`);
      }
      let stored = 0;
      let duplicates = 0;
      if (conversion.records.length > 0) {
        try {
          const outcome = await store.append(conversion.records);
          stored = outcome.stored;
          duplicates = outcome.duplicates;
        } catch (error) {
          const code = isLedgerError(error) ? `${error.code}: ` : '';
          log(`cannot store ${conversion.records.length} record(s): ${code}${(error as Error).message}`);
          throw busy(`the ledger cannot store the records now (${code.replace(/: $/, '') || 'error'})`);
        }
      }
      stats.stored += stored;
      stats.duplicates += duplicates;
      const partial =
        conversion.rejected > 0 ? { rejectedSpans: conversion.rejected, errorMessage: conversion.reasons.join('; ') } : undefined;
      send(res, 200, contentTypeOf(encoding), encodeExportResponse(encoding, partial), {
        'x-llm-audit-stored': String(stored),
        'x-llm-audit-duplicates': String(duplicates),
        'x-llm-audit-ignored': String(conversion.ignored),
      });
    } catch (error) {
      const httpError =
        error instanceof HttpError ? error : new HttpError(500, RPC_CODE.unavailable, `internal error: ${(error as Error).message}`);
      if (!(error instanceof HttpError)) log(`internal error: ${(error as Error).stack ?? String(error)}`);
      sendError(req, res, encoding, httpError, !bodyRead);
    } finally {
      inflight--;
      queuedBytes -= held.bytes;
    }
  }

  function handleHealth(req: IncomingMessage, res: ServerResponse): void {
    const status = shuttingDown ? 'shutting down' : 'ok';
    // Probes need no token; the details (store, counters) only go to holders of the token.
    const detailed = scopeOf(req) !== undefined;
    const body = Buffer.from(
      JSON.stringify(detailed ? { status, store: store.description, inflight, queued_bytes: queuedBytes, stats } : { status }) + '\n',
    );
    send(res, shuttingDown ? 503 : 200, 'application/json', req.method === 'HEAD' ? Buffer.alloc(0) : body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1/traces') {
      if (req.method !== 'POST') {
        sendError(req, res, 'json', new HttpError(405, RPC_CODE.unimplemented, 'use POST', { allow: 'POST' }), true);
        return;
      }
      const work = handleExport(req, res).catch((error: unknown) => {
        log(`internal error: ${(error as Error).message}`);
        if (!res.headersSent) send(res, 500, 'application/json', encodeStatus('json', RPC_CODE.unavailable, 'internal error'));
      });
      pending.add(work);
      void work.finally(() => pending.delete(work));
      return;
    }
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendError(req, res, 'json', new HttpError(405, RPC_CODE.unimplemented, 'use GET', { allow: 'GET, HEAD' }), true);
        return;
      }
      handleHealth(req, res);
      req.resume();
      return;
    }
    sendError(req, res, 'json', new HttpError(404, RPC_CODE.notFound, `no such endpoint ${JSON.stringify(path)}: POST /v1/traces, GET /healthz`), true);
  }

  const server: Server = options.tls
    ? createHttpsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.clientCa !== undefined ? { ca: options.tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handle,
      )
    : createHttpServer(handle);
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULTS.port, options.host ?? DEFAULTS.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    port: address.port,
    stats,
    close(timeoutMs = DEFAULTS.shutdownTimeoutMs): Promise<void> {
      closing ??= (async () => {
        shuttingDown = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs);
        });
        const finished = await Promise.race([Promise.all([...pending]).then(() => 'done' as const), timedOut]);
        if (finished === 'timeout') log(`shutdown: ${pending.size} request(s) still in progress after ${timeoutMs} ms were cut off`);
        clearTimeout(timer);
        server.closeAllConnections();
        await stopped;
        await store.close();
      })();
      return closing;
    },
  };
}
