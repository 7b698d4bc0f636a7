/**
 * Audio in an audited session (OpenAI Realtime, Bedrock bidirectional streams, the Vercel AI SDK's
 * streamed transcription and translation): recorded as the
 * SHA-256 of its bytes, hashed as the chunks go and never kept; and, since audio cannot be
 * redacted, what redact mode does with it.
 */
import { createHash, type Hash } from 'node:crypto';
import { diag } from '@opentelemetry/api';
import type { AuditedCall, AuditServices } from './audited-call';
import type { OutputPart } from './types';
import { onFailurePolicy } from '../audit/failure-policy';
import { LlmRequestBlockedError } from '../guardrails';

/** A running SHA-256 over chunks of audio (base64 text or bytes). */
export class AudioDigest {
  private hash: Hash | undefined;
  private bytes = 0;

  update(chunk: string | Uint8Array): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'base64') : chunk;
    (this.hash ??= createHash('sha256')).update(bytes);
    this.bytes += bytes.byteLength;
  }

  /**
   * The `blob_digest` part of the audio so far (the envelope's and the output messages' shape);
   * undefined when none. Reading it does not end the digest: the hash and the encrypted content
   * read it in turn, and more audio may follow.
   */
  part(): OutputPart | undefined {
    if (this.hash === undefined) return undefined;
    return { type: 'blob_digest', modality: 'audio', sha256: this.hash.copy().digest('hex'), bytes: this.bytes };
  }
}

const warned = new Set<string>();

/**
 * Audio under redact mode: it goes out as it is (one diag warning per kind of session), unless
 * LLM_AUDIT_ON_FAILURE=block, which refuses it: the error to refuse with (the first refusal of a
 * call also records a `not_redactable` guardrail event). Undefined when it may go.
 */
export function unredactableAudio(services: AuditServices, call: AuditedCall, what: string, firstRefusal: boolean): LlmRequestBlockedError | undefined {
  if (services.sanitize?.mode !== 'redact') return undefined;
  if (onFailurePolicy() !== 'block') {
    if (!warned.has(what)) {
      warned.add(what);
      diag.warn(`otel-llm-audit: ${what} audio cannot be redacted (LLM_AUDIT_SANITIZE=redact); it is sent as it is. LLM_AUDIT_ON_FAILURE=block refuses it instead.`);
    }
    return undefined;
  }
  const guardrail = { name: 'sanitizer', action: 'blocked' as const, category: 'not_redactable' };
  if (firstRefusal) call.addGuardrail(guardrail);
  return new LlmRequestBlockedError(
    `${what} audio cannot be redacted, and LLM_AUDIT_SANITIZE=redact with LLM_AUDIT_ON_FAILURE=block refuses what cannot be; the audio was not sent`,
    call.requestId,
    guardrail,
  );
}
