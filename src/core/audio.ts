import { createHash, type Hash } from 'node:crypto';
import type { OutputPart } from './types';

/**
 * A running SHA-256 over audio that goes by in chunks (base64 text or bytes): the bytes are
 * hashed as they go and never kept. Used for the audio of a Realtime session and of the Vercel AI
 * SDK's streamed transcription and translation, in and out.
 */
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
