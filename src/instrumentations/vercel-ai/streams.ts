/**
 * ai 7's streamed audio: `experimental_streamTranscribe` (a transcription model's `doStream`) and
 * `experimental_streamTranslate` (a speech translation model's `doStream`). @ai-sdk/openai 4
 * opens OpenAI's Realtime WebSocket for them inside `doStream`, sends the audio the application
 * streams in (`audio`, a ReadableStream of bytes) as it arrives, and hands back a stream of parts:
 * transcript deltas and the final transcript (`finish.text`); for a translation the source
 * transcript, the translated text and the translated voice (`audio` parts, base64).
 *
 * One record per `doStream` call, ended once on every path by the observed result stream
 * (core/readable-stream.ts: completed, errored, aborted, abandoned, not consumed). The audio is not
 * read when the call starts, so the input hash cannot be made then: the audio stream given to
 * the provider is a pass-through that digests the bytes as the provider reads them (SHA-256 and
 * length, as the Realtime audio is; the bytes are never kept), and the input hash is recorded at
 * the end over what was sent: `[{role:'user', parts:[{type:'blob_digest', modality:'audio',
 * sha256, bytes}]}]`. Audio cannot be redacted: under LLM_AUDIT_SANITIZE=redact the stream is
 * refused when LLM_AUDIT_ON_FAILURE=block (the doStream promise rejects, which ai reports through
 * the stream's error path), else sent as it is with one diag warning.
 */
import { diag } from '@opentelemetry/api';
import * as A from '../../semconv';
import { AudioDigest } from '../../core/audio';
import { promptFromContent } from '../../core/request-walk';
import type { OperationSpec, OutputPart, RequestWalker, ResponseSummary, StreamAccumulator, TokenUsage } from '../../core/types';
import { onFailurePolicy } from '../../audit/failure-policy';
import { usageOf, type ModelInfo } from './specs';

/** The digest of each audio stream handed to a provider, by the stream the provider reads. */
const digests = new WeakMap<object, AudioDigest>();

/**
 * The call options with `audio` replaced by a stream that hands on the same chunks and digests
 * them; as they were when there is no stream to wrap (or it cannot be wrapped: diag error, and
 * the record then has no input hash).
 */
export function withAudioDigest(options: any): any {
  const audio = options?.audio;
  if (typeof audio?.pipeThrough !== 'function') return options;
  try {
    const digest = new AudioDigest();
    const digested: ReadableStream = audio.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          try {
            if (typeof chunk === 'string' || chunk instanceof Uint8Array) digest.update(chunk);
          } catch (error) {
            diag.error('otel-llm-audit: could not digest a chunk of streamed audio', error);
          }
          controller.enqueue(chunk);
        },
      }),
    );
    digests.set(digested, digest);
    return { ...options, audio: digested };
  } catch (error) {
    diag.error('otel-llm-audit: could not digest the streamed audio of this call; its record has no input hash', error);
    return options;
  }
}

let warned = false;

class AudioNotRedactable extends Error {
  constructor() {
    super('streamed audio cannot be redacted, and LLM_AUDIT_SANITIZE=redact with LLM_AUDIT_ON_FAILURE=block refuses what cannot be; the audio was not sent');
  }
}

/** The audio sent so far, digested: one user message (empty before any audio was read). */
const streamedAudioWalker: RequestWalker = {
  sanitize(w, params) {
    if (!w.redact) return params;
    if (onFailurePolicy() === 'block') throw new AudioNotRedactable();
    if (!warned) {
      warned = true;
      diag.warn('otel-llm-audit: streamed audio (ai experimental_streamTranscribe / experimental_streamTranslate) cannot be redacted (LLM_AUDIT_SANITIZE=redact); it is sent as it is. LLM_AUDIT_ON_FAILURE=block refuses it instead.');
    }
    return params;
  },
  content(params) {
    const audio = params['audio'];
    const part = typeof audio === 'object' && audio !== null ? digests.get(audio)?.part() : undefined;
    return { input_messages: [{ role: 'user', parts: part === undefined ? [] : [part] }] };
  },
};

const inputOf = promptFromContent(streamedAudioWalker);

/** Transcription streams (`transcript-*` parts, `finish.text`) and translation streams (`source-transcript-*`, `output-text-*`, `audio`, `finish`). */
class AudioStreamAccumulator implements StreamAccumulator {
  private model: string | undefined;
  private usage: TokenUsage | undefined;
  private readonly deltas = { source: '', output: '' };
  private final: { source?: string; output?: string } = {};
  private readonly audio = new AudioDigest();

  constructor(private readonly params: unknown) {}

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
    const input = inputOf(this.params).input;
    return {
      model: this.model,
      usage: this.usage,
      output: [{ role: 'assistant', parts }],
      hashes: input === undefined ? undefined : { [A.ATTR_AUDIT_INPUT_HASH]: { value: input } },
    };
  }
}

/**
 * The spec of a transcription or speech translation model's `doStream` (operation `transcription`
 * or `translation`, as the openai SDK's records name them). The input hash is the accumulator's,
 * at the end (see the file comment).
 */
export function audioStreamSpec(operationName: 'transcription' | 'translation', model: ModelInfo, action: string): OperationSpec {
  return {
    provider: model.provider,
    operationName,
    action,
    requestKind: streamedAudioWalker,
    requestModel: () => model.modelId,
    isStream: () => true,
    requestAttributes(_params, attributes) {
      if (operationName === 'transcription') attributes[A.ATTR_GEN_AI_OUTPUT_TYPE] = 'text';
    },
    prompt: () => ({}),
    // A doStream result without a stream (not one of ai 7's): what it says, nothing to fold.
    summarize: (data: any): ResponseSummary => ({ model: typeof data?.response?.modelId === 'string' ? data.response.modelId : undefined }),
    accumulator: (params) => new AudioStreamAccumulator(params),
  };
}
