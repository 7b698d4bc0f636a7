import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startUnauditedWatcher, UnauditedLlmRequestError } from '../../../src/audit/unaudited';
import { withAuditContext } from '../../../src/context';
import { FileLedgerSource } from '../../../src/ledger/file/ledger';
import { scanRecords } from '../../../src/ledger/query';
import { recordFromSpan, type LedgerRecord } from '../../../src/ledger/record';
import { LedgerSpanExporter } from '../../../src/ledger/span-exporter';
import { verifyLedger } from '../../../src/ledger/verify';
import type { FakeProvider } from '../../support/fake-provider';
import { eventually, repoRoot, setupAudit, useFakeProvider } from '../../support/harness';

// The watcher against real traffic: the openai SDK (global fetch in openai 6, node-fetch over
// node:http in openai 4) and the anthropic SDK audited by the instrumentation, and direct fetch / http.request calls to
// the same fake provider, whose 127.0.0.1:<port> is configured as an LLM host.

const audit = setupAudit();
const OpenAI = audit.load('openai').OpenAI;
const OpenAI4 = audit.load('openai', join(repoRoot, 'test', 'sdk-versions', 'openai-4')).OpenAI;
const Anthropic = audit.load('@anthropic-ai/sdk').Anthropic;
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
let host: string;
let port: number;
let stop: (() => void) | undefined;
const warnings: string[] = [];

beforeAll(() => {
  fake = fakeProvider();
  const url = new URL(fake.url);
  host = url.hostname;
  port = Number(url.port);
});
afterEach(() => {
  stop?.();
  stop = undefined;
  warnings.length = 0;
});

function watch(env: NodeJS.ProcessEnv): void {
  stop = startUnauditedWatcher({ env, warn: (line) => warnings.push(line) });
}

const messages = [{ role: 'user', content: 'hi' }];
const unaudited = (): ReadableSpan[] => audit.spans().filter((s) => s.attributes['llm_audit.status'] === 'unaudited');
const auditedCalls = (): ReadableSpan[] => audit.spans().filter((s) => s.attributes['gen_ai.operation.name'] !== undefined);

/** A POST with http.request; resolves with the status code, rejects with the request's error. */
function httpPost(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'PROMPT-TEXT' }] });

