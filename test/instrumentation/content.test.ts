import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createContentMasterKey, ENVELOPE_PREFIX, contentCipherFromEnv, shredTenant } from '../../src/audit/content';
import { withAuditContext } from '../../src/context';
import { createContentHasher } from '../../src/audit/hashing';
import { recordFromSpan } from '../../src/ledger/record';
import { expectedText, type FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// LLM_AUDIT_CONTENT=encrypted with the real SDKs: the span and the ledger record carry only an
// envelope; the key holder gets back exactly what was said; shredding a tenant makes its content
// unreadable while other tenants' content still opens.

const dir = mkdtempSync(join(tmpdir(), 'content-'));
const keyPath = join(dir, 'content.key');
createContentMasterKey(keyPath, 'k1');
const env = { LLM_AUDIT_CONTENT: 'encrypted', LLM_AUDIT_CONTENT_KEY: keyPath };
Object.assign(process.env, env);
const audit = setupAudit();
for (const name of Object.keys(env)) delete process.env[name];
const reviewer = contentCipherFromEnv(env)!;
const { OpenAI } = audit.load('openai');
const { Anthropic } = audit.load('@anthropic-ai/sdk');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});
const CANARY = 'CONTENT-CANARY-81f2';
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });

describe('encrypted content capture', () => {
  it('OpenAI chat: only an envelope leaves; the reviewer opens the system prompt, input and output', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    fake.enqueue({ toolCalls: [{ name: 'lookup', arguments: `{"q":"${CANARY} tool arg"}`, id: 'call_1' }], text: `${CANARY} answer` });
    await withAuditContext({ tenantId: 'acme' }, () =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: `${CANARY} system` },
          { role: 'user', content: `${CANARY} question` },
        ],
      }),
    );
    const [span] = await audit.spansWhen(1);
    const envelope = String(span.attributes['llm_audit.content.encrypted']);
    expect(envelope.startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(JSON.stringify([span.attributes, span.events])).not.toContain(CANARY);
    const record = recordFromSpan(span)!;
    expect(record.content).toBe(envelope);
    const content = reviewer.open(envelope, { requestId: record.request_id!, tenantId: 'acme' });
    const text = JSON.stringify(content);
    for (const said of [`${CANARY} system`, `${CANARY} question`, `${CANARY} answer`, `${CANARY} tool arg`]) expect(text).toContain(said);
    expect(content.output_messages?.[0]).toMatchObject({ role: 'assistant', finish_reason: 'tool_calls' });
  });

  it('OpenAI chat: the envelope and the system prompt hash agree on what the system prompt is (system and developer messages)', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    const system = { role: 'system', content: 'You answer in French.' };
    const developer = { role: 'developer', content: [{ type: 'text', text: 'Never quote prices.' }] };
    const user = { role: 'user', content: 'Bonjour' };
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [system, user, developer] });
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hash([system, developer]));
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash([user]));
    const content = reviewer.open(String(span.attributes['llm_audit.content.encrypted']), { requestId: String(span.attributes['llm_audit.request_id']) });
    expect(content.system_instructions).toEqual([
      { type: 'text', content: 'You answer in French.' },
      { type: 'text', content: 'Never quote prices.' },
    ]);
    expect(content.input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'Bonjour' }] }]);
  });

  it('an envelope moved to another record does not open', async () => {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
    await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 32, system: 'sys', messages: [{ role: 'user', content: 'hi' }] });
    const [span] = await audit.spansWhen(1);
    const envelope = String(span.attributes['llm_audit.content.encrypted']);
    expect(JSON.stringify(reviewer.open(envelope, { requestId: String(span.attributes['llm_audit.request_id']) }))).toContain(expectedText());
    expect(() => reviewer.open(envelope, { requestId: '00000000-0000-0000-0000-000000000000' })).toThrow(/CONTENT_TAMPERED|tampered|authenticat/i);
  });

  it('shredding one tenant makes its content unreadable; another tenant still opens', async () => {
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
    const ask = (tenantId: string) =>
      withAuditContext({ tenantId }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello from ${tenantId}` }] }));
    await ask('tenant-gone');
    await ask('tenant-kept');
    const [gone, kept] = await audit.spansWhen(2);
    shredTenant(reviewer.keystorePath, 'tenant-gone');
    const open = (span: typeof gone, tenantId: string) =>
      contentCipherFromEnv(env)!.open(String(span.attributes['llm_audit.content.encrypted']), { requestId: String(span.attributes['llm_audit.request_id']), tenantId });
    expect(() => open(gone, 'tenant-gone')).toThrow(/destroyed .* \(crypto-shredding\)/);
    expect(JSON.stringify(open(kept, 'tenant-kept'))).toContain('hello from tenant-kept');
  });
});
