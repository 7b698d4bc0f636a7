/**
 * `llm-audit serve --postgres`: the real OTLP exporter into it, two servers ingesting into one
 * database at once (one sequence, no duplicates), and 503 while the database refuses writes.
 */
import { spawnSync } from 'node:child_process';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, post, serve, type Served } from '../ingest/helpers';
import { adminQuery, createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

beforeAll(() => {
  ensureBuilt();
  postgresUrl();
}, 600_000);

function verify(url: string) {
  const r = spawnSync(process.execPath, [MAIN, 'verify', '--postgres', url, '--json'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  return { code: r.status, json: r.status === 0 ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

function body(first: number, count: number, tag: string): string {
  const spans = [];
  for (let i = first; i < first + count; i++) {
    spans.push({
      traceId: 'ab'.repeat(15) + (i >> 8).toString(16).padStart(2, '0'),
      spanId: (i + 1).toString(16).padStart(16, '0'),
      name: 'chat',
      startTimeUnixNano: String(BigInt(Date.parse('2026-03-01T00:00:00Z') + i) * 1_000_000n),
      endTimeUnixNano: String(BigInt(Date.parse('2026-03-01T00:00:01Z') + i) * 1_000_000n),
      attributes: [
        { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
        { key: 'llm_audit.request_id', value: { stringValue: `${tag}-${i}` } },
        { key: 'gen_ai.usage.input_tokens', value: { intValue: String(i) } },
      ],
    });
  }
  return JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
}

describe('serve --postgres', () => {
  let db: TestDatabase;
  let writer: string;
  const servers: Served[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('serve');
    writer = await loginRole(db, 'llm_audit_writer');
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await db?.drop();
  });

  it('lands spans from the real OTLP protobuf exporter', async () => {
    const server = await serve(['--postgres', db.url]);
    servers.push(server);
    const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: server.url, compression: 'gzip' as never }))] });
    const tracer = provider.getTracer('pg');
    for (let i = 0; i < 5; i++) tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'llm_audit.request_id': `exp-${i}` } }).end();
    await provider.forceFlush();
    await provider.shutdown();
    const rows = await adminQuery<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM llm_audit.records WHERE request_id LIKE 'exp-%'`);
    expect(rows[0]!.n).toBe('5');
    expect(await server.stop()).toBe(0);
    const v = verify(db.url);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json.records).toBe(5);
    expect(v.json.newestCheckpointSize).toBe(5); // the final checkpoint on shutdown
  });

  it('two servers ingesting at once write one sequence, each span once', async () => {
    const a = await serve(['--postgres', db.urlAs(writer), '--checkpoint-every', '100']);
    const b = await serve(['--postgres', db.urlAs(writer), '--checkpoint-every', '100']);
    servers.push(a, b);
    // 20 batches of 50 spans each way; the second half of B's batches repeat A's spans.
    const sends: Array<Promise<{ status: number }>> = [];
    for (let k = 0; k < 20; k++) {
      sends.push(post(a.url, body(k * 50, 50, 'a'), { 'content-type': 'application/json' }));
      sends.push(post(b.url, body(k < 10 ? 1000 + k * 50 : (k - 10) * 50, 50, k < 10 ? 'b' : 'a'), { 'content-type': 'application/json' }));
    }
    const answers = await Promise.all(sends);
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    const [count] = await adminQuery<{ n: string; distinct_spans: string; max: string }>(
      db.url,
      `SELECT count(*)::text AS n, count(DISTINCT (trace_id, span_id))::text AS distinct_spans, max(seq)::text AS max
         FROM llm_audit.records WHERE request_id NOT LIKE 'exp-%'`,
    );
    expect(count).toEqual({ n: '1500', distinct_spans: '1500', max: '1504' });
    const v = verify(db.url);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json.records).toBe(1505);
    // A checkpoint is due every 100 records, and written at the end of the group commit (one
    // transaction for the requests that arrived meanwhile) that reaches it: fewer than 15.
    expect(v.json.checkpointsMatched).toBeGreaterThanOrEqual(2);
  });

  it('answers 503 with Retry-After while the database refuses the write, and stores the retry', async () => {
    const server = await serve(['--postgres', db.urlAs(writer), '--retry-after', '4']);
    servers.push(server);
    const payload = body(5000, 3, 'retry');
    await adminQuery(db.url, `REVOKE INSERT ON llm_audit.chain FROM llm_audit_writer`);
    try {
      const refused = await post(server.url, payload, { 'content-type': 'application/json' });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('4');
      expect(server.stderr()).toMatch(/permission denied/);
    } finally {
      await adminQuery(db.url, `GRANT INSERT ON llm_audit.chain TO llm_audit_writer`);
    }
    const [before] = await adminQuery<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM llm_audit.records WHERE request_id LIKE 'retry-%'`);
    expect(before!.n).toBe('0'); // nothing of the refused request was stored
    const retried = await post(server.url, payload, { 'content-type': 'application/json' });
    expect(retried.status).toBe(200);
    expect(retried.headers['x-llm-audit-stored']).toBe('3');
    expect(await server.stop()).toBe(0);
    expect(verify(db.url).code).toBe(0);
  });
});
