import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { drivers, type SdkDriver } from '../support/drivers';
import type { FakeProvider, Scenario } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// `error.type` follows one rule on every error path (docs/attributes.md): the provider's error code
// when it sent one (HTTP error body or error event inside a stream), else the HTTP status code of
// an API error, else the error's class name. Each path, for each SDK in the matrix, driven against
// the fake provider (and, for an error page without a provider body, a plain HTTP server that
// answers like a proxy).

const audit = setupAudit();
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
let proxy: Server;
let proxyURL: string;
beforeAll(async () => {
  fake = fakeProvider();
  proxy = createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<html><body>502 Bad Gateway</body></html>');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyURL = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => proxy.close(resolve));
});

/** A client of the driver's SDK at `baseURL` (default the fake provider), no retries, with `options`. */
function clientAt(driver: SdkDriver, baseURL?: string, options: Record<string, unknown> = {}): any {
  const sdk = audit.load(driver.moduleId, driver.fromDir);
  const Client = sdk.OpenAI ?? sdk.Anthropic ?? sdk.default ?? sdk;
  const url = baseURL ?? (driver.provider === 'openai' ? fake.openaiBaseURL : fake.anthropicBaseURL);
  return new Client({ apiKey: 'sk-test-key', baseURL: url, maxRetries: 0, ...options });
}

async function failedSpan(): Promise<ReadableSpan> {
  const [span] = await audit.spansWhen(1);
  expect(audit.spans()).toHaveLength(1);
  expect(span.status.code).toBe(SpanStatusCode.ERROR);
  expect(span.attributes['llm_audit.status']).toBe('error');
  return span;
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

/** The provider's code for an HTTP error body, per provider: [scenario, expected error.type]. */
const httpBodyCases: Record<SdkDriver['provider'], [Scenario, string][]> = {
  openai: [
    [{ status: 429, errorType: 'insufficient_quota', errorCode: 'insufficient_quota' }, 'insufficient_quota'],
    [{ status: 400, errorType: 'invalid_request_error', errorCode: 'context_length_exceeded' }, 'context_length_exceeded'],
    [{ status: 400 }, 'invalid_request_error'], // code null: the type
  ],
  anthropic: [
    [{ status: 529 }, 'overloaded_error'],
    [{ status: 400 }, 'invalid_request_error'],
  ],
};

/** An error event inside a stream: [scenario, expected error.type]. */
function streamCase(driver: SdkDriver): [Scenario, string] {
  if (driver.provider === 'anthropic') return [{ failAfterChunks: 2, chunks: 6 }, 'overloaded_error'];
  return [{ failAfterChunks: 2, chunks: 6, errorType: 'insufficient_quota' }, 'insufficient_quota'];
}

// The Stainless SDKs' error paths; Google's and Mistral's are in their own suites (google-genai.ts,
// mistral.test.ts).
describe.each(drivers.filter((d) => d.stainless))('$label', (driver) => {
  it.each(httpBodyCases[driver.provider]!)('HTTP error with the provider body %o: error.type %s', async (scenario, expected) => {
    fake.enqueue(scenario);
    const error = await driver.call(clientAt(driver)).catch((e: unknown) => e);
    expect((error as { status?: number }).status).toBe(scenario.status);
    const span = await failedSpan();
    expect(span.attributes['error.type']).toBe(expected);
    expect(span.attributes['http.response.status_code']).toBe(scenario.status);
  });

  it('HTTP error without a provider body (a proxy\'s error page): error.type is the status code', async () => {
    const error = await driver.call(clientAt(driver, proxyURL)).catch((e: unknown) => e);
    expect((error as { status?: number }).status).toBe(502);
    const span = await failedSpan();
    expect(span.attributes['error.type']).toBe('502');
  });

  it('error event inside a stream: error.type is the provider code it carries', async () => {
    const [scenario, expected] = streamCase(driver);
    fake.enqueue(scenario);
    const stream = await driver.call(clientAt(driver), { stream: true });
    await expect(drain(stream)).rejects.toThrow();
    const span = await failedSpan();
    expect(span.attributes['llm_audit.stream.outcome']).toBe('errored');
    expect(span.attributes['error.type']).toBe(expected);
  });

  it('connection refused: error.type is the SDK error class', async () => {
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await driver.call(clientAt(driver, `http://127.0.0.1:${port}`)).catch((e: unknown) => e);
    expect((error as Error).constructor.name).toBe('APIConnectionError');
    const span = await failedSpan();
    expect(span.attributes['error.type']).toBe('APIConnectionError');
  });

  it('timeout: error.type is the SDK timeout error class', async () => {
    fake.enqueue({ headersDelayMs: 2_000 });
    const error = await driver.call(clientAt(driver, undefined, { timeout: 100 })).catch((e: unknown) => e);
    expect((error as Error).constructor.name).toBe('APIConnectionTimeoutError');
    const span = await failedSpan();
    expect(span.attributes['error.type']).toBe('APIConnectionTimeoutError');
  });

  it('abort through the request signal before the answer: error.type is the SDK abort error class', async () => {
    fake.enqueue({ headersDelayMs: 2_000 });
    const controller = new AbortController();
    const pending = driver.call(clientAt(driver), { signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    const error = await pending;
    expect((error as Error).constructor.name).toBe('APIUserAbortError');
    const span = await failedSpan();
    expect(span.attributes['error.type']).toBe('APIUserAbortError');
  });
});
