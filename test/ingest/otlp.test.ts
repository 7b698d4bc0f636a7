import { SpanStatusCode } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { MalformedBody, decodeJsonRequest, decodeProtobufRequest, encodeExportResponse, encodeStatus } from '../../src/ingest/otlp';
import { recordsOf as serializedRecordsOf } from '../../src/ingest/records';
import { canonicalJson } from '../../src/audit/canonical-json';

/** The conversion with the plain records (their serialised text is checked by its own test). */
function recordsOf(...args: Parameters<typeof serializedRecordsOf>) {
  const conversion = serializedRecordsOf(...args);
  for (const { record, json } of conversion.records) expect(json).toBe(canonicalJson(record));
  return { ...conversion, records: conversion.records.map((r) => r.record) };
}
import { recordFromSpan } from '../../src/ledger/record';

/** Real SDK spans: two audited LLM calls (one failed, with a guardrail event) and one HTTP span. */
function sdkSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    resource: resourceFromAttributes({ 'service.name': 'ask-api', 'service.version': '3.0.1', 'deployment.environment.name': 'prod' }),
  });
  const tracer = provider.getTracer('test');
  const ok = tracer.startSpan('chat gpt-4o', {
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.usage.input_tokens': 1200,
      'gen_ai.usage.output_tokens': 34,
      'gen_ai.usage.cost.amount': 0.00123,
      'llm_audit.request_id': 'req-1',
      'llm_audit.status': 'success',
      'llm_audit.input.hash': 'hmac-sha256:k1:' + 'ab'.repeat(32),
      'llm_audit.tool.names': ['search', 'calc'],
      'llm_audit.metadata.feature': 'ask',
      'llm_audit.metadata.flags': [true, false],
      'llm_audit.metadata.ratio': 0.5,
      'user.id': 'alice',
      'session.id': 's-1',
    },
  });
  ok.addEvent('llm_audit.guardrail', { 'llm_audit.guardrail.name': 'pii', 'llm_audit.guardrail.action': 'mask' });
  ok.end();
  const failed = tracer.startSpan('chat claude', {
    attributes: { 'gen_ai.operation.name': 'chat', 'error.type': 'RateLimitError', 'llm_audit.error.message': 'slow down' },
  });
  failed.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
  failed.end();
  tracer.startSpan('GET /health', { attributes: { 'http.request.method': 'GET' } }).end();
  return exporter.getFinishedSpans();
}

