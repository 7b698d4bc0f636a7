/**
 * A loopback fake of the AWS Bedrock Runtime API, for tests: the real
 * `@aws-sdk/client-bedrock-runtime` parses its answers. HTTP/2 without TLS (prior knowledge), as
 * the client's default request handler (NodeHttp2Handler) speaks it.
 *
 *   const fake = await startFakeBedrock();
 *   const client = new BedrockRuntimeClient(fake.clientConfig);
 *   fake.enqueue({ json: recordings.converseClaude });
 *
 * Routes (as the SDK sends them): POST /model/{modelId}/converse, /converse-stream, /invoke,
 * /invoke-with-response-stream, /count-tokens, /guardrail/{id}/version/{version}/apply,
 * /guardrail-checks/invoke and /async-invoke (StartAsyncInvoke); GET /async-invoke/{arn}
 * (GetAsyncInvoke) and /async-invoke (ListAsyncInvokes); POST /model/{modelId}/invoke-with-bidirectional-stream
 * (InvokeModelWithBidirectionalStream, see bidirectional() below). It also speaks HTTP/1.1 on the same port
 * (each connection is told by its first bytes), for a client given the SDK's NodeHttpHandler, whose
 * requests node:http makes. Wire format as the service's: JSON bodies with `x-amzn-RequestId`;
 * errors with their status, an `x-amzn-ErrorType` header and `{"message": ...}`; streams as
 * `application/vnd.amazon.eventstream`, each message encoded by the AWS SDK's own codec
 * (@smithy/eventstream-codec) with `:event-type`, `:content-type` and `:message-type` headers,
 * InvokeModel stream chunks as `{"bytes": <base64 of the model's JSON chunk>}`. An in-stream error
 * is an `exception` message (`:exception-type: modelStreamErrorException`).
 *
 * Answers are the published recordings of ./bedrock-recordings.ts: each request takes the next
 * enqueued scenario, else the default recording of its route and model family.
 */
import { createServer as createHttp1Server } from 'node:http';
import { createServer, type Http2ServerRequest as IncomingMessage, type Http2ServerResponse as ServerResponse, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import * as recordings from './bedrock-recordings';

export interface BedrockScenario {
  /** Non-2xx: the error answer's status (the `x-amzn-ErrorType` follows from it unless `errorType` is set). */
  status?: number;
  errorType?: string;
  /** The error's `message`; a function gets the request body text (a provider echoing the prompt). */
  errorMessage?: string | ((requestBody: string) => string);
  /** JSON body of a converse / invoke answer (default: the route's recording). */
  json?: unknown;
  /** Events of a stream answer: `{ <event type>: payload }`; for InvokeModel streams `{ chunk: <model JSON> }`. */
  events?: Record<string, unknown>[];
  /** Streams: after N events send a modelStreamErrorException and end. */
  failAfterEvents?: number;
  /** Streams: after N events destroy the socket. */
  dropAfterEvents?: number;
  /** Delay between stream events. */
  eventDelayMs?: number;
  /**
   * Bidirectional streams: the client event (its key under `event`) after which the fake sends
   * `events` (default `promptEnd`); the answer ends when the client's input ends.
   */
  answerAfter?: string;
}

export interface BedrockRequest {
  path: string;
  /** The model id from the path, decoded (ApplyGuardrail: the guardrail id). */
  modelId: string;
  route:
    | 'converse'
    | 'converse-stream'
    | 'invoke'
    | 'invoke-with-response-stream'
    | 'count-tokens'
    | 'apply-guardrail'
    | 'guardrail-checks'
    | 'start-async-invoke'
    | 'get-async-invoke'
    | 'list-async-invokes'
    | 'invoke-with-bidirectional-stream';
  method: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
  body: any;
  /** Bidirectional streams: the client's events as the fake decoded them (the JSON of each chunk's bytes, else `{ raw: base64 }`), as they arrive. */
  inputEvents?: any[];
  /** Bidirectional streams: the client's input ended (the HTTP/2 stream's end) or broke. */
  inputEnded?: 'end' | 'aborted';
}

export interface FakeBedrock {
  url: string;
  /** Client options for the real SDK: loopback endpoint, static fake credentials, no retries. */
  clientConfig: { region: string; endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string }; maxAttempts: number };
  requests: BedrockRequest[];
  /** `METHOD path` of every request received, routed or not (a route it does not serve answers 404). */
  received: string[];
  enqueue(...scenarios: BedrockScenario[]): void;
  reset(): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

const ERROR_TYPES: Record<number, string> = {
  400: 'ValidationException',
  403: 'AccessDeniedException',
  404: 'ResourceNotFoundException',
  408: 'ModelTimeoutException',
  424: 'ModelErrorException',
  429: 'ThrottlingException',
  500: 'InternalServerException',
  503: 'ServiceUnavailableException',
};

/** The recording a request gets when no scenario says otherwise. */
function defaultAnswer(route: BedrockRequest['route'], modelId: string): { json?: unknown; events?: Record<string, unknown>[] } {
  const family = modelId.includes('anthropic.') ? 'claude' : modelId.includes('nova') ? 'nova' : modelId.includes('meta.') ? 'llama' : 'claude';
  switch (route) {
    case 'converse':
      return { json: recordings.converseClaude };
    case 'converse-stream':
      return { events: family === 'nova' ? recordings.converseStreamNova : recordings.converseStreamClaude };
    case 'invoke':
      return { json: family === 'nova' ? recordings.invokeNova : family === 'llama' ? recordings.invokeLlama : recordings.invokeClaude };
    case 'invoke-with-response-stream':
      return { events: family === 'nova' ? recordings.invokeStreamNova : family === 'llama' ? recordings.invokeStreamLlama : recordings.invokeStreamClaude };
    case 'count-tokens':
      return { json: recordings.countTokens };
    case 'apply-guardrail':
      return { json: recordings.applyGuardrailNone };
    case 'guardrail-checks':
      return { json: recordings.guardrailChecks };
    case 'start-async-invoke':
      return { json: recordings.startAsyncInvoke };
    case 'get-async-invoke':
      return { json: recordings.getAsyncInvoke };
    case 'list-async-invokes':
      return { json: recordings.listAsyncInvokes };
    case 'invoke-with-bidirectional-stream':
      return { events: recordings.novaSonicCompletion };
  }
}

/** One event-stream message, encoded by the SDK's codec. */
function eventMessage(event: Record<string, unknown>): Uint8Array {
  const [type] = Object.keys(event).filter((key) => key !== 'p');
  const payload = event[type!];
  const body = type === 'chunk' ? { bytes: Buffer.from(JSON.stringify(payload)).toString('base64'), ...(event['p'] ? { p: event['p'] } : {}) } : payload;
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: type! },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(body)),
  });
}

