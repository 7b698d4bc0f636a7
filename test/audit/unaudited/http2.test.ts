import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { mkdtempSync } from 'node:fs';
import { connect, createSecureServer, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runInAuditedCall, startUnauditedWatcher, UnauditedLlmRequestError } from '../../../src/audit/unaudited';
import { withAuditContext } from '../../../src/context';
import { FileLedgerSource } from '../../../src/ledger/file/ledger';
import { scanRecords } from '../../../src/ledger/query';
import { recordFromSpan, type LedgerRecord } from '../../../src/ledger/record';
import { runNodeApp } from '../../support/child-app';
import { startFakeBedrock, type FakeBedrock } from '../../support/fake-bedrock';
import { selfSigned } from '../../support/fake-realtime';
import { eventually, repoRoot, setupAudit } from '../../support/harness';
import { isAuditStart } from '../../support/otlp-receiver';

// The watcher and HTTP/2: the AWS Bedrock client's default request handler (NodeHttp2Handler)
// against the fake Bedrock, which speaks HTTP/2, and bare node:http2 sessions. The fake's
// 127.0.0.1:<port> is configured as an LLM host.

const audit = setupAudit();
const { BedrockRuntimeClient, ConverseCommand, InvokeModelWithBidirectionalStreamCommand } = audit.load('@aws-sdk/client-bedrock-runtime');
const MODEL = 'amazon.nova-sonic-v1:0';
const BIDI_PATH = `/model/${encodeURIComponent(MODEL)}/invoke-with-bidirectional-stream`;

let fake: FakeBedrock;
let host: string;
let port: number;
let client: any;
let stop: (() => void) | undefined;
const warnings: string[] = [];
beforeAll(async () => {
  fake = await startFakeBedrock();
  ({ hostname: host, port: port as unknown } = new URL(fake.url) as unknown as { hostname: string; port: number });
  port = Number(port);
  client = new BedrockRuntimeClient(fake.clientConfig);
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
});
afterEach(() => {
  stop?.();
  stop = undefined;
  warnings.length = 0;
  audit.reset();
  fake.reset();
});

function watch(block: boolean): void {
  stop = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: `${host}:${port}`, ...(block ? { LLM_AUDIT_ON_FAILURE: 'block' } : {}) }, warn: (line) => warnings.push(line) });
}

const unaudited = (): ReadableSpan[] => audit.spans().filter((s) => s.attributes['llm_audit.status'] === 'unaudited');
const converse = () => client.send(new ConverseCommand({ modelId: 'anthropic.claude-3-5-sonnet-20240620-v1:0', messages: [{ role: 'user', content: [{ text: 'PROMPT-TEXT' }] }] }));

/** An audited Bedrock session: InvokeModelWithBidirectionalStream over the SDK's HTTP/2 handler. */
async function bidirectional(): Promise<unknown> {
  const event = (body: object) => ({ chunk: { bytes: new TextEncoder().encode(JSON.stringify({ event: body })) } });
  async function* events() {
    yield event({ sessionStart: {} });
    yield event({ textInput: { content: 'PROMPT-TEXT' } });
    yield event({ promptEnd: {} });
    yield event({ sessionEnd: {} });
  }
  const answer = await client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId: MODEL, body: events() }));
  for await (const _event of answer.body) void _event;
  return answer;
}

/** A POST on a bare node:http2 session; resolves with the status, rejects with the stream's error. */
function h2Post(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers });
    stream.on('error', reject);
    stream.on('response', (headers) => {
      stream.resume();
      stream.on('end', () => resolve(Number(headers[':status'])));
    });
    stream.end('{"prompt":"PROMPT-TEXT"}');
  });
}

