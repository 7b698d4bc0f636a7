/**
 * OpenAI Realtime sessions: `openai/realtime/ws` (OpenAIRealtimeWS, over the `ws` package) and
 * `openai/realtime/websocket` (OpenAIRealtimeWebSocket, over the global WebSocket of Node >= 22).
 * A session is not a method call that returns an answer: the application sends client events with
 * `send(event)` and listens to server events, for minutes. The audit makes:
 *
 *   - one record per model response, from the `response.create` the application sent (or the
 *     `response.created` the server's voice activity detection started) to its `response.done`:
 *     the model asked for and the one the server runs, the input the client sent for it (text items as they are, audio as the
 *     SHA-256 of its bytes, all under the keyed input hash; never in plaintext), the output it
 *     streamed (text, transcripts, audio digests, tool calls: the output hash), usage with its
 *     audio and cached parts, cost, and the response's status (completed, cancelled, failed,
 *     incomplete) and reason;
 *   - one record for the session itself: opened (who, from the audit context active when the
 *     client was constructed), closed (close code), model, number of responses, server errors.
 *
 * How it is reached, with nothing of the SDK replaced but two prototype methods:
 *   - `url` and `socket`, assigned one after the other by the SDK's constructor, get setters on the
 *     class prototype: the first announces the WebSocket handshake to the unaudited-request watcher
 *     (so an audited session is not reported as unaudited traffic) and opens the session record;
 *     the second watches the socket's `open` and `close`. `create()` and `azure()` construct the
 *     class by its own binding, so the constructor itself cannot be wrapped; the setters see every
 *     instance however it was made.
 *   - `send` is wrapped: client events are read, and the ones a guardrail must see (response.create)
 *     are held until the beforeRequest hook decided; events sent meanwhile wait behind them, in order.
 *   - `_emit` (the SDK's own dispatch to the application's listeners) is wrapped: every server event
 *     is observed once, already parsed, before the application's listeners get it, unchanged.
 *
 * What the application gets stays the SDK's: the same events, the same objects. A send the audit
 * refuses (a guardrail block, a failed redaction, LLM_AUDIT_ON_FAILURE=block) is reported the way
 * the SDK reports a send that failed: an `error` event (OpenAIRealtimeError, the audit's error as
 * its `cause`), or the SDK's unhandled rejection when the application listens to no `error`.
 */
