import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { FileLedger, type FileLedgerOptions } from '../../src/ledger/file/ledger';
import type { LedgerSource } from '../../src/ledger/backend';
import { initialChainState, walkChain } from '../../src/ledger/chain';
import { CHECKPOINT_VERSION, finishCheckpoint, type Checkpoint } from '../../src/ledger/checkpoint';
import type { LedgerRecord } from '../../src/ledger/record';
import { verifyLedger } from '../../src/ledger/verify';

const dirs: string[] = [];

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = 'ledger-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

let counter = 0;

export function makeRecord(overrides: Partial<LedgerRecord> = {}): LedgerRecord {
  counter++;
  return {
    v: 1,
    request_id: `req-${counter}`,
    timestamp: '2026-03-01T10:00:00.000Z',
    trace_id: '0af7651916cd43dd8448eb211c80319c',
    span_id: 'b7ad6b7169203331',
    user_id: 'alice',
    session_id: null,
    tenant_id: null,
    provider: 'openai',
    operation: 'chat',
    model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' },
    action: 'chat.completions.create',
    status: 'success',
    system_prompt_hash: null,
    input_hash: 'sha256:' + 'ab'.repeat(32),
    output_hash: 'sha256:' + 'cd'.repeat(32),
    input_tokens: 100,
    output_tokens: 20,
    cache_read_tokens: null,
    cache_creation_tokens: null,
    thinking_tokens: null,
    latency_ms: 120.5,
    cost_usd: 0.001,
    error_type: null,
    error_message: null,
    sanitization_count: null,
    guardrails: null,
    tools: null,
    rag_document_ids: null,
    metadata: null,
    ...overrides,
  };
}

/** A mutable clock for segment days. */
export function fakeClock(start: string): { now: () => Date; set(iso: string): void } {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set: (iso) => {
      t = Date.parse(iso);
    },
  };
}

/** Writes `count` records (one append each) and closes (final checkpoint). */
export async function buildLedger(
  dir: string,
  count: number,
  options: Partial<FileLedgerOptions> = {},
  record: (i: number) => Partial<LedgerRecord> = () => ({}),
): Promise<void> {
  const ledger = await FileLedger.open({ dir, fsync: 'none', ...options });
  for (let i = 0; i < count; i++) await ledger.append([makeRecord(record(i))]);
  await ledger.close();
}

export function readLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text.split('\n').slice(0, -1);
}

export function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((l) => l + '\n').join(''));
}

/**
 * What an insider without the signing key can write: an unsigned retention tombstone claiming the
 * records [0, n) were removed. The root, frontier and last leaf are recomputed from the ledger
 * itself (anyone who can read it can), so only the missing signature and the dates give it away.
 */
export async function forgeTombstone(
  source: LedgerSource,
  n: number,
  removed: Array<{ name: string; first_seq: number; last_seq: number; newest_timestamp: string }>,
  details: { applied_at?: string; policy?: Record<string, string>; timestamp?: string } = {},
): Promise<Checkpoint> {
  const head = await verifyLedger(source);
  const state = initialChainState();
  await walkChain(source.items(), state, { stopAtSize: n });
  const appliedAt = details.applied_at ?? new Date().toISOString();
  return finishCheckpoint(
    {
      v: CHECKPOINT_VERSION,
      type: 'tombstone',
      ledger_id: (await source.ledgerId()) ?? '',
      tree_size: n,
      root: state.range.root().toString('hex'),
      last_leaf: state.lastLeaf.toString('hex'),
      frontier: state.range.frontier.map((h) => h.toString('hex')),
      position: null,
      timestamp: details.timestamp ?? appliedAt,
      tombstone: {
        policy: details.policy ?? { name: 'gdpr', metadata: '30d', content: '30d', errors: '30d' },
        applied_at: appliedAt,
        removed_segments: removed.map((s) => ({ ...s, records: s.last_seq - s.first_seq + 1, expired_at: appliedAt })),
        head: { tree_size: head.treeSize, root: head.root },
      },
    },
    undefined,
  );
}
