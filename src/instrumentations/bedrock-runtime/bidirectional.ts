/**
 * `InvokeModelWithBidirectionalStream` (Amazon Nova Sonic speech to speech, and any model the
 * bidirectional API serves): one HTTP/2 request whose body is the application's async iterable of
 * input events (`{ chunk: { bytes } }`, each the JSON of one event: sessionStart, promptStart,
 * contentStart, textInput, audioInput, toolResult, contentEnd, promptEnd, sessionEnd) and whose
 * answer is an async iterable of output events (completionStart, contentStart, textOutput,
 * audioOutput, toolUse, contentEnd, usageEvent, completionEnd).
 *
 * ONE RECORD PER SESSION (one `send`), not per completion: the usage the service reports is a
 * running total over the session (usageEvent `details.total`), the input is one stream that the
 * completions share (what the user said is answered by whichever completion the model starts), and
 * the session is the unit the application opens, pays for and ends. The record carries:
 *   - the input as sent: text (textInput, toolResult) under the keyed input hash, system text under
 *     the system prompt hash, audio as the SHA-256 of its bytes per content block (blob_digest),
 *     in the conventions' message shape, one message per content block (role from contentStart);
 *   - the output as it arrived: one message per output content block (the ASR transcript of the
 *     user's speech as role `user`, the assistant's speculative and final text, audio digests,
 *     tool uses), under the output hash; the completions' stop reasons as finish reasons;
 *   - usage from the last usageEvent (speech tokens as the audio part of each count), priced
 *     where the price data knows the model; the session id as the response id;
 *   - how it ended: completed, abandoned (the application stopped reading), aborted, or errored
 *     (an exception event of the stream, which the SDK throws, or a broken connection).
 *
 * The input iterable is wrapped (the application's own is never changed) so that each event is
 * read as the SDK sends it. Redact mode rewrites the text of textInput and toolResult events
 * before they are signed and sent; audio cannot be redacted: sent as it is with a diag warning, or
 * refused under LLM_AUDIT_ON_FAILURE=block (which also refuses every event once the audit trail
 * cannot be written, as it refuses new calls). The beforeRequest hook runs when the session opens (its
 * params: `modelId` and `body`, the iterable, no content yet) and again for each text event
 * (`{ modelId, event }`, the event as it will be sent). A refusal (a block, a failed redaction,
 * unredactable audio or an unavailable audit trail under block) ends the input: nothing more is sent, the record ends as
 * blocked, and the application gets the refusal through the SDK's own error path: `send` rejects
 * (the SDK's "Pipeline error" with the refusal as its `cause`) when the answer has not started,
 * and otherwise the answer is aborted and its next read rejects with the refusal itself.
 */
import { diag, type Attributes } from '@opentelemetry/api';
import type { AuditedCall } from '../../core/audited-call';
import { AudioDigest, unredactableAudio } from '../../core/audio';
import { runBeforeRequest, sanitizeForCall, sanitizerBlocked } from '../../core/patch';
import type { OperationSpec, OutputMessage, OutputPart, RequestWalker, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { definedNumber, setRequestSettings } from '../../core/values';
import type { GenAIInputMessage, GenAIPart } from '../../audit/content/genai-messages';
import { refusedWhileAuditUnavailable } from '../../audit/failure-policy';
import { loggableError } from '../../audit/redact';
import * as A from '../../semconv';
import { isObj, type Obj } from './converse';
import { decodeJson } from './invoke-model';

const sessions = new WeakMap<object, BidirectionalSession>();

/** The session of a call, or of the params it was made with (the route sends its input, the adapter guards its answer). */
export function bidirectionalSessionOf(callOrParams: object): BidirectionalSession | undefined {
  return sessions.get(callOrParams);
}

/**
 * The text of one client event, for the sanitizer: textInput's `content`, toolResult's `content`
 * (a JSON document in a string). The session's own params (`modelId`, `body`) hold none: its
 * content is read event by event as it is sent. Content capture reads what the session collected.
 */
const clientEvent: RequestWalker = {
  sanitize(w, event) {
    if (isObj(event['textInput'])) return w.field(event, 'textInput', (e) => w.textField(e as Obj, 'content'));
    if (isObj(event['toolResult'])) return w.field(event, 'toolResult', (e) => w.jsonField(e as Obj, 'content'));
    return event;
  },
  content: (params) => sessions.get(params)?.inputContent() ?? { input_messages: [] },
};

export const bidirectionalStream: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.bedrock,
  operationName: 'chat',
  action: 'InvokeModelWithBidirectionalStream',
  requestKind: clientEvent,
  isStream: () => true,
  requestModel: (params) => (typeof params?.modelId === 'string' ? params.modelId : undefined),
  // The inference settings arrive with sessionStart, after the call started: in the summary.
  requestAttributes: () => undefined,
  // The input is hashed when the session ends (BidirectionalSession.summary).
  prompt: () => ({}),
  summarize: () => ({}),
  accumulator(params, call) {
    // Only an AuditedCall makes this accumulator, and it passes itself.
    const session = new BidirectionalSession(call!, typeof params?.modelId === 'string' ? params.modelId : undefined);
    if (isObj(params)) sessions.set(params, session);
    if (call !== undefined) sessions.set(call, session);
    return session;
  },
};

