/**
 * `llm-audit serve` on the file ledger, spawned from dist/ as an operator runs it, fed by the real
 * OpenTelemetry OTLP exporters (protobuf and JSON, gzip) and by hand-made requests for every
 * status code the OTLP/HTTP specification asks for.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngestServer } from '../../src/ingest/server';
import type { IngestStore } from '../../src/ingest/store';
import { canonicalJson } from '../../src/audit/canonical-json';
import { LedgerError } from '../../src/ledger/errors';
import { SerializedRecord, entryLine } from '../../src/ledger/protocol';
import { openLedgerWriter } from '../../src/ledger/writer';
import { MAIN, ensureBuilt, post, scratchDir, serve, type Served } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pb = require('otlp-transformer-protobufjs/build/src/generated/root').opentelemetry.proto.collector.trace.v1;

beforeAll(() => ensureBuilt(), 180_000);

function ledgerLines(dir: string): Array<{ seq: number; record: Record<string, unknown> }> {
  const out = [];
  for (const name of readdirSync(join(dir, 'segments')).sort()) {
    for (const line of readFileSync(join(dir, 'segments', name), 'utf8').split('\n')) if (line) out.push(JSON.parse(line));
  }
  return out;
}

function verify(dir: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'verify', '--ledger', dir], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function exportWith(exporter: SpanExporter, calls: Array<{ user: string; requestId: string }>): Promise<void> {
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('serve-test');
  for (const call of calls) {
    const span = tracer.startSpan('chat gpt-4o', {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 10,
        'llm_audit.request_id': call.requestId,
        'user.id': call.user,
      },
    });
    span.setStatus({ code: SpanStatusCode.OK });
    span.end();
  }
  tracer.startSpan('not an llm call').end();
  await provider.forceFlush();
  await provider.shutdown();
}

function jsonBody(spans: Array<{ traceId: string; spanId: string; attrs?: Record<string, string> }>): string {
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              name: 'chat',
              startTimeUnixNano: '1767225600000000000',
              endTimeUnixNano: '1767225601000000000',
              attributes: Object.entries({ 'gen_ai.operation.name': 'chat', ...s.attrs }).map(([key, v]) => ({ key, value: { stringValue: v } })),
            })),
          },
        ],
      },
    ],
  });
}

const TRACE = '5b8efff798038103d269b633813fc60c';
const JSON_TYPE = { 'content-type': 'application/json', authorization: 'Bearer s3cret' };
const PROTO_TYPE = { 'content-type': 'application/x-protobuf', authorization: 'Bearer s3cret' };

describe('serve on the file ledger', () => {
  let dir: string;
  let server: Served;

  beforeAll(async () => {
    dir = join(scratchDir('serve-'), 'ledger');
    server = await serve(['--ledger', dir, '--max-body-bytes', '65536', '--fsync', 'batch'], { LLM_AUDIT_INGEST_TOKEN: 's3cret' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lands spans sent by the real OTLP exporters (protobuf and JSON, gzip) in the ledger', async () => {
    const headers = { Authorization: 'Bearer s3cret' };
    await exportWith(new ProtoExporter({ url: server.url, compression: 'gzip' as never, headers }), [
      { user: 'alice', requestId: 'proto-1' },
      { user: 'bob', requestId: 'proto-2' },
    ]);
    await exportWith(new HttpJsonExporter({ url: server.url, headers }), [{ user: 'carol', requestId: 'json-1' }]);
    expect(JSON.parse((await post(`${server.base}/healthz`, '', {}, 'GET')).body.toString())).toEqual({ status: 'ok' });
    const health = JSON.parse((await post(`${server.base}/healthz`, '', headers, 'GET')).body.toString());
    expect(health.status).toBe('ok');
    expect(health.stats.stored).toBe(3);
    expect(health.stats.ignored).toBe(2);
    const ids = ledgerLines(dir).map((e) => e.record.request_id);
    expect(ids).toEqual(expect.arrayContaining(['proto-1', 'proto-2', 'json-1']));
  });

  it('stores a span that arrives twice only once (collector retries)', async () => {
    const body = jsonBody([{ traceId: TRACE, spanId: '1111111111111111', attrs: { 'llm_audit.request_id': 'dup-1' } }]);
    const first = await post(server.url, body, JSON_TYPE);
    const second = await post(server.url, body, JSON_TYPE);
    const gz = await post(server.url, gzipSync(body), { ...JSON_TYPE, 'content-encoding': 'gzip' });
    expect([first.status, second.status, gz.status]).toEqual([200, 200, 200]);
    expect(first.headers['x-llm-audit-stored']).toBe('1');
    expect(second.headers['x-llm-audit-stored']).toBe('0');
    expect(second.headers['x-llm-audit-duplicates']).toBe('1');
    expect(gz.headers['x-llm-audit-duplicates']).toBe('1');
    // Twice within one request too.
    const both = jsonBody([
      { traceId: TRACE, spanId: '2222222222222222' },
      { traceId: TRACE, spanId: '2222222222222222' },
    ]);
    const r = await post(server.url, both, JSON_TYPE);
    expect(r.headers['x-llm-audit-stored']).toBe('1');
    expect(ledgerLines(dir).filter((e) => e.record.request_id === 'dup-1')).toHaveLength(1);
  });

  it('answers partial success in protobuf, with the rejected count and the reason', async () => {
    const request = pb.ExportTraceServiceRequest.fromObject({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: Buffer.from(TRACE, 'hex'), spanId: Buffer.from('3333333333333333', 'hex'), attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }] },
                { traceId: Buffer.alloc(3), spanId: Buffer.from('4444444444444444', 'hex'), attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }] },
              ],
            },
          ],
        },
      ],
    });
    const r = await post(server.url, Buffer.from(pb.ExportTraceServiceRequest.encode(request).finish()), PROTO_TYPE);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-protobuf');
    const answer = pb.ExportTraceServiceResponse.decode(r.body);
    expect(Number(answer.partialSuccess.rejectedSpans)).toBe(1);
    expect(answer.partialSuccess.errorMessage).toMatch(/trace id/);
    expect(r.headers['x-llm-audit-stored']).toBe('1');
  });

  it('answers 400, 401, 404, 405, 413 and 415 as the OTLP/HTTP specification says', async () => {
    const noToken = await post(server.url, jsonBody([]), { 'content-type': 'application/json' });
    expect(noToken.status).toBe(401);
    expect(noToken.headers['www-authenticate']).toBe('Bearer');
    expect((await post(server.url, jsonBody([]), { ...JSON_TYPE, authorization: 'Bearer wrong' })).status).toBe(401);

    const bad = await post(server.url, Buffer.from([0x0a, 0xff, 0x01]), PROTO_TYPE);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/x-protobuf');
    expect(bad.body[0]).toBe(0x08); // google.rpc.Status, field 1 = code
    expect(bad.body[1]).toBe(3); // INVALID_ARGUMENT
    const badJson = await post(server.url, '{"resourceSpans": 5}', JSON_TYPE);
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.body.toString()).message).toMatch(/resourceSpans must be a JSON array/);
    expect((await post(server.url, Buffer.from('not gzip'), { ...JSON_TYPE, 'content-encoding': 'gzip' })).status).toBe(400);

    expect((await post(server.url, 'x', { ...JSON_TYPE, 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(server.url, 'x', { ...JSON_TYPE, 'content-encoding': 'br' })).status).toBe(415);
    expect((await post(`${server.base}/v1/metrics`, 'x', JSON_TYPE)).status).toBe(404);
    const get = await post(server.url, '', {}, 'GET');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');

    // 413: declared too large; streamed (chunked, no length) past the limit; a gzip bomb.
    expect((await post(server.url, Buffer.alloc(100_000, 0x20), JSON_TYPE)).status).toBe(413);
    const chunks = Array.from({ length: 20 }, () => Buffer.alloc(8192, 0x20));
    const chunked = await post(server.url, chunks, { ...JSON_TYPE, 'transfer-encoding': 'chunked' });
    expect(chunked.status).toBe(413);
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(65536);
    const bombAnswer = await post(server.url, bomb, { ...JSON_TYPE, 'content-encoding': 'gzip' });
    expect(bombAnswer.status).toBe(413);
    expect(JSON.parse(bombAnswer.body.toString()).message).toMatch(/decompressed body is larger than 65536/);

    const health = await post(`${server.base}/healthz`, '', {}, 'GET');
    expect(health.status).toBe(200);
  });

  it('on SIGTERM exits 0 after a final checkpoint, and the ledger verifies', async () => {
    const before = ledgerLines(dir).length;
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: finishing the requests in flight/);
    const v = verify(dir);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`${before} records verified`);
    expect(v.stderr).not.toMatch(/after the newest checkpoint/);
  });
});

describe('serve: shutdown, backpressure, TLS', () => {
  it('finishes a request in flight on SIGTERM, and answers 503 + Retry-After past --max-inflight', async () => {
    const dir = join(scratchDir('serve-'), 'ledger');
    const server = await serve(['--ledger', dir, '--max-inflight', '1', '--retry-after', '7']);
    const { request } = await import('node:http');
    const body = Buffer.from(jsonBody([{ traceId: TRACE, spanId: '5555555555555555', attrs: { 'llm_audit.request_id': 'slow-1' } }]));
    let answered: (value: { status: number; stored: string | undefined }) => void;
    const slowAnswer = new Promise<{ status: number; stored: string | undefined }>((resolve) => (answered = resolve));
    const slow = request(server.url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => answered({ status: res.statusCode!, stored: res.headers['x-llm-audit-stored'] as string | undefined }));
    });
    slow.write(body.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 300));

    const busy = await post(server.url, jsonBody([]), { 'content-type': 'application/json' });
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('7');

    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(server.proc.exitCode).toBeNull(); // still waiting for the request in flight
    slow.end(body.subarray(10));
    expect(await slowAnswer).toEqual({ status: 200, stored: '1' });
    expect(await server.exited).toBe(0);
    expect(ledgerLines(dir).map((e) => e.record.request_id)).toEqual(['slow-1']);
    expect(verify(dir).code).toBe(0);
  });

  it('serves HTTPS with --tls-cert and --tls-key', async () => {
    const d = scratchDir('tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem')], { stdio: 'ignore' });
    const server = await serve(['--ledger', join(d, 'ledger'), '--tls-cert', join(d, 'cert.pem'), '--tls-key', join(d, 'key.pem')]);
    try {
      expect(server.url).toMatch(/^https:/);
      const r = await post(server.url, jsonBody([{ traceId: TRACE, spanId: '6666666666666666' }]), { 'content-type': 'application/json' });
      expect(r.status).toBe(200);
      expect(r.headers['x-llm-audit-stored']).toBe('1');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('refuses bad flags with exit 2 and one line', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--ledger', '/tmp/x', '--postgres', 'postgres://x@127.0.0.1/y'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/either --ledger DIR or --postgres URL/);
    const t = spawnSync(process.execPath, [MAIN, 'serve', '--tls-cert', 'a.pem'], { encoding: 'utf8' });
    expect(t.status).toBe(2);
  });
});

describe('the receiver and the writer share one serialisation', () => {
  it('hands the writer each record with its canonical JSON, and the ledger line embeds exactly that text', async () => {
    const dir = join(scratchDir('serve-once-'), 'ledger');
    const writer = await openLedgerWriter({ backend: 'file', dir });
    const received: unknown[] = [];
    const store: IngestStore = {
      description: writer.description,
      append(records) {
        received.push(...records);
        return writer.append(records);
      },
      close: () => writer.close(),
    };
    const server = await startIngestServer({ store, port: 0, log: () => {} });
    try {
      const body = jsonBody([
        { traceId: TRACE, spanId: '1212121212121212', attrs: { 'user.id': 'ü "quoted" \\ \u0001' } },
        { traceId: TRACE, spanId: '3434343434343434' },
      ]);
      expect((await post(server.url + '/v1/traces', body, { 'content-type': 'application/json' })).status).toBe(200);
    } finally {
      await server.close();
    }
    expect(received).toHaveLength(2);
    const lines = readdirSync(join(dir, 'segments'))
      .sort()
      .flatMap((name) => readFileSync(join(dir, 'segments', name), 'utf8').split('\n'))
      .filter((line) => line !== '' && !line.includes('"audit.start"'));
    expect(lines).toHaveLength(2);
    for (const [i, item] of received.entries()) {
      expect(item).toBeInstanceOf(SerializedRecord);
      const { record, json } = item as SerializedRecord;
      expect(json).toBe(canonicalJson(record));
      const entry = JSON.parse(lines[i]!) as { seq: number; prev: string };
      expect(lines[i]).toBe(entryLine(entry.seq, entry.prev, json));
    }
    expect(verify(dir).code).toBe(0);
  });
});

describe('the receiver when the store cannot write', () => {
  it('answers 503 with Retry-After, and 200 again once the store recovers', async () => {
    let failing = true;
    const appended: number[] = [];
    const store: IngestStore = {
      description: 'flaky',
      async append(records) {
        if (failing) throw new LedgerError('LEDGER_NO_SPACE', 'disk full');
        appended.push(records.length);
        return { stored: records.length, duplicates: 0 };
      },
      async close() {},
    };
    const logs: string[] = [];
    const server = await startIngestServer({ store, port: 0, retryAfterSeconds: 3, log: (l) => logs.push(l) });
    try {
      const body = jsonBody([{ traceId: TRACE, spanId: '7777777777777777' }]);
      const r = await post(server.url + '/v1/traces', body, { 'content-type': 'application/json' });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('3');
      expect(JSON.parse(r.body.toString())).toMatchObject({ code: 14 });
      expect(logs.join('\n')).toMatch(/LEDGER_NO_SPACE: disk full/);
      failing = false;
      expect((await post(server.url + '/v1/traces', body, { 'content-type': 'application/json' })).status).toBe(200);
      expect(appended).toEqual([1]);
    } finally {
      await server.close();
    }
  });
});
