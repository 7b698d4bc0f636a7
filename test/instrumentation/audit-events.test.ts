import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { canonicalJson } from '../../src/audit/canonical-json';
import { clientAddressModeFromEnv, recordedClientAddress } from '../../src/audit/client-address';
import { createContentHasher } from '../../src/audit/hashing';
import { setOnFailurePolicy } from '../../src/audit/failure-policy';
import { recordAuditEvent } from '../../src/audit-events';
import { withAuditContext } from '../../src/context';
import { blockRequest, recordGuardrail } from '../../src/guardrails';
import { isCallRecord, recordFromSpan } from '../../src/ledger/record';
import * as main from '../../src/index';
import { setupAudit, useFakeProvider } from '../support/harness';

// Issue 23 (the end user's client, application audit events) and issue 24 (the record holds the
// guardrail reasons and the sanitization kinds), with the real OpenAI SDK against the fake provider.

const hooks: { before?: (request: unknown) => void } = {};
const audit = setupAudit({ sanitize: { mode: 'redact' }, hooks: { beforeRequest: (request) => hooks.before?.(request) } });
const { OpenAI } = audit.load('openai');
const fakeProvider = useFakeProvider({
  reset() {
    audit.reset();
    hooks.before = undefined;
  },
});
let openai: any;
beforeAll(() => {
  openai = new OpenAI({ apiKey: 'sk-test', baseURL: fakeProvider().openaiBaseURL, maxRetries: 0 });
});
afterEach(() => setOnFailurePolicy('continue'));

const ask = (content: string) => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
const records = () => audit.spans().map((span) => recordFromSpan(span)!);

