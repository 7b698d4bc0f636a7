/**
 * Reads of the audit trail, recorded in it (issue 23, section 4): `decrypt`, `query`, `report` and
 * `evidence` append an `audit.read` operation record (READ_ACTION) naming who read (`--actor`,
 * else the OS user), with which command, which records and why (`--reason`).
 *
 * `decrypt` reveals content, so it shows nothing unless the record was appended first. The other
 * commands show what anyone with read access can already see: they record the read when they run
 * with a writer's access (file: the ledger's lock can be taken; PostgreSQL: the role may insert,
 * i.e. is a member of llm_audit_writer) and otherwise say on stderr that the read went unrecorded;
 * `--require-audit` turns that into a refusal before anything is read.
 *
 * The writer is opened only to append, after the read (decrypt: before printing), so a long report
 * never holds the lock a starting application needs. Access is probed first (the lock taken and
 * released, the role's privileges), which is what decides between refusing and reading.
 *
 * A ledger whose newest checkpoint is signed is recorded in only with the signing key
 * (`--signing-key`, else LLM_AUDIT_SIGNING_KEY): a record appended without it would end the ledger
 * on an unsigned checkpoint, and `verify --public-key` would then fail on a read.
 */
import { hostname, userInfo } from 'node:os';
import type { LedgerSource } from '../ledger/backend';
import { LedgerError, isLedgerError, type LedgerErrorCode } from '../ledger/errors';
import { FileLedgerSource } from '../ledger/file/ledger';
import { acquireLock } from '../ledger/file/lock';
import { READ_ACTION, operationRecord, type MetadataValue } from '../ledger/record';
import { flag, str, type CliIo, type Parsed } from './io';
import type { PostgresLedgerSource } from '../ledger/postgres/source';
import { ledgerOf, openCliWriter } from './source';

/** The options every reading command takes for its audit.read record. */
export const READ_AUDIT_OPTIONS = {
  actor: { type: 'string' },
  reason: { type: 'string' },
  'signing-key': { type: 'string' },
  'require-audit': { type: 'boolean' },
} as const;

export const READ_AUDIT_USAGE = '[--actor NAME] [--reason TEXT] [--signing-key FILE] [--require-audit]';

/** What one read was: the command, the tenant it concerned (null: several or none), and which records. */
export interface ReadDetails {
  command: string;
  tenantId: string | null;
  details: Record<string, MetadataValue>;
}

/** Up to this many seqs are listed in a read record; beyond it, the first and last and the count. */
const MAX_LISTED = 1000;

/** `details` naming the records read: their seqs (up to MAX_LISTED), else the range, and the count. */
export function recordsRead(seqs: readonly number[]): Record<string, MetadataValue> {
  if (seqs.length <= MAX_LISTED) return { records: seqs.length, seqs: [...seqs] };
  return { records: seqs.length, first_seq: seqs[0]!, last_seq: seqs[seqs.length - 1]! };
}

/** A filter's set values as metadata (dates as ISO 8601). */
export function filterDetails(filter: Record<string, string | number | undefined>): Record<string, MetadataValue> {
  const out: Record<string, MetadataValue> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined) continue;
    out[key] = (key === 'from' || key === 'to' || key === 'now') && typeof value === 'number' ? new Date(value).toISOString() : value;
  }
  return out;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

/**
 * Records reads in the ledger the command reads, or says why it cannot. Made by `ReadAudit.prepare`,
 * which probes the access before anything is read.
 */
export class ReadAudit {
  private constructor(
    private readonly p: Parsed,
    private readonly io: CliIo,
    /** Why the read cannot be recorded; undefined when it can. */
    readonly unavailable: { code: LedgerErrorCode; why: string } | undefined,
    private readonly shared: PostgresLedgerSource | undefined,
  ) {}

  /**
   * `source`: the PostgreSQL ledger the command reads, whose connection the probe and the writer
   * then share (one connection per command, not three: each new one cost a login and a cold
   * catalog cache in its server process). The command keeps it open until the read is recorded.
   */
  static async prepare(p: Parsed, io: CliIo, source?: LedgerSource): Promise<ReadAudit> {
    const shared = source !== undefined && ledgerOf(p, io).backend === 'postgres' ? (source as PostgresLedgerSource) : undefined;
    const unavailable = await probe(p, io, shared);
    return new ReadAudit(p, io, unavailable, shared);
  }

