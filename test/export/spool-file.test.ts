import { ProtobufTraceSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Drainer } from '../../src/export/drainer';
import { SpoolDirectory } from '../../src/export/spool-dir';
import { decodeSpoolFile, encodeSpoolFile, SpoolFileError, SPOOL_FORMAT } from '../../src/export/spool-file';
import { captureDiag, makeSpans, richSpan } from './helpers';

// Spool files: what is written is what the OTLP exporters would have sent, byte for byte, and a
// file that cannot be read back is reported and set aside, never silently deleted, never a crash.

describe('spool file round trip', () => {
  it('a span with every field (events, links, status, parent, trace state, resource, scope) encodes to the same OTLP bytes after the round trip', async () => {
    const original = richSpan();
    const file = await encodeSpoolFile([original]);
    const header = JSON.parse(file.subarray(0, file.indexOf(0x0a)).toString('utf8'));
    expect(header).toMatchObject({ format: SPOOL_FORMAT, version: 1, spans: 1, encoding: 'gzip', pid: process.pid });
    const { spans } = await decodeSpoolFile(file);
    expect(spans).toHaveLength(1);
    const [copy] = spans;
    // What the exporters actually send: both wire encodings are identical.
    expect(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!).toString()).toBe(Buffer.from(JsonTraceSerializer.serializeRequest([original])!).toString());
    expect(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([original])!))).toBe(true);
    // And field by field, so that a field both serializers ignore would still be caught.
    expect(copy!.spanContext()).toEqual(expect.objectContaining({ traceId: original.spanContext().traceId, spanId: original.spanContext().spanId, traceFlags: 1 }));
    expect(copy!.parentSpanContext?.traceState?.serialize()).toBe('vendor=abc,other=1');
    expect(copy!.parentSpanContext?.isRemote).toBe(true);
    expect(copy!.links[0]!.context.traceState?.serialize()).toBe('l=2');
    expect(copy!.links[0]!.attributes).toEqual({ 'link.kind': 'retry', 'link.n': 3 });
    expect(copy!.events.map((e) => [e.name, e.time, e.attributes])).toEqual(original.events.map((e) => [e.name, e.time, e.attributes]));
    expect(copy!.status).toEqual({ code: 2, message: 'provider said 429' });
    expect(copy!.attributes).toEqual(original.attributes);
    expect(copy!.attributes['llm_audit.not_finite']).toBe(Number.POSITIVE_INFINITY);
    expect([copy!.startTime, copy!.endTime, copy!.duration, copy!.kind, copy!.name]).toEqual([original.startTime, original.endTime, original.duration, original.kind, original.name]);
    expect(copy!.resource.attributes).toEqual(original.resource.attributes);
    expect(copy!.resource.schemaUrl).toBe('https://opentelemetry.io/schemas/1.30.0');
    expect(copy!.instrumentationScope).toEqual({ name: 'otel-llm-audit', version: '9.9.9', schemaUrl: 'https://opentelemetry.io/schemas/1.29.0' });
  });

  it('spans of one resource share one Resource object after decoding (the exporters group by identity)', async () => {
    const { spans } = await decodeSpoolFile(await encodeSpoolFile(makeSpans(3)));
    expect(spans).toHaveLength(3);
    expect(spans[1]!.resource).toBe(spans[0]!.resource);
    expect(spans.map((s) => s.attributes['llm_audit.request_id'])).toEqual(['req-0', 'req-1', 'req-2']);
  });

  it.each([
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 7), /^truncated/],
    ['empty', () => Buffer.alloc(0), /^truncated/],
    ['a flipped body byte', (b: Buffer) => Buffer.concat([b.subarray(0, b.length - 3), Buffer.from([b[b.length - 3]! ^ 0xff]), b.subarray(b.length - 2)]), /^corrupt/],
    ['an unknown version', (b: Buffer) => Buffer.from(b.toString('latin1').replace('"version":1', '"version":99'), 'latin1'), /^unknown-version/],
    ['not a spool file', () => Buffer.from('{"hello":"world"}\nbody'), /^not-a-spool-file/],
  ])('%s: a SpoolFileError that names the problem', async (_label, damage, problem) => {
    const bytes = damage(await encodeSpoolFile(makeSpans(2)));
    const error = await decodeSpoolFile(bytes).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpoolFileError);
    expect(`${(error as SpoolFileError).problem}: ${(error as Error).message}`).toMatch(problem);
  });
});

describe('a damaged file in the spool', () => {
  let diagCapture: ReturnType<typeof captureDiag> | undefined;
  afterEach(() => diagCapture?.stop());

  it('is reported through diag.error and moved to quarantine; the files around it are still sent', async () => {
    const root = mkdtempSync(join(tmpdir(), 'spool-damaged-'));
    const spool = new SpoolDirectory(root, 1 << 30);
    spool.open();
    const names: string[] = [];
    for (const prefix of ['a', 'b', 'c']) {
      names.push(spool.reserveName());
      await spool.write(names.at(-1)!, await encodeSpoolFile(makeSpans(2, prefix)));
    }
    // Damage the middle file in place (a disk error, an editor, a version from the future...).
    const middle = join(spool.directory!, names[1]!);
    const bytes = readFileSync(middle);
    writeFileSync(middle, bytes.subarray(0, bytes.length - 10));

    diagCapture = captureDiag();
    const sent: string[] = [];
    const drainer = new Drainer(spool, async (spans) => {
      sent.push(...spans.map((s) => s.attributes['llm_audit.request_id'] as string));
      return true;
    }, () => true);
    drainer.kick();
    await drainer.idle();

    expect(sent).toEqual(['a-0', 'a-1', 'c-0', 'c-1']);
    expect(spool.files).toBe(0);
    const quarantined = readdirSync(join(root, 'quarantine'));
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]!.endsWith(names[1]!)).toBe(true);
    // Kept as it was, for a human to look at.
    expect(readFileSync(join(root, 'quarantine', quarantined[0]!)).equals(bytes.subarray(0, bytes.length - 10))).toBe(true);
    const errors = diagCapture.errors();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${names[1]} cannot be read back`);
    expect(errors[0]).toMatch(/cannot be read back \(truncated: the body has \d+ of its \d+ bytes\); moved to .*quarantine/);
  });
});
