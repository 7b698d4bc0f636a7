/**
 * Bad input for `llm-audit serve` (loopback only, bounded in count and time, seeded so a failure
 * reproduces): random bytes, truncated and bit-flipped protobuf, wrong JSON types, huge values,
 * missing ids, deep nesting and a flood of requests. The server must stay up, answer each with a
 * status the specification allows for it (never 500), and the ledger must still verify.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, post, scratchDir, serve, type Answer, type Served } from './helpers';
import { prng } from '../support/prng';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pb = require('otlp-transformer-protobufjs/build/src/generated/root').opentelemetry.proto.collector.trace.v1;

beforeAll(() => ensureBuilt(), 180_000);

const random = prng(0x5eed);
const int = (n: number): number => Math.floor(random() * n);
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

let spanCounter = 0;
function validSpans(n: number): object[] {
  return Array.from({ length: n }, () => {
    spanCounter++;
    return {
      traceId: Buffer.from('fuzz'.padEnd(16, '-')),
      spanId: Buffer.from(spanCounter.toString(16).padStart(16, '0'), 'hex'),
      name: 'chat',
      startTimeUnixNano: 1767225600000000000,
      endTimeUnixNano: 1767225601000000000,
      attributes: [
        { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
        { key: 'user.id', value: { stringValue: `user-${spanCounter % 7}` } },
        { key: 'gen_ai.usage.input_tokens', value: { intValue: spanCounter } },
        { key: 'llm_audit.metadata.tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { doubleValue: 1.5 }] } } },
      ],
      events: [{ name: 'llm_audit.guardrail', timeUnixNano: 1767225600500000000, attributes: [{ key: 'llm_audit.guardrail.name', value: { stringValue: 'pii' } }] }],
    };
  });
}

function protobufBody(n: number): Buffer {
  const message = pb.ExportTraceServiceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: validSpans(n) }] }] });
  return Buffer.from(pb.ExportTraceServiceRequest.encode(message).finish());
}

function jsonBody(n: number): Record<string, unknown> {
  const spans = validSpans(n).map((s) => {
    const span = s as { traceId: Buffer; spanId: Buffer };
    return { ...s, traceId: span.traceId.toString('hex'), spanId: span.spanId.toString('hex'), startTimeUnixNano: '1767225600000000000', endTimeUnixNano: '1767225601000000000', events: [] };
  });
  return { resourceSpans: [{ scopeSpans: [{ spans }] }] };
}

/** Replaces one random value somewhere in `value` with a value of a random (usually wrong) type. */
function mutate(value: unknown): unknown {
  const weird = [null, 0, -1, 1e308, 'x', '', true, [], {}, [1, 'a', null], { stringValue: 5 }, '18446744073709551616', 'NaN'];
  if (Array.isArray(value)) {
    if (value.length === 0 || random() < 0.15) return weird[int(weird.length)];
    const copy = value.slice();
    const k = int(copy.length);
    copy[k] = mutate(copy[k]);
    return copy;
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0 || random() < 0.15) return weird[int(weird.length)];
    const k = keys[int(keys.length)]!;
    return { ...(value as object), [k]: mutate((value as Record<string, unknown>)[k]) };
  }
  return weird[int(weird.length)];
}

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSONT = { 'content-type': 'application/json' };

