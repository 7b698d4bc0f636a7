/**
 * What happens when the audit trail cannot be written: the failure is always loud (stderr by
 * default, whatever OTEL_LOG_LEVEL says: the first failure at once, then a summary at most every
 * SUMMARY_MS while it lasts; the metric `llm_audit.ledger.failed_records`), and with
 * `LLM_AUDIT_ON_FAILURE=block` LLM calls are refused (LlmAuditUnavailableError) until the trail
 * works again. `continue` (the default) lets the calls go on without their records: for most
 * applications a stopped service is the worse failure, and the loss is reported and recorded in
 * the ledger (a `ledger.gap` record) as soon as it can be written again.
 *
 * One module holds the state, shared by every writer of the process (the file ledger exporter
 * reports here) and read where a call starts (src/core/patch.ts).
 */
import { diag, type Counter } from '@opentelemetry/api';
import { auditMeter } from '../util/audit-meter';
import { atProcessExit } from '../util/exit-hook';

export const ON_FAILURE_POLICIES = ['continue', 'block'] as const;
export type OnFailurePolicy = (typeof ON_FAILURE_POLICIES)[number];

/** How often, at most, a summary of continuing failures is printed. */
export const SUMMARY_MS = 10_000;

/** Thrown by an LLM call made while the audit trail cannot be written, under LLM_AUDIT_ON_FAILURE=block. */
export class LlmAuditUnavailableError extends Error {
  override readonly name = 'LlmAuditUnavailableError';
  readonly code = 'LLM_AUDIT_UNAVAILABLE';
}

/** `LLM_AUDIT_ON_FAILURE`: `continue` (default) or `block`; anything else is a configuration error. */
export function onFailureFromEnv(env: NodeJS.ProcessEnv): OnFailurePolicy {
  const value = env.LLM_AUDIT_ON_FAILURE?.trim().toLowerCase();
  if (value === undefined || value === '') return 'continue';
  if ((ON_FAILURE_POLICIES as readonly string[]).includes(value)) return value as OnFailurePolicy;
  throw new Error(`LLM_AUDIT_ON_FAILURE=${env.LLM_AUDIT_ON_FAILURE} is not one of ${ON_FAILURE_POLICIES.join(', ')}`);
}

let policy: OnFailurePolicy = 'continue';
/** Trail (a ledger directory...) -> the last error, while it is failing. */
const failing = new Map<string, string>();
/** Trails that cannot take records (lost some, or cannot be opened) since they last worked: LLM_AUDIT_ON_FAILURE=block refuses calls. */
const unusable = new Set<string>();
/** Trails that lost records since they last worked. */
const losing = new Set<string>();
let counter: Counter | undefined;
let unreported = { lost: 0, failures: 0, error: '' };
let summaryTimer: NodeJS.Timeout | undefined;

export function setOnFailurePolicy(value: OnFailurePolicy): void {
  policy = value;
}

/** The policy in force (set by register from LLM_AUDIT_ON_FAILURE, or by the ledger exporter's options). */
export function onFailurePolicy(): OnFailurePolicy {
  return policy;
}

/** An audit problem an operator must see, on stderr whatever the log level (and through diag). */
export function reportAuditProblem(line: string): void {
  process.stderr.write(`otel-llm-audit: ${line}\n`);
  diag.error(`otel-llm-audit: ${line}`);
}

/**
 * An audit trail failed. `lost` records could not be written anywhere (0 when they were kept
 * elsewhere, in a pending journal, and only the trail itself is failing). The first failure is
 * printed at once, the following ones in a summary at most every SUMMARY_MS. `stopped`: the trail
 * cannot take records (always so when some were lost).
 */
