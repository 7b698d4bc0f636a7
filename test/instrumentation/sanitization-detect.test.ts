import { beforeAll, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// LLM_AUDIT_SANITIZE=detect (set through the environment): findings are recorded, the request is
// sent as the app wrote it.
process.env.LLM_AUDIT_SANITIZE = 'detect';
const audit = setupAudit();
delete process.env.LLM_AUDIT_SANITIZE;
const { OpenAI } = audit.load('openai');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

it('detect: the provider gets the original text, the span the findings, never the values', async () => {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
  await client.embeddings.create({ model: 'text-embedding-3-small', input: ['call +1 415 555 0100', 'server 10.1.2.3'] });
  expect(fake.requests[0].body.input).toEqual(['call +1 415 555 0100', 'server 10.1.2.3']);
  const [span] = await audit.spansWhen(1);
  expect(span.attributes['llm_audit.sanitization.mode']).toBe('detect');
  expect(span.attributes['llm_audit.sanitization.count']).toBe(2);
  const types = span.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes?.['llm_audit.sanitization.type']);
  expect(types.sort()).toEqual(['IP', 'PHONE']);
  expect(JSON.stringify([span.attributes, span.events])).not.toContain('415 555 0100');
});
