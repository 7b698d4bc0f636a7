import { beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { canonicalJson } from '../../src/audit/canonical-json';
import { withAuditContext } from '../../src/context';
import { recordFromSpan } from '../../src/ledger/record';
import { DEFAULT_TEXT, expectedUsage, type FakeProvider } from '../support/fake-provider';
import { sdkVersionDir } from '../support/drivers';
import { repoRoot, setupAuditWithContent, useFakeProvider } from '../support/harness';

// Anthropic operations besides messages.create: token counting and Message Batches (create, and
// one record per result when the results are read), under `messages.` and `beta.messages.`, with
// the real SDK against the fake provider's wire format.

const { audit, reviewer } = setupAuditWithContent({ sanitize: { mode: 'redact' } });
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});

const MODEL = 'claude-haiku-4-5';
const hmac = (value: unknown) => `hmac-sha256:test:${createHmac('sha256', 'test-hash-key-0123456789').update(canonicalJson(value), 'utf8').digest('hex')}`;
const CANARY = 'ANTHROPIC-CANARY-51f0';

/** No record, attribute, event or status carries the canary in plaintext. */
function expectNoCanary(spans: readonly any[]): void {
  for (const span of spans) expect(JSON.stringify([span.attributes, span.events, span.status, recordFromSpan(span)])).not.toContain(CANARY);
}