export function reportAuditFailure(trail: string, lost: number, error: unknown, stopped = lost > 0): void {
  const message = error instanceof Error ? error.message : String(error);
  // The package's meter: register's own meter provider (OTEL_METRICS_EXPORTER), else the global one.
  counter ??= auditMeter().createCounter('llm_audit.ledger.failed_records', {
    description: 'Audit records that could not be written to the audit trail',
  });
  if (lost > 0) counter.add(lost, { trail });
  // Said at once: the trail's first failure, the first time it stops taking records, the first loss.
  const first = !failing.has(trail) || (stopped && !unusable.has(trail)) || (lost > 0 && !losing.has(trail));
  if (stopped) unusable.add(trail);
  if (lost > 0) losing.add(trail);
  failing.set(trail, message);
  if (first) {
    const refused = policy === 'block' ? ' (LLM_AUDIT_ON_FAILURE=block: LLM calls are refused until it works again)' : '';
    reportAuditProblem(
      lost > 0
        ? `AUDIT RECORDS LOST: ${lost} record(s) could not be written to ${trail}: ${message}${refused}`
        : stopped
          ? `the audit trail ${trail} cannot be written: ${message}${refused}`
          : `the audit trail ${trail} is failing (${message}); its records are kept in its pending journal`,
    );
    return;
  }
  unreported = { lost: unreported.lost + lost, failures: unreported.failures + 1, error: message };
  summaryTimer ??= setTimeout(sayUnreported, SUMMARY_MS);
  summaryTimer.unref?.();
}

let refusedCounter: Counter | undefined;
let refusedSaidAt = -Infinity;
let refusedUnsaid = 0;

/**
 * A span the trail refused to store (it claims an operation record, see claimedOperation()): an
 * attempt, not a glitch, so said on stderr (the first at once, then at most one line every
 * SUMMARY_MS with the count since) and counted in `llm_audit.ledger.refused_records`. Not a
 * failure of the trail: calls are not blocked for it.
 */
export function reportRefusedRecord(trail: string, reason: string): void {
  refusedCounter ??= auditMeter().createCounter('llm_audit.ledger.refused_records', {
    description: 'Spans the audit trail refused to store (they claim an operation record only llm-audit writes)',
  });
  refusedCounter.add(1, { trail });
  refusedUnsaid++;
  if (Date.now() - refusedSaidAt < SUMMARY_MS) return;
  refusedSaidAt = Date.now();
  reportAuditProblem(`REFUSED ${refusedUnsaid} audit record(s) for ${trail}: ${reason}`);
  refusedUnsaid = 0;
}

/** The summary of the failures not said yet (every SUMMARY_MS, and at exit). */
function sayUnreported(): void {
  if (summaryTimer) clearTimeout(summaryTimer);
  summaryTimer = undefined;
  const { lost: n, failures, error: last } = unreported;
  unreported = { lost: 0, failures: 0, error: '' };
  if (failures > 0) {
    reportAuditProblem(`${n > 0 ? `AUDIT RECORDS LOST: ${n} more record(s)` : 'no record lost'}, ${failures} more failure(s) of the audit trail since the last report (last error: ${last})`);
  }
}
atProcessExit(sayUnreported);

/** The trail works again (said once, when it had failed). */
export function auditTrailRestored(trail: string, note: string): void {
  unusable.delete(trail);
  losing.delete(trail);
  if (failing.delete(trail)) reportAuditProblem(`the audit trail ${trail} works again; ${note}`);
}

/** Why the audit trail cannot be written now (records were lost and it has not worked since), or undefined. */
export function auditTrailUnavailable(): string | undefined {
  if (unusable.size === 0) return undefined;
  return [...unusable].map((trail) => `${trail}: ${failing.get(trail) ?? 'failing'}`).join('; ');
}

/**
 * Under LLM_AUDIT_ON_FAILURE=block while the trail is failing: a gate for the call (see
 * src/core/patch.ts) that rejects with LlmAuditUnavailableError, so the SDK method fails before
 * anything is sent; otherwise undefined.
 */
export function refusedWhileAuditUnavailable(): Promise<never> | undefined {
  if (policy !== 'block') return undefined;
  const why = auditTrailUnavailable();
  if (why === undefined) return undefined;
  const refused = Promise.reject(new LlmAuditUnavailableError(`otel-llm-audit: LLM call refused (LLM_AUDIT_ON_FAILURE=block): the audit trail cannot be written: ${why}`));
  // Whoever awaits the gate sees the rejection; it is not an unhandled one meanwhile.
  refused.catch(() => undefined);
  return refused;
}