function captureDiag(): string[] {
  const logged: string[] = [];
  const collect = (message: string, ...args: unknown[]) => logged.push([message, ...args.map(String)].join(' '));
  diag.setLogger({ error: collect, warn: collect, info: collect, debug: () => undefined, verbose: () => undefined }, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
  return logged;
}

describe('the end user client', () => {
  it('client.address (truncated by default) and user_agent.original reach the span and the record', async () => {
    await withAuditContext({ userId: 'u-1', clientAddress: '203.0.113.77', userAgent: 'Mozilla/5.0 (X11) Test/1.0' }, () => ask('hello'));
    await withAuditContext({ userId: 'u-2', clientAddress: '2001:db8:85a3:1234::8a2e:370:7334' }, () => ask('hello'));
    const [v4, v6] = audit.spans();
    expect(v4!.attributes['client.address']).toBe('203.0.113.0');
    expect(v4!.attributes['user_agent.original']).toBe('Mozilla/5.0 (X11) Test/1.0');
    expect(recordFromSpan(v4!)).toMatchObject({ client_address: '203.0.113.0', user_agent: 'Mozilla/5.0 (X11) Test/1.0', user_id: 'u-1' });
    expect(recordFromSpan(v6!)).toMatchObject({ client_address: '2001:db8:85a3::', user_agent: null });
  });

  it('each LLM_AUDIT_CLIENT_ADDRESS mode, and a clear error for a wrong one', () => {
    const hasher = createContentHasher({ key: 'client-address-test-key-0123', keyId: 'k1' });
    expect(recordedClientAddress('198.51.100.23', 'full', hasher)).toBe('198.51.100.23');
    expect(recordedClientAddress('198.51.100.23', 'truncated', hasher)).toBe('198.51.100.0');
    expect(recordedClientAddress('::ffff:198.51.100.23', 'truncated', hasher)).toBe('198.51.100.0');
    expect(recordedClientAddress('2001:db8::1', 'truncated', hasher)).toBe('2001:db8:0::');
    expect(recordedClientAddress('fe80::1%eth0', 'truncated', hasher)).toBe('fe80:0:0::');
    const hashed = recordedClientAddress('198.51.100.23', 'hashed', hasher)!;
    expect(hashed).toMatch(/^hmac-sha256:k1:[0-9a-f]{64}$/);
    expect(recordedClientAddress('198.51.100.23', 'hashed', hasher)).toBe(hashed);
    // Not an IP: it cannot be truncated, so it is hashed rather than kept whole.
    expect(recordedClientAddress('gateway.internal', 'truncated', hasher)).toMatch(/^hmac-sha256:k1:/);
    expect(recordedClientAddress('198.51.100.23', 'off', hasher)).toBeUndefined();
    expect(clientAddressModeFromEnv({})).toBe('truncated');
    expect(clientAddressModeFromEnv({ LLM_AUDIT_CLIENT_ADDRESS: ' Hashed ' })).toBe('hashed');
    expect(() => clientAddressModeFromEnv({ LLM_AUDIT_CLIENT_ADDRESS: 'anonymous' })).toThrow(
      'LLM_AUDIT_CLIENT_ADDRESS must be one of full, truncated, hashed, off; got "anonymous"',
    );
  });
});

describe('guardrail decisions and sanitization findings in the record (issue 24)', () => {
  it('a block: rule, policy id, action, severity and the reason without the quoted prompt; the block reason of its own', async () => {
    hooks.before = () => blockRequest('prompt mentions CANARY-gr-41 project', { name: 'topic-policy', policyId: 'pol-7', severity: 'high' });
    await ask('tell me about CANARY-gr-41 project plans').catch(() => undefined);
    const [record] = records();
    expect(record!.status).toBe('blocked');
    expect(record!.guardrails).toEqual([
      { name: 'topic-policy', action: 'blocked', policy_id: 'pol-7', severity: 'high', reason: 'prompt mentions[REDACTED:request]', time: expect.any(String) },
    ]);
    expect(record!.block_reason).toBe('prompt mentions[REDACTED:request]');
    expect(canonicalJson(record)).not.toContain('CANARY-gr-41');
  });

  it('sanitization: the mode and the count per kind, not only a total', async () => {
    await ask('mail ann@example.com and bob@example.org, card 4111 1111 1111 1111');
    const [record] = records();
    expect(record!.sanitization_count).toBe(3);
    expect(record!.sanitization).toEqual({ mode: 'redact', kinds: { EMAIL: 2, CARD: 1 } });
  });

  it('both models are kept (the requested and the answering one)', async () => {
    await ask('hello');
    expect(records()[0]!.model).toEqual({ request: 'gpt-4o-mini', response: expect.stringMatching(/^gpt-4o-mini/) });
  });
});

describe('recordAuditEvent', () => {
  it('is exported from the main entry', () => {
    expect(main.recordAuditEvent).toBe(recordAuditEvent);
    expect(main.AUDIT_EVENT_TYPES).toContain('privacy.data_subject_request');
  });

  it('writes one audit record: the type as action, the audit context, reason masked and hashed, credentials never recorded', async () => {
    withAuditContext({ userId: 'u-9', sessionId: 's-1', tenantId: 'acme', clientAddress: '192.0.2.55', userAgent: 'curl/8' }, () => {
      recordAuditEvent({
        type: 'auth.login',
        target: 'account:u-9',
        reason: 'second factor by SMS to jane.roe@example.com',
        details: { method: 'password+otp', password: 'hunter2-correct-horse', note: 'key sk-proj-abcdefghijklmnopqrstuvwx', attempts: 1, remembered: true },
      });
    });
    const spans = audit.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]!.attributes['llm_audit.event.type']).toBe('auth.login');
    const record = recordFromSpan(spans[0]!)!;
    expect(record).toMatchObject({
      action: 'auth.login',
      status: 'success',
      user_id: 'u-9',
      session_id: 's-1',
      tenant_id: 'acme',
      client_address: '192.0.2.0',
      user_agent: 'curl/8',
      operation: null,
      input_hash: null,
    });
    expect(record.event).toEqual({
      type: 'auth.login',
      outcome: 'success',
      target: 'account:u-9',
      reason: 'second factor by SMS to [EMAIL]',
      reason_hash: expect.stringMatching(/^hmac-sha256:test:[0-9a-f]{64}$/),
      details: { method: 'password+otp', password: '[REDACTED]', note: 'key sk-proj-[REDACTED]', attempts: 1, remembered: true },
    });
    expect(canonicalJson(record)).not.toMatch(/hunter2|jane\.roe|abcdefghijklmnop/);
    // Not an LLM call: the call reports leave it out.
    expect(isCallRecord(record)).toBe(false);
  });

  it('explicit user and outcome win over the context; auth.failed is a failure by default; every documented type and app.* are taken', () => {
    withAuditContext({ userId: 'ctx-user' }, () => {
      recordAuditEvent({ type: 'auth.failed', userId: 'someone-else' });
      recordAuditEvent({ type: 'admin.permission_change', outcome: 'unknown', target: 'role:auditor' });
    });
    for (const type of ['auth.logout', 'auth.token_issued', 'admin.config_change', 'privacy.consent', 'privacy.data_subject_request', 'app.report_exported'] as const) {
      recordAuditEvent({ type });
    }
    const [failed, permission, ...rest] = records();
    expect(failed).toMatchObject({ user_id: 'someone-else', status: 'error', event: { outcome: 'failure' } });
    expect(permission).toMatchObject({ user_id: 'ctx-user', status: null, event: { outcome: 'unknown', target: 'role:auditor' } });
    expect(rest.map((r) => r.action)).toEqual(['auth.logout', 'auth.token_issued', 'admin.config_change', 'privacy.consent', 'privacy.data_subject_request', 'app.report_exported']);
  });

  it('a wrong event is not recorded and is said loudly, never thrown into the app; under fail-closed it throws', () => {
    const logged = captureDiag();
    expect(() => recordAuditEvent({ type: 'auth.guess' as never })).not.toThrow();
    expect(() => recordAuditEvent({ type: 'audit.start' as never })).not.toThrow();
    expect(() => recordAuditEvent({ type: 'app.ok', outcome: 'maybe' as never })).not.toThrow();
    expect(audit.spans()).toHaveLength(0);
    expect(logged.join('\n')).toMatch(/recordAuditEvent: unknown event type "auth.guess": use one of auth.login, .*app.<name>.*NOT recorded/);
    expect(logged.join('\n')).toMatch(/unknown event type "audit.start"/);
    expect(logged.join('\n')).toMatch(/outcome must be one of success, failure, unknown, got "maybe"/);
    setOnFailurePolicy('block');
    expect(() => recordAuditEvent({ type: 'auth.guess' as never })).toThrow(/recordAuditEvent: unknown event type "auth.guess"/);
    recordAuditEvent({ type: 'auth.logout' });
    expect(audit.spans()).toHaveLength(1);
  });

  it('a standalone guardrail decision is still a call-less audit record, not an event', () => {
    recordGuardrail({ name: 'rate', action: 'flagged' });
    const [record] = records();
    expect(record!.event).toBeUndefined();
  });
});