interface InputBlock {
  role: string;
  parts: GenAIPart[];
  text: string;
  audio?: AudioDigest;
  toolUseId?: string;
}

interface OutputBlock {
  role: string;
  text: string;
  audio?: AudioDigest;
  tool?: { id?: string; name: string; arguments?: string };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** Follows one session: its input as the SDK sends it, its answer as the application reads it. */
export class BidirectionalSession implements StreamAccumulator {
  /** Set when the audit refused an input event: the answer's next read rejects with it. */
  refusal: unknown;
  /** Aborts the request once the answer is under way and the input was refused. */
  readonly controller = new AbortController();
  /** The answer has arrived (`send` resolved): a refusal aborts it rather than letting `send` reject. */
  answered = false;
  private inHook = false;
  private inference: Obj | undefined;
  private readonly openInput = new Map<string, InputBlock>();
  private readonly system: GenAIPart[] = [];
  private readonly input: GenAIInputMessage[] = [];
  /** Input chunks that are not JSON events (another model's protocol): their bytes' digest. */
  private opaqueInput: AudioDigest | undefined;
  private findings = 0;
  private refusals = 0;
  private readonly output = new Map<string, OutputBlock>();
  private opaqueOutput: AudioDigest | undefined;
  private sessionId: string | undefined;
  private completions = 0;
  private readonly finishReasons: string[] = [];
  private usage: Obj | undefined;

  constructor(
    private readonly call: AuditedCall,
    private readonly modelId: string | undefined,
  ) {}

