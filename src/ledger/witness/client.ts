/**
 * Submitting checkpoints to witnesses (c2sp.org/tlog-witness). A witness keeps, per log origin,
 * the newest tree head it cosigned; it cosigns a new one only with a consistency proof from that
 * one, so once it has cosigned a tree head, no history that drops or changes those records can
 * get its cosignature, whoever holds the log's key.
 *
 * One {@link WitnessClient} per witness. The writer hands it each new checkpoint note
 * ({@link WitnessClient.offer}, synchronous, never waits); a loop submits the newest one, with
 * the consistency proof from the size the witness knows (learned from its 409 answer), stores the
 * cosigned note, and while the witness is unreachable retries with a growing delay, always with
 * the newest note. Nothing the app calls waits for it.
 */
import { LedgerError } from '../errors';
import {
  NOTE_KEY_COSIGNATURE_V1,
  formatAddCheckpoint,
  formatNote,
  hasValidSignature,
  mergeSignatures,
  parseCheckpointNote,
  parseVerifierKey,
  type NoteVerifier,
} from '../note';

export interface WitnessConfig {
  /** Submission prefix: the request goes to `${url}/add-checkpoint`. */
  url: string;
  verifier: NoteVerifier;
}

/**
 * Parses LLM_AUDIT_WITNESSES: entries separated by commas, each `<url> <verifier key>`, e.g.
 * `https://w1.example/llm-audit w1.example+8d2f8b1c+BASE64, http://127.0.0.1:7380 local+...`.
 */
export function parseWitnesses(text: string, what = 'LLM_AUDIT_WITNESSES'): WitnessConfig[] {
  const out: WitnessConfig[] = [];
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const parts = entry.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new LedgerError('LEDGER_USAGE', `${what}: ${JSON.stringify(entry.trim())} must be "<url> <verifier key>"`);
    }
    const [url, key] = parts as [string, string];
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new LedgerError('LEDGER_USAGE', `${what}: ${JSON.stringify(url)} is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new LedgerError('LEDGER_USAGE', `${what}: ${url} must be http(s)`);
    let verifier: NoteVerifier;
    try {
      verifier = parseVerifierKey(key);
    } catch (error) {
      throw new LedgerError('LEDGER_USAGE', `${what}: ${(error as Error).message}`);
    }
    if (verifier.type !== NOTE_KEY_COSIGNATURE_V1) throw new LedgerError('LEDGER_USAGE', `${what}: ${verifier.name}'s key is not a witness (cosignature/v1) key`);
    out.push({ url: url.replace(/\/+$/, ''), verifier });
  }
  return out;
}

export interface WitnessHost {
  /** The consistency path (hex) between two sizes of this ledger. */
  consistencyPath(oldSize: number, newSize: number): Promise<string[]>;
  /** Stores a cosigned copy of a checkpoint note. */
  storeCosigned(note: string, witness: string, treeSize: number): Promise<void>;
  warn(message: string): void;
}

const REQUEST_TIMEOUT_MS = 10_000;
const MIN_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

interface Offered {
  note: string;
  size: number;
}

/** The witness's answer, when it is a refusal that retrying the same request cannot change. */
class Refused extends Error {}

export class WitnessClient {
  /** The tree size the witness last cosigned for this log, as far as we know. */
  private known: number | undefined;
  private latest: Offered | undefined;
  private done = -1;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Closing: one more try for what is pending, no retry after a failure. */
  private finishing = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private failures = 0;
  /** Submissions answered with a cosignature (tests and diagnostics). */
  cosigned = 0;
  lastError: string | undefined;

  constructor(
    readonly config: WitnessConfig,
    private readonly host: WitnessHost,
    private readonly retryMs = { min: MIN_RETRY_MS, max: MAX_RETRY_MS },
  ) {}

  get name(): string {
    return this.config.verifier.name;
  }

  /** Queues `note` (tree size `size`) for cosigning; returns at once. */
  offer(note: string, size: number): void {
    if (this.closed) return;
    if (this.latest && size < this.latest.size) return;
    this.latest = { note, size };
    if (this.wake) {
      // A new checkpoint while waiting to retry: the witness may be back; try now.
      this.wake();
    } else this.running ??= this.loop().finally(() => (this.running = undefined));
  }