  /** Who reads: --actor, else the OS user. The OS user is recorded in any case. */
  private who(): Record<string, MetadataValue> {
    const os = osUser();
    const actor = str(this.p, 'actor')?.trim() || os;
    const reason = str(this.p, 'reason')?.trim();
    return { actor, os_user: os, host: hostname(), ...(reason ? { reason } : {}) };
  }

  /** Appends the audit.read record; throws (LedgerError) when it cannot. */
  async record(read: ReadDetails): Promise<void> {
    if (this.unavailable) throw new LedgerError(this.unavailable.code, this.unavailable.why);
    const record = operationRecord({
      action: READ_ACTION,
      timestamp: new Date().toISOString(),
      tenantId: read.tenantId,
      status: 'success',
      metadata: { command: read.command, ...this.who(), ...read.details },
    });
    // The ledger this command reads (ledgerOf: flags, else the environment, else the default directory).
    const writer = await openCliWriter(this.p, this.io, undefined, this.shared);
    try {
      // A fresh random span id (operationRecord): it cannot be stored already.
      await writer.append([record], { unique: true });
    } finally {
      await writer.close();
    }
  }

  /**
   * For the commands that show what the reader can already see: says on stderr that the read is
   * not recorded (or refuses with --require-audit, before anything was read).
   */
  unrecordedNotice(command: string): void {
    if (!this.unavailable) return;
    if (flag(this.p, 'require-audit')) {
      throw new LedgerError(this.unavailable.code, `${command}: --require-audit: this read cannot be recorded in the ledger (audit.read): ${this.unavailable.why}; nothing was read`);
    }
    this.io.err(`note: this read is not recorded in the ledger (audit.read): ${this.unavailable.why}`);
  }

  /** Records the read after a command that has shown it; a failure is said, and fails only with --require-audit. */
  async recordAfter(read: ReadDetails): Promise<void> {
    if (this.unavailable) return;
    try {
      await this.record(read);
    } catch (error) {
      if (flag(this.p, 'require-audit')) throw error;
      this.io.err(`warning: this read could not be recorded in the ledger (audit.read): ${(error as Error).message.split('\n')[0]}`);
    }
  }
}

/** Why a read of the ledger named by the flags cannot be recorded there, or undefined when it can. */
async function probe(p: Parsed, io: CliIo, shared: PostgresLedgerSource | undefined): Promise<{ code: LedgerErrorCode; why: string } | undefined> {
  // A ledger that is not there fails the read itself, with its own message.
  const cannot = (error: unknown): { code: LedgerErrorCode; why: string } => {
    if (isLedgerError(error) && error.code === 'LEDGER_NOT_FOUND') throw error;
    return { code: isLedgerError(error) ? error.code : 'LEDGER_IO', why: (error as Error).message.split('\n')[0]! };
  };
  const where = ledgerOf(p, io);
  if (where.backend === 'postgres') {
    const { PostgresLedgerSource } = require('../ledger/postgres/source') as typeof import('../ledger/postgres/source');
    const pg = shared ?? new PostgresLedgerSource(where.url);
    try {
      const access = await pg.access();
      if (!access.canAppend) {
        return { code: 'LEDGER_UNREADABLE', why: `the role ${access.role} has no writer's access to ${pg.name} (it is not a member of llm_audit_writer)` };
      }
      return await signedWithoutKey(pg, p, io);
    } catch (error) {
      return cannot(error);
    } finally {
      if (pg !== shared) await pg.close();
    }
  }
  const dir = where.dir;
  const source = new FileLedgerSource(dir);
  try {
    await source.open();
    acquireLock(dir, 'record a read of').release();
    return await signedWithoutKey(source, p, io);
  } catch (error) {
    return cannot(error);
  }
}

/** A ledger whose newest checkpoint is signed takes records only from a writer with the key. */
async function signedWithoutKey(source: LedgerSource, p: Parsed, io: CliIo): Promise<{ code: LedgerErrorCode; why: string } | undefined> {
  if (str(p, 'signing-key') !== undefined || io.env.LLM_AUDIT_SIGNING_KEY?.trim()) return undefined;
  const checkpoints = (await source.checkpoints()).map((c) => c.checkpoint);
  const newest = checkpoints.sort((a, b) => b.tree_size - a.tree_size)[0];
  if (newest === undefined || newest.signature === null) return undefined;
  return {
    code: 'LEDGER_KEY_INVALID',
    why: `${source.name} is signed, and without its signing key (--signing-key FILE or LLM_AUDIT_SIGNING_KEY) a record appended now would leave it on an unsigned checkpoint`,
  };
}
