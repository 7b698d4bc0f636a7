/**
 * The write side's one seam: every component that appends to a ledger (the in-process span
 * exporter, `llm-audit serve`, `llm-audit shred`) gets a {@link LedgerWriter} from
 * {@link openLedgerWriter}, and chooses the backend in one place, {@link ledgerConfigFromEnv}
 * (flags over the environment; `LLM_AUDIT_POSTGRES_URL` selects PostgreSQL for all of them).
 * Both backends follow the append protocol of protocol.ts; docs/ledger.md "The write path".
 */
import type { KeyObject } from 'node:crypto';
import type { Checkpoint } from './checkpoint';
import { LedgerError } from './errors';
import { FSYNC_POLICIES, type FsyncPolicy } from './file/ledger';
import type { PostgresLedgerOptions } from './postgres/writer';
import type { AppendInput, SeqRange } from './protocol';
import type { FileLedgerWriterOptions } from './file/writer';
import type { JournalOptions } from './file/pending-journal';
import type { SharedOptions } from './file/shared-writer';
import { transparencyFromEnv, type TransparencyOptions } from './transparency';

export interface AppendOutcome extends SeqRange {
  /** Records stored by this append (seq firstSeq..lastSeq). */
  stored: number;
  /** Records left out because their span (trace id + span id) is already in the ledger, or repeated in the batch. */
  duplicates: number;
  /**
   * Records a shared writer (file/shared-writer.ts) kept in this process's pending journal instead
   * (another process holds the ledger, or the ledger failed): durable, appended later, not stored yet.
   */
  journaled?: number;
}

export interface AppendOptions {
  /**
   * The caller knows no record's span is stored yet (spans this process just made, or journal
   * records it checked itself): the file backend then skips its span index. PostgreSQL's unique
   * constraint holds either way.
   */
  unique?: boolean;
}

export interface LedgerWriter {
  /** For logs and /healthz: the directory, or the database URL without its password. */
  readonly description: string;
  /** Entries in the ledger as this writer knows it. */
  readonly size: number;
  /** Records handed to append() and not durable yet. */
  readonly backlog: number;
  /** What opening found (a stale lock taken over, records marked as recovered...). */
  readonly notices: readonly string[];
  /**
   * Appends the records whose span (trace id + span id) is not stored yet, all or nothing: when
   * the promise rejects, nothing of the batch was stored. Resolves once durable. A record given
   * as a SerializedRecord (protocol.ts) is stored with the canonical JSON it carries, not serialised again.
   */
  append(records: readonly AppendInput[], options?: AppendOptions): Promise<AppendOutcome>;
  /** Writes a checkpoint now when records were added since the newest one. */
  checkpoint(): Promise<Checkpoint | undefined>;
  /** Makes durable what the fsync policy left in the OS cache (a no-op where commits are durable). */
  sync(): Promise<void>;
  /** Final checkpoint, then releases the ledger (lock, connections). Safe to call twice. */
  close(): Promise<void>;
}

/** What every backend's writer accepts. */
export interface WriterOptions {
  signingKey?: KeyObject;
  signingKeyPath?: string;
  /** Write a checkpoint after this many records (default 1000)... */
  checkpointEvery?: number;
  /** ...or when this long has passed since the newest one and records were added (default 60 s). */
  checkpointIntervalMs?: number;
  /** Clock for record days and checkpoint times (tests). */
  clock?: () => Date;
  /** Problems that do not fail an append (a checkpoint that could not be written). */
  onWarning?: (message: string) => void;
  /** C2SP notes and witnesses (default: LLM_AUDIT_LOG_ORIGIN, LLM_AUDIT_WITNESSES). */
  transparency?: TransparencyOptions;
  /**
   * Append the pending journals too, at open, every POLL_MS and at close (the span exporter's
   * writers: file/pending-journal.ts JournalingWriter).
   */
  journals?: JournalOptions;
  /**
   * Open nothing now: a SharedLedgerWriter (file/shared-writer.ts) opens the ledger at the first
   * append and hides which process holds it (the lock, journal mode, retries, takeover).
   */
  shared?: SharedOptions;
}

export type LedgerConfig = ({ backend: 'file' } & FileLedgerWriterOptions) | ({ backend: 'postgres' } & PostgresLedgerOptions);

export const DEFAULT_LEDGER_DIR = './llm-audit-ledger';

/** Explicit choices (command-line flags) that win over the environment. */
export interface LedgerFlags {
  dir?: string;
  url?: string;
  fsync?: string;
  signingKeyPath?: string;
  checkpointEvery?: string;
}

/**
 * The ledger to write, from flags and the environment: PostgreSQL when `--postgres URL` is given,
 * or `LLM_AUDIT_POSTGRES_URL` is set and no `--ledger DIR` was given; else the file ledger in
 * `--ledger DIR`, `LLM_AUDIT_LEDGER_DIR` or ./llm-audit-ledger. Also reads LLM_AUDIT_FSYNC,
 * LLM_AUDIT_SIGNING_KEY, LLM_AUDIT_CHECKPOINT_EVERY, LLM_AUDIT_LOG_ORIGIN, LLM_AUDIT_WITNESSES;
 * a bad value is a LEDGER_USAGE error now, not at the first append.
 */