/** The in-stream error the service sends (recorded: vercel/ai __fixtures__/model-stream-error-exception.eventstream.base64.txt). */
function exceptionMessage(): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'exception' },
      ':exception-type': { type: 'string', value: 'modelStreamErrorException' },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify({ message: 'Model Stream Error', originalStatusCode: 500, originalMessage: 'The model stream failed.' })),
  });
}

const ROUTE = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens|invoke-with-bidirectional-stream)$/;
const GUARDRAIL_ROUTE = /^\/guardrail\/([^/]+)\/version\/[^/]+\/apply$/;

/** The route of a request and the id its path names (model, guardrail, invocation ARN; '' for none). */
function routeOf(method: string | undefined, path: string): { id: string; route: BedrockRequest['route'] } | undefined {
  if (method === 'GET') {
    if (path === '/async-invoke') return { id: '', route: 'list-async-invokes' };
    const arn = /^\/async-invoke\/([^/]+)$/.exec(path);
    return arn === null ? undefined : { id: arn[1]!, route: 'get-async-invoke' };
  }
  if (method !== 'POST') return undefined;
  if (path === '/async-invoke') return { id: '', route: 'start-async-invoke' };
  if (path === '/guardrail-checks/invoke') return { id: '', route: 'guardrail-checks' };
  const guardrail = GUARDRAIL_ROUTE.exec(path);
  if (guardrail !== null) return { id: guardrail[1]!, route: 'apply-guardrail' };
  const model = ROUTE.exec(path);
  return model === null ? undefined : { id: model[1]!, route: model[2] as BedrockRequest['route'] };
}

