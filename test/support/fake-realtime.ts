/**
 * A local OpenAI Realtime server: TLS on loopback (the SDK always connects with wss://), the
 * WebSocket endpoint `/v1/realtime?model=...`, speaking the Realtime event protocol as the `openai`
 * 6.49 SDK types it (node_modules/openai/resources/realtime/realtime.d.ts: RealtimeServerEvent,
 * RealtimeResponse, RealtimeResponseUsage, ResponseOutputItemAddedEvent...): `session.created` at
 * connection, `session.updated`, `conversation.item.added`, `input_audio_buffer.committed`, and per
 * response `response.created`, `response.output_item.added`, `response.content_part.added`, the
 * deltas (`response.output_text.delta`, `response.output_audio.delta`,
 * `response.output_audio_transcript.delta`, `response.function_call_arguments.delta/.done`),
 * `response.output_item.done` and `response.done` with usage, or an `error` event naming the
 * client event it answers.
 *
 * What each response does is planned by the test (`plan`); the client events each connection
 * received are kept (`received`). The certificate is self-signed for 127.0.0.1, made by the
 * openssl CLI at start; clients trust it through `ca` (ws) or NODE_EXTRA_CA_CERTS (the global
 * WebSocket, in a child process).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';

// `ws` 8 (what OpenAIRealtimeWS itself uses); it ships no types.
const { WebSocketServer } = createRequire(join(__dirname, 'noop.js'))('ws') as { WebSocketServer: any };

export type ResponsePlan =
  | 'text' // two text deltas, completed
  | 'audio' // audio deltas and a transcript, completed
  | 'tool' // a function call, completed
  | 'failed' // response.done with status failed (server_error)
  | 'cancelled' // some text, then cancelled (turn_detected)
  | 'incomplete' // some text, then incomplete (max_output_tokens)
  | 'refused' // no response: an `error` event naming the response.create
  | 'close' // some text, then the server closes the socket mid-response
  | 'until-cancel'; // some text, then nothing until the client's response.cancel: cancelled (client_cancelled)

/** What each plan sends, for tests to compare hashes with. */
export const REPLY = {
  text: ['Hello', ' there'],
  audio: [Buffer.from('first audio chunk'), Buffer.from('second audio chunk')],
  transcript: ['Hi', ' you'],
  tool: { name: 'get_weather', call_id: 'call_1', arguments: '{"city":"Paris"}' },
};

/** Usage per plan, in RealtimeResponseUsage's shape. */
export const USAGE = {
  text: {
    total_tokens: 150,
    input_tokens: 120,
    output_tokens: 30,
    input_token_details: { text_tokens: 120, audio_tokens: 0, image_tokens: 0, cached_tokens: 20, cached_tokens_details: { text_tokens: 20, audio_tokens: 0, image_tokens: 0 } },
    output_token_details: { text_tokens: 30, audio_tokens: 0 },
  },
  audio: {
    total_tokens: 700,
    input_tokens: 300,
    output_tokens: 400,
    input_token_details: { text_tokens: 100, audio_tokens: 200, image_tokens: 0, cached_tokens: 50, cached_tokens_details: { text_tokens: 40, audio_tokens: 10, image_tokens: 0 } },
    output_token_details: { text_tokens: 50, audio_tokens: 350 },
  },
};

export interface FakeRealtime {
  /** The `baseURL` to give the OpenAI client (https://127.0.0.1:<port>/v1). */
  baseURL: string;
  port: number;
  /** The server's certificate (PEM), to trust it. */
  ca: string;
  caFile: string;
  /** What the next responses do, in order; empty: `text`. */
  plan: ResponsePlan[];
  /** The client events each connection received, in order, per connection. */
  received: unknown[][];
  /** The server events each connection sent, in order, per connection. */
  sent: unknown[][];
  /** The path and query string of each connection's handshake. */
  queries: string[];
  /** The server's voice activity detection: commits the audio buffer and starts a response by itself. */
  serverResponse(connection?: number): void;
  /** Closes connection `n` from the server side. */
  drop(connection: number, code?: number): void;
  reset(): void;
  close(): Promise<void>;
}

let certificate: { dir: string; key: string; cert: string } | undefined;

/** A self-signed certificate for 127.0.0.1 and localhost (made once per process). */
export function selfSigned(): { dir: string; key: string; cert: string } {
  if (certificate !== undefined) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'fake-realtime-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', 'key.pem', '-out', 'cert.pem'],
    { cwd: dir, stdio: 'pipe' },
  );
  certificate = { dir, key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  return certificate;
}

