/** The PostgreSQL backend of the ledger (docs/server.md). */
export { PostgresLedger, type PostgresLedgerOptions, type PostgresAppendResult } from './writer';
export { PostgresLedgerSource } from './source';
export { applyPostgresRetention } from './retention';
export { migrate, appliedMigrations, MIGRATIONS, LATEST_VERSION, ROLES, SCHEMA } from './migrations';
export { createPool, redactUrl } from './connection';
