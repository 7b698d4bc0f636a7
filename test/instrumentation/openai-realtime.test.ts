import { beforeAll, afterEach, expect, it } from 'vitest';
import { startUnauditedWatcher } from '../../src/audit/unaudited';
import type { FakeProvider } from '../support/fake-provider';
import { eventually, setupAudit, useFakeProvider } from '../support/harness';

// OpenAI Realtime sessions (a WebSocket, openai/realtime/ws) are not audited call by call: the
// audit trail shows each session opened as unaudited traffic (docs/attributes.md), with the
// unaudited-request watcher that `register` starts. The WebSocket handshake is an HTTP request the
// watcher sees before it is sent; the fake answers it with a 404, the session fails, the record
// stays.

const audit = setupAudit();
const { OpenAI } = audit.load('openai');
const { OpenAIRealtimeWS } = audit.load('openai/realtime/ws');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
let stop: (() => void) | undefined;
beforeAll(() => {
  fake = fakeProvider();
});
afterEach(() => stop?.());

it('a Realtime session is recorded as unaudited traffic: host, path, method, never the key or the query', async () => {
  const { host, hostname } = new URL(fake.url);
  stop = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: host }, warn: () => undefined });
  const client = new OpenAI({ apiKey: 'sk-realtime-secret-key', baseURL: fake.openaiBaseURL });
  const session = new OpenAIRealtimeWS({ model: 'gpt-realtime' }, client);
  const failed = new Promise((resolve) => session.on('error', resolve));
  await failed;
  const [record] = await eventually(() => {
    const spans = audit.spans().filter((s) => s.attributes['llm_audit.status'] === 'unaudited');
    return spans.length > 0 ? spans : undefined;
  });
  expect(record!.attributes['url.path']).toBe('/v1/realtime');
  expect(record!.attributes['http.request.method']).toBe('GET');
  expect(record!.attributes['server.address']).toBe(hostname);
  const exported = JSON.stringify(audit.spans().map((s) => [s.attributes, s.events, s.status]));
  expect(exported).not.toContain('sk-realtime-secret-key');
  expect(exported).not.toContain('model=gpt-realtime');
});
