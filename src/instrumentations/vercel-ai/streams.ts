/**
 * ai 7's streamed model calls: `experimental_streamTranscribe` (a transcription model's
 * `doStream`), `experimental_streamTranslate` (a speech translation model's) and
 * `experimental_streamSpeech` (a speech model's). @ai-sdk/openai 4 opens OpenAI's Realtime
 * WebSocket for the first two inside `doStream`, sends the audio the application streams in
 * (`audio`, a ReadableStream of bytes) as it arrives, and hands back a stream of parts: transcript
 * deltas and the final transcript (`finish.text`); for a translation the source transcript, the
 * translated text and the translated voice (`audio` parts, base64). A streaming speech model gets
 * its text as a stream too (`text`, `{type:'text', text}` parts) and answers with `audio` parts.
 *
 * One record per `doStream` call, ended once on every path by the observed result stream
 * (core/readable-stream.ts: completed, errored, aborted, abandoned, not consumed). The streamed
 * input is not read when the call starts, so the input hash cannot be made then: the stream given
 * to the provider is a pass-through that keeps what the provider reads (audio as its SHA-256 and
 * length, as the Realtime audio is, the bytes never kept; text as it is), and the input hash is
 * recorded at the end over what was sent, e.g. `[{role:'user', parts:[{type:'blob_digest',
 * modality:'audio', sha256, bytes}]}]`. A stream cannot be held for redaction: under
 * LLM_AUDIT_SANITIZE=redact the call is refused when LLM_AUDIT_ON_FAILURE=block (the doStream
 * promise rejects, which ai reports through the stream's error path), else sent as it is with one
 * diag warning.
 */
import { diag } from '@opentelemetry/api';
import * as A from '../../semconv';
import { AudioDigest } from '../../core/audio';
import { promptFromContent } from '../../core/request-walk';
import type { OperationSpec, OutputPart, RequestWalker, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import type { TextWalk } from '../../audit/sanitize';
import type { GenAIInputMessage } from '../../audit/content/genai-messages';
import { onFailurePolicy } from '../../audit/failure-policy';
import { usageOf, type ModelInfo } from './specs';

/** What went through each input stream handed to a provider (audio digested, text collected), by the stream the provider reads. */
const sent = new WeakMap<object, { audio: AudioDigest; text: string[] }>();

/**
 * The call options with `field` (`audio`: chunks of bytes; `text`: text parts) replaced by a
 * stream that hands on the same chunks and keeps what went through (the audio's digest, the
 * text); as they were when there is no stream to wrap (or it cannot be wrapped: diag error, and
 * the record then has no input hash).
 */
export function withStreamedInput(options: any, field: 'audio' | 'text'): any {
  const input = options?.[field];
  if (typeof input?.pipeThrough !== 'function') return options;
  try {
    const kept = { audio: new AudioDigest(), text: [] as string[] };
    const observed: ReadableStream = input.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          try {
            if (typeof chunk === 'string' || chunk instanceof Uint8Array) kept.audio.update(chunk);
            else if (typeof chunk?.text === 'string') kept.text.push(chunk.text);
          } catch (error) {
            diag.error('otel-llm-audit: could not read a chunk of a streamed input', error);
          }
          controller.enqueue(chunk);
        },
      }),
    );
    sent.set(observed, kept);
    return { ...options, [field]: observed };
  } catch (error) {
    diag.error(`otel-llm-audit: could not observe the streamed ${field} of this call; its record has no input hash`, error);
    return options;
  }
}

const keptOf = (value: unknown) => (typeof value === 'object' && value !== null ? sent.get(value) : undefined);

let warned = false;

/**
 * A streamed input cannot be held for redaction: under redact mode it is refused when
 * LLM_AUDIT_ON_FAILURE=block (the throw makes the sanitizer block the call before it is sent),
 * else sent as it is with one diag warning.
 */
function notRedactable(w: TextWalk): void {
  if (!w.redact) return;
  if (onFailurePolicy() === 'block') {
    throw new Error('a streamed input (audio, or text streamed to a speech model) cannot be redacted, and LLM_AUDIT_SANITIZE=redact with LLM_AUDIT_ON_FAILURE=block refuses what cannot be');
  }
  if (warned) return;
  warned = true;
  diag.warn('otel-llm-audit: streamed inputs (ai experimental_streamTranscribe / experimental_streamTranslate audio, experimental_streamSpeech text) cannot be redacted (LLM_AUDIT_SANITIZE=redact); they are sent as they are. LLM_AUDIT_ON_FAILURE=block refuses them instead.');
}