export async function startFakeRealtime(): Promise<FakeRealtime> {
  const { dir, key, cert } = selfSigned();
  const server = createServer({ key, cert });
  // Any path ending in /realtime: `/v1/realtime` (OpenAI), `/openai/realtime` (Azure OpenAI).
  const wss = new WebSocketServer({ server, verifyClient: (info: { req: { url?: string } }) => /\/realtime(\?|$)/.test(info.req.url ?? '') });
  const sockets: any[] = [];
  // Responses waiting for the client's response.cancel, by id.
  const cancels = new Map<string, () => void>();
  let counter = 0;
  const id = (prefix: string) => `${prefix}_${++counter}`;

  const fake: FakeRealtime = {
    baseURL: '',
    port: 0,
    ca: cert,
    caFile: join(dir, 'cert.pem'),
    plan: [],
    received: [],
    sent: [],
    queries: [],
    serverResponse(connection = sockets.length - 1) {
      const socket = sockets[connection];
      emit(socket, { type: 'input_audio_buffer.committed', item_id: id('item'), previous_item_id: null });
      respond(socket, undefined);
    },
    drop(connection, code = 1011) {
      sockets[connection]?.close(code, 'server going away');
    },
    reset() {
      fake.plan = [];
      fake.received = [];
      fake.sent = [];
      fake.queries = [];
    },
    async close() {
      for (const socket of sockets) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function emit(socket: any, event: Record<string, unknown>): void {
    if (socket.readyState !== 1) return;
    // A copy: the fake's own objects (the session) change afterwards.
    const full = JSON.parse(JSON.stringify({ event_id: id('event'), ...event }));
    fake.sent[sockets.indexOf(socket)]?.push(full);
    socket.send(JSON.stringify(full));
  }

  /** One response, as the plan says; `request`: the client's response.create (undefined when the server started it). */
  function respond(socket: any, request: Record<string, any> | undefined): void {
    const plan = fake.plan.shift() ?? 'text';
    if (plan === 'refused') {
      emit(socket, {
        type: 'error',
        error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response', message: 'Conversation already has an active response in progress', param: null, event_id: request?.event_id ?? null },
      });
      return;
    }
    const responseId = id('resp');
    const base = { object: 'realtime.response', id: responseId, conversation_id: 'conv_1', output_modalities: request?.response?.output_modalities ?? ['audio'], max_output_tokens: 'inf', metadata: null };
    emit(socket, { type: 'response.created', response: { ...base, status: 'in_progress', status_details: null, output: [], usage: null } });
    const itemId = id('item');
    const at = { response_id: responseId, item_id: itemId, output_index: 0, content_index: 0 };
    if (plan === 'tool') {
      const item = { id: itemId, object: 'realtime.item', type: 'function_call', status: 'in_progress', name: REPLY.tool.name, call_id: REPLY.tool.call_id, arguments: '' };
      emit(socket, { type: 'response.output_item.added', response_id: responseId, output_index: 0, item });
      emit(socket, { type: 'response.function_call_arguments.delta', ...at, call_id: REPLY.tool.call_id, delta: REPLY.tool.arguments.slice(0, 5) });
      emit(socket, { type: 'response.function_call_arguments.delta', ...at, call_id: REPLY.tool.call_id, delta: REPLY.tool.arguments.slice(5) });
      emit(socket, { type: 'response.function_call_arguments.done', ...at, call_id: REPLY.tool.call_id, name: REPLY.tool.name, arguments: REPLY.tool.arguments });
      const done = { ...item, status: 'completed', arguments: REPLY.tool.arguments };
      emit(socket, { type: 'response.output_item.done', response_id: responseId, output_index: 0, item: done });
      emit(socket, { type: 'response.done', response: { ...base, status: 'completed', status_details: null, output: [done], usage: USAGE.text } });
      return;
    }
    const item = { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'in_progress', content: [] };
    emit(socket, { type: 'response.output_item.added', response_id: responseId, output_index: 0, item });
    if (plan === 'audio') {
      emit(socket, { type: 'response.content_part.added', ...at, part: { type: 'audio', transcript: '' } });
      for (const chunk of REPLY.audio) emit(socket, { type: 'response.output_audio.delta', ...at, delta: chunk.toString('base64') });
      for (const delta of REPLY.transcript) emit(socket, { type: 'response.output_audio_transcript.delta', ...at, delta });
      emit(socket, { type: 'response.output_audio.done', ...at });
      const transcript = REPLY.transcript.join('');
      emit(socket, { type: 'response.output_audio_transcript.done', ...at, transcript });
      const done = { ...item, status: 'completed', content: [{ type: 'output_audio', transcript }] };
      emit(socket, { type: 'response.output_item.done', response_id: responseId, output_index: 0, item: done });
      emit(socket, { type: 'response.done', response: { ...base, status: 'completed', status_details: null, output: [done], usage: USAGE.audio } });
      return;
    }
    emit(socket, { type: 'response.content_part.added', ...at, part: { type: 'text', text: '' } });
    const deltas = plan === 'text' ? REPLY.text : REPLY.text.slice(0, 1);
    for (const delta of deltas) emit(socket, { type: 'response.output_text.delta', ...at, delta });
    if (plan === 'close') {
      socket.close(1011, 'internal error');
      return;
    }
    if (plan === 'until-cancel') {
      cancels.set(responseId, () => {
        const done = { ...item, status: 'incomplete', content: [{ type: 'output_text', text: deltas.join('') }] };
        emit(socket, { type: 'response.done', response: { ...base, status: 'cancelled', status_details: { type: 'cancelled', reason: 'client_cancelled' }, output: [done], usage: USAGE.text } });
      });
      return;
    }
    const text = deltas.join('');
    emit(socket, { type: 'response.output_text.done', ...at, text });
    const done = { ...item, status: plan === 'text' ? 'completed' : 'incomplete', content: [{ type: 'output_text', text }] };
    emit(socket, { type: 'response.output_item.done', response_id: responseId, output_index: 0, item: done });
    const details =
      plan === 'failed'
        ? { type: 'failed', error: { type: 'server_error', code: 'internal_error' } }
        : plan === 'cancelled'
          ? { type: 'cancelled', reason: 'turn_detected' }
          : plan === 'incomplete'
            ? { type: 'incomplete', reason: 'max_output_tokens' }
            : null;
    const status = plan === 'text' ? 'completed' : plan;
    emit(socket, { type: 'response.done', response: { ...base, status, status_details: details, output: [done], usage: USAGE.text } });
  }

  wss.on('connection', (socket: any, request: { url?: string }) => {
    const connection = sockets.length;
    sockets.push(socket);
    const events: unknown[] = [];
    fake.received[connection] = events;
    fake.sent[connection] = [];
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    fake.queries[connection] = url.pathname + url.search;
    const model = url.searchParams.get('model') ?? 'gpt-realtime';
    const session = { type: 'realtime', object: 'realtime.session', id: id('sess'), model, output_modalities: ['audio'], instructions: 'server default instructions', tools: [], tool_choice: 'auto', max_output_tokens: 'inf' };
    emit(socket, { type: 'session.created', session });
    socket.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString()) as Record<string, any>;
      events.push(event);
      switch (event.type) {
        case 'session.update':
          Object.assign(session, event.session ?? {});
          emit(socket, { type: 'session.updated', session });
          return;
        case 'conversation.item.create':
          emit(socket, { type: 'conversation.item.added', previous_item_id: null, item: { id: id('item'), ...event.item } });
          return;
        case 'input_audio_buffer.commit':
          emit(socket, { type: 'input_audio_buffer.committed', item_id: id('item'), previous_item_id: null });
          return;
        case 'input_audio_buffer.clear':
          emit(socket, { type: 'input_audio_buffer.cleared' });
          return;
        case 'response.create':
          respond(socket, event);
          return;
        case 'response.cancel':
          cancels.get(event.response_id)?.();
          cancels.delete(event.response_id);
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.baseURL = `https://127.0.0.1:${fake.port}/v1`;
  return fake;
}

/**
 * Starts the Realtime server for the test file and, before each test, clears it (and the spans of
 * `audit`, when given). Returns an accessor, valid once the file's tests run.
 */
export function useFakeRealtime(audit?: { reset(): void }): () => FakeRealtime {
  let fake: FakeRealtime | undefined;
  beforeAll(async () => {
    fake = await startFakeRealtime();
  });
  afterAll(() => fake?.close());
  beforeEach(() => {
    audit?.reset();
    fake?.reset();
  });
  return () => {
    if (fake === undefined) throw new Error('the fake Realtime server is not started yet (use it inside a test or hook)');
    return fake;
  };
}