  /** Resolves when nothing is pending (tests), or the wait ends. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** No more retries: what is pending gets the attempt in flight (or one more), then the loop ends. */
  finish(): void {
    this.finishing = true;
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
    this.wake?.();
  }

  private async loop(): Promise<void> {
    while (!this.closed && this.latest && this.latest.size > this.done) {
      const target = this.latest;
      try {
        await this.submit(target);
        this.done = target.size;
        if (this.failures > 0) this.host.warn(`witness ${this.name}: reachable again; cosigned tree size ${target.size}`);
        this.failures = 0;
        this.lastError = undefined;
      } catch (error) {
        if (this.closed) return;
        this.lastError = (error as Error).message;
        if (error instanceof Refused) {
          // The witness answered and refused this tree head: retrying it cannot help, and it is
          // what a rewritten history looks like, so it is reported every time. The next
          // checkpoint is tried afresh.
          this.host.warn(`witness ${this.name} REFUSED tree size ${target.size}: ${this.lastError}`);
          this.done = target.size;
          continue;
        }
        if (this.finishing) {
          this.host.warn(`witness ${this.name}: tree size ${target.size} not cosigned before the writer closed (${this.lastError}); the next start offers it again`);
          return;
        }
        this.failures += 1;
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.host.warn(`witness ${this.name} unreachable (${this.failures} attempt${this.failures === 1 ? '' : 's'}): ${this.lastError}; retrying, the ledger keeps working`);
        }
        await this.sleep(Math.min(this.retryMs.max, this.retryMs.min * 2 ** Math.min(this.failures - 1, 16)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    }).finally(() => (this.wake = undefined));
  }

  private async submit(target: Offered): Promise<void> {
    // A fresh witness knows size 0; otherwise its 409 answer says what it knows, and the request
    // is made again from there (at most twice: a concurrent submitter could move it meanwhile).
    for (let attempt = 0; attempt < 3; attempt++) {
      const old = this.known ?? 0;
      if (old > target.size) {
        throw new Refused(
          `it has already cosigned tree size ${old}, larger than this ledger's ${target.size}: records it saw are gone (the ledger was truncated or rewritten)`,
        );
      }
      const path = await this.host.consistencyPath(old, target.size);
      const response = await fetch(`${this.config.url}/add-checkpoint`, {
        method: 'POST',
        body: formatAddCheckpoint(old, path, target.note),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      const text = await response.text();
      if (response.status === 409) {
        const size = Number(text.trim());
        if (!Number.isSafeInteger(size) || size < 0) throw new Error(`409 with a body that is not a tree size: ${JSON.stringify(text.slice(0, 80))}`);
        this.known = size;
        continue;
      }
      if (response.status === 200) return this.accept(target, text);
      const why = `${response.status} ${text.trim().slice(0, 200)}`;
      if (response.status === 422) throw new Refused(`${why}: this ledger at size ${target.size} is not consistent with the tree size ${old} the witness cosigned (history was rewritten)`);
      if (response.status === 403 || response.status === 404) throw new Refused(`${why} (is the log's origin and verifier key configured on the witness?)`);
      if (response.status === 400) throw new Refused(why);
      throw new Error(why);
    }
    throw new Error('the witness kept changing the tree size it knows');
  }

  private async accept(target: Offered, cosignatures: string): Promise<void> {
    const note = parseCheckpointNote(target.note, 'the submitted note');
    let cosigned;
    try {
      cosigned = mergeSignatures(note, parseCheckpointNote(`${note.body}\n${cosignatures}`, `witness ${this.name}'s answer`).signatures);
    } catch (error) {
      throw new Refused(`its answer is not a list of signature lines: ${(error as Error).message}`);
    }
    if (!hasValidSignature(cosigned, this.config.verifier)) {
      throw new Refused(`its answer carries no valid cosignature by ${this.config.verifier.text}`);
    }
    this.known = target.size;
    await this.host.storeCosigned(formatNote(cosigned), this.name, target.size);
    this.cosigned += 1;
  }
}