describe('serve under bad input', () => {
  let server: Served;
  let dir: string;
  const answers: Array<{ what: string; answer: Answer }> = [];
  const send = async (what: string, body: Buffer | string, headers: Record<string, string>): Promise<Answer> => {
    const answer = await post(server.url, body, headers);
    answers.push({ what, answer });
    return answer;
  };

  beforeAll(async () => {
    dir = join(scratchDir('fuzz-'), 'ledger');
    server = await serve(['--ledger', dir, '--fsync', 'none', '--max-body-bytes', String(1 << 20), '--max-record-bytes', '65536', '--max-inflight', '8']);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('random bytes, truncated and bit-flipped protobuf: 200 or 400, never a crash', async () => {
    for (let i = 0; i < 150; i++) await send('random protobuf', bytes(1 + int(2000)), PROTO);
    for (let i = 0; i < 30; i++) await send('random json', bytes(1 + int(500)), JSONT);
    const good = protobufBody(20);
    for (let i = 0; i < 100; i++) await send('truncated protobuf', good.subarray(0, int(good.length)), PROTO);
    for (let i = 0; i < 100; i++) {
      const flipped = Buffer.from(good);
      for (let f = 0; f < 1 + int(4); f++) flipped[int(flipped.length)] ^= 1 << int(8);
      await send('bit-flipped protobuf', flipped, PROTO);
    }
    const statuses = new Set(answers.map((a) => a.answer.status));
    expect([...statuses].every((s) => s === 200 || s === 400)).toBe(true);
    expect(statuses.has(400)).toBe(true);
    expect(answers.filter((a) => a.what === 'truncated protobuf' && a.answer.status === 400).length).toBeGreaterThan(50);
  });

  it('wrong types anywhere in JSON: 200 or 400 with a reason, never 500', async () => {
    const before = answers.length;
    for (let i = 0; i < 200; i++) {
      let doc: unknown = jsonBody(3);
      for (let m = 0; m < 1 + int(3); m++) doc = mutate(doc);
      const answer = await send('mutated json', JSON.stringify(doc), JSONT);
      expect([200, 400]).toContain(answer.status);
      if (answer.status === 400) expect(JSON.parse(answer.body.toString()).message.length).toBeGreaterThan(5);
    }
    expect(answers.slice(before).some((a) => a.answer.status === 400)).toBe(true);
  });

  it('huge values, missing ids and deep nesting', async () => {
    const doc = jsonBody(2) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
    const spans = doc.resourceSpans[0]!.scopeSpans[0]!.spans;
    (spans[0]!.attributes as object[]).push({ key: 'llm_audit.metadata.blob', value: { stringValue: 'x'.repeat(200_000) } });
    delete spans[1]!.spanId;
    const huge = await send('huge value', JSON.stringify(doc), JSONT);
    expect(huge.status).toBe(200);
    expect(JSON.parse(huge.body.toString()).partialSuccess).toEqual({
      rejectedSpans: '2',
      errorMessage: expect.stringMatching(/larger than 65536 bytes.*span id|span id.*larger than 65536 bytes/),
    });
    const tooBig = await send('over the body limit', JSON.stringify({ x: 'y'.repeat(2 << 20) }), JSONT);
    expect(tooBig.status).toBe(413);

    // 5000 nested arrayValues, written as text (JSON.stringify itself would run out of stack).
    const nested = '{"arrayValue":{"values":['.repeat(5000) + '{"stringValue":"leaf"}' + ']}}'.repeat(5000);
    const deepJson = JSON.stringify(jsonBody(1)).replace('"attributes":[', `"attributes":[{"key":"llm_audit.metadata.deep","value":${nested}},`);
    expect((await send('deep json', deepJson, JSONT)).status).toBe(200);
    // 100k nested ArrayValue messages in protobuf: field 5 (arrayValue), field 1 (values), repeated.
    let deep = Buffer.from([0x0a, 0x01, 0x78]);
    for (let d = 0; d < 20_000 && deep.length < 900_000; d++) {
      const values = Buffer.concat([Buffer.from([0x0a]), varint(deep.length), deep]);
      deep = Buffer.concat([Buffer.from([0x2a]), varint(values.length), values]);
    }
    const kv = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), varint(deep.length), deep]);
    const span = Buffer.concat([Buffer.from([0x0a, 0x10]), Buffer.alloc(16, 1), Buffer.from([0x12, 0x08]), Buffer.alloc(8, 2), Buffer.from([0x4a]), varint(kv.length), kv]);
    const scope = Buffer.concat([Buffer.from([0x12]), varint(span.length), span]);
    const resource = Buffer.concat([Buffer.from([0x12]), varint(scope.length), scope]);
    const request = Buffer.concat([Buffer.from([0x0a]), varint(resource.length), resource]);
    expect([200, 400]).toContain((await send('deep protobuf', request, PROTO)).status);
  });

  it('a flood of concurrent requests gets 200 or 503 + Retry-After, and the server stays up', async () => {
    const started = Date.now();
    const flood = await Promise.all(
      Array.from({ length: 300 }, (_, i) => post(server.url, i % 2 ? protobufBody(5) : JSON.stringify(jsonBody(5)), i % 2 ? PROTO : JSONT)),
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    const statuses = flood.map((a) => a.status);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    for (const a of flood) if (a.status === 503) expect(a.headers['retry-after']).toBe('2');
    const health = await post(`${server.base}/healthz`, '', {}, 'GET');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body.toString()).inflight).toBe(0);
  });

  it('after all of it: no 500 was ever answered, the server exits cleanly and the ledger verifies', async () => {
    expect(answers.filter((a) => a.answer.status >= 500)).toEqual([]);
    const health = JSON.parse((await post(`${server.base}/healthz`, '', {}, 'GET')).body.toString());
    expect(health.stats.statuses['500']).toBeUndefined();
    expect(server.proc.exitCode).toBeNull();
    expect(await server.stop()).toBe(0);
    const v = spawnSync(process.execPath, [MAIN, 'verify', '--ledger', dir, '--json'], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).records).toBe(health.stats.stored);
    expect(health.stats.stored).toBeGreaterThan(100);
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
