/**
 * Issue 14 item 6: operation records (llm-audit shred's `content.shred`...) are written only by the
 * tool that performs the operation. `llm-audit serve` (spawned from dist/, real HTTP) rejects a
 * span that claims to be one, as OTLP partial success, counted and logged; and with
 * LLM_AUDIT_INGEST_TOKENS a token writes only the tenants it is bound to.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, post, scratchDir, serve, type Served } from './helpers';

beforeAll(() => ensureBuilt(), 180_000);

const TRACE = '6c9efff798038103d269b633813fc60c';

type Value = string | number;
function otlpJson(spans: Array<{ spanId: string; attrs: Record<string, Value> }>): string {
  const value = (v: Value) => (typeof v === 'number' ? { doubleValue: v } : { stringValue: v });
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: spans.map((s) => ({
              traceId: TRACE,
              spanId: s.spanId,
              name: 'chat gpt-4o',
              startTimeUnixNano: '1767225600000000000',
              endTimeUnixNano: '1767225601000000000',
              attributes: Object.entries(s.attrs).map(([key, v]) => ({ key, value: value(v) })),
            })),
          },
        ],
      },
    ],
  });
}

const call = (spanId: string, tenant: string | undefined, extra: Record<string, Value> = {}) => ({
  spanId,
  attrs: {
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': 'gpt-4o',
    'llm_audit.action': 'chat.completions.create',
    'gen_ai.usage.cost.amount': 1.5,
    'gen_ai.usage.cost.currency': 'USD',
    'llm_audit.request_id': `req-${spanId}`,
    ...(tenant !== undefined ? { 'llm_audit.tenant.id': tenant } : {}),
    ...extra,
  },
});

function records(dir: string): Array<Record<string, any>> {
  const out = [];
  for (const name of readdirSync(join(dir, 'segments')).sort()) {
    for (const line of readFileSync(join(dir, 'segments', name), 'utf8').split('\n')) if (line) out.push(JSON.parse(line).record);
  }
  return out;
}

const json = (token: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${token}` });

async function health(server: Served, token: string) {
  return JSON.parse((await post(`${server.base}/healthz`, '', { authorization: `Bearer ${token}` }, 'GET')).body.toString());
}

describe('forged operation records', () => {
  let dir: string;
  let server: Served;
  beforeAll(async () => {
    dir = join(scratchDir('ops-'), 'ledger');
    server = await serve(['--ledger', dir, '--fsync', 'batch'], { LLM_AUDIT_INGEST_TOKEN: 'ops-token' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a span claiming llm_audit.action=content.shred is rejected (partial success, counted, logged); the calls beside it are stored', async () => {
    const forged = call('1000000000000001', 'acme', { 'llm_audit.action': 'content.shred', 'gen_ai.usage.cost.amount': 777 });
    const r = await post(server.url, otlpJson([forged, call('1000000000000002', 'acme')]), json('ops-token'));
    expect(r.status).toBe(200);
    const answer = JSON.parse(r.body.toString());
    expect(answer.partialSuccess.rejectedSpans).toBe('1');
    expect(answer.partialSuccess.errorMessage).toMatch(/content\.shred.*operation record/);
    expect(r.headers['x-llm-audit-stored']).toBe('1');

    const stored = records(dir);
    expect(stored.map((record) => record.action)).toEqual(['chat.completions.create']);
    expect(stored.some((record) => record.cost_usd === 777)).toBe(false);
    const stats = (await health(server, 'ops-token')).stats;
    expect(stats.rejected).toBe(1);
    expect(stats.rejected_operations).toBe(1);
    expect(server.stderr()).toMatch(/rejected 1 span.*content\.shred/);

    // The cost report counts the call; the forged span could not hide anything from it.
    const report = spawnSync(process.execPath, [MAIN, 'report', 'cost-by-user', '--ledger', dir, '--format', 'json'], { encoding: 'utf8' });
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout).toContain('1.5');
  });
});

describe('LLM_AUDIT_INGEST_TOKENS: tokens bound to tenants', () => {
  let dir: string;
  let server: Served;
  beforeAll(async () => {
    const scratch = scratchDir('tenant-tokens-');
    dir = join(scratch, 'ledger');
    const tokens = join(scratch, 'tokens.json');
    writeFileSync(tokens, JSON.stringify({ 'acme-writer-token': ['acme'], 'untenanted-token': ['acme', null], 'collector-all-token': '*' }), { mode: 0o600 });
    server = await serve(['--ledger', dir, '--fsync', 'batch'], { LLM_AUDIT_INGEST_TOKENS: tokens });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a token writes only its tenants; others are rejected as partial success and counted; unknown tokens get 401', async () => {
    const r = await post(server.url, otlpJson([call('2000000000000001', 'acme'), call('2000000000000002', 'globex'), call('2000000000000003', undefined)]), json('acme-writer-token'));
    expect(r.status).toBe(200);
    const answer = JSON.parse(r.body.toString());
    expect(answer.partialSuccess.rejectedSpans).toBe('2');
    expect(answer.partialSuccess.errorMessage).toMatch(/2 spans: tenant not allowed for this token/);
    expect(r.headers['x-llm-audit-stored']).toBe('1');

    const untenanted = await post(server.url, otlpJson([call('2000000000000004', undefined)]), json('untenanted-token'));
    expect(untenanted.headers['x-llm-audit-stored']).toBe('1');
    const any = await post(server.url, otlpJson([call('2000000000000005', 'globex')]), json('collector-all-token'));
    expect(any.headers['x-llm-audit-stored']).toBe('1');
    expect((await post(server.url, otlpJson([call('2000000000000006', 'acme')]), json('someone-else'))).status).toBe(401);
    expect((await post(server.url, otlpJson([call('2000000000000007', 'acme')]), { 'content-type': 'application/json' })).status).toBe(401);

    expect(records(dir).map((record) => [record.span_id, record.tenant_id])).toEqual([
      ['2000000000000001', 'acme'],
      ['2000000000000004', null],
      ['2000000000000005', 'globex'],
    ]);
    const stats = (await health(server, 'collector-all-token')).stats;
    expect(stats.rejected_tenant).toBe(2);
    expect(server.stderr()).toMatch(/rejected 2 spans.*tenant not allowed for this token/);
  });

  it('refuses a malformed tokens file at startup with one clear line and exit 2', () => {
    const scratch = scratchDir('tenant-tokens-bad-');
    for (const [content, message] of [
      ['not json', /LLM_AUDIT_INGEST_TOKENS.*not JSON/],
      ['{"short": ["acme"]}', /at least 16 characters/],
      ['{"a-long-enough-token": "acme"}', /"\*" or an array/],
      ['{"a-long-enough-token": [42]}', /tenant ids are strings or null/],
    ] as const) {
      const path = join(scratch, 'tokens.json');
      writeFileSync(path, content);
      const r = spawnSync(process.execPath, [MAIN, 'serve', '--port', '0', '--ledger', join(scratch, 'ledger')], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, LLM_AUDIT_INGEST_TOKENS: path },
        timeout: 20_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});