export async function startFakeBedrock(): Promise<FakeBedrock> {
  const queue: BedrockScenario[] = [];
  const requests: BedrockRequest[] = [];
  const received: string[] = [];
  const sessions = new Set<Http2Session>();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    received.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
    const bidi = routeOf(req.method, (req.url ?? '').split('?')[0]!);
    if (bidi?.route === 'invoke-with-bidirectional-stream') {
      const request: BedrockRequest = { path: (req.url ?? '').split('?')[0]!, method: req.method!, modelId: decodeURIComponent(bidi.id), route: bidi.route, headers: req.headers, rawBody: '', body: undefined, inputEvents: [] };
      requests.push(request);
      bidirectional(req, res, request, queue.shift() ?? {});
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '').split('?')[0]!;
      const match = routeOf(req.method, path);
      const requestId = randomUUID();
      const error = (status: number, type: string, message: string): void => {
        const body = JSON.stringify({ message });
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
        res.end(body);
      };
      if (match === undefined) {
        error(404, 'UnknownOperationException', 'Unknown operation');
        return;
      }
      let body: any;
      try {
        body = rawBody === '' ? undefined : JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const request: BedrockRequest = { path, method: req.method, modelId: decodeURIComponent(match.id), route: match.route, headers: req.headers, rawBody, body };
      requests.push(request);
      const scenario = queue.shift() ?? {};
      if (scenario.status !== undefined && scenario.status >= 300) {
        const message = typeof scenario.errorMessage === 'function' ? scenario.errorMessage(rawBody) : (scenario.errorMessage ?? 'fake bedrock error');
        error(scenario.status, scenario.errorType ?? ERROR_TYPES[scenario.status] ?? 'InternalServerException', message);
        return;
      }
      const answer = { ...defaultAnswer(request.route, request.modelId), ...scenario };
      if (request.route !== 'converse-stream' && request.route !== 'invoke-with-response-stream') {
        const text = JSON.stringify(answer.json);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': requestId });
        res.end(text);
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/vnd.amazon.eventstream',
        'x-amzn-requestid': requestId,
        ...(request.route === 'invoke-with-response-stream' ? { 'x-amzn-bedrock-content-type': 'application/json' } : {}),
      });
      void writeEvents(res, answer.events ?? [], scenario);
    });
  };
  const server = createServer(handle);
  // node:http's request and response have the members `handle` uses (the stream drop aside).
  const http1 = createHttp1Server(handle as unknown as Parameters<typeof createHttp1Server>[1]);
  const sockets = new Set<Socket>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  // One port for both protocols: an HTTP/2 connection opens with its preface ("PRI * HTTP/2.0").
  const listener = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const sniff = (): void => {
      const head: Buffer | null = socket.read(3);
      if (head === null) {
        socket.once('readable', sniff);
        return;
      }
      socket.unshift(head);
      (head.toString('latin1') === 'PRI' ? server : http1).emit('connection', socket);
    };
    socket.once('readable', sniff);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  return {
    url,
    clientConfig: { region: 'us-east-1', endpoint: url, credentials: { accessKeyId: 'AKIDFAKEFAKEFAKEFAKE', secretAccessKey: 'fake-secret-access-key' }, maxAttempts: 1 },
    requests,
    received,
    enqueue: (...scenarios) => queue.push(...scenarios),
    reset() {
      queue.length = 0;
      requests.length = 0;
      received.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        http1.close();
        for (const session of sessions) session.destroy();
        // server.close() waits for every connection, sessions or not.
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Writes `events` and ends the answer (unless `end` is false); false when the scenario broke it off. */
async function writeEvents(res: ServerResponse, events: Record<string, unknown>[], scenario: BedrockScenario, end = true): Promise<boolean> {
  for (let i = 0; i < events.length; i++) {
    if (scenario.failAfterEvents === i) {
      res.end(exceptionMessage());
      return false;
    }
    if (scenario.dropAfterEvents === i) {
      // The connection breaks mid-stream: the stream is reset, as a dropped connection would.
      res.stream.close(2 /* NGHTTP2_INTERNAL_ERROR */);
      return false;
    }
    if (res.destroyed) return false;
    res.write(eventMessage(events[i]!));
    if (scenario.eventDelayMs) await new Promise((resolve) => setTimeout(resolve, scenario.eventDelayMs));
  }
  if (end) res.end();
  return true;
}

/**
 * InvokeModelWithBidirectionalStream: the answer's headers go at once, then the client's input is
 * read as it arrives. Each input message is signed by the SDK (an outer message with `:date` and
 * `:chunk-signature` whose body is the event message); its `{"bytes": base64}` body holds the
 * client's JSON event. Once the client sent `answerAfter`, the scenario's events are written; the
 * answer ends when the input ends (or as the scenario breaks it off).
 */
function bidirectional(req: IncomingMessage, res: ServerResponse, request: BedrockRequest, scenario: BedrockScenario): void {
  if (scenario.status !== undefined && scenario.status >= 300) {
    const type = scenario.errorType ?? ERROR_TYPES[scenario.status] ?? 'InternalServerException';
    res.writeHead(scenario.status, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
    res.end(JSON.stringify({ message: typeof scenario.errorMessage === 'string' ? scenario.errorMessage : 'fake bedrock error' }));
    req.resume();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': randomUUID() });
  const trigger = scenario.answerAfter ?? 'promptEnd';
  let answer: Promise<boolean> | undefined;
  let pending = Buffer.alloc(0);
  req.on('data', (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 4 && pending.length >= pending.readUInt32BE(0)) {
      const length = pending.readUInt32BE(0);
      let message = codec.decode(pending.subarray(0, length));
      pending = pending.subarray(length);
      // An empty signed message closes the signed input (the SDK sends it when its input ends or fails).
      if (message.headers[':chunk-signature'] !== undefined && message.body.byteLength === 0) continue;
      if (message.headers[':chunk-signature'] !== undefined) message = codec.decode(message.body);
      const payload = JSON.parse(toUtf8(message.body)) as { bytes?: string };
      const text = Buffer.from(payload.bytes ?? '', 'base64').toString('utf8');
      let event: any;
      try {
        event = JSON.parse(text);
      } catch {
        // Not a JSON event (another model's protocol): kept as its base64.
        event = { raw: payload.bytes };
      }
      request.inputEvents!.push(event);
      if (answer === undefined && event?.event?.[trigger] !== undefined) answer = writeEvents(res, scenario.events ?? recordings.novaSonicCompletion, scenario, false);
    }
  });
  req.on('end', () => {
    request.inputEnded = 'end';
    void (answer ?? Promise.resolve(true)).then((finished) => {
      if (finished && !res.writableEnded && !res.destroyed) res.end();
    });
  });
  req.on('aborted', () => (request.inputEnded = 'aborted'));
}