  /** The application's input iterable, read through the audit. Never throws but to refuse. */
  wrapInput(source: AsyncIterable<unknown>, inHook: boolean): AsyncIterable<unknown> {
    this.inHook = inHook;
    const session = this;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const item of source) yield await session.sent(item);
      },
    };
  }

  /** One input event on its way out: returns what is sent (redacted), or throws the refusal. */
  private async sent(item: unknown): Promise<unknown> {
    if (this.refusal !== undefined) throw this.refusal;
    // LLM_AUDIT_ON_FAILURE=block: nothing more goes out once the audit trail cannot be written.
    const unavailable = refusedWhileAuditUnavailable();
    if (unavailable !== undefined) await unavailable.catch((error: unknown) => this.refuse(error));
    let out: unknown;
    let gate: Promise<void> | undefined;
    try {
      ({ out, gate } = this.read(item));
    } catch (error) {
      if (error === this.refusal) throw error;
      diag.error(`otel-llm-audit: could not read a Bedrock bidirectional input event: ${loggableError(error, undefined)}`);
      // Its text could not be redacted: in redact mode it is not sent (as for a failed redaction).
      if (this.call.services.sanitize?.mode === 'redact') this.refuse(sanitizerBlocked(this.call, error));
      return item;
    }
    if (gate !== undefined) await gate.catch((error: unknown) => this.refuse(error));
    return out;
  }

  /** Says no: nothing more of the input goes out, the record ends as blocked, the application is told. */
  private refuse(error: unknown): never {
    this.refusal ??= error;
    this.refusals++;
    if (!this.call.isEnded) {
      this.recordInput();
      this.call.fail(error);
    }
    if (this.answered) this.controller.abort(error);
    throw this.refusal;
  }

  private read(item: unknown): { out: unknown; gate?: Promise<void> } {
    const chunk = isObj(item) && isObj(item['chunk']) ? item['chunk'] : undefined;
    const bytes = chunk?.['bytes'];
    const json = decodeJson(bytes);
    const event = isObj(json) && isObj(json['event']) ? json['event'] : undefined;
    const recording = !this.call.isEnded;
    if (event === undefined) {
      // Another protocol than Nova Sonic's JSON events: its bytes are hashed; they cannot be redacted.
      if (bytes === undefined) return { out: item };
      const refused = unredactableAudio(this.call.services, this.call, 'Bedrock bidirectional stream binary', this.refusals === 0);
      if (refused !== undefined) this.refuse(refused);
      if (recording && (typeof bytes === 'string' || ArrayBuffer.isView(bytes))) {
        (this.opaqueInput ??= new AudioDigest()).update(typeof bytes === 'string' ? Buffer.from(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }
      return { out: item };
    }
    const [type] = Object.keys(event);
    const body = isObj(event[type!]) ? (event[type!] as Obj) : {};
    switch (type) {
      case 'sessionStart':
        if (isObj(body['inferenceConfiguration'])) this.inference = body['inferenceConfiguration'];
        return { out: item };
      case 'contentStart': {
        const role = str(body['role'])?.toLowerCase() ?? 'user';
        const tool = isObj(body['toolResultInputConfiguration']) ? str(body['toolResultInputConfiguration']['toolUseId']) : undefined;
        if (recording) this.openInput.set(str(body['contentName']) ?? '', { role, parts: [], text: '', ...(tool !== undefined ? { toolUseId: tool } : {}) });
        return { out: item };
      }
      case 'audioInput': {
        const refused = unredactableAudio(this.call.services, this.call, 'Bedrock bidirectional stream', this.refusals === 0);
        if (refused !== undefined) this.refuse(refused);
        const content = str(body['content']);
        if (recording && content !== undefined) (this.block(body).audio ??= new AudioDigest()).update(content);
        return { out: item };
      }
      case 'textInput':
      case 'toolResult':
        return this.text(item, chunk!, event, type, recording);
      case 'contentEnd':
        if (recording) this.closeInput(str(body['contentName']) ?? '');
        return { out: item };
      default:
        return { out: item };
    }
  }

  /** A text event: scanned (and in redact mode rewritten), recorded, shown to the hook. */
  private text(item: unknown, chunk: Obj, event: Obj, type: 'textInput' | 'toolResult', recording: boolean): { out: unknown; gate?: Promise<void> } {
    const services = this.call.services;
    let sent = event;
    const settings = services.sanitize;
    if (settings !== undefined) {
      const scanned = sanitizeForCall(settings, bidirectionalStream, event);
      if (scanned?.failed !== undefined) this.refuse(sanitizerBlocked(this.call, scanned.failed));
      if (scanned?.result !== undefined) {
        sent = scanned.result.params as Obj;
        if (recording && scanned.result.total > 0) {
          this.findings += scanned.result.total;
          this.call.recordSanitization(settings.mode, { ...scanned.result, total: this.findings });
        }
      }
    }
    const body = sent[type] as Obj;
    if (recording) {
      const block = this.block(body);
      const content = body['content'];
      if (type === 'textInput') block.text += typeof content === 'string' ? content : '';
      else block.parts.push({ type: 'tool_call_response', id: block.toolUseId ?? null, response: content });
    }
    const out = sent === event ? item : { ...(item as Obj), chunk: { ...chunk, bytes: new TextEncoder().encode(JSON.stringify({ event: sent })) } };
    const hook = this.inHook || !recording ? undefined : services.hooks?.beforeRequest;
    return { out, gate: hook === undefined ? undefined : runBeforeRequest(this.call, hook, { modelId: this.modelId, event: sent }) };
  }

  private block(body: Obj): InputBlock {
    const name = str(body['contentName']) ?? '';
    let block = this.openInput.get(name);
    if (block === undefined) {
      block = { role: 'user', parts: [], text: '' };
      this.openInput.set(name, block);
    }
    return block;
  }

  private closeInput(name: string): void {
    const block = this.openInput.get(name);
    if (block === undefined) return;
    this.openInput.delete(name);
    const parts: GenAIPart[] = [];
    if (block.text !== '') parts.push({ type: 'text', content: block.text });
    const audio = block.audio?.part();
    if (audio !== undefined) parts.push(audio);
    parts.push(...block.parts);
    if (parts.length === 0) return;
    if (block.role === 'system') this.system.push(...parts);
    else this.input.push({ role: block.role, parts });
  }

  /** The input sent so far, in the conventions' shapes (content blocks still open included). */
  inputContent(): { system_instructions?: GenAIPart[]; input_messages: GenAIInputMessage[] } {
    for (const name of [...this.openInput.keys()]) this.closeInput(name);
    const opaque = this.opaqueInput?.part();
    const input = opaque === undefined ? this.input : [...this.input, { role: 'user', parts: [opaque] }];
    return this.system.length > 0 ? { system_instructions: this.system, input_messages: input } : { input_messages: input };
  }

  private inputHashes(): NonNullable<ResponseSummary['hashes']> {
    const { system_instructions: system, input_messages: input } = this.inputContent();
    const hashes: NonNullable<ResponseSummary['hashes']> = {};
    if (system !== undefined) hashes[A.ATTR_AUDIT_SYSTEM_PROMPT_HASH] = { value: system };
    if (input.length > 0) hashes[A.ATTR_AUDIT_INPUT_HASH] = { value: input };
    return hashes;
  }

  /** The input hashes on the record now: a blocked call's record has no summary to carry them. */
  private recordInput(): void {
    const hasher = this.call.services.hasher;
    for (const [key, hashed] of Object.entries(this.inputHashes())) {
      if ('value' in hashed) this.call.span.setAttribute(key, hasher.hash(hashed.value));
    }
  }

  // --- the answer ---

  onChunk(item: unknown): void {
    const bytes = isObj(item) && isObj(item['chunk']) ? item['chunk']['bytes'] : undefined;
    const json = decodeJson(bytes);
    const event = isObj(json) && isObj(json['event']) ? json['event'] : undefined;
    if (event === undefined) {
      if (typeof bytes === 'string' || ArrayBuffer.isView(bytes)) {
        (this.opaqueOutput ??= new AudioDigest()).update(typeof bytes === 'string' ? Buffer.from(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }
      return;
    }
    const [type] = Object.keys(event);
    const body = isObj(event[type!]) ? (event[type!] as Obj) : {};
    switch (type) {
      case 'completionStart':
        this.completions++;
        this.sessionId ??= str(body['sessionId']);
        return;
      case 'contentStart':
        this.output.set(str(body['contentId']) ?? '', { role: str(body['role'])?.toLowerCase() ?? 'assistant', text: '' });
        return;
      case 'textOutput':
        this.outputBlock(body).text += str(body['content']) ?? '';
        return;
      case 'audioOutput': {
        const content = str(body['content']);
        if (content !== undefined) (this.outputBlock(body).audio ??= new AudioDigest()).update(content);
        return;
      }
      case 'toolUse':
        this.outputBlock(body).tool = { id: str(body['toolUseId']), name: str(body['toolName']) ?? '', arguments: str(body['content']) };
        return;
      case 'usageEvent':
        this.usage = body;
        return;
      case 'completionEnd': {
        const reason = str(body['stopReason']);
        if (reason !== undefined) this.finishReasons.push(reason);
        return;
      }
    }
  }

  private outputBlock(body: Obj): OutputBlock {
    const id = str(body['contentId']) ?? '';
    let block = this.output.get(id);
    if (block === undefined) {
      block = { role: 'assistant', text: '' };
      this.output.set(id, block);
    }
    return block;
  }

  summary(): ResponseSummary {
    const output: OutputMessage[] = [];
    const toolNames: string[] = [];
    const toolCallIds: string[] = [];
    for (const block of this.output.values()) {
      const parts: OutputPart[] = [];
      if (block.text !== '') parts.push({ type: 'text', content: block.text });
      const audio = block.audio?.part();
      if (audio !== undefined) parts.push(audio);
      if (block.tool !== undefined) {
        parts.push({ type: 'tool_call', ...(block.tool.id !== undefined ? { id: block.tool.id } : {}), name: block.tool.name, ...(block.tool.arguments !== undefined ? { arguments: block.tool.arguments } : {}) });
        toolNames.push(block.tool.name);
        toolCallIds.push(block.tool.id ?? '');
      }
      if (parts.length > 0) output.push({ role: block.role, parts });
    }
    const opaque = this.opaqueOutput?.part();
    if (opaque !== undefined) output.push({ role: 'assistant', parts: [opaque] });
    const attributes: Attributes = { [A.ATTR_AUDIT_BEDROCK_COMPLETIONS]: this.completions };
    const inference = this.inference;
    if (inference !== undefined) setRequestSettings(attributes, { maxTokens: inference['maxTokens'], temperature: inference['temperature'], topP: inference['topP'] });
    const summary: ResponseSummary = { attributes, hashes: this.inputHashes(), usage: sonicUsage(this.usage) };
    if (this.sessionId !== undefined) summary.id = this.sessionId;
    if (this.finishReasons.length > 0) summary.finishReasons = this.finishReasons;
    if (output.length > 0) summary.output = output;
    if (toolNames.length > 0) {
      summary.toolNames = toolNames;
      summary.toolCallIds = toolCallIds;
    }
    return summary;
  }

  /**
   * The answer as the application reads it, after a refusal: once the input was refused, the next
   * read rejects with the refusal (the request is aborted meanwhile), so the application learns why
   * its session stopped rather than seeing its stream end quietly.
   */
  guardAnswer(body: object): void {
    this.answered = true;
    // Refused while the answer's headers were on their way: `send` resolved all the same.
    if (this.refusal !== undefined) this.controller.abort(this.refusal);
    const target = body as { [Symbol.asyncIterator]?: () => AsyncIterator<unknown> };
    const source = target[Symbol.asyncIterator];
    if (typeof source !== 'function') return;
    const session = this;
    Object.defineProperty(target, Symbol.asyncIterator, {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function (this: unknown, ...args: unknown[]) {
        const inner = source.apply(this, args as []);
        const refused = (): Promise<never> => {
          void inner.return?.()?.catch?.(() => undefined);
          return Promise.reject(session.refusal);
        };
        const guarded: AsyncIterableIterator<unknown> = {
          next: (...next: [] | [unknown]) =>
            session.refusal !== undefined
              ? refused()
              : inner.next(...next).then(
                  (result) => (result.done && session.refusal !== undefined ? refused() : result),
                  (error: unknown) => Promise.reject(session.refusal ?? error),
                ),
          return: (value?: unknown) => (inner.return ? inner.return(value) : Promise.resolve({ done: true, value })),
          throw: (error?: unknown) => (inner.throw ? inner.throw(error) : Promise.reject(error)),
          [Symbol.asyncIterator]: () => guarded,
        };
        return guarded;
      },
    });
  }
}

/**
 * Nova Sonic's usageEvent: `totalInputTokens` / `totalOutputTokens` over the session so far, and
 * `details.total.{input,output}.{speechTokens,textTokens}`; the speech tokens are the audio part.
 */
function sonicUsage(usage: Obj | undefined): TokenUsage | undefined {
  if (usage === undefined) return undefined;
  const details = isObj(usage['details']) && isObj(usage['details']['total']) ? usage['details']['total'] : {};
  const side = (name: string): Obj => (isObj(details[name]) ? details[name] : {});
  const sum = (counts: Obj): number | undefined => {
    const speech = definedNumber(counts['speechTokens']);
    const text = definedNumber(counts['textTokens']);
    return speech === undefined && text === undefined ? undefined : (speech ?? 0) + (text ?? 0);
  };
  return {
    input: definedNumber(usage['totalInputTokens']) ?? sum(side('input')),
    output: definedNumber(usage['totalOutputTokens']) ?? sum(side('output')),
    modalities: { inputAudio: definedNumber(side('input')['speechTokens']), outputAudio: definedNumber(side('output')['speechTokens']) },
  };
}