describe('unaudited LLM requests over HTTP/2', () => {
  it('does not report the audited Bedrock bidirectional stream (default HTTP/2 handler); reports a bare HTTP/2 request beside it', async () => {
    watch(false);
    const session = connect(fake.url);
    session.on('error', () => undefined);
    try {
      const [streamed, bare] = await Promise.allSettled([withAuditContext({ userId: 'u-bidi' }, bidirectional), withAuditContext({ userId: 'u-bare' }, () => h2Post(session, '/model/m/converse'))]);
      expect(streamed.status).toBe('fulfilled');
      expect(bare).toEqual({ status: 'fulfilled', value: 200 });
    } finally {
      session.destroy();
    }
    expect(fake.received).toContain(`POST ${BIDI_PATH}`);
    const [audited] = await eventually(() => {
      const spans = audit.spans().filter((s) => s.attributes['llm_audit.action'] === 'InvokeModelWithBidirectionalStream');
      return spans.length === 1 ? spans : undefined;
    });
    expect(audited!.attributes).toMatchObject({ 'llm_audit.status': 'success', 'user.id': 'u-bidi' });
    const records = unaudited().map(recordFromSpan);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: 'unaudited', user_id: 'u-bare', http: { method: 'POST', host, port, path: '/model/m/converse' } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${host}:${port} (POST /model/m/converse)`);
  });

  it('lets the audited bidirectional stream through with LLM_AUDIT_ON_FAILURE=block, beside the audited Converse', async () => {
    watch(true);
    const [conversed, streamed] = await Promise.allSettled([converse(), bidirectional()]);
    expect(conversed.status).toBe('fulfilled');
    expect(streamed.status).toBe('fulfilled');
    expect(fake.received).toContain(`POST ${BIDI_PATH}`);
    expect(unaudited()).toHaveLength(0);
    expect(warnings).toHaveLength(0);
  });

  it('records a Converse sent while the instrumentation is disabled (an SDK the patch does not reach)', async () => {
    watch(false);
    audit.instrumentation.disable();
    try {
      await withAuditContext({ userId: 'u-unpatched' }, converse);
    } finally {
      audit.instrumentation.enable();
      audit.load('@aws-sdk/client-bedrock-runtime');
    }
    expect(audit.spans().filter((s) => s.attributes['gen_ai.operation.name'] !== undefined)).toHaveLength(0);
    const records = unaudited().map(recordFromSpan);
    expect(records).toEqual([expect.objectContaining({ status: 'unaudited', user_id: 'u-unpatched', http: expect.objectContaining({ method: 'POST', path: expect.stringMatching(/\/converse$/) }) })]);
    // Patched again: the next Converse is an audited call, not reported.
    await converse();
    await eventually(() => audit.spans().some((s) => s.attributes['gen_ai.operation.name'] === 'chat'));
    expect(unaudited()).toHaveLength(1);
  });

  it('refuses bare node:http2 requests on a connecting and on a connected session; nothing reaches the server', async () => {
    watch(true);
    const session = connect(fake.url);
    session.on('error', () => undefined);
    try {
      // The first while the session connects, the second once it is connected.
      const first = await h2Post(session, '/model/m/invoke?key=QUERY-SECRET').catch((error: unknown) => error);
      await new Promise<void>((resolve) => (session.connecting ? session.once('connect', () => resolve()) : resolve()));
      const second = await h2Post(session, '/model/m/converse').catch((error: unknown) => error);
      // The bytes go where the session is connected, whatever host the request names.
      const third = await h2Post(session, '/model/m/converse', { ':authority': 'api.example.com' }).catch((error: unknown) => error);
      for (const error of [first, second, third]) {
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).cause).toBeInstanceOf(UnauditedLlmRequestError);
      }
      expect(fake.received).toEqual([]);
      const records = unaudited().map(recordFromSpan);
      expect(records.map((r) => r.http?.path)).toEqual(['/model/m/invoke', '/model/m/converse', '/model/m/converse']);
      expect(records.map((r) => r.http?.host)).toEqual([host, host, host]);
      // The session is still usable: the same request goes through once the watcher is stopped.
      stop!();
      stop = undefined;
      expect(await h2Post(session, '/model/m/converse')).toBe(200);
      expect(fake.received).toEqual(['POST /model/m/converse']);
    } finally {
      session.destroy();
    }
  });

  it('lets a content-free request through, and stops watching when stopped', async () => {
    watch(true);
    const session = connect(fake.url);
    session.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':path': '/v1/batches/batch_1' });
        stream.on('error', reject).on('response', () => stream.resume().on('end', resolve));
        stream.end();
      });
      stop!();
      stop = undefined;
      expect(await h2Post(session, '/model/m/converse')).toBe(200);
      expect(fake.received).toEqual(['GET /v1/batches/batch_1', 'POST /model/m/converse']);
      expect(unaudited()).toHaveLength(0);
    } finally {
      session.destroy();
    }
  });
});

describe('HTTP/2 in a real ES module process', () => {
  it('a bare node:http2 request (connect imported by name) is refused under block beside the audited Converse, both in the ledger', async () => {
    const ledger = join(mkdtempSync(join(tmpdir(), 'unaudited-h2-')), 'ledger');
    const app = await runNodeApp(['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(repoRoot, 'test', 'fixtures', 'unaudited-http2-app.mjs')], {
      FAKE_BEDROCK_URL: fake.url,
      LLM_AUDIT_HASH_KEY: 'unaudited-h2-hash-key-0123',
      LLM_AUDIT_LEDGER_DIR: ledger,
      LLM_AUDIT_LLM_HOSTS: `${host}:${port}`,
      LLM_AUDIT_ON_FAILURE: 'block',
    });
    expect(app.code, app.stderr).toBe(0);
    expect(JSON.parse(app.stdout)).toEqual(['ok', 'AbortError:UnauditedLlmRequestError']);
    expect(fake.received).toEqual([expect.stringMatching(/\/converse$/)]);
    const records: LedgerRecord[] = [];
    for await (const hit of scanRecords(new FileLedgerSource(ledger))) if (!isAuditStart(hit.record as never)) records.push(hit.record);
    expect(records.map((r) => [r.status, r.operation, r.error_type, r.http?.path ?? null]).sort()).toEqual([
      ['success', 'chat', null, null],
      ['unaudited', null, 'UnauditedLlmRequestError', '/model/m/invoke'],
    ]);
  }, 60_000);
});

describe('undici over HTTP/2 (allowH2)', () => {
  it('is watched once, at undici:request:create: an audited request queued behind an unaudited one on a new session is not reported', async () => {
    const { key, cert } = selfSigned();
    const server = createSecureServer({ key, cert }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const undici = require('undici') as typeof import('undici');
    const agent = new undici.Agent({ allowH2: true, connect: { ca: cert } });
    stop = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: target }, warn: (line) => warnings.push(line) });
    try {
      const get = (path: string) => undici.request(`https://${target}${path}`, { method: 'POST', body: '{}', dispatcher: agent }).then(async (r) => [r.statusCode, await r.body.text()]);
      // The unaudited request opens the session; the audited one, made meanwhile, is written to it
      // from the session's connect callback, in the unaudited caller's async context.
      const answers = await Promise.all([get('/unaudited'), runInAuditedCall(() => get('/audited'))]);
      expect(answers).toEqual([
        [200, 'ok'],
        [200, 'ok'],
      ]);
      expect(unaudited().map((s) => s.attributes['url.path'])).toEqual(['/unaudited']);
    } finally {
      await agent.close();
      server.close();
    }
  });
});