describe.each([
  { label: '0.39', dir: sdkVersionDir('anthropic-0') },
  { label: '1.12', dir: repoRoot },
  { label: '1.17', dir: sdkVersionDir('anthropic-1-latest') },
])('@anthropic-ai/sdk $label', ({ dir }) => {
  let client: any;
  beforeAll(() => {
    const sdk = audit.load('@anthropic-ai/sdk', dir);
    client = new (sdk.Anthropic ?? sdk.default)({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
  });

  describe.each(['messages', 'beta.messages'])('%s', (resource) => {
    const api = () => (resource === 'messages' ? client.messages : client.beta.messages);

    it('countTokens: one record (count_tokens) with the hashes of what was sent, the count, cost 0, no plaintext', async () => {
      const params = { model: MODEL, system: `${CANARY} system`, messages: [{ role: 'user', content: `${CANARY} how long? mail me at jane@example.com` }] };
      const answer = await withAuditContext({ userId: 'u1', tenantId: 'acme' }, () => api().countTokens(params));
      expect(answer).toEqual({ input_tokens: expectedUsage().input });
      const sent = fake.requests.at(-1)!;
      expect(sent.path).toBe('/v1/messages/count_tokens');
      // Redaction applies: the e-mail left the process redacted.
      expect(sent.body.messages[0].content).toBe(`${CANARY} how long? mail me at [EMAIL]`);
      const [span] = await audit.spansWhen(1);
      expect(span!.attributes).toMatchObject({
        'gen_ai.operation.name': 'count_tokens',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': MODEL,
        'llm_audit.action': `${resource}.countTokens`,
        'llm_audit.status': 'success',
        'llm_audit.token_count': expectedUsage().input,
        'llm_audit.cost.status': 'priced',
        'gen_ai.usage.cost.amount': 0,
        'llm_audit.system_prompt.hash': hmac(params.system),
        'llm_audit.input.hash': hmac(sent.body.messages),
        'llm_audit.sanitization.count': 1,
        'user.id': 'u1',
      });
      expect(span!.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
      expectNoCanary([span]);
      const content = reviewer.open(String(span!.attributes['llm_audit.content.encrypted']), { requestId: String(span!.attributes['llm_audit.request_id']), tenantId: 'acme' });
      expect(content.system_instructions).toEqual([{ type: 'text', content: `${CANARY} system` }]);
    });

    it('countTokens that fails: a record with the error, the prompt scrubbed from its message', async () => {
      fake.enqueue({ status: 400, echoRequest: 'full' });
      const failure = await api()
        .countTokens({ model: MODEL, messages: [{ role: 'user', content: `${CANARY} q` }] })
        .catch((e: unknown) => e);
      expect(String((failure as Error).message)).toContain(CANARY);
      const [span] = await audit.spansWhen(1);
      expect(span!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'http.response.status_code': 400, 'llm_audit.action': `${resource}.countTokens` });
      expectNoCanary([span]);
    });

    it('batches: one record for the create with each request hashed as if sent alone; one record per result read, with usage and explicit unpriced', async () => {
      const requests = [
        { custom_id: 'first', params: { model: MODEL, max_tokens: 64, system: `${CANARY} sys`, messages: [{ role: 'user', content: `${CANARY} one` }] } },
        { custom_id: 'second', params: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${CANARY} two` }] } },
        { custom_id: 'third', params: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${CANARY} three` }] } },
        { custom_id: 'fourth', params: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `${CANARY} four` }] } },
      ];
      fake.enqueue({ text: `${CANARY} answer`, batchResults: ['succeeded', 'errored', 'expired', 'succeeded'] });
      const batch = await withAuditContext({ tenantId: 'acme' }, () => api().batches.create({ requests }));
      expect(batch.type).toBe('message_batch');
      const [created] = await audit.spansWhen(1);
      expect(created!.attributes).toMatchObject({
        'gen_ai.operation.name': 'create_batch',
        'gen_ai.request.model': MODEL,
        'gen_ai.response.id': batch.id,
        'llm_audit.action': `${resource}.batches.create`,
        'llm_audit.batch.id': batch.id,
        'llm_audit.batch.request.custom_ids': ['first', 'second', 'third', 'fourth'],
        'llm_audit.batch.request.input_hashes': requests.map((r) => hmac(r.params.messages)),
        'llm_audit.batch.request.system_prompt_hashes': [hmac(requests[0]!.params.system), '', '', ''],
        'llm_audit.input.hash': hmac(requests),
        'llm_audit.cost.status': 'priced',
        'gen_ai.usage.cost.amount': 0,
      });
      const content = reviewer.open(String(created!.attributes['llm_audit.content.encrypted']), { requestId: String(created!.attributes['llm_audit.request_id']), tenantId: 'acme' });
      expect(content.input_messages.map((m: any) => m.name)).toEqual(['first', 'second', 'third', 'fourth']);
      audit.reset();

      const results = await api().batches.results(batch.id);
      const lines: any[] = [];
      for await (const line of results) lines.push(line);
      // The application reads the SDK's own results, unchanged.
      expect(lines.map((l) => [l.custom_id, l.result.type])).toEqual([
        ['first', 'succeeded'],
        ['second', 'errored'],
        ['third', 'expired'],
        ['fourth', 'succeeded'],
      ]);
      // Ours only: SDK 1.12 adds its own span for the results download (not a model call).
      await audit.spansWhen(4);
      const spans = audit.auditSpans();
      expect(spans).toHaveLength(4);
      const usage = expectedUsage();
      spans.forEach((span, i) => {
        const line = lines[i];
        expect(span.attributes).toMatchObject({
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'anthropic',
          'llm_audit.action': `${resource}.batches.results`,
          'llm_audit.batch.id': batch.id,
          'llm_audit.batch.custom_id': line.custom_id,
          'llm_audit.batch.result_type': line.result.type,
          'llm_audit.cost.status': 'unpriced',
          // Linked to its request: the batch was created in this process.
          'llm_audit.batch.link': 'request',
          'gen_ai.request.model': MODEL,
          'llm_audit.input.hash': hmac(requests[i]!.params.messages),
        });
        if (i === 0) expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hmac(requests[0]!.params.system));
        if (line.result.type === 'succeeded') {
          expect(span.attributes).toMatchObject({
            'llm_audit.status': 'success',
            'gen_ai.response.id': line.result.message.id,
            'gen_ai.response.model': MODEL,
            'gen_ai.usage.input_tokens': usage.input,
            'gen_ai.usage.output_tokens': usage.output,
            'llm_audit.output.hash': hmac([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} answer` }], finish_reason: 'end_turn' }]),
          });
        } else {
          expect(span.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': line.result.type === 'errored' ? 'invalid_request_error' : line.result.type });
        }
      });
      expectNoCanary([created, ...spans]);
      expect(String(spans[0]!.attributes['llm_audit.output.hash'])).not.toContain(DEFAULT_TEXT);
    });

    it('batches: retrieve, list, cancel and delete are light records (ids and status, no content, cost 0)', async () => {
      const params = { requests: [{ custom_id: 'a', params: { model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: `${CANARY} x` }] } }] };
      const batch = await api().batches.create(params);
      await audit.spansWhen(1);
      audit.reset();
      expect((await api().batches.retrieve(batch.id)).processing_status).toBe('ended');
      const page = await api().batches.list({ limit: 1 });
      expect(page.data[0].id).toBe(batch.id);
      expect((await api().batches.cancel(batch.id)).processing_status).toBe('canceling');
      expect(await api().batches.delete(batch.id)).toEqual({ id: batch.id, type: 'message_batch_deleted' });
      await expect(api().batches.retrieve(batch.id)).rejects.toThrow();
      await audit.spansWhen(5);
      const spans = audit.auditSpans();
      expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.status']])).toEqual([
        [`${resource}.batches.retrieve`, 'retrieve_batch', 'success'],
        [`${resource}.batches.list`, 'list_batches', 'success'],
        [`${resource}.batches.cancel`, 'cancel_batch', 'success'],
        [`${resource}.batches.delete`, 'delete_batch', 'success'],
        [`${resource}.batches.retrieve`, 'retrieve_batch', 'error'],
      ]);
      expect(spans[0]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'llm_audit.batch.status': 'ended', 'gen_ai.usage.cost.amount': 0 });
      expect(spans[1]!.attributes).toMatchObject({ 'llm_audit.batch.listed_count': 1 });
      expect(spans[2]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'llm_audit.batch.status': 'canceling' });
      expect(spans[3]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id });
      expect(spans[4]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'http.response.status_code': 404 });
      for (const span of spans) expect(span.attributes['llm_audit.input.hash']).toBeUndefined();
      expectNoCanary(spans);
    });

    it('batches: a create that fails and a results() that fails each leave a record', async () => {
      fake.enqueue({ status: 529, errorType: 'overloaded_error' });
      const params = { requests: [{ custom_id: 'a', params: { model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] } }] };
      await expect(api().batches.create(params)).rejects.toThrow();
      await expect(api().batches.results('msgbatch_unknown')).rejects.toThrow();
      await audit.spansWhen(2);
      const spans = audit.auditSpans();
      expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['llm_audit.status']])).toEqual([
        [`${resource}.batches.create`, 'error'],
        [`${resource}.batches.results`, 'error'],
      ]);
      expect(spans[1]!.attributes).toMatchObject({ 'llm_audit.batch.id': 'msgbatch_unknown', 'http.response.status_code': 404 });
    });
  });
});
