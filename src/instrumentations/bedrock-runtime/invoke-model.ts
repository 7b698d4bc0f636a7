/**
 * `InvokeModelCommand` / `InvokeModelWithResponseStreamCommand`: the request `body` is the model
 * provider's own JSON (a string or bytes), so its shape depends on the model family:
 *
 * - `anthropic`: the Anthropic Messages API body (`anthropic_version`, `system`, `messages`);
 *   responses and stream chunks are Anthropic's own (src/instrumentations/anthropic/ maps them).
 * - `converse`: Amazon Nova, whose body is Converse-shaped (./converse.ts).
 * - `llama` (Meta), `titan` (Amazon Titan Text), `mistral` (Mistral's text models): a `prompt` /
 *   `inputText` string in, generated text out.
 * - anything else: every string in the body is scanned, and the body is recorded as one unknown
 *   part, so nothing sent goes unhashed.
 *
 * The family comes from the model id (ARNs and cross-region `us.` / `eu.` ... inference-profile
 * prefixes removed), else from the body's shape (application inference profiles name no model).
 */
import type { Attributes } from '@opentelemetry/api';
import type { ContentParts, RequestContent } from '../../audit/content/genai-messages';
import type { TextWalk } from '../../audit/sanitize';
import * as A from '../../semconv';
import type { OutputPart, RequestWalker, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { definedNumber, withFinish, setRequestSettings } from '../../core/values';
import { anthropicMessagesSpec } from '../anthropic/specs';
import { messagesRequest } from '../anthropic/request';
import {
  ConverseStreamAccumulator,
  contentOf,
  converseRequest,
  converseRequestAttributes,
  isObj,
  readOnly,
  summarizeConverse,
  unknownPart,
  type Obj,
} from './converse';
import { bedrockGuardrails } from './guardrails';

export type Family = 'anthropic' | 'converse' | 'llama' | 'titan' | 'mistral' | 'other';

/** The foundation model a model id names: `anthropic.claude-...`, without ARN and region prefix. */
export function baseModelId(modelId: string): string {
  const resource = modelId.startsWith('arn:') ? modelId.slice(modelId.lastIndexOf('/') + 1) : modelId;
  return resource.replace(/^(?:us|eu|apac|us-gov|global|jp|au|ca)\./, '');
}

function familyOfModel(modelId: unknown): Family | undefined {
  if (typeof modelId !== 'string') return undefined;
  const id = baseModelId(modelId);
  if (id.startsWith('anthropic.')) return 'anthropic';
  if (id.startsWith('amazon.nova')) return 'converse';
  if (id.startsWith('amazon.titan-text')) return 'titan';
  if (id.startsWith('meta.')) return 'llama';
  if (id.startsWith('mistral.') && !id.includes('large-2407') && !id.includes('pixtral')) return 'mistral';
  return undefined;
}

function familyOfBody(body: unknown): Family {
  if (!isObj(body)) return 'other';
  if (typeof body['anthropic_version'] === 'string') return 'anthropic';
  if (isObj(body['inferenceConfig']) || body['schemaVersion'] === 'messages-v1') return 'converse';
  if (typeof body['inputText'] === 'string') return 'titan';
  if (typeof body['prompt'] === 'string' && 'max_gen_len' in body) return 'llama';
  return 'other';
}

// --- the request body ------------------------------------------------------------------------------

interface Body {
  /** The parsed JSON, or undefined when the body is not JSON. */
  json?: unknown;
  /** The body as text. */
  text: string;
  /** How it was given: the rewritten body is given the same way. */
  bytes: boolean;
}

const bodies = new WeakMap<object, Body | Error>();

/**
 * The body of `params`, decoded once per params object (the attributes, the hashes, the sanitizer
 * and the content all read it). A body that cannot be read without consuming it (a stream, a
 * Blob) is an Error: the request cannot be hashed, and redaction must refuse it.
 */
function readBody(params: Obj): Body | Error {
  const cached = bodies.get(params);
  if (cached !== undefined) return cached;
  const raw = params['body'];
  let body: Body | Error;
  if (typeof raw === 'string') body = { text: raw, bytes: false };
  else if (ArrayBuffer.isView(raw)) body = { text: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'), bytes: true };
  else if (raw instanceof ArrayBuffer) body = { text: Buffer.from(raw).toString('utf8'), bytes: true };
  else body = new Error(`the InvokeModel body (${raw === null ? 'null' : typeof raw === 'object' ? (raw.constructor?.name ?? 'object') : typeof raw}) cannot be read before it is sent`);
  if (!(body instanceof Error)) {
    try {
      body.json = JSON.parse(body.text);
    } catch {
      // Not JSON: the provider will reject it, but its text is still what is sent.
    }
  }
  bodies.set(params, body);
  return body;
}

/** False for a body that cannot be read before it is sent: the request then has no input hash (none could cover it). */
export function bodyReadable(params: unknown): boolean {
  return isObj(params) && !(readBody(params) instanceof Error);
}

function familyOf(params: Obj, body: Body): Family {
  return familyOfModel(params['modelId']) ?? familyOfBody(body.json);
}

/** The walker of each family over the parsed body: the body to send, and its content. */
function walkBody(w: TextWalk, family: Family, body: Obj, make?: ContentParts): { body: Obj; content: RequestContent } {
  switch (family) {
    case 'anthropic':
      // The content only where it is asked for (the sanitizer's walk passes no part builders).
      return { body: messagesRequest.sanitize(w, body), content: make !== undefined ? messagesRequest.content(body, make) : { input_messages: [] } };
    case 'converse': {
      const walked = converseRequest(w, body, make);
      return { body: walked.params, content: contentOf(walked) };
    }
    case 'llama':
    case 'mistral':
    case 'titan': {
      const key = family === 'titan' ? 'inputText' : 'prompt';
      const next = w.textField(body, key);
      const text = next[key];
      return { body: next, content: { input_messages: [{ role: 'user', parts: [typeof text === 'string' ? { type: 'text', content: text } : unknownPart(text)] }] } };
    }
    default: {
      const next = w.json(body) as Obj;
      return { body: next, content: { input_messages: [{ role: 'user', parts: [unknownPart(next)] }] } };
    }
  }
}

/** Redaction, hashes and content of an InvokeModel request: one walk over its decoded body. */
export const invokeModelRequest: RequestWalker = {
  sanitize(w, params) {
    const body = readBody(params);
    if (body instanceof Error) throw body;
    w.path.push('body');
    try {
      if (!isObj(body.json)) {
        const text = w.text(body.text);
        return text === body.text ? params : { ...params, body: encode(text, body) };
      }
      const walked = walkBody(w, familyOf(params, body), body.json).body;
      return walked === body.json ? params : { ...params, body: encode(JSON.stringify(walked), body) };
    } finally {
      w.path.pop();
    }
  },
  content(params, make) {
    const body = readBody(params);
    if (body instanceof Error) return { input_messages: [{ role: 'user', parts: [{ type: 'unknown', value: '[unreadable body]' }] }] };
    if (!isObj(body.json)) return { input_messages: [{ role: 'user', parts: [{ type: 'text', content: body.text }] }] };
    return walkBody(readOnly, familyOf(params, body), body.json, make).content;
  },
};

function encode(text: string, body: Body): string | Uint8Array {
  return body.bytes ? new Uint8Array(Buffer.from(text, 'utf8')) : text;
}

/** The `gen_ai.request.*` attributes the body set, and the guardrail the request named. */
export function invokeRequestAttributes(params: Obj, attributes: Attributes): void {
  const guardrail = params['guardrailIdentifier'];
  if (typeof guardrail === 'string') attributes[A.ATTR_AWS_BEDROCK_GUARDRAIL_ID] = guardrail;
  const body = readBody(params);
  if (body instanceof Error || !isObj(body.json)) return;
  const json = body.json;
  switch (familyOf(params, body)) {
    case 'anthropic':
      anthropicMessagesSpec.requestAttributes(json, attributes);
      break;
    case 'converse':
      converseRequestAttributes(json, attributes);
      break;
    case 'titan':
      if (isObj(json['textGenerationConfig'])) {
        const config = json['textGenerationConfig'];
        setRequestSettings(attributes, { maxTokens: config['maxTokenCount'], temperature: config['temperature'], topP: config['topP'], stop: config['stopSequences'] });
      }
      break;
    default:
      setRequestSettings(attributes, { maxTokens: json['max_gen_len'] ?? json['max_tokens'], temperature: json['temperature'], topP: json['top_p'], topK: json['top_k'] });
  }
}

// --- responses -------------------------------------------------------------------------------------

export function decodeJson(bytes: unknown): unknown {
  try {
    if (typeof bytes === 'string') return JSON.parse(bytes);
    if (ArrayBuffer.isView(bytes)) return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    // Not JSON: recorded as what arrived (below).
  }
  return undefined;
}

/** The family a response body (or stream chunk) comes from, by its shape. */
function familyOfResponse(json: Obj): Family {
  if (typeof json['type'] === 'string') return 'anthropic';
  if (isObj(json['output']) || 'messageStart' in json || 'contentBlockDelta' in json || 'contentBlockStop' in json || 'messageStop' in json || 'metadata' in json) {
    return 'converse';
  }
  if ('generation' in json) return 'llama';
  if (Array.isArray(json['results']) || 'outputText' in json) return 'titan';
  if (Array.isArray(json['outputs'])) return 'mistral';
  return 'other';
}

/** Usage from the invocation metrics Bedrock appends to the last stream chunk (any model). */
function metricsUsage(json: Obj): TokenUsage | undefined {
  const metrics = json['amazon-bedrock-invocationMetrics'];
  if (!isObj(metrics)) return undefined;
  return { input: definedNumber(metrics['inputTokenCount']), output: definedNumber(metrics['outputTokenCount']) };
}

/** The guardrail outcome Bedrock appends to the body (or the last chunk) when the request named one. */
function bodyGuardrails(json: Obj): ResponseSummary['guardrails'] {
  const trace = isObj(json['amazon-bedrock-trace']) ? json['amazon-bedrock-trace']['guardrail'] : undefined;
  return bedrockGuardrails(trace, undefined, json['amazon-bedrock-guardrailAction'] === 'INTERVENED');
}

function textSummary(text: string, finish: unknown, usage: TokenUsage | undefined): ResponseSummary {
  const parts: OutputPart[] = [{ type: 'text', content: text }];
  return {
    finishReasons: typeof finish === 'string' ? [finish] : [],
    usage,
    output: [withFinish({ role: 'assistant', parts }, finish)],
  };
}

/** A whole response body of one of the families. */
function summarizeBody(json: Obj): ResponseSummary {
  switch (familyOfResponse(json)) {
    case 'anthropic':
      return anthropicMessagesSpec.summarize(json);
    case 'converse':
      return summarizeConverse(json);
    case 'llama':
      return textSummary(String(json['generation'] ?? ''), json['stop_reason'], {
        input: definedNumber(json['prompt_token_count']),
        output: definedNumber(json['generation_token_count']),
      });
    case 'titan': {
      const results = Array.isArray(json['results']) ? json['results'].filter(isObj) : [];
      let output = 0;
      for (const result of results) output += definedNumber(result['tokenCount']) ?? 0;
      return textSummary(results.map((r) => String(r['outputText'] ?? '')).join(''), results[0]?.['completionReason'], {
        input: definedNumber(json['inputTextTokenCount']),
        output: results.length > 0 ? output : undefined,
      });
    }
    case 'mistral': {
      const outputs = (json['outputs'] as unknown[]).filter(isObj);
      return textSummary(outputs.map((o) => String(o['text'] ?? '')).join(''), outputs[0]?.['stop_reason'], undefined);
    }
    default:
      return { output: [{ role: 'assistant', parts: [unknownPart(json) as OutputPart] }] };
  }
}

/** An InvokeModel output: `{ body: Uint8Array (the SDK's Uint8ArrayBlobAdapter), contentType, $metadata }`. */
export function summarizeInvoke(data: unknown): ResponseSummary {
  const output = isObj(data) ? data : {};
  const json = decodeJson(output['body']);
  const summary: ResponseSummary = isObj(json) ? summarizeBody(json) : {};
  if (isObj(json)) {
    const guardrails = bodyGuardrails(json);
    if (guardrails !== undefined) summary.guardrails = [...(summary.guardrails ?? []), ...guardrails];
  }
  return summary;
}

/**
 * InvokeModelWithResponseStream: each event is `{ chunk: { bytes } }`, the bytes one JSON chunk of
 * the model family's own stream. The family is read from the first chunk; the last chunk carries
 * Bedrock's invocation metrics (the usage of families that report none themselves) and, when the
 * request named a guardrail, its outcome.
 */
export class InvokeStreamAccumulator implements StreamAccumulator {
  private family: Family | undefined;
  private inner: StreamAccumulator | undefined;
  private text = '';
  private finish: unknown;
  private usage: TokenUsage | undefined;
  private metrics: TokenUsage | undefined;
  private readonly unknown: unknown[] = [];
  private guardrails: ResponseSummary['guardrails'];

  onChunk(event: unknown): void {
    if (!isObj(event) || !isObj(event['chunk'])) return;
    const json = decodeJson(event['chunk']['bytes']);
    if (!isObj(json)) return;
    this.family ??= familyOfResponse(json);
    this.metrics = metricsUsage(json) ?? this.metrics;
    const guardrails = bodyGuardrails(json);
    if (guardrails !== undefined) this.guardrails = [...(this.guardrails ?? []), ...guardrails];
    switch (this.family) {
      case 'anthropic':
        (this.inner ??= anthropicMessagesSpec.accumulator({})).onChunk(json);
        break;
      case 'converse':
        (this.inner ??= new ConverseStreamAccumulator()).onChunk(json);
        break;
      case 'llama':
        this.text += typeof json['generation'] === 'string' ? json['generation'] : '';
        this.finish = json['stop_reason'] ?? this.finish;
        if (typeof json['prompt_token_count'] === 'number' || typeof json['generation_token_count'] === 'number') {
          this.usage = { input: definedNumber(json['prompt_token_count']) ?? this.usage?.input, output: definedNumber(json['generation_token_count']) };
        }
        break;
      case 'titan':
        this.text += typeof json['outputText'] === 'string' ? json['outputText'] : '';
        this.finish = json['completionReason'] ?? this.finish;
        break;
      case 'mistral':
        for (const out of (Array.isArray(json['outputs']) ? json['outputs'] : []).filter(isObj)) {
          this.text += typeof out['text'] === 'string' ? out['text'] : '';
          this.finish = out['stop_reason'] ?? this.finish;
        }
        break;
      default:
        this.unknown.push(json);
    }
  }

  summary(): ResponseSummary {
    let summary: ResponseSummary;
    if (this.inner !== undefined) summary = this.inner.summary();
    else if (this.family === 'other') summary = { output: [{ role: 'assistant', parts: this.unknown.map((chunk) => unknownPart(chunk) as OutputPart) }] };
    else if (this.family === undefined) summary = {};
    else summary = textSummary(this.text, this.finish ?? undefined, this.usage);
    // The model's own count where it gave one (Anthropic's includes the cache), else Bedrock's.
    summary.usage ??= this.metrics;
    if (this.guardrails !== undefined) summary.guardrails = [...(summary.guardrails ?? []), ...this.guardrails];
    return summary;
  }
}
