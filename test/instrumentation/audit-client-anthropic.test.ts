import { beforeAll, describe, expect, it } from 'vitest';
import { auditClient } from '../../src';
import { publishAuditServices } from '../../src/core/audit-client';
import type { FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// auditClient on an Anthropic client whose module is not patched (a bundle that inlined the SDK):
// every audited operation of the patch is audited on it, not only `messages.create`.

const audit = setupAudit({ providers: ['openai'] });
const { Anthropic } = audit.load('@anthropic-ai/sdk');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
  publishAuditServices(() => (audit.instrumentation.isEnabled() ? (audit.instrumentation as any).services : undefined));
});

describe('auditClient(new Anthropic(...))', () => {
  it('beta.messages, countTokens, batches.create and batches.results each leave their records; before, none', async () => {
    const request = { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };
    const run = async (client: any) => {
      await client.beta.messages.create(request);
      await client.messages.countTokens({ model: request.model, messages: request.messages });
      const batch = await client.messages.batches.create({ requests: [{ custom_id: 'one', params: request }] });
      for await (const _line of await client.messages.batches.results(batch.id));
    };
    await run(new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 }));
    expect(audit.auditSpans()).toHaveLength(0);
    await run(auditClient(new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 })));
    await audit.spansWhen(4);
    expect(audit.auditSpans().map((s) => s.attributes['llm_audit.action'])).toEqual([
      'beta.messages.create',
      'messages.countTokens',
      'messages.batches.create',
      'messages.batches.results',
    ]);
  });
});
