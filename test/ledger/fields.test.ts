import { describe, expect, it } from 'vitest';
import { RECORD_FIELDS, SQL_COLUMNS, columnOf, sqlColumns } from '../../src/ledger/fields';
import { DETAIL_COLUMNS, EXTRA_COLUMNS, RECORD_COLUMNS, flatRecord, unreadFields } from '../../src/ledger/query';
import type { LedgerRecord } from '../../src/ledger/record';

/** A v3 record with every member set, each leaf to a value no other leaf has. */
const FULL: Required<LedgerRecord> = {
  v: 3,
  request_id: 'req-1',
  timestamp: '2026-03-01T10:00:00.123Z',
  trace_id: '0af7651916cd43dd8448eb211c80319c',
  span_id: 'b7ad6b7169203331',
  user_id: 'alice',
  session_id: 'sess-9',
  tenant_id: 'acme',
  provider: 'openai',
  operation: 'chat',
  model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' },
  action: 'auth.login',
  status: 'blocked',
  system_prompt_hash: 'sha256:aa',
  input_hash: 'sha256:bb',
  output_hash: 'sha256:cc',
  input_tokens: 101,
  output_tokens: 102,
  cache_read_tokens: 103,
  cache_creation_tokens: 104,
  thinking_tokens: 105,
  latency_ms: 106,
  cost_usd: 0.107,
  error_type: 'GuardrailBlocked',
  http_status: 403,
  error_message: 'blocked by policy',
  sanitization_count: 108,
  guardrails: [{ name: 'pii', action: 'blocked', reason: 'card number' }],
  tools: ['search'],
  rag_document_ids: ['doc-1'],
  metadata: { feature: 'support-bot' },
  content: 'v1.ciphertext',
  http: { method: 'POST', host: 'api.example', port: 443, path: '/v1/chat' },
  service_name: 'checkout',
  service_namespace: 'shop',
  service_version: '1.2.3',
  service_instance_id: 'pod-7',
  deployment_environment: 'prod',
  client_address: '203.0.113.0',
  user_agent: 'curl/8',
  block_reason: 'card number in the prompt',
  sanitization: { mode: 'redact', kinds: { EMAIL: 109 } },
  event: { type: 'auth.login', outcome: 'failure', target: 'account:alice', reason: 'wrong password', reason_hash: 'sha256:dd', details: { attempts: 110 } },
};

/** Every scalar inside `value`, with its path. */
function leaves(value: unknown, path = ''): Array<[string, unknown]> {
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => leaves(v, `${path}.${k}`));
  return [[path, value]];
}

describe('the field table (fields.ts) and the query columns', () => {
  it('derives every query column from the table: each row of the table is a column, in table order', () => {
    const columns = [...RECORD_COLUMNS, ...DETAIL_COLUMNS, ...EXTRA_COLUMNS];
    expect(columns).toEqual(['seq', ...RECORD_FIELDS.map(columnOf)]);
    expect(new Set(columns).size).toBe(columns.length);
    // Every indexed PostgreSQL column is a query column too.
    for (const c of SQL_COLUMNS) expect(columns).toContain(columnOf(c.field));
  });

  it('shows every value of a record: every field has a value in a full record, no member is left unread', () => {
    const row = flatRecord({ seq: 7, record: FULL, location: { file: 'x', line: 1, offset: 0 } });
    for (const f of RECORD_FIELDS) expect(row[columnOf(f)], `${f.name} is null for a record that has every member`).not.toBeNull();
    // JSON output adds unread members as they are: with a column for each, there are none.
    expect(unreadFields(FULL)).toEqual({});
    // Each value of the record reaches some column (the content envelope only as content_encrypted:
    // ciphertext, which `llm-audit decrypt` shows to a key holder).
    const shown = new Set(leaves(row).map(([, v]) => JSON.stringify(v)));
    const unshown = leaves(FULL).filter(([path, v]) => path !== '.content' && !shown.has(JSON.stringify(v)));
    expect(unshown).toEqual([]);
  });

  it('names SQL columns by field and refuses a field that has none', () => {
    expect(sqlColumns(['timestamp', 'model_request'])).toEqual({ timestamp: 'r.ts', model_request: 'r.model_request' });
    expect(() => sqlColumns(['metadata'])).toThrow(/metadata has no SQL column/);
  });
});