describe('OTLP decoding', () => {
  const spans = sdkSpans();
  const expected = spans.map((s) => recordFromSpan(s)).filter((r) => r !== undefined);

  it('protobuf from the OpenTelemetry serializer gives exactly the records the in-process exporter makes', () => {
    const body = ProtobufTraceSerializer.serializeRequest(spans)!;
    const decoded = decodeProtobufRequest(body);
    expect(decoded).toHaveLength(3);
    const { records, ignored, rejected } = recordsOf(decoded, 1 << 20);
    expect(ignored).toBe(1);
    expect(rejected).toBe(0);
    expect(records).toEqual(expected);
    // The resource of the spans' resourceSpans entry: which application, which environment.
    expect(records[0]).toMatchObject({ service_name: 'ask-api', service_version: '3.0.1', deployment_environment: 'prod' });
    expect(records[0]!.guardrails).toEqual([{ name: 'pii', action: 'mask', time: expect.any(String) }]);
    expect(records[1]!.status).toBe('error');
  });

  it('JSON from the OpenTelemetry serializer gives the same records', () => {
    const body = Buffer.from(JsonTraceSerializer.serializeRequest(spans)!);
    const { records, ignored } = recordsOf(decodeJsonRequest(body), 1 << 20);
    expect(ignored).toBe(1);
    expect(records).toEqual(expected);
    expect(records[1]).toMatchObject({ service_name: 'ask-api', deployment_environment: 'prod' });
  });

  it('JSON accepts original field names, numbers for int64 and non-finite doubles as strings', () => {
    const doc = {
      resource_spans: [
        {
          scope_spans: [
            {
              spans: [
                {
                  trace_id: '0AF7651916CD43DD8448EB211C80319C',
                  span_id: 'B7AD6B7169203331',
                  start_time_unix_nano: 1767225600000000000,
                  end_time_unix_nano: '1767225600250000000',
                  status: { code: 2 },
                  attributes: [
                    { key: 'gen_ai.operation.name', value: { string_value: 'chat' } },
                    { key: 'gen_ai.usage.input_tokens', value: { int_value: 7 } },
                    { key: 'gen_ai.usage.cost.amount', value: { double_value: 'NaN' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    const { records } = recordsOf(decodeJsonRequest(Buffer.from(JSON.stringify(doc))), 1 << 20);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      span_id: 'b7ad6b7169203331',
      timestamp: '2026-01-01T00:00:00.000Z',
      latency_ms: 250,
      input_tokens: 7,
      cost_usd: null,
      status: 'error',
    });
  });

  it('rejects spans with missing, short or all-zero ids, and says why', () => {
    const span = (traceId: unknown, spanId: unknown) => ({ traceId, spanId, attributes: [{ key: 'llm_audit.status', value: { stringValue: 'success' } }] });
    const doc = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                span('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331'),
                span(undefined, 'b7ad6b7169203331'),
                span('0af7651916cd43dd8448eb211c8031', 'b7ad6b7169203331'),
                span('00000000000000000000000000000000', 'b7ad6b7169203331'),
                span('0af7651916cd43dd8448eb211c80319c', 'zz'),
              ],
            },
          ],
        },
      ],
    };
    const c = recordsOf(decodeJsonRequest(Buffer.from(JSON.stringify(doc))), 1 << 20);
    expect(c.records).toHaveLength(1);
    expect(c.rejected).toBe(4);
    expect(c.reasons.join('; ')).toMatch(/3 spans: missing or malformed trace id.*1 span: missing or malformed span id/);
  });

  it('rejects a record larger than the limit', () => {
    const doc = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '0af7651916cd43dd8448eb211c80319c',
                  spanId: 'b7ad6b7169203331',
                  attributes: [{ key: 'user.id', value: { stringValue: 'x'.repeat(5000) } }, { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const c = recordsOf(decodeJsonRequest(Buffer.from(JSON.stringify(doc))), 4096);
    expect(c.records).toHaveLength(0);
    expect(c.reasons[0]).toMatch(/larger than 4096 bytes/);
  });

  it('wrong types in attributes do not become numbers or strings they are not', () => {
    const doc = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '0af7651916cd43dd8448eb211c80319c',
                  spanId: 'b7ad6b7169203331',
                  attributes: [
                    { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
                    { key: 'gen_ai.usage.input_tokens', value: { stringValue: 'lots' } },
                    { key: 'user.id', value: { kvlistValue: { values: [{ key: 'a', value: { stringValue: 'b' } }] } } },
                    { key: 'llm_audit.tool.names', value: { arrayValue: { values: [{ stringValue: 'a' }, { arrayValue: { values: [] } }, { intValue: '3' }] } } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    const [record] = recordsOf(decodeJsonRequest(Buffer.from(JSON.stringify(doc))), 1 << 20).records;
    expect(record!.input_tokens).toBeNull();
    expect(record!.user_id).toBeNull();
    expect(record!.tools).toEqual(['a', '3']);
  });

  it('malformed bodies are MalformedBody errors', () => {
    expect(() => decodeProtobufRequest(Buffer.from([0x0a, 0xff, 0x01]))).toThrow(MalformedBody);
    expect(() => decodeProtobufRequest(Buffer.from([0x0f]))).toThrow(MalformedBody);
    const good = ProtobufTraceSerializer.serializeRequest(spans)!;
    expect(() => decodeProtobufRequest(good.subarray(0, good.length - 7))).toThrow(MalformedBody);
    expect(() => decodeJsonRequest(Buffer.from('{"resourceSpans":'))).toThrow(MalformedBody);
    expect(() => decodeJsonRequest(Buffer.from('[1,2]'))).toThrow(MalformedBody);
    expect(() => decodeJsonRequest(Buffer.from('{"resourceSpans":{}}'))).toThrow(/resourceSpans must be a JSON array/);
    expect(() => decodeJsonRequest(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow(/UTF-8/);
    expect(() =>
      decodeJsonRequest(Buffer.from('{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}')),
    ).toThrow(/startTimeUnixNano/);
    expect(() =>
      decodeJsonRequest(Buffer.from('{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}')),
    ).toThrow(/enums as integers/);
  });

  it('encodes ExportTraceServiceResponse and google.rpc.Status in both encodings', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const root = require('otlp-transformer-protobufjs/build/src/generated/root');
    const Response = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
    expect(encodeExportResponse('protobuf').length).toBe(0);
    const decoded = Response.decode(encodeExportResponse('protobuf', { rejectedSpans: 3, errorMessage: 'bad ids' }));
    expect(Number(decoded.partialSuccess.rejectedSpans)).toBe(3);
    expect(decoded.partialSuccess.errorMessage).toBe('bad ids');
    expect(JSON.parse(encodeExportResponse('json', { rejectedSpans: 3, errorMessage: 'x' }).toString())).toEqual({
      partialSuccess: { rejectedSpans: '3', errorMessage: 'x' },
    });
    expect(encodeStatus('protobuf', 14, 'hi')).toEqual(Buffer.from([0x08, 14, 0x12, 2, 0x68, 0x69]));
    expect(JSON.parse(encodeStatus('json', 3, 'no').toString())).toEqual({ code: 3, message: 'no' });
  });
});
