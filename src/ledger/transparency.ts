/**
 * The one place a writer hooks into to publish its checkpoints in the C2SP formats: it turns each
 * signed checkpoint into a signed note (note.ts), has the backend store it beside the checkpoint,
 * and offers it to the configured witnesses (witness/client.ts), whose cosigned copies the backend
 * stores too. Both backends use it; they differ only in the {@link NoteBackend} they pass.
 */
import type { KeyObject } from 'node:crypto';
import type { LedgerSource } from './backend';
import type { Checkpoint } from './checkpoint';
import { checkpointBody, defaultOrigin, originFromEnv, parseCheckpointNote, signCheckpointNote } from './note';
import { consistencyPath } from './proofs';
import { WitnessClient, parseWitnesses, type WitnessConfig } from './witness/client';

export interface TransparencyOptions {
  /** Checkpoint origin line and note key name (LLM_AUDIT_LOG_ORIGIN); default derived from the ledger id. */
  origin?: string;
  /** Witnesses to submit each checkpoint to (LLM_AUDIT_WITNESSES). */
  witnesses?: WitnessConfig[];
  /** First and longest delay between retries while a witness is unreachable (tests shorten them). */
  witnessRetryMs?: { min: number; max: number };
  /**
   * How long closing the writer waits for the witnesses to cosign the final checkpoint (default
   * 3000 ms; then the submission is abandoned, and the next writer's start offers it again).
   */
  witnessCloseWaitMs?: number;
}

/** LLM_AUDIT_LOG_ORIGIN and LLM_AUDIT_WITNESSES, validated (LEDGER_USAGE on a bad value). */
export function transparencyFromEnv(env: NodeJS.ProcessEnv): TransparencyOptions {
  const options: TransparencyOptions = {};
  const origin = originFromEnv(env);
  if (origin) options.origin = origin;
  const witnesses = env.LLM_AUDIT_WITNESSES?.trim();
  if (witnesses) options.witnesses = parseWitnesses(witnesses);
  return options;
}

/** What a backend provides: where notes go, and a reader for consistency proofs. */
export interface NoteBackend {
  /** Stores a cosigned copy of a checkpoint note returned by witness `witness`. */
  storeCosigned(note: string, witness: string, treeSize: number): Promise<void>;
  /** A reader of the committed ledger (for the consistency proofs sent to witnesses). */
  source(): LedgerSource;
}

export class CheckpointPublisher {
  private origin: string | undefined;
  readonly witnesses: WitnessClient[];
  private readonly closeWaitMs: number;

  constructor(
    options: TransparencyOptions,
    private readonly key: KeyObject | undefined,
    backend: NoteBackend,
    warn: (message: string) => void,
  ) {
    this.origin = options.origin;
    this.closeWaitMs = options.witnessCloseWaitMs ?? 3_000;
    const host = {
      consistencyPath: async (oldSize: number, newSize: number) => {
        const source = backend.source();
        try {
          // The witness checks the path against the root it cosigned, so it may start at the
          // stored checkpoint of that size (file ledger: O(records since), not O(ledger)).
          const resume = (await source.checkpoints()).find((c) => c.checkpoint.type === 'checkpoint' && c.checkpoint.tree_size === oldSize);
          return await consistencyPath(source, oldSize, newSize, resume?.checkpoint);
        } finally {
          await source.close?.();
        }
      },
      storeCosigned: (note: string, witness: string, size: number) => backend.storeCosigned(note, witness, size),
      warn,
    };
    this.witnesses = key ? (options.witnesses ?? []).map((w) => new WitnessClient(w, host, options.witnessRetryMs)) : [];
    if (!key && (options.witnesses?.length ?? 0) > 0) {
      warn('LLM_AUDIT_WITNESSES is set but there is no signing key (LLM_AUDIT_SIGNING_KEY): witnesses cosign only signed checkpoints, so none are submitted');
    }
  }

  /** Sets the default origin once the ledger id is known. */
  setLedgerId(ledgerId: string): void {
    this.origin ??= defaultOrigin(ledgerId);
  }

  /**
   * The signed note of a checkpoint; undefined for a tombstone or without a key (a note must be
   * signed). Ed25519 is deterministic, so the same checkpoint always gives the same note.
   */
  note(checkpoint: Checkpoint): string | undefined {
    if (!this.key || checkpoint.type !== 'checkpoint' || !this.origin) return undefined;
    return signCheckpointNote(checkpointBody(this.origin, checkpoint.tree_size, checkpoint.root), this.origin, this.key);
  }

  /** Offers a stored (committed) note to every witness; returns at once. */
  offer(note: string | undefined): void {
    if (!note || this.witnesses.length === 0) return;
    const size = parseCheckpointNote(note, 'the new note').treeSize;
    for (const w of this.witnesses) w.offer(note, size);
  }

  /**
   * At a writer's start: the newest checkpoint's note, when a crash came between the checkpoint
   * and its note, is written again (the same bytes: Ed25519 is deterministic), and offered to the
   * witnesses, which catches them up on what was written while this process was not running.
   */
  async resume(checkpoints: readonly Checkpoint[], stored: readonly { text: string }[], store: (note: string) => Promise<void>): Promise<void> {
    let newest: Checkpoint | undefined;
    for (const c of checkpoints) if (c.type === 'checkpoint' && (!newest || c.tree_size >= newest.tree_size)) newest = c;
    const note = newest && this.note(newest);
    if (!note) return;
    if (!stored.some((s) => s.text === note)) await store(note);
    this.offer(note);
  }

  /** Resolves when every witness submission in flight has finished (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.witnesses.map((w) => w.idle()));
  }

  /**
   * Gives the witnesses a bounded time to cosign what is pending (the final checkpoint: without
   * it the newest checkpoint stays uncosigned until the next start), then stops them.
   */
  async close(): Promise<void> {
    for (const w of this.witnesses) w.finish();
    if (this.witnesses.length > 0 && this.closeWaitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.closeWaitMs)))]);
      clearTimeout(timer);
    }
    for (const w of this.witnesses) w.close();
  }
}