describe('unaudited LLM requests', () => {
  it('records each direct fetch and http.request once, and no audited SDK call, when they run concurrently', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}` });
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    const client4 = new OpenAI4({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    const sdkCalls = (user: string, sdk: any) =>
      withAuditContext({ userId: user }, () => Promise.all([0, 1].map(() => sdk.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
    const direct = withAuditContext({ userId: 'u-fetch', sessionId: 's-fetch', tenantId: 't-fetch' }, () =>
      fetch(`${fake.url}/v1/chat/completions?api-key=QUERY-SECRET`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody }),
    );
    const viaHttp = withAuditContext({ userId: 'u-http' }, () => httpPost(`${fake.url}/v1/chat/completions?key=QUERY-SECRET#frag`, chatBody));
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
    const more = withAuditContext({ userId: 'u-sdk' }, async () => {
      await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 50, messages });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      for await (const _ of stream);
    });
    const [fetched, status] = await Promise.all([direct, viaHttp, sdkCalls('u-sdk6', client), sdkCalls('u-sdk4', client4), more]);
    expect(fetched.status).toBe(200);
    await fetched.text();
    expect(status).toBe(200);
    expect(fake.requests).toHaveLength(8);

    await eventually(() => auditedCalls().length === 6);
    const records = unaudited();
    expect(records).toHaveLength(2);
    const byUser = Object.fromEntries(records.map((s) => [s.attributes['user.id'], s]));
    expect(Object.keys(byUser).sort()).toEqual(['u-fetch', 'u-http']);
    for (const span of records) {
      expect(span.instrumentationScope.name).toBe('otel-llm-audit');
      expect(span.attributes).toMatchObject({
        'server.address': host,
        'server.port': port,
        'http.request.method': 'POST',
        'url.path': '/v1/chat/completions',
      });
      // No query string, no body.
      expect(JSON.stringify(span.attributes)).not.toMatch(/QUERY-SECRET|PROMPT-TEXT|frag/);
    }
    expect(byUser['u-fetch'].attributes).toMatchObject({ 'session.id': 's-fetch', 'llm_audit.tenant.id': 't-fetch' });
    expect(auditedCalls().map((s) => s.attributes['user.id']).sort()).toEqual(['u-sdk', 'u-sdk', 'u-sdk4', 'u-sdk4', 'u-sdk6', 'u-sdk6']);

    // One warning for the host, though two requests went there.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${host}:${port}`);
    expect(warnings[0]).toContain('llm_audit.status=unaudited');

    const counted = (await audit.metrics()).scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'llm_audit.unaudited.requests');
    expect(counted?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([
      [{ 'server.address': host, 'server.port': port, 'http.request.method': 'POST' }, 2],
    ]);
  });

  it('puts them in the ledger as records of their own, beside the audited calls', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}` });
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    await Promise.all([
      withAuditContext({ userId: 'u1' }, () => client.chat.completions.create({ model: 'gpt-4o-mini', messages })),
      withAuditContext({ userId: 'u2', tenantId: 't2' }, () => fetch(`${fake.url}/v1/embeddings?k=QUERY-SECRET`, { method: 'POST', body: '{}' }).then((r) => r.text())),
    ]);
    await eventually(() => auditedCalls().length === 1 && unaudited().length === 1);

    const dir = join(mkdtempSync(join(tmpdir(), 'unaudited-')), 'ledger');
    const exporter = new LedgerSpanExporter({ dir });
    const result = await new Promise<ExportResult>((resolve) => exporter.export(audit.spans(), resolve));
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    await exporter.shutdown();
    expect(await verifyLedger(new FileLedgerSource(dir))).toMatchObject({ records: 2 });
    const stored: LedgerRecord[] = [];
    for await (const hit of scanRecords(new FileLedgerSource(dir))) stored.push(hit.record);
    const gap = stored.find((r) => r.status === 'unaudited');
    expect(gap).toMatchObject({
      user_id: 'u2',
      tenant_id: 't2',
      provider: null,
      input_hash: null,
      http: { method: 'POST', host, port, path: '/v1/embeddings' },
    });
    expect(stored.find((r) => r.status === 'success')).not.toHaveProperty('http');
    expect(JSON.stringify(stored)).not.toContain('QUERY-SECRET');
  });

  it('ignores other hosts and other ports of a host:port entry', async () => {
    const other = await listen();
    try {
      watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}` });
      const r = await fetch(`http://${host}:${(other.address() as { port: number }).port}/v1/chat/completions`, { method: 'POST', body: '{}' });
      await r.text();
      expect(await httpPost(`http://${host}:${(other.address() as { port: number }).port}/x`, '{}')).toBe(200);
      expect(unaudited()).toHaveLength(0);
      expect(warnings).toHaveLength(0);
    } finally {
      other.close();
    }
  });

  it('refuses them with LLM_AUDIT_ON_FAILURE=block before anything is sent, and lets audited calls through', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}`, LLM_AUDIT_ON_FAILURE: 'block' });
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    const [fetched, posted, answer] = await Promise.allSettled([
      fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', body: chatBody }),
      httpPost(`${fake.url}/v1/chat/completions`, chatBody),
      client.chat.completions.create({ model: 'gpt-4o-mini', messages }),
    ]);
    expect(fetched.status).toBe('rejected');
    const fetchError = (fetched as PromiseRejectedResult).reason;
    expect(fetchError.cause).toBeInstanceOf(UnauditedLlmRequestError);
    expect(fetchError.cause.message).toContain(`POST ${host}:${port}/v1/chat/completions`);
    expect(fetchError.cause.message).toContain('LLM_AUDIT_ON_FAILURE=block');
    expect(posted.status).toBe('rejected');
    expect((posted as PromiseRejectedResult).reason).toBeInstanceOf(UnauditedLlmRequestError);
    expect(answer.status).toBe('fulfilled');
    // Only the audited call reached the provider.
    expect(fake.requests).toHaveLength(1);

    await eventually(() => auditedCalls().length === 1);
    const refused = unaudited().map(recordFromSpan);
    expect(refused).toHaveLength(2);
    for (const record of refused) {
      expect(record).toMatchObject({ status: 'unaudited', error_type: 'UnauditedLlmRequestError', http: { host, port, path: '/v1/chat/completions' } });
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('refused (LLM_AUDIT_ON_FAILURE=block)');
  });

  it('warns on stderr by default, once per host', async () => {
    stop = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: `${host}:${port}` } });
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: any[]) => {
      written.push(String(chunk));
      return (write as any).call(process.stderr, chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      for (let i = 0; i < 3; i++) await (await fetch(`${fake.url}/v1/models`)).text();
    } finally {
      process.stderr.write = write;
    }
    expect(unaudited()).toHaveLength(3);
    const lines = written.filter((line) => line.includes('otel-llm-audit: WARNING'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${host}:${port} (GET /v1/models)`);
  });

  it('records a node:http request whose Host header names another host, its port unknown', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}` });
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${fake.url}/v1/models`, { headers: { host: 'api.example' } }, (res) => res.resume().on('end', resolve));
      req.on('error', reject).end();
    });
    const [span] = unaudited();
    expect(span.attributes['server.address']).toBe(host);
    expect(span.attributes).not.toHaveProperty('server.port');
    expect(warnings[0]).toContain(`request to ${host} (GET /v1/models)`);
  });

  it('stops watching when stopped', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}`, LLM_AUDIT_ON_FAILURE: 'block' });
    stop!();
    await (await fetch(`${fake.url}/v1/models`)).text();
    expect(unaudited()).toHaveLength(0);
  });

  it('refuses to start on a bad LLM_AUDIT_LLM_HOSTS entry, naming it', () => {
    expect(() => startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: 'llm.internal, https://gateway.example/v1' } })).toThrow(
      /LLM_AUDIT_LLM_HOSTS: "https:\/\/gateway.example\/v1" is not a host or host:port/,
    );
  });
});

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => res.end('{}')).listen(0, '127.0.0.1', () => resolve(server));
  });
}

afterAll(() => stop?.());

describe('batch polling (no content goes out)', () => {
  /** Uploads a one-request batch file and creates the batch; returns the batch. */
  async function openaiBatch(client: any): Promise<any> {
    const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages } });
    const file = await client.files.create({ file: new File([line + '\n'], 'batch.jsonl'), purpose: 'batch' });
    return client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  }

  it('retrieve, list (every page), cancel and delete through the SDKs are neither refused nor reported under LLM_AUDIT_ON_FAILURE=block', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}`, LLM_AUDIT_ON_FAILURE: 'block' });
    for (const client of [new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 }), new OpenAI4({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 })]) {
      const batches = [await openaiBatch(client), await openaiBatch(client)];
      expect((await client.batches.retrieve(batches[0].id)).id).toBe(batches[0].id);
      const listed: string[] = [];
      // One batch a page: the SDK fetches the later pages itself, outside the list() call.
      for await (const batch of client.batches.list({ limit: 1 })) listed.push(batch.id);
      expect(listed).toEqual(expect.arrayContaining(batches.map((b) => b.id)));
      expect((await client.batches.cancel(batches[1].id)).status).toBe('cancelling');
    }
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
    const params = { requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5', max_tokens: 8, messages } }] };
    const created = [await anthropic.messages.batches.create(params), await anthropic.messages.batches.create(params)];
    expect((await anthropic.messages.batches.retrieve(created[0]!.id)).id).toBe(created[0]!.id);
    const listed: string[] = [];
    for await (const batch of anthropic.messages.batches.list({ limit: 1 })) listed.push(batch.id);
    expect(listed).toEqual(expect.arrayContaining(created.map((b) => b.id)));
    expect((await anthropic.messages.batches.cancel(created[1]!.id)).processing_status).toBe('canceling');
    expect((await anthropic.messages.batches.delete(created[1]!.id)).type).toBe('message_batch_deleted');
    expect(unaudited()).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('lets a bare GET of a batch or a batch list through unrecorded; the results and the files stay watched', async () => {
    watch({ LLM_AUDIT_LLM_HOSTS: `${host}:${port}`, LLM_AUDIT_ON_FAILURE: 'block' });
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
    const batch = await anthropic.messages.batches.create({ requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5', max_tokens: 8, messages } }] });
    const status = await fetch(`${fake.url}/v1/messages/batches/${batch.id}`, { headers: { 'anthropic-version': '2023-06-01' } });
    expect(status.status).toBe(200);
    expect((await fetch(`${fake.url}/v1/messages/batches?limit=1`)).status).toBe(200);
    expect((await fetch(`${fake.url}/v1/batches`)).status).toBe(200);
    // What carries output (the results, a file's content) or acts on a batch (cancel) is still an unaudited request.
    const refused = await Promise.allSettled([
      fetch(`${fake.url}/v1/messages/batches/${batch.id}/results`),
      fetch(`${fake.url}/v1/files/file-x/content`),
      fetch(`${fake.url}/v1/messages/batches/${batch.id}/cancel`, { method: 'POST' }),
    ]);
    expect(refused.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(unaudited().map((s) => s.attributes['url.path'])).toEqual([`/v1/messages/batches/${batch.id}/results`, '/v1/files/file-x/content', `/v1/messages/batches/${batch.id}/cancel`]);
  });
});
