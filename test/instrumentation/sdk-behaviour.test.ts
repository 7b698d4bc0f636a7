import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { getAuditRequestId } from '../../src/core/audited-call';
import { createContentHasher } from '../../src/audit/hashing';
import { drivers, NEWER_NODE, type SdkDriver } from '../support/drivers';
import { expectedChunks, expectedModel, expectedText, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { eventually, setupAudit, useFakeProvider } from '../support/harness';

// The instrumentation's promise to the application: whatever it does with what the SDK returned,
// it behaves exactly as without the instrumentation, and every call yields exactly one span that
// ends, on every path. Checked for each SDK method and major version: the generic paths for every
// SDK (a new provider is proven by adding its driver to test/support/drivers.ts), the APIPromise
// and stream-controller paths for the Stainless SDKs.

const audit = setupAudit();
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const HASH = /^hmac-sha256:test:[0-9a-f]{64}$/;

async function onlySpan(): Promise<ReadableSpan> {
  const spans = await eventually(() => (audit.spans().length > 0 ? audit.spans() : undefined));
  // Give a wrongly doubled span a moment to show up before asserting there is exactly one.
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(audit.spans().map((s) => s.name)).toHaveLength(1);
  return spans[0];
}

async function collect(iterable: AsyncIterable<any>, driver: SdkDriver): Promise<string> {
  let text = '';
  for await (const chunk of iterable) text += driver.textOfChunk(chunk);
  return text;
}

// The Node >= 22 leg (npm run test:node24) is where openai 7 is covered: there it must be in the
// matrix, and its fixture installed (a missing one fails the tests below, never skips them).
it(`openai 7 is in the matrix exactly when Node >= 22 (here ${process.version})`, () => {
  const labels = drivers.map((d) => d.label).filter((label) => label.startsWith('openai 7 '));
  expect(labels).toEqual(NEWER_NODE ? ['openai 7 chat.completions', 'openai 7 responses'] : []);
});

function clientOf(driver: SdkDriver): { sdk: () => any; client: () => any } {
  const sdk = () => audit.load(driver.moduleId, driver.fromDir);
  return { sdk, client: () => driver.makeClient(sdk(), fake) };
}

/** Whether the provider reports prompt-cache writes: the Stainless SDKs' chat APIs do. */
const writesCache = (driver: SdkDriver): boolean => driver.reportsCacheWrite ?? driver.stainless;

describe.each(drivers)('$label', (driver) => {
  const { sdk, client } = clientOf(driver);
  const usage = expectedUsage();

  it('plain call: result unchanged, one CLIENT span with the GenAI and audit attributes', async () => {
    const result = await driver.call(client());
    expect(driver.textOf(result)).toBe(expectedText());
    const span = await onlySpan();
    const a = span.attributes;
    expect(span.kind).toBe(SpanKind.CLIENT);
    const operation = driver.operationName ?? 'chat';
    expect(span.name).toBe(`${operation} ${driver.model}`);
    expect(span.instrumentationScope.name).toBe('otel-llm-audit');
    expect(a['gen_ai.operation.name']).toBe(operation);
    expect(a['gen_ai.provider.name']).toBe(driver.provider);
    expect(a['gen_ai.request.model']).toBe(driver.model);
    expect(a['gen_ai.response.model']).toBe(expectedModel(driver.endpoint, driver.model));
    expect(a['gen_ai.response.id']).toBe(driver.idOf(result));
    expect(a['gen_ai.request.max_tokens']).toBe(64);
    expect(a['gen_ai.request.stream']).toBeUndefined();
    expect(a['gen_ai.usage.input_tokens']).toBe(usage.input);
    expect(a['gen_ai.usage.output_tokens']).toBe(usage.output);
    expect(a['gen_ai.usage.cache_read.input_tokens']).toBe(driver.reportsCacheRead ? usage.cacheRead : undefined);
    // The conventions' new name and, beside it, the old one (docs/attributes.md). Google and
    // Mistral report no prompt-cache writes.
    const cacheWrite = writesCache(driver) ? usage.cacheCreation : undefined;
    expect(a['gen_ai.usage.cache_write.input_tokens']).toBe(cacheWrite);
    expect(a['gen_ai.usage.cache_creation.input_tokens']).toBe(cacheWrite);
    expect(a['server.address']).toBe('127.0.0.1');
    expect(a['server.port']).toBe(Number(new URL(fake.url).port));
    expect(a['llm_audit.action']).toBe(driver.action);
    expect(a['llm_audit.status']).toBe('success');
    expect(a['llm_audit.usage.status']).toBe('reported');
    expect(a['llm_audit.request_id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(getAuditRequestId(result)).toBe(a['llm_audit.request_id']);
    if (driver.systemHashed('') === undefined) expect(a['llm_audit.system_prompt.hash']).toBeUndefined();
    else expect(a['llm_audit.system_prompt.hash']).toMatch(HASH);
    expect(a['llm_audit.input.hash']).toMatch(HASH);
    expect(a['llm_audit.output.hash']).toMatch(HASH);
    expect(a['llm_audit.cost.status']).toBe('priced');
    expect(a['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
    expect(a['gen_ai.usage.cost.currency']).toBe('USD');
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span.ended).toBe(true);
  });

  it('same content gives the same hashes, different content different ones', async () => {
    await driver.call(client(), { prompt: 'first prompt' });
    await driver.call(client(), { prompt: 'first prompt' });
    await driver.call(client(), { prompt: 'second prompt' });
    const spans = await audit.spansWhen(3);
    const input = spans.map((s) => s.attributes['llm_audit.input.hash']);
    expect(input[0]).toBe(input[1]);
    expect(input[2]).not.toBe(input[0]);
    const system = driver.systemHashed('You are a terse assistant.');
    expect(spans[0].attributes['llm_audit.system_prompt.hash']).toBe(system === undefined ? undefined : hasher.hash(system));
  });

  it('stream: every chunk reaches the app; the span has usage, time to first chunk and the same output hash as a plain call', async () => {
    const plain = await driver.call(client());
    const plainSpan = await onlySpan();
    audit.reset();
    const stream = await driver.call(client(), { stream: true });
    expect(await collect(stream, driver)).toBe(expectedText());
    const span = await onlySpan();
    const a = span.attributes;
    expect(a['gen_ai.request.stream']).toBe(true);
    expect(a['llm_audit.stream.outcome']).toBe('completed');
    expect(a['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
    expect(a['gen_ai.response.time_to_first_chunk']).toBeLessThan(10);
    expect(a['gen_ai.usage.input_tokens']).toBe(usage.input);
    expect(a['gen_ai.usage.output_tokens']).toBe(usage.output);
    expect(a['gen_ai.usage.cache_write.input_tokens']).toBe(writesCache(driver) ? usage.cacheCreation : undefined);
    expect(a['llm_audit.output.hash']).toBe(plainSpan.attributes['llm_audit.output.hash']);
    expect(a['llm_audit.input.hash']).toBe(plainSpan.attributes['llm_audit.input.hash']);
    // @google/genai hands the app a generator of its own around the stream it received (automatic
    // continuation): only the one it received carries the request id.
    if (driver.endpoint !== 'gemini') expect(getAuditRequestId(stream)).toBe(a['llm_audit.request_id']);
    expect(driver.textOf(plain)).toBe(expectedText());
  });

  it('early break: the app stops after 2 chunks; the span ends as abandoned with what arrived', async () => {
    fake.enqueue({ chunks: 10, chunkDelayMs: 5 });
    const stream = await driver.call(client(), { stream: true });
    let seen = 0;
    for await (const _ of stream) {
      if (++seen === 2) break;
    }
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('abandoned');
    expect(span.attributes['llm_audit.status']).toBe('success');
  });

  it('a stream never iterated: its span is ended at shutdown, marked not_consumed', async () => {
    const stream = await driver.call(client(), { stream: true });
    expect(stream).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(0);
    audit.instrumentation.endOpenCalls();
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('not_consumed');
    stream.controller?.abort();
  });

  it('a stream dropped unread is ended by the garbage collector, marked not_consumed', async () => {
    await (async () => {
      const stream = await driver.call(client(), { stream: true });
      expect(stream).toBeDefined();
    })();
    await eventually(() => {
      forceGc();
      return audit.spans().length > 0 ? true : undefined;
    });
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('not_consumed');
  });

  it('an API error reaches the app unchanged; the span has error.type, a masked message and ERROR status', async () => {
    fake.enqueue({ status: 429, errorMessage: 'Rate limited for key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789' });
    const error = await driver.call(client()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(driver.rateLimitError(sdk()));
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['llm_audit.status']).toBe('error');
    expect(span.attributes['error.type']).toBeTruthy();
    expect(span.attributes['http.response.status_code']).toBe(429);
    const message = String(span.attributes['llm_audit.error.message']);
    expect(message).toContain('Rate limited');
    expect(message).not.toContain('abcdefghijklmnopqrstuvwxyz0123456789');
    expect(span.status.message).not.toContain('abcdefghijklmnopqrstuvwxyz0123456789');
  });

  it('an error mid-stream reaches the app; the span ends as errored', async () => {
    fake.enqueue({ failAfterChunks: 2, chunks: 6 });
    const stream = await driver.call(client(), { stream: true });
    await expect(collect(stream, driver)).rejects.toThrow();
    const span = await onlySpan();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['llm_audit.stream.outcome']).toBe('errored');
  });

  it('a connection dropped mid-stream: the app sees the SDK error, the span ends', async () => {
    fake.enqueue({ dropAfterChunks: 2, chunks: 6 });
    const stream = await driver.call(client(), { stream: true });
    await collect(stream, driver).catch(() => undefined);
    const span = await onlySpan();
    expect(span.ended).toBe(true);
    expect(['errored', 'completed']).toContain(span.attributes['llm_audit.stream.outcome']);
  });

  it('no raw prompt, system prompt, output or API key in anything exported', async () => {
    const canary = 'CANARY-7f3a9c-do-not-export';
    await driver.call(client(), { prompt: `${canary} user`, system: `${canary} system` });
    const stream = await driver.call(client(), { stream: true, prompt: `${canary} stream` });
    await collect(stream, driver);
    fake.enqueue({ status: 400, errorMessage: 'bad request' });
    await driver.call(client(), { prompt: canary }).catch(() => undefined);
    const spans = await audit.spansWhen(3);
    const exported = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events, s.status, s.links]));
    expect(exported).not.toContain(canary);
    expect(exported).not.toContain(expectedText());
    expect(exported).not.toContain(driver.apiKey);
    expect(expectedChunks().length).toBeGreaterThan(1);
  });
});

describe.each(drivers.filter((d) => d.stainless))('$label: Stainless APIPromise and stream controller', (driver) => {
  const { client } = clientOf(driver);
  const usage = expectedUsage();

  it('withResponse() still gives data, response and request id', async () => {
    const { data, response } = await driver.call(client()).withResponse();
    expect(driver.textOf(data)).toBe(expectedText());
    expect(response.status).toBe(200);
    const span = await onlySpan();
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(usage.output);
  });

  it('asResponse() still gives an unread raw Response; the span ends with the HTTP status', async () => {
    const response = await driver.call(client()).asResponse();
    expect(response.bodyUsed).toBe(false);
    const body = await response.json();
    expect(body.id).toBeDefined();
    const span = await onlySpan();
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(span.attributes['llm_audit.usage.status']).toBe('missing');
    expect(getAuditRequestId(response)).toBe(span.attributes['llm_audit.request_id']);
  });

  it('tee(): both halves get every chunk; one span, completed', async () => {
    const stream = await driver.call(client(), { stream: true });
    const [left, right] = stream.tee();
    const [a, b] = await Promise.all([collect(left, driver), collect(right, driver)]);
    expect(a).toBe(expectedText());
    expect(b).toBe(expectedText());
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('completed');
  });

  it('controller.abort() mid-stream ends the stream as the SDK does, and the span as aborted', async () => {
    fake.enqueue({ chunks: 20, chunkDelayMs: 20 });
    const stream = await driver.call(client(), { stream: true });
    let text = '';
    for await (const chunk of stream) {
      text += driver.textOfChunk(chunk);
      if (text.length > 0) stream.controller.abort();
    }
    expect(text.length).toBeLessThan(expectedText({ chunks: 20 }).length);
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('aborted');
  });

  it('abort through the request signal before reading: the span ends as aborted', async () => {
    fake.enqueue({ chunks: 20, chunkDelayMs: 20 });
    const controller = new AbortController();
    const stream = await driver.call(client(), { stream: true, signal: controller.signal });
    controller.abort();
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('aborted');
    expect(stream).toBeDefined();
  });

  it('an abort after the stream finished or was abandoned changes nothing recorded', async () => {
    fake.enqueue({ chunks: 3 });
    const finished = await driver.call(client(), { stream: true });
    expect(await collect(finished, driver)).toBe(expectedText({ chunks: 3 }));
    finished.controller.abort();
    fake.enqueue({ chunks: 10, chunkDelayMs: 5 });
    const abandoned = await driver.call(client(), { stream: true });
    for await (const _ of abandoned) break;
    abandoned.controller.abort();
    const spans = await eventually(() => (audit.spans().length >= 2 ? audit.spans() : undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audit.spans()).toHaveLength(2);
    expect(spans.map((s) => s.attributes['llm_audit.stream.outcome'])).toEqual(['completed', 'abandoned']);
  });

  it('iterating twice still throws the SDK error the second time; one span', async () => {
    const stream = await driver.call(client(), { stream: true });
    expect(await collect(stream, driver)).toBe(expectedText());
    await expect(collect(stream, driver)).rejects.toThrow(/consumed/i);
    const span = await onlySpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('completed');
  });
});

/** Node's gc(), without starting vitest's workers with --expose-gc. */
const forceGc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc');
})();
