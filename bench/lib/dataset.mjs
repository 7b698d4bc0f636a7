// The deterministic data set of the scale benchmark (issue 22): N audit records (1,000,000 by
// default) spread evenly over 35 days, 500 users, 10,000 sessions, 5 tenants, 4 models, 2 % failed
// calls (no response model, no cost), 0.05 % input-token spikes (20 times the usual), about 1,140
// bytes per ledger line. The same seed and size give the same records, byte for byte, on every
// machine: a seeded PRNG (mulberry32), no clock, no randomBytes.

export const DAYS = 35;
export const USERS = 500;
export const SESSIONS = 10_000;
export const TENANTS = 5;
/** The data set ends here (exclusive); reports take their `--now` from it. */
export const END = Date.parse('2026-11-30T00:00:00.000Z');
export const START = END - DAYS * 86_400_000;

const MODELS = [
  { provider: 'openai', request: 'gpt-4o', response: 'gpt-4o-2024-08-06', operation: 'chat', action: 'chat.completions.create', in: 2.5e-6, out: 10e-6 },
  { provider: 'openai', request: 'gpt-4o-mini', response: 'gpt-4o-mini-2024-07-18', operation: 'chat', action: 'chat.completions.create', in: 0.15e-6, out: 0.6e-6 },
  { provider: 'anthropic', request: 'claude-sonnet-4-5', response: 'claude-sonnet-4-5-20250929', operation: 'chat', action: 'messages.create', in: 3e-6, out: 15e-6 },
  { provider: 'gcp.gemini', request: 'gemini-2.5-flash', response: 'gemini-2.5-flash', operation: 'generate_content', action: 'models.generateContent', in: 0.3e-6, out: 2.5e-6 },
];
const ERRORS = [
  { type: 'rate_limit_exceeded', http: 429, message: 'Rate limit reached for requests' },
  { type: 'overloaded_error', http: 529, message: 'Overloaded' },
  { type: 'invalid_request_error', http: 400, message: 'Invalid parameter: messages' },
];

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(rand, digits) {
  let s = '';
  while (s.length < digits) s += Math.floor(rand() * 4294967296).toString(16).padStart(8, '0');
  return s.slice(0, digits);
}

export const userId = (i) => `user-${String(i).padStart(4, '0')}@example.com`;

/**
 * Yields the records in timestamp order (the order they are appended). `i`-th record's timestamp
 * is START + i × (35 days / N) plus jitter below one step, so days hold N / 35 records each.
 */
export function* records({ count = 1_000_000, seed = 22 } = {}) {
  const rand = prng(seed);
  const step = (END - START) / count;
  for (let i = 0; i < count; i++) {
    const t = START + Math.floor(i * step + rand() * step * 0.999);
    const user = Math.floor(rand() * USERS);
    const session = user * (SESSIONS / USERS) + Math.floor(rand() * (SESSIONS / USERS));
    const m = MODELS[Math.floor(rand() * MODELS.length)];
    const failed = rand() < 0.02;
    const spike = rand() < 0.0005;
    const error = failed ? ERRORS[Math.floor(rand() * ERRORS.length)] : null;
    const inputTokens = Math.floor(200 + rand() * 1800) * (spike ? 20 : 1);
    const outputTokens = failed ? null : Math.floor(20 + rand() * 600);
    const cost = failed ? null : Math.round((inputTokens * m.in + outputTokens * m.out) * 1e9) / 1e9;
    yield {
      v: 2,
      request_id: `req_${hex(rand, 24)}`,
      timestamp: new Date(t).toISOString(),
      trace_id: hex(rand, 32),
      span_id: hex(rand, 16),
      user_id: userId(user),
      session_id: `sess-${String(session).padStart(5, '0')}`,
      tenant_id: `tenant-${user % TENANTS}`,
      provider: m.provider,
      operation: m.operation,
      model: { request: m.request, response: failed ? null : m.response },
      action: m.action,
      status: failed ? 'error' : 'success',
      system_prompt_hash: `hmac-sha256:${hex(rand, 64)}`,
      input_hash: `hmac-sha256:${hex(rand, 64)}`,
      output_hash: failed ? null : `hmac-sha256:${hex(rand, 64)}`,
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      cache_read_tokens: rand() < 0.3 ? Math.floor(inputTokens / 2) : null,
      cache_creation_tokens: null,
      thinking_tokens: null,
      latency_ms: Math.round((300 + rand() * 4000) * 1000) / 1000,
      cost_usd: cost,
      error_type: error ? error.type : null,
      http_status: error ? error.http : null,
      error_message: error ? error.message : null,
      sanitization_count: rand() < 0.05 ? 1 + Math.floor(rand() * 3) : null,
      guardrails: null,
      tools: rand() < 0.2 ? ['search_documents', 'get_weather'] : null,
      rag_document_ids: rand() < 0.1 ? [`doc-${hex(rand, 12)}`, `doc-${hex(rand, 12)}`] : null,
      metadata: { 'service.name': `svc-${user % 7}`, feature: `feature-${Math.floor(rand() * 12)}` },
      content: null,
    };
  }
}