import { context, diag, trace, type Attributes, type Context } from '@opentelemetry/api';
import { AudioDigest } from '../../core/audio';
import { AuditedCall, IN_HOOK, type AuditServices, type ServerInfo } from '../../core/audited-call';
import type { PatchTarget } from '../../core/provider';
import { ours, runBeforeRequest, sanitizeForCall, sanitizerBlocked } from '../../core/patch';
import type { OperationSpec, OutputPart, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import type { SanitizeLocationFinding } from '../../audit/sanitize';
import { onFailurePolicy, refusedWhileAuditUnavailable } from '../../audit/failure-policy';
import { auditErrorMessage, loggableError } from '../../audit/redact';
import { expectAuditedConnection } from '../../audit/unaudited/audited-call-marker';
import { LlmRequestBlockedError } from '../../guardrails';
import { endpointOf } from '../provider-hosts';
import * as A from '../../semconv';
import { responsesRequest } from './request';

type Obj = Record<string, any>;
type Services = () => AuditServices | undefined;

/** The Realtime client classes, by export name. */
export const REALTIME_CLIENTS = ['OpenAIRealtimeWS', 'OpenAIRealtimeWebSocket'] as const;

/** What the patch needs of a Realtime client class to audit it (checked by shape, as for the other methods). */
export function realtimeNeeds(moduleExports: any): Record<string, unknown> {
  const needs: Record<string, unknown> = {};
  for (const name of REALTIME_CLIENTS) {
    const proto = moduleExports?.[name]?.prototype;
    if (proto === undefined) continue;
    needs[`${name}.prototype.send`] = proto.send;
    needs[`${name}.prototype._emit`] = proto._emit;
    needs[`${name}.prototype._onError`] = proto._onError;
  }
  return needs;
}

/** The patch targets of a Realtime module: `send` of each client class it exports (the rest is installed beside it). */
export function realtimeTargets(moduleExports: any): PatchTarget[] {
  const targets: PatchTarget[] = [];
  for (const name of REALTIME_CLIENTS) {
    const proto = moduleExports?.[name]?.prototype;
    if (proto === undefined || proto === null) continue;
    targets.push({ proto, method: 'send', wrap: (services) => realtimeClient(proto, services) });
  }
  return targets;
}

const INSTALLED = Symbol.for('otel-llm-audit.realtime');
const sessions = new WeakMap<object, RealtimeSession>();

/**
 * Installs the `url`/`socket` setters and the `_emit` observer on a client class's prototype (once)
 * and returns the wrapper of its `send`. Disabled, each of them passes through.
 */
function realtimeClient(proto: Obj, services: Services): (original: (...args: any[]) => any) => (...args: any[]) => any {
  if (!Object.prototype.hasOwnProperty.call(proto, INSTALLED)) {
    Object.defineProperty(proto, INSTALLED, { value: true });
    ownField(proto, 'url', (instance, url) => sessionOpening(instance, url, services));
    ownField(proto, 'socket', (instance, socket) => sessions.get(instance)?.attach(socket));
    const emit = proto._emit as (this: Obj, name: string, ...args: unknown[]) => unknown;
    proto._emit = ours(function auditedEmit(this: Obj, name: string, ...args: unknown[]) {
      if (name === 'event') {
        const session = sessions.get(this);
        if (session !== undefined) {
          try {
            session.received(args[0]);
          } catch (error) {
            diag.error(`otel-llm-audit: could not observe a Realtime server event: ${loggableError(error, undefined)}`);
          }
        }
      }
      return emit.call(this, name, ...args);
    });
  }
  return (original) =>
    ours(function auditedRealtimeSend(this: Obj, event: unknown) {
      const session = sessions.get(this);
      if (session === undefined || services() === undefined) return original.call(this, event);
      session.send(event, (out) => original.call(this, out));
    });
}

/**
 * A setter on the prototype for a field the constructor assigns: the instance gets an ordinary own
 * data property holding the value (as plain assignment would make), then `seen` runs. Never throws.
 */
function ownField(proto: Obj, field: string, seen: (instance: Obj, value: unknown) => void): void {
  Object.defineProperty(proto, field, {
    configurable: true,
    get: () => undefined,
    set(this: Obj, value: unknown) {
      Object.defineProperty(this, field, { value, writable: true, enumerable: true, configurable: true });
      try {
        seen(this, value);
      } catch (error) {
        diag.error(`otel-llm-audit: could not set up the audit of a Realtime session: ${loggableError(error, undefined)}`);
      }
    },
  });
}

/** The constructor built the session's URL: the socket is created next. */
function sessionOpening(instance: Obj, url: unknown, services: Services): void {
  const shared = services();
  if (shared === undefined || !(url instanceof URL)) return;
  // Not a session inside another audited call: a Realtime client has no outer SDK call.
  const parent = context.active();
  sessions.set(instance, new RealtimeSession(shared, instance, url, parent));
}

// --- the operations ---------------------------------------------------------------------------------

/** One model response of a session. Its request: `{ model, instructions?, input: items }`, the Responses API's shape, walked alike. */
const realtimeResponse: OperationSpec = {
  provider: 'openai',
  operationName: 'chat',
  action: 'realtime.response',
  requestKind: responsesRequest,
  prompt: (params) => responsesRequest.prompt(params),
  isStream: () => true,
  requestAttributes(params, attributes) {
    attributes[A.ATTR_AUDIT_REALTIME_TRIGGER] = params.trigger;
    attributes[A.ATTR_AUDIT_REALTIME_SESSION_REQUEST_ID] = params.session;
    const modalities = params.response?.output_modalities;
    if (Array.isArray(modalities) && modalities.length === 1) attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = modalities[0] === 'audio' ? 'speech' : 'text';
    const max = params.response?.max_output_tokens;
    if (typeof max === 'number') attributes[A.ATTR_GEN_AI_REQUEST_MAX_TOKENS] = max;
  },
  summarize: () => ({}),
  accumulator: (params) => new ResponseAccumulator(params.served),
};

/** The session itself: no prompt, no output; its summary is the facts of its life (see RealtimeSession.close). */
const realtimeSession: OperationSpec = {
  provider: 'openai',
  operationName: 'realtime_session',
  action: 'realtime.session',
  requestKind: responsesRequest,
  prompt: () => ({}),
  isStream: () => false,
  requestAttributes: () => undefined,
  summarize: (facts) => facts as ResponseSummary,
  accumulator: () => {
    throw new Error('a Realtime session record does not stream');
  },
  // Its responses carry the cost; a cost here would count it twice.
  pricing: { unpriced: 'a Realtime session is priced by the records of its responses' },
};

/** A failure the Realtime server reported (an `error` event, a `failed` response) or the socket's end. */
class RealtimeAuditError extends Error {
  override name = 'RealtimeError';
  /** The server's error body, where it sent one (`error.type` of the record comes from it, as from the SDK's OpenAIRealtimeError). */
  readonly error: { type?: string; code?: string } | undefined;
  constructor(message: string, type?: unknown, code?: unknown) {
    super(message);
    if (typeof type === 'string' || typeof code === 'string') {
      this.error = { type: typeof type === 'string' ? type : undefined, code: typeof code === 'string' ? code : undefined };
    }
  }
}

// --- one session -------------------------------------------------------------------------------------

interface Waiting {
  call: AuditedCall;
  eventId: string | undefined;
}

class RealtimeSession {
  private readonly call: AuditedCall;
  /** The context the responses' records start in: the opener's, with the session's span. */
  private readonly parent: Context;
  private readonly server: ServerInfo;
  /** The model the client asked for: the URL's `model` (Azure: the deployment), or its session.update's. */
  private model: string | undefined;
  /** The model the server says the session runs (session.created/updated): the responses' model, which prices them. */
  private served: string | undefined;
  /** The `instructions` of the client's last session.update: the system prompt of what follows. */
  private instructions: unknown;
  /** Items the client added since the last response took the conversation (audio as digests). */
  private input: unknown[] = [];
  private findings: SanitizeLocationFinding[] = [];
  /** Audio appended since the last commit or clear. */
  private audio = new AudioDigest();
  /** response.create sent, response.created not yet seen: oldest first (the server answers in order). */
  private readonly waiting: Waiting[] = [];
  private readonly active = new Map<string, AuditedCall>();
  /** Server-started responses a guardrail blocked, cancelled, by id: their records end as blocked. */
  private readonly blocked = new Map<string, unknown>();
  private responses = 0;
  private errors = 0;
  private refused = 0;
  private socket: any;
  private open = false;
  private closed = false;
  /** Sends waiting for a guardrail's decision on an earlier one, in order; undefined when none waits. */
  private held: Held[] | undefined;
  /** The held sends being sent now: one the application makes meanwhile (from an `error` listener) goes behind them. */
  private draining: Held[] | undefined;
  private withdraw: () => void;

  constructor(
    private readonly services: AuditServices,
    private readonly client: Obj,
    url: URL,
    opener: Context,
  ) {
    this.model = url.searchParams.get('model') ?? url.searchParams.get('deployment') ?? undefined;
    this.server = realtimeServer(url);
    this.call = new AuditedCall(services, realtimeSession, { model: this.model }, realtimeSession.action, this.server, opener);
    this.parent = trace.setSpan(opener, this.call.traceSpan);
    // Before the socket exists: its handshake is this audited session's, not unaudited traffic.
    this.withdraw = expectAuditedConnection(url);
    // The constructor assigns the socket right after the URL; if it threw in between (no global
    // WebSocket on Node 20, a bad option), there is no session to wait for.
    queueMicrotask(() => {
      if (this.socket === undefined) this.close(undefined);
    });
  }

  /** The SDK created the socket (`ws` WebSocket or the global WebSocket). */
  attach(socket: any): void {
    this.socket = socket;
    if (typeof socket?.on === 'function') {
      socket.on('open', () => this.opened());
      socket.on('close', (code: unknown) => this.close(code));
    } else if (typeof socket?.addEventListener === 'function') {
      socket.addEventListener('open', () => this.opened());
      socket.addEventListener('close', (event: { code?: unknown }) => this.close(event?.code));
    } else {
      diag.error('otel-llm-audit: a Realtime client socket of an unknown kind: the session record ends only at shutdown');
    }
  }

  private opened(): void {
    this.open = true;
    this.withdraw();
  }

  // --- client events ---

  /** The application sent `event`; `send` sends it through the SDK. */
  send(event: unknown, send: (event: unknown) => void): void {
    const behind = this.held ?? this.draining;
    if (behind !== undefined) {
      behind.push({ event, send });
      return;
    }
    this.dispatch(event, send);
  }

  private dispatch(event: unknown, send: (event: unknown) => void): void {
    let prepared: Prepared;
    try {
      prepared = this.prepare(event);
    } catch (error) {
      diag.error(`otel-llm-audit: could not read a Realtime client event: ${loggableError(error, undefined)}`);
      send(event);
      return;
    }
    if ('refused' in prepared) {
      this.refuse(prepared.refused);
      return;
    }
    const { out, gate, call, eventId } = prepared;
    if (gate === undefined) {
      this.sent(out, send, call, eventId);
      return;
    }
    this.held = [];
    gate
      .then(
        () => this.sent(out, send, call, eventId),
        (error: unknown) => {
          call?.fail(error);
          this.refuse(error);
        },
      )
      .catch((error: unknown) => diag.error(`otel-llm-audit: could not send a held Realtime event: ${loggableError(error, undefined)}`))
      .finally(() => this.release());
  }

  /** Sends the events held behind a decision, in order, until one is held again. Never throws. */
  private release(): void {
    const queue = this.held ?? [];
    this.held = undefined;
    this.draining = queue;
    while (queue.length > 0 && this.held === undefined) {
      const next = queue.shift()!;
      try {
        this.dispatch(next.event, next.send);
      } catch (error) {
        diag.error(`otel-llm-audit: could not send a held Realtime event: ${loggableError(error, undefined)}`);
      }
    }
    this.draining = undefined;
    // Held again: the rest waits behind that decision, before what was sent since.
    if (queue.length > 0) this.held!.unshift(...queue);
  }

  private sent(event: unknown, send: (event: unknown) => void, call: AuditedCall | undefined, eventId: string | undefined): void {
    // The SDK reports a send on a socket that is not open as an error, and nothing goes out.
    const notOpen = this.closed || (this.socket !== undefined && this.socket.readyState !== 1);
    send(event);
    if (call === undefined) return;
    if (notOpen) call.fail(new RealtimeAuditError('the response was not requested: the Realtime socket was not open'));
    else this.waiting.push({ call, eventId });
  }

  /** Says why a send was refused, the way the SDK says a send failed. */
  private refuse(error: unknown): void {
    this.refused++;
    const message = error instanceof Error ? error.message : String(error);
    try {
      this.client._onError(null, `otel-llm-audit refused to send this event: ${message}`, error);
    } catch (failure) {
      diag.error(`otel-llm-audit: could not report a refused Realtime event: ${loggableError(failure, undefined)}`);
    }
  }

  private prepare(event: unknown): Prepared {
    const e = event as Obj | null;
    switch (e?.type) {
      case 'session.update':
        return this.sessionUpdate(e);
      case 'conversation.item.create':
        return this.itemCreate(e);
      case 'input_audio_buffer.append':
        return this.audioAppend(e);
      case 'input_audio_buffer.commit':
        this.commitAudio();
        return { out: event };
      case 'input_audio_buffer.clear':
        this.audio = new AudioDigest();
        return { out: event };
      case 'response.create':
        return this.responseCreate(e);
      default:
        return { out: event };
    }
  }

  private sessionUpdate(event: Obj): Prepared {
    const session = event.session;
    if (typeof session?.model === 'string') this.model = session.model;
    if (session === null || typeof session !== 'object' || session.instructions === undefined) return { out: event };
    const scanned = this.scan({ instructions: session.instructions });
    if (scanned.failed !== undefined) return { refused: sanitizerBlocked(this.call, scanned.failed) };
    this.instructions = scanned.params.instructions;
    this.findings.push(...scanned.findings);
    const out = scanned.params.instructions === session.instructions ? event : { ...event, session: { ...session, instructions: scanned.params.instructions } };
    return { out };
  }

  private itemCreate(event: Obj): Prepared {
    if (event.item === null || typeof event.item !== 'object') return { out: event };
    if (hasAudio(event.item)) {
      const refusal = this.unredactable();
      if (refusal !== undefined) return refusal;
    }
    const scanned = this.scan({ input: [event.item] });
    if (scanned.failed !== undefined) return { refused: sanitizerBlocked(this.call, scanned.failed) };
    const item = (scanned.params.input as unknown[])[0] as Obj;
    this.input.push(withAudioDigests(item));
    this.findings.push(...scanned.findings);
    return { out: item === event.item ? event : { ...event, item } };
  }

  private audioAppend(event: Obj): Prepared {
    const refusal = this.unredactable();
    if (refusal !== undefined) return refusal;
    if (typeof event.audio === 'string') this.audio.update(event.audio);
    return { out: event };
  }

  /** Audio cannot be redacted: under redact mode it goes out as it is, unless LLM_AUDIT_ON_FAILURE=block refuses it. */
  private unredactable(): { refused: Error } | undefined {
    if (this.services.sanitize?.mode !== 'redact') return undefined;
    if (onFailurePolicy() !== 'block') {
      warnOnce('otel-llm-audit: Realtime audio cannot be redacted (LLM_AUDIT_SANITIZE=redact); it is sent as it is. LLM_AUDIT_ON_FAILURE=block refuses it instead.');
      return undefined;
    }
    if (this.refused === 0) this.call.addGuardrail({ name: 'sanitizer', action: 'blocked', category: 'not_redactable' });
    return {
      refused: new LlmRequestBlockedError(
        'Realtime audio cannot be redacted, and LLM_AUDIT_SANITIZE=redact with LLM_AUDIT_ON_FAILURE=block refuses what cannot be; the audio was not sent',
        this.call.requestId,
        { name: 'sanitizer', action: 'blocked', category: 'not_redactable' },
      ),
    };
  }

  private commitAudio(): void {
    const part = this.audio.part();
    this.audio = new AudioDigest();
    if (part !== undefined) this.input.push({ type: 'message', role: 'user', content: [part] });
  }

  private responseCreate(event: Obj): Prepared {
    const response: Obj = event.response !== null && typeof event.response === 'object' ? event.response : {};
    const scanned = this.scan({ instructions: response.instructions, input: response.input });
    const out =
      scanned.params.instructions === response.instructions && scanned.params.input === response.input
        ? event
        : { ...event, response: { ...response, instructions: scanned.params.instructions, input: scanned.params.input } };
    // `input` on the response makes a context of its own; without it the response reads the conversation.
    const own = Array.isArray(response.input) ? (scanned.params.input as unknown[]).map((item) => withAudioDigests(item as Obj)) : undefined;
    const findings = own !== undefined ? scanned.findings : [...this.findings, ...scanned.findings];
    const input = own ?? this.takeInput();
    const call = this.startResponse('client', input, scanned.params.instructions ?? this.instructions, response, findings);
    const hook = this.parent.getValue(IN_HOOK) === true ? undefined : this.services.hooks?.beforeRequest;
    // As for any call: a failed redaction refuses it, then the audit's availability, then the hook.
    const gate =
      (scanned.failed !== undefined ? Promise.reject(sanitizerBlocked(call.audited, scanned.failed)) : undefined) ??
      refusedWhileAuditUnavailable() ??
      (hook === undefined ? undefined : runBeforeRequest(call.audited, hook, call.params));
    if (gate !== undefined && own === undefined) {
      // Blocked, the input stays in the conversation: the next response reads it, and its hook sees it again.
      gate.catch(() => {
        this.input = [...(input as unknown[]), ...this.input];
        this.findings = [...findings, ...this.findings];
      });
    }
    return { out, gate, call: call.audited, eventId: typeof event.event_id === 'string' ? event.event_id : undefined };
  }

  /** The pending input, taken by a response that reads the conversation. */
  private takeInput(): unknown[] {
    const input = this.input;
    this.input = [];
    this.findings = [];
    return input;
  }

  /**
   * Scans (and under redact mode rewrites) the text of a client event, in the Responses API shape
   * its items share. A failed redaction refuses the event, as a failed redaction refuses a call.
   */
  private scan(params: Obj): { params: Obj; findings: SanitizeLocationFinding[]; failed?: unknown } {
    const settings = this.services.sanitize;
    if (settings === undefined) return { params, findings: [] };
    const scanned = sanitizeForCall(settings, realtimeResponse, params);
    if (scanned?.failed !== undefined) return { params, findings: [], failed: scanned.failed };
    return { params: (scanned?.result?.params as Obj | undefined) ?? params, findings: scanned?.result?.findings ?? [] };
  }

  private startResponse(trigger: 'client' | 'server', input: unknown[], instructions: unknown, response: Obj, findings: SanitizeLocationFinding[]): { audited: AuditedCall; params: Obj } {
    // `served` is read when the response ends: a response.create may go out before session.created arrives.
    const params: Obj = { model: this.model, input, trigger, session: this.call.requestId, response, served: () => this.served };
    if (instructions !== undefined) params.instructions = instructions;
    const call = new AuditedCall(this.services, realtimeResponse, params, realtimeResponse.action, this.server, this.parent);
    const mode = this.services.sanitize?.mode;
    if (mode !== undefined) call.recordSanitization(mode, { params, findings, total: findings.reduce((sum, f) => sum + f.count, 0) });
    this.responses++;
    return { audited: call, params };
  }

  // --- server events ---

  /** A server event the SDK is about to hand to the application's listeners. */
  received(event: unknown): void {
    const e = event as Obj | null;
    if (e === null || typeof e !== 'object') return;
    switch (e.type) {
      case 'session.created':
      case 'session.updated':
        if (typeof e.session?.model === 'string') this.served = e.session.model;
        return;
      case 'input_audio_buffer.committed':
        // The server's voice activity detection committed the buffer (a client commit did already).
        this.commitAudio();
        return;
      case 'input_audio_buffer.cleared':
        this.audio = new AudioDigest();
        return;
      case 'response.created':
        this.responseCreated(e);
        return;
      case 'response.done':
        this.responseDone(e);
        return;
      case 'error':
        this.serverError(e);
        return;
      default: {
        const id = e.response_id;
        if (typeof id === 'string') this.active.get(id)?.onChunk(e);
      }
    }
  }

  private responseCreated(event: Obj): void {
    const id = event.response?.id;
    const requested = this.waiting.shift()?.call;
    // A response the server started by itself (voice activity detection) reads the conversation.
    const started = requested === undefined ? this.startResponse('server', this.takeInput(), this.instructions, event.response ?? {}, []) : undefined;
    const call = requested ?? started!.audited;
    call.onChunk(event);
    if (typeof id !== 'string') {
      call.fail(new RealtimeAuditError('response.created carried no response id: the response cannot be followed'));
      return;
    }
    this.active.set(id, call);
    if (started !== undefined) this.guardServerResponse(id, started.audited, started.params);
  }

  /**
   * A response the server started cannot be held before it runs: the beforeRequest hook sees it as
   * it starts, and a block cancels it (`response.cancel`, sent through the client) and is reported
   * like a refused send; its record ends as `blocked` when the server confirms the cancellation.
   */
  private guardServerResponse(id: string, call: AuditedCall, params: Obj): void {
    const hook = this.parent.getValue(IN_HOOK) === true ? undefined : this.services.hooks?.beforeRequest;
    if (hook === undefined) return;
    runBeforeRequest(call, hook, params)?.catch((error: unknown) => {
      if (!this.active.has(id)) {
        diag.error('otel-llm-audit: a beforeRequest hook blocked a Realtime response the server started, after it had ended');
        return;
      }
      this.blocked.set(id, error);
      this.client.send({ type: 'response.cancel', response_id: id });
      this.refuse(error);
    });
  }

  private responseDone(event: Obj): void {
    const response = event.response ?? {};
    const call = this.active.get(response.id);
    if (call === undefined) return;
    this.active.delete(response.id);
    call.onChunk(event);
    const blocked = this.blocked.get(response.id);
    if (blocked !== undefined) {
      this.blocked.delete(response.id);
      call.fail(blocked, A.STREAM_OUTCOME.abandoned);
      return;
    }
    switch (response.status) {
      case 'failed': {
        const error = response.status_details?.error ?? {};
        call.fail(new RealtimeAuditError(`the response failed${error.code ? `: ${error.code}` : ''}`, error.type, error.code), A.STREAM_OUTCOME.errored);
        return;
      }
      case 'cancelled':
        call.endStream(A.STREAM_OUTCOME.abandoned);
        return;
      default:
        call.endStream(A.STREAM_OUTCOME.completed);
    }
  }

  /** An `error` event: the failure of the response.create it names, else one of the session. */
  private serverError(event: Obj): void {
    const error = event.error ?? {};
    const failure = new RealtimeAuditError(typeof error.message === 'string' ? error.message : 'Realtime error', error.type, error.code);
    const index = typeof error.event_id === 'string' ? this.waiting.findIndex((w) => w.eventId === error.event_id) : -1;
    if (index >= 0) {
      const [failed] = this.waiting.splice(index, 1);
      failed!.call.fail(failure);
      return;
    }
    this.errors++;
    const attributes: Attributes = { [A.ATTR_ERROR_TYPE]: error.code ?? error.type ?? 'RealtimeError', [A.ATTR_AUDIT_ERROR_MESSAGE]: auditErrorMessage(failure, this.input) };
    if (this.call.acceptsEvents) this.call.span.addEvent(A.EVENT_AUDIT_REALTIME_ERROR, attributes);
  }

  /** The socket closed: every response still open ends, then the session's record. */
  private close(code: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.withdraw();
    const why = this.open ? `the Realtime session closed (code ${String(code)}) before the response was done` : 'the Realtime connection could not be opened';
    for (const { call } of this.waiting.splice(0)) call.fail(new RealtimeAuditError(why), A.STREAM_OUTCOME.errored);
    for (const call of this.active.values()) call.fail(new RealtimeAuditError(why), A.STREAM_OUTCOME.errored);
    this.active.clear();
    const attributes: Attributes = {
      [A.ATTR_AUDIT_REALTIME_RESPONSES]: this.responses,
      [A.ATTR_AUDIT_REALTIME_ERRORS]: this.errors,
      [A.ATTR_AUDIT_REALTIME_REFUSED]: this.refused,
    };
    if (typeof code === 'number') attributes[A.ATTR_AUDIT_REALTIME_CLOSE_CODE] = code;
    const facts: ResponseSummary = { attributes };
    if (this.served !== undefined) facts.model = this.served;
    if (this.open) this.call.completeWith(facts);
    else {
      this.call.span.setAttributes(attributes);
      this.call.fail(new RealtimeAuditError(why));
    }
  }
}

/**
 * Where a session's socket goes, and to whom: the host's provider (provider-hosts.ts), else Azure
 * OpenAI when the URL is an Azure deployment's (`deployment` and `api-version`, the only shape
 * AzureOpenAI builds; the client class is not at hand here), else the SDK's.
 */
function realtimeServer(url: URL): ServerInfo {
  const https = new URL(url.href);
  https.protocol = url.protocol === 'ws:' ? 'http:' : 'https:';
  https.search = '';
  const server = endpointOf({ baseURL: https.href });
  const apiVersion = url.searchParams.get('api-version');
  if (server.provider !== undefined || apiVersion === null || !url.searchParams.has('deployment')) return server;
  return { ...server, provider: 'azure.ai.openai', attributes: { [A.ATTR_AUDIT_AZURE_OPENAI_API_VERSION]: apiVersion } };
}

type Held = { event: unknown; send: (event: unknown) => void };
type Prepared = { out: unknown; gate?: Promise<void>; call?: AuditedCall; eventId?: string } | { refused: unknown };

// --- input and output -----------------------------------------------------------------------------------

function hasAudio(item: Obj): boolean {
  return Array.isArray(item.content) && item.content.some((part: Obj) => part?.type === 'input_audio' && typeof part.audio === 'string');
}

/** An item as the input hash covers it: inline audio replaced by its digest. */
function withAudioDigests(item: Obj): Obj {
  if (!hasAudio(item)) return item;
  return {
    ...item,
    content: item.content.map((part: Obj) => {
      if (part?.type !== 'input_audio' || typeof part.audio !== 'string') return part;
      const digest = new AudioDigest();
      digest.update(part.audio);
      return digest.part();
    }),
  };
}

interface OutputItem {
  type: string;
  role: string;
  name?: string;
  callId?: string;
  arguments: string;
  /** Content parts by content_index. */
  parts: Map<number, { text: string; transcript: string; audio?: AudioDigest }>;
}

/** Folds one response's server events into its summary: what the application received, as it arrived. */
class ResponseAccumulator implements StreamAccumulator {
  /** `served`: the model the server says the session runs, once it said so. */
  constructor(private readonly served: () => string | undefined) {}
  private id: string | undefined;
  private done: Obj | undefined;
  private readonly items = new Map<string, OutputItem>();

  onChunk(chunk: unknown): void {
    const e = chunk as Obj;
    switch (e.type) {
      case 'response.created':
        if (typeof e.response?.id === 'string') this.id = e.response.id;
        return;
      case 'response.output_item.added':
      case 'response.output_item.done':
        this.item(e.item?.id, e.item);
        return;
      // The GA protocol's names, then the beta's (openai/beta/realtime, `OpenAI-Beta: realtime=v1`).
      case 'response.output_text.delta':
      case 'response.text.delta':
        if (typeof e.delta === 'string') this.part(e).text += e.delta;
        return;
      case 'response.output_audio_transcript.delta':
      case 'response.audio_transcript.delta':
        if (typeof e.delta === 'string') this.part(e).transcript += e.delta;
        return;
      case 'response.output_audio.delta':
      case 'response.audio.delta':
        if (typeof e.delta === 'string') (this.part(e).audio ??= new AudioDigest()).update(e.delta);
        return;
      case 'response.function_call_arguments.delta':
        if (typeof e.delta === 'string') this.item(e.item_id).arguments += e.delta;
        return;
      case 'response.function_call_arguments.done': {
        const item = this.item(e.item_id);
        if (typeof e.arguments === 'string') item.arguments = e.arguments;
        if (typeof e.name === 'string') item.name = e.name;
        if (typeof e.call_id === 'string') item.callId = e.call_id;
        return;
      }
      case 'response.done':
        this.done = e.response;
        if (typeof e.response?.id === 'string') this.id = e.response.id;
    }
  }

  private item(id: unknown, from?: Obj): OutputItem {
    const key = typeof id === 'string' ? id : '';
    let item = this.items.get(key);
    if (item === undefined) {
      item = { type: 'message', role: 'assistant', arguments: '', parts: new Map() };
      this.items.set(key, item);
    }
    if (from !== undefined && from !== null) {
      if (typeof from.type === 'string') item.type = from.type;
      if (typeof from.role === 'string') item.role = from.role;
      if (typeof from.name === 'string') item.name = from.name;
      if (typeof from.call_id === 'string') item.callId = from.call_id;
      if (typeof from.arguments === 'string' && from.arguments !== '') item.arguments = from.arguments;
    }
    return item;
  }

  private part(event: Obj): { text: string; transcript: string; audio?: AudioDigest } {
    const parts = this.item(event.item_id).parts;
    const index = typeof event.content_index === 'number' ? event.content_index : 0;
    let part = parts.get(index);
    if (part === undefined) {
      part = { text: '', transcript: '' };
      parts.set(index, part);
    }
    return part;
  }

  summary(): ResponseSummary {
    const parts: OutputPart[] = [];
    const toolNames: string[] = [];
    const toolCallIds: string[] = [];
    for (const item of this.items.values()) {
      if (item.type === 'function_call') {
        parts.push({ type: 'tool_call', id: item.callId, name: item.name ?? '', arguments: item.arguments });
        toolNames.push(item.name ?? '');
        toolCallIds.push(item.callId ?? '');
        continue;
      }
      for (const index of [...item.parts.keys()].sort((a, b) => a - b)) {
        const part = item.parts.get(index)!;
        if (part.text !== '') parts.push({ type: 'text', content: part.text });
        const audio = part.audio?.part();
        if (audio !== undefined) parts.push(audio);
        // What the audio says, as the server transcribed it: text the application received too.
        if (part.transcript !== '') parts.push({ type: 'text', content: part.transcript });
      }
    }
    const done = this.done;
    const status: unknown = done?.status;
    const reason: unknown = done?.status_details?.reason;
    const attributes: Attributes = {};
    if (typeof status === 'string') attributes[A.ATTR_AUDIT_REALTIME_RESPONSE_STATUS] = status;
    if (typeof reason === 'string') attributes[A.ATTR_AUDIT_REALTIME_STATUS_REASON] = reason;
    const finish = typeof reason === 'string' ? reason : typeof status === 'string' ? status : undefined;
    const summary: ResponseSummary = { attributes, usage: usageOf(done?.usage) };
    if (this.id !== undefined) summary.id = this.id;
    const model = this.served();
    if (model !== undefined) summary.model = model;
    if (finish !== undefined) summary.finishReasons = [finish];
    if (parts.length > 0) summary.output = [{ role: 'assistant', parts, ...(finish !== undefined ? { finish_reason: finish } : {}) }];
    if (toolNames.length > 0) {
      summary.toolNames = toolNames;
      summary.toolCallIds = toolCallIds;
    }
    return summary;
  }
}

/** Realtime usage: `input_tokens` include the cached and the audio/image ones, `output_tokens` the audio ones. */
function usageOf(usage: Obj | null | undefined): TokenUsage | undefined {
  if (usage === null || typeof usage !== 'object') return undefined;
  const count = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
  const input = usage.input_token_details ?? {};
  const cached = input.cached_tokens_details ?? {};
  const output = usage.output_token_details ?? {};
  return {
    input: count(usage.input_tokens),
    output: count(usage.output_tokens),
    cacheRead: count(input.cached_tokens),
    modalities: {
      inputAudio: count(input.audio_tokens),
      cacheReadAudio: count(cached.audio_tokens),
      outputAudio: count(output.audio_tokens),
      inputImage: count(input.image_tokens),
      cacheReadImage: count(cached.image_tokens),
    },
  };
}

let warned = false;
function warnOnce(line: string): void {
  if (warned) return;
  warned = true;
  diag.warn(line);
}
