/**
 * One driver per ledger backend for the contract suite (contract.test.ts): where a fresh ledger
 * lives, how to open its writer through the one factory, how to read it, and what an insider
 * with storage access can do to it (the tampering verify must catch). The PostgreSQL driver needs
 * LLM_AUDIT_TEST_POSTGRES_URL and fails without it.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import type { LedgerSource } from '../../../src/ledger/backend';
import { FileLedgerSource } from '../../../src/ledger/file/ledger';
import { PostgresLedgerSource } from '../../../src/ledger/postgres/source';
import { applyPostgresRetention } from '../../../src/ledger/postgres/retention';
import { applyRetention, type RetentionOptions, type RetentionResult } from '../../../src/ledger/retention';
import type { LedgerConfig, WriterOptions } from '../../../src/ledger/writer';
import { createTestDatabase, postgresUrl } from '../../support/postgres';
import { tempDir } from '../helpers';

export interface LedgerUnderTest {
  config(options?: WriterOptions): LedgerConfig;
  source(): LedgerSource;
  /** Rewrites the stored line of entry `seq` (hashes left as they are). */
  alterLine(seq: number, change: (line: string) => string): Promise<void>;
  /** Removes entry `seq` from storage. */
  removeEntry(seq: number): Promise<void>;
  retention(options: RetentionOptions): Promise<RetentionResult>;
  drop(): Promise<void>;
}

export interface Driver {
  name: string;
  create(): Promise<LedgerUnderTest>;
}

function segmentOf(dir: string, seq: number): { path: string; lines: string[]; index: number } {
  for (const name of readdirSync(join(dir, 'segments')).sort()) {
    const path = join(dir, 'segments', name);
    const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
    const index = lines.findIndex((line) => (JSON.parse(line) as { seq: number }).seq === seq);
    if (index >= 0) return { path, lines, index };
  }
  throw new Error(`no entry ${seq} in ${dir}`);
}

export const fileDriver: Driver = {
  name: 'file',
  async create() {
    const dir = join(tempDir('contract-'), 'ledger');
    return {
      config: (options = {}) => ({ backend: 'file', dir, fsync: 'none', ...options }),
      source: () => new FileLedgerSource(dir),
      async alterLine(seq, change) {
        const s = segmentOf(dir, seq);
        s.lines[s.index] = change(s.lines[s.index]!);
        writeFileSync(s.path, s.lines.map((l) => l + '\n').join(''));
      },
      async removeEntry(seq) {
        const s = segmentOf(dir, seq);
        s.lines.splice(s.index, 1);
        writeFileSync(s.path, s.lines.map((l) => l + '\n').join(''));
      },
      retention: (options) => applyRetention(dir, options),
      async drop() {},
    };
  },
};

/** As a superuser with the append-only triggers off: what the database itself refuses to the roles. */
async function behindTheBack(url: string, sql: string, params: unknown[]): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    await client.query(sql, params);
  } finally {
    await client.end();
  }
}

export const postgresDriver: Driver = {
  name: 'postgres',
  async create() {
    postgresUrl();
    const db = await createTestDatabase('contract');
    return {
      config: (options = {}) => ({ backend: 'postgres', url: db.url, ...options }),
      source: () => new PostgresLedgerSource(db.url),
      async alterLine(seq, change) {
        const client = new Client({ connectionString: db.url });
        await client.connect();
        let line: string;
        try {
          line = (await client.query<{ line: string }>(`SELECT line FROM llm_audit.records WHERE seq = $1`, [seq])).rows[0]!.line;
        } finally {
          await client.end();
        }
        await behindTheBack(db.url, `UPDATE llm_audit.records SET line = $1 WHERE seq = $2`, [change(line), seq]);
      },
      removeEntry: (seq) => behindTheBack(db.url, `DELETE FROM llm_audit.records WHERE seq = $1`, [seq]),
      retention: (options) => applyPostgresRetention(db.url, options),
      drop: () => db.drop(),
    };
  },
};

export const DRIVERS: readonly Driver[] = [fileDriver, postgresDriver];
