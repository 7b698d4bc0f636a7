import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileLedgerSource } from '../../../src/ledger/file/ledger';
import { scanRecords } from '../../../src/ledger/query';
import type { LedgerRecord } from '../../../src/ledger/record';
import { runNodeApp } from '../../support/child-app';
import { repoRoot } from '../../support/harness';
import { node24, sdkFixture } from '../../support/node24';
import { isAuditStart } from '../../support/otlp-receiver';

// WebSocket handshakes to an LLM host in a real Node 24 process under `--import` register: ai 7's
// experimental_streamTranscribe (OpenAI's Realtime WebSocket, opened by @ai-sdk/openai 4 with the
// global WebSocket, undici's) and a bare global WebSocket. The transcription is an audited call
// (test/register/vercel-ai-streams.test.ts): its handshake is neither reported nor refused. The
// bare socket is reported, and refused under block before the server sees a connection. (The `ws`
// package's handshake, node:http's, is covered by test/instrumentation/openai-realtime.test.ts.)

const { WebSocketServer } = createRequire(join(repoRoot, 'package.json'))('ws') as { WebSocketServer: any };
let server: any;
let base: string;
const connections: string[] = [];
beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket: any, request: { url: string }) => {
    connections.push(request.url);
    // Closes once the client has spoken (the transcription sends its audio, then commits).
    socket.on('message', () => undefined);
    setTimeout(() => socket.close(), 100);
  });
  await new Promise((resolve) => server.on('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server?.close());
beforeEach(() => {
  connections.length = 0;
});

async function run(env: Record<string, string>) {
  const ledger = join(mkdtempSync(join(tmpdir(), 'unaudited-ws-')), 'ledger');
  const app = await runNodeApp(
    ['--import', join(repoRoot, 'dist', 'esm', 'register.mjs'), join(sdkFixture('ai-7'), 'websocket-app.mjs')],
    { APP_OPENAI_BASE_URL: `${base}/v1`, LLM_AUDIT_HASH_KEY: 'unaudited-ws-hash-key-0123', LLM_AUDIT_LEDGER_DIR: ledger, LLM_AUDIT_LLM_HOSTS: new URL(base).host, ...env },
    undefined,
    60_000,
    node24(),
  );
  const records: LedgerRecord[] = [];
  for await (const hit of scanRecords(new FileLedgerSource(ledger))) if (!isAuditStart(hit.record as never)) records.push(hit.record);
  return { app, records, warnings: app.stderr.split('\n').filter((line) => line.includes('otel-llm-audit: WARNING')) };
}

describe('WebSocket handshakes to an LLM host (Node 24)', () => {
  const port = () => Number(new URL(base).port);

  it('a bare global WebSocket is recorded as unaudited; ai 7 streamTranscribe is an audited call, not reported', async () => {
    const { app, records, warnings } = await run({});
    expect(app.code, app.stderr).toBe(0);
    expect(connections).toEqual(['/v1/realtime?intent=transcription', '/v1/realtime?model=gpt-realtime']);
    expect(JSON.parse(app.stdout)[1]).toBe('ok');
    expect(records).toHaveLength(2);
    // The server closes without a transcript: the stream's record says what arrived (nothing).
    expect(records[0]).toMatchObject({ action: 'experimental_streamTranscribe', operation: 'transcription', status: 'success' });
    expect(records[0]!.http).toBeUndefined();
    expect(records[1]).toMatchObject({ status: 'unaudited', error_type: null, http: { method: 'GET', host: '127.0.0.1', port: port(), path: '/v1/realtime' } });
    expect(warnings).toHaveLength(1);
  }, 90_000);

  it('the bare socket is refused under LLM_AUDIT_ON_FAILURE=block before the server sees a connection; the audited transcription goes through', async () => {
    const { app, records, warnings } = await run({ LLM_AUDIT_ON_FAILURE: 'block' });
    expect(app.code, app.stderr).toBe(0);
    expect(JSON.parse(app.stdout)[1]).not.toBe('ok');
    expect(connections).toEqual(['/v1/realtime?intent=transcription']);
    expect(records.map((r) => [r.action, r.status, r.error_type, r.http?.path])).toEqual([
      ['experimental_streamTranscribe', 'success', null, undefined],
      [null, 'unaudited', 'UnauditedLlmRequestError', '/v1/realtime'],
    ]);
    expect(warnings[0]).toContain('refused (LLM_AUDIT_ON_FAILURE=block)');
  }, 90_000);
});