export function ledgerConfigFromEnv(env: NodeJS.ProcessEnv, flags: LedgerFlags = {}): LedgerConfig {
  const common: WriterOptions = {};
  const signingKeyPath = flags.signingKeyPath ?? (env.LLM_AUDIT_SIGNING_KEY?.trim() || undefined);
  if (signingKeyPath) common.signingKeyPath = signingKeyPath;
  const every = positiveInt(flags.checkpointEvery !== undefined ? '--checkpoint-every' : 'LLM_AUDIT_CHECKPOINT_EVERY', flags.checkpointEvery ?? env.LLM_AUDIT_CHECKPOINT_EVERY);
  if (every) common.checkpointEvery = every;
  const transparency = transparencyFromEnv(env);
  if (Object.keys(transparency).length > 0) common.transparency = transparency;
  const fsyncText = flags.fsync ?? env.LLM_AUDIT_FSYNC;
  const fsync = fsyncPolicy(flags.fsync !== undefined ? '--fsync' : 'LLM_AUDIT_FSYNC', fsyncText);
  const where = ledgerLocation(env, flags);
  if (where.backend === 'postgres') {
    // Every PostgreSQL commit is durable (synchronous_commit is the database's setting): an fsync
    // policy has nothing to act on, and accepting one silently would promise what it does not do.
    if (flags.fsync !== undefined) throw new LedgerError('LEDGER_USAGE', '--fsync is for the file ledger; PostgreSQL commits are durable');
    return { ...where, ...common };
  }
  return { ...where, ...(fsync ? { fsync } : {}), ...common };
}

/**
 * Which ledger, without the writer's options (the read commands use it too): PostgreSQL for
 * `--postgres URL`, or `LLM_AUDIT_POSTGRES_URL` unless `--ledger DIR` was given; else the file
 * ledger in `--ledger DIR`, `LLM_AUDIT_LEDGER_DIR` or ./llm-audit-ledger.
 */
export function ledgerLocation(env: NodeJS.ProcessEnv, flags: Pick<LedgerFlags, 'dir' | 'url'> = {}): { backend: 'file'; dir: string } | { backend: 'postgres'; url: string } {
  if (flags.url !== undefined && flags.dir !== undefined) throw new LedgerError('LEDGER_USAGE', 'give either --ledger DIR or --postgres URL, not both');
  const url = flags.url ?? (flags.dir === undefined ? env.LLM_AUDIT_POSTGRES_URL?.trim() || undefined : undefined);
  if (url !== undefined) {
    if (url.trim() === '') throw new LedgerError('LEDGER_USAGE', '--postgres needs a connection URL');
    return { backend: 'postgres', url };
  }
  return { backend: 'file', dir: flags.dir ?? (env.LLM_AUDIT_LEDGER_DIR?.trim() || DEFAULT_LEDGER_DIR) };
}

export function fsyncPolicy(name: string, raw: string | undefined): FsyncPolicy | undefined {
  const value = raw?.trim().toLowerCase();
  if (!value) return undefined;
  if (!(FSYNC_POLICIES as readonly string[]).includes(value)) {
    throw new LedgerError('LEDGER_USAGE', `${name} must be one of ${FSYNC_POLICIES.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return value as FsyncPolicy;
}

export function positiveInt(name: string, raw: string | undefined): number | undefined {
  const text = raw?.trim();
  if (!text) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new LedgerError('LEDGER_USAGE', `${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Opens the configured ledger for appending: the file ledger (creating it if needed, taking its
 * lock, building its span index) or PostgreSQL (schema checked, state recovered). The database
 * driver is loaded only for PostgreSQL. With `shared`, nothing is opened now: the writer opens
 * the ledger at its first append, and journals while another process holds it.
 */
export async function openLedgerWriter(config: LedgerConfig): Promise<LedgerWriter> {
  const { shared, ...backend } = config;
  if (shared) {
    const { SharedLedgerWriter } = await import('./file/shared-writer.js');
    return new SharedLedgerWriter(() => openLedgerWriter(backend), shared);
  }
  const writer = await openBackend(config);
  if (!config.journals) return writer;
  const { JournalingWriter } = await import('./file/pending-journal.js');
  return JournalingWriter.start(writer, config.journals);
}

async function openBackend(config: LedgerConfig): Promise<LedgerWriter> {
  if (config.backend === 'postgres') {
    const { PostgresLedger } = await import('./postgres/writer.js');
    const { backend: _, journals: _journals, shared: _shared, ...options } = config;
    return PostgresLedger.open(options);
  }
  const { backend: _, journals: _journals, shared: _shared, ...options } = config;
  // Loaded when used, as the PostgreSQL writer is: a CLI read on PostgreSQL that records itself
  // needs neither the file writer nor the hashing it brings (and @opentelemetry/api with it).
  const { FileLedgerWriter } = await import('./file/writer.js');
  return FileLedgerWriter.open(options);
}
