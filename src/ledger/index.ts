/** Public API of the audit ledger (see docs/ledger.md). */
export { LedgerError, EXIT, exitCodeFor, isLedgerError, type LedgerErrorCode, type LedgerLocation } from './errors';
export { recordFromSpan, isAuditSpan, RECORD_VERSION, type LedgerRecord } from './record';
export * as merkle from './merkle';
export {
  checkSignature,
  finishCheckpoint,
  keyIdOf,
  loadPrivateKey,
  loadPublicKey,
  parseCheckpoint,
  readCheckpointFile,
  writeKeyFiles,
  type Checkpoint,
  type TombstoneInfo,
} from './checkpoint';
export type { LedgerSource, LedgerItem, CheckpointEntry, StoredEntry, ItemLocation } from './backend';
export { FileLedger, FileLedgerSource, FSYNC_POLICIES, type FileLedgerOptions, type FsyncPolicy, type AppendResult } from './file/ledger';
export {
  openLedgerWriter,
  ledgerConfigFromEnv,
  type LedgerWriter,
  type LedgerConfig,
  type AppendOutcome,
  type AppendOptions,
  type WriterOptions,
} from './writer';
export { verifyLedger, type VerifyOptions, type VerifyResult } from './verify';
export { proveInclusion, proveConsistency, verifyProof, newestCheckpoint, type InclusionProof, type ConsistencyProof, type Proof } from './proofs';
export { scanRecords, queryRecords, type QueryFilter, type RecordHit } from './query';
export { costByUser, anomalies, errorRate, type Report } from './reports';
export { applyRetention, resolvePolicy, parseDuration, recordExpiry, type RetentionPolicy, type RetentionPlan } from './retention';
export { repairLedger, type RepairAction } from './file/repair';
export { LedgerSpanExporter, ledgerOptionsFromEnv, DEFAULT_LEDGER_DIR, type LedgerSpanExporterOptions } from './span-exporter';