/** The audio sent so far, digested: one user message (empty before any audio was read). */
const streamedAudioWalker: RequestWalker = {
  sanitize(w, params) {
    notRedactable(w);
    return params;
  },
  content(params) {
    const part = keptOf(params['audio'])?.audio.part();
    return { input_messages: [{ role: 'user', parts: part === undefined ? [] : [part] }] };
  },
};

/** `experimental_streamSpeech`: the text sent so far (one text part), its `instructions` (a plain string, redacted) as the system instructions. */
const streamedTextWalker: RequestWalker = {
  sanitize(w, params) {
    notRedactable(w);
    return w.textField(params, 'instructions');
  },
  content(params, parts) {
    const text = keptOf(params['text'])?.text.join('') ?? '';
    const input: GenAIInputMessage[] = [{ role: 'user', parts: text === '' ? [] : [parts.text(text)] }];
    return typeof params['instructions'] === 'string' ? { system_instructions: [parts.text(params['instructions'])], input_messages: input } : { input_messages: input };
  },
};

/** Transcription streams (`transcript-*` parts, `finish.text`) and translation streams (`source-transcript-*`, `output-text-*`, `audio`, `finish`). */
class AudioStreamAccumulator implements StreamAccumulator {
  private model: string | undefined;
  private usage: TokenUsage | undefined;
  private readonly deltas = { source: '', output: '' };
  private final: { source?: string; output?: string } = {};
  private readonly audio = new AudioDigest();

  /** `input()`: the input messages as sent by the end (the streamed input's walker, read then). */
  constructor(private readonly input: () => unknown) {}

  onChunk(part: any): void {
    switch (part?.type) {
      case 'response-metadata':
        if (typeof part.modelId === 'string') this.model ??= part.modelId;
        break;
      case 'transcript-delta':
      case 'output-text-delta':
        if (typeof part.delta === 'string') this.deltas.output += part.delta;
        break;
      case 'source-transcript-delta':
        if (typeof part.delta === 'string') this.deltas.source += part.delta;
        break;
      case 'audio':
        if (typeof part.audio === 'string' || part.audio instanceof Uint8Array) this.audio.update(part.audio);
        break;
      case 'finish':
        this.usage = usageOf(part.usage);
        // Transcription: `text`; translation: `sourceText` and `outputText`.
        if (typeof part.text === 'string') this.final.output = part.text;
        if (typeof part.outputText === 'string') this.final.output = part.outputText;
        if (typeof part.sourceText === 'string') this.final.source = part.sourceText;
        break;
    }
  }

  summary(): ResponseSummary {
    // What the application received, in order: the source transcript (translation), the text, the voice.
    const parts: OutputPart[] = [];
    const source = this.final.source ?? this.deltas.source;
    const output = this.final.output ?? this.deltas.output;
    if (source !== '') parts.push({ type: 'text', content: source });
    if (output !== '') parts.push({ type: 'text', content: output });
    const voice = this.audio.part();
    if (voice !== undefined) parts.push(voice);
    const input = this.input();
    return {
      model: this.model,
      usage: this.usage,
      output: [{ role: 'assistant', parts }],
      hashes: input === undefined ? undefined : { [A.ATTR_AUDIT_INPUT_HASH]: { value: input } },
    };
  }
}

/**
 * The spec of a transcription, speech translation or speech model's `doStream` (operation
 * `transcription`, `translation` as the openai SDK's records name them, or `generate_content` for
 * speech). The input hash is the accumulator's, at the end (see the file comment); a speech
 * model's instructions, known at the start, are the system prompt.
 */
export function streamSpec(kind: 'transcription' | 'translation' | 'speech', model: ModelInfo, action: string): OperationSpec {
  const walker = kind === 'speech' ? streamedTextWalker : streamedAudioWalker;
  const prompt = promptFromContent(walker);
  return {
    provider: model.provider,
    operationName: kind === 'speech' ? 'generate_content' : kind,
    action,
    requestKind: walker,
    requestModel: () => model.modelId,
    isStream: () => true,
    requestAttributes(_params, attributes) {
      if (kind !== 'translation') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = kind === 'speech' ? 'speech' : 'text';
    },
    prompt: (params) => ({ system: prompt(params).system }),
    // A doStream result without a stream (not one of ai 7's): what it says, nothing to fold.
    summarize: (data: any): ResponseSummary => ({ model: typeof data?.response?.modelId === 'string' ? data.response.modelId : undefined }),
    accumulator: (params) => new AudioStreamAccumulator(() => prompt(params).input),
  };
}
