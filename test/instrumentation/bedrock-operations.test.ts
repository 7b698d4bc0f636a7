import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContentHasher } from '../../src/audit/hashing';
import { startUnauditedWatcher } from '../../src/audit/unaudited';
import { withAuditContext } from '../../src/context';
import { recordFromSpan } from '../../src/ledger/record';
import * as recordings from '../support/bedrock-recordings';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock';
import { setupAuditWithContent } from '../support/harness';

// Bedrock Runtime commands besides Converse and InvokeModel: CountTokens (the request of a
// Converse or InvokeModel call, sized), ApplyGuardrail and InvokeGuardrailChecks (content checked
// by a guardrail), StartAsyncInvoke (content sent to a model that writes its output to S3) and the
// content-free polls GetAsyncInvoke / ListAsyncInvokes. Real @aws-sdk/client-bedrock-runtime
// against the fake Bedrock; redaction and encrypted content on.

const { audit, reviewer } = setupAuditWithContent({ sanitize: { mode: 'redact' } });
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const { BedrockRuntimeClient, ApplyGuardrailCommand, CountTokensCommand, InvokeGuardrailChecksCommand, StartAsyncInvokeCommand, GetAsyncInvokeCommand, ListAsyncInvokesCommand } =
  audit.load('@aws-sdk/client-bedrock-runtime');

const CLAUDE = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const CANARY = 'CANARY-bedrock-ops-7c21';
const EMAIL = 'jane.doe@example.com';
const GUARDRAIL = 'gr-abc123';

let fake: FakeBedrock;
let client: any;
beforeAll(async () => {
  fake = await startFakeBedrock();
  client = new BedrockRuntimeClient(fake.clientConfig);
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
});
beforeEach(() => {
  audit.reset();
  fake.reset();
});

function expectNoCanary(spans: readonly ReadableSpan[]): void {
  for (const span of spans) expect(JSON.stringify([span.attributes, span.events, span.status, recordFromSpan(span)])).not.toContain(CANARY);
}

const open = (span: ReadableSpan, tenantId?: string) =>
  reviewer.open(String(span.attributes['llm_audit.content.encrypted']), { requestId: String(span.attributes['llm_audit.request_id']), tenantId });

describe('CountTokens', () => {
  it('a Converse-shaped request: one count_tokens record, hashed and redacted as Converse, the count, cost 0', async () => {
    const converse = { system: [{ text: `${CANARY} system` }], messages: [{ role: 'user', content: [{ text: `${CANARY} write to ${EMAIL}` }] }] };
    const output = await withAuditContext({ tenantId: 'acme' }, () => client.send(new CountTokensCommand({ modelId: CLAUDE, input: { converse } })));
    expect(output.inputTokens).toBe(recordings.countTokens.inputTokens);
    // The e-mail left the process redacted.
    expect(fake.requests[0]!.body.input.converse.messages[0].content[0].text).toBe(`${CANARY} write to [EMAIL]`);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'count_tokens',
      'gen_ai.provider.name': 'aws.bedrock',
      'gen_ai.request.model': CLAUDE,
      'llm_audit.action': 'CountTokens',
      'llm_audit.status': 'success',
      'llm_audit.token_count': recordings.countTokens.inputTokens,
      'llm_audit.cost.status': 'priced',
      'gen_ai.usage.cost.amount': 0,
      'llm_audit.sanitization.count': 1,
      'llm_audit.system_prompt.hash': hasher.hashRepeated([{ type: 'text', content: `${CANARY} system` }]),
      'llm_audit.input.hash': hasher.hashMessages([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} write to [EMAIL]` }] }]),
    });
    expect(span!.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
    expect(open(span!, 'acme').input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} write to [EMAIL]` }] }]);
    expectNoCanary([span!]);
  });

  it('an InvokeModel-shaped request: the body read by the model family (Claude), redacted in the bytes sent', async () => {
    const body = new TextEncoder().encode(JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 10, messages: [{ role: 'user', content: `${CANARY} ${EMAIL}` }] }));
    await client.send(new CountTokensCommand({ modelId: CLAUDE, input: { invokeModel: { body } } }));
    const sent = JSON.parse(Buffer.from(fake.requests[0]!.body.input.invokeModel.body, 'base64').toString('utf8'));
    expect(sent.messages[0].content).toBe(`${CANARY} [EMAIL]`);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.action': 'CountTokens', 'llm_audit.sanitization.count': 1 });
    expect(open(span!).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} [EMAIL]` }] }]);
    expectNoCanary([span!]);
  });

  it('a failed CountTokens is a record with the error, the prompt scrubbed', async () => {
    fake.enqueue({ status: 400, errorMessage: (body) => `bad request: ${body}` });
    const error = await client.send(new CountTokensCommand({ modelId: CLAUDE, input: { converse: { messages: [{ role: 'user', content: [{ text: `${CANARY} q` }] }] } } })).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain(CANARY);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'error.type': 'ValidationException' });
    expectNoCanary([span!]);
  });
});

describe('ApplyGuardrail', () => {
  const command = (text: string, source = 'INPUT') =>
    new ApplyGuardrailCommand({ guardrailIdentifier: GUARDRAIL, guardrailVersion: '1', source, content: [{ text: { text } }] });

  it('nothing found: one record, content hashed and sealed, one allowed event with the guardrail id', async () => {
    const output = await client.send(command(`${CANARY} is this fine?`));
    expect(output.action).toBe('NONE');
    expect(fake.requests[0]!.path).toBe(`/guardrail/${GUARDRAIL}/version/1/apply`);
    const [span] = await audit.spansWhen(1);
    expect(span!.name).toBe('apply_guardrail');
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'apply_guardrail',
      'gen_ai.provider.name': 'aws.bedrock',
      'llm_audit.action': 'ApplyGuardrail',
      'aws.bedrock.guardrail.id': GUARDRAIL,
      'gen_ai.response.finish_reasons': ['NONE'],
      'llm_audit.status': 'success',
      'llm_audit.cost.status': 'unpriced',
      'llm_audit.input.hash': hasher.hashMessages([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} is this fine?` }] }]),
    });
    expect(span!.attributes['gen_ai.request.model']).toBeUndefined();
    const events = span!.events.filter((e) => e.name === 'llm_audit.guardrail');
    expect(events.map((e) => e.attributes)).toEqual([
      expect.objectContaining({ 'llm_audit.guardrail.name': 'aws.bedrock.guardrail', 'llm_audit.guardrail.action': 'allowed', 'aws.bedrock.guardrail.id': GUARDRAIL, 'llm_audit.guardrail.stage': 'input' }),
    ]);
    expect(open(span!).input_messages).toEqual([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} is this fine?` }] }]);
    expectNoCanary([span!]);
  });

  it('intervened on an answer (OUTPUT): one event per finding, the returned text as output, never the matched text', async () => {
    const intervened = structuredClone(recordings.applyGuardrailIntervened);
    intervened.assessments[0]!.sensitiveInformationPolicy!.piiEntities[0]!.match = `${CANARY}@example.com`;
    fake.enqueue({ json: intervened });
    const output = await client.send(command(`${CANARY} buy this stock, mail ${EMAIL}`, 'OUTPUT'));
    expect(output.action).toBe('GUARDRAIL_INTERVENED');
    expect(fake.requests[0]!.body.content[0].text.text).toBe(`${CANARY} buy this stock, mail [EMAIL]`);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.response.finish_reasons': ['GUARDRAIL_INTERVENED'],
      'llm_audit.output.hash': hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: 'Sorry, I cannot help with investment advice.' }] }]),
    });
    const events = span!.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes);
    expect(events).toEqual([
      expect.objectContaining({ 'llm_audit.guardrail.action': 'blocked', 'llm_audit.guardrail.category': 'topicPolicy.Investment advice', 'aws.bedrock.guardrail.id': GUARDRAIL, 'llm_audit.guardrail.stage': 'output' }),
      expect.objectContaining({ 'llm_audit.guardrail.action': 'modified', 'llm_audit.guardrail.category': 'sensitiveInformationPolicy.EMAIL', 'llm_audit.guardrail.stage': 'output' }),
    ]);
    expect(open(span!).input_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `${CANARY} buy this stock, mail [EMAIL]` }] }]);
    expectNoCanary([span!]);
  });

  it('a failed ApplyGuardrail is a record with the error', async () => {
    fake.enqueue({ status: 404, errorMessage: 'The guardrail does not exist.' });
    await expect(client.send(command('x'))).rejects.toThrow('The guardrail does not exist.');
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.action': 'ApplyGuardrail', 'llm_audit.status': 'error', 'error.type': 'ResourceNotFoundException', 'aws.bedrock.guardrail.id': GUARDRAIL });
  });
});

describe('StartAsyncInvoke', () => {
  const NOVA_REEL = 'amazon.nova-reel-v1:1';
  const IMAGE = Buffer.from('\x89PNG first frame').toString('base64');
  const modelInput = () => ({
    taskType: 'TEXT_VIDEO',
    textToVideoParams: { text: `${CANARY} a drone shot over the sea, credits to ${EMAIL}`, images: [{ format: 'png', source: { bytes: IMAGE } }] },
    videoGenerationConfig: { durationSeconds: 6, fps: 24, dimension: '1280x720', seed: 7 },
  });
  const start = () =>
    new StartAsyncInvokeCommand({ modelId: NOVA_REEL, modelInput: modelInput(), outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://acme-videos/out' } } });

  it('one start_async_invoke record: modelInput redacted, hashed and sealed, the invocation ARN and output location, unpriced', async () => {
    const output = await withAuditContext({ tenantId: 'acme' }, () => client.send(start()));
    expect(output.invocationArn).toBe(recordings.asyncInvokeArn);
    const sent = fake.requests[0]!;
    expect([sent.method, sent.path]).toEqual(['POST', '/async-invoke']);
    // The e-mail left the process redacted; the rest of the model's JSON as the app wrote it.
    const redacted = { ...modelInput(), textToVideoParams: { ...modelInput().textToVideoParams, text: `${CANARY} a drone shot over the sea, credits to [EMAIL]` } };
    expect(sent.body.modelInput).toEqual(redacted);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'start_async_invoke',
      'gen_ai.provider.name': 'aws.bedrock',
      'gen_ai.request.model': NOVA_REEL,
      'llm_audit.action': 'StartAsyncInvoke',
      'llm_audit.status': 'success',
      'llm_audit.sanitization.count': 1,
      'llm_audit.cost.status': 'unpriced',
      'aws.bedrock.async_invoke.arn': recordings.asyncInvokeArn,
      'aws.bedrock.async_invoke.output_s3_uri': 's3://acme-videos/out',
      'llm_audit.input.hash': hasher.hashMessages([{ role: 'user', parts: [{ type: 'unknown', value: redacted }] }]),
    });
    expect(span!.attributes['llm_audit.output.hash']).toBeUndefined();
    expect(open(span!, 'acme').input_messages).toEqual([{ role: 'user', parts: [{ type: 'unknown', value: redacted }] }]);
    expectNoCanary([span!]);
  });

  it('a refused StartAsyncInvoke is a record with the error, the prompt scrubbed from its message', async () => {
    fake.enqueue({ status: 400, errorMessage: (body) => `invalid modelInput: ${body}` });
    const error = await client.send(start()).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain(CANARY);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({ 'llm_audit.action': 'StartAsyncInvoke', 'llm_audit.status': 'error', 'error.type': 'ValidationException' });
    expectNoCanary([span!]);
  });

  it('GetAsyncInvoke and ListAsyncInvokes poll without a record, and the unaudited-request watcher (block mode, HTTP/1.1) lets them through', async () => {
    // The SDK's HTTP/1.1 handler (node:http), which the watcher sees; the client's own copy of it.
    const { NodeHttpHandler } = createRequire(require.resolve('@aws-sdk/client-bedrock-runtime'))('@smithy/node-http-handler');
    const http1 = new BedrockRuntimeClient({ ...fake.clientConfig, requestHandler: new NodeHttpHandler() });
    const url = new URL(fake.url);
    const warnings: string[] = [];
    const stop = startUnauditedWatcher({ env: { LLM_AUDIT_LLM_HOSTS: `${url.hostname}:${url.port}`, LLM_AUDIT_ON_FAILURE: 'block' }, warn: (line) => warnings.push(line) });
    try {
      const got = await http1.send(new GetAsyncInvokeCommand({ invocationArn: recordings.asyncInvokeArn }));
      expect(got.status).toBe('Completed');
      expect(got.submitTime).toEqual(new Date(recordings.getAsyncInvoke.submitTime));
      const listed = await http1.send(new ListAsyncInvokesCommand({ statusEquals: 'InProgress' }));
      expect(listed.asyncInvokeSummaries).toHaveLength(1);
      expect(fake.requests.map((r) => [r.method, r.route])).toEqual([
        ['GET', 'get-async-invoke'],
        ['GET', 'list-async-invokes'],
      ]);
      expect(fake.requests[0]!.path).toBe(`/async-invoke/${encodeURIComponent(recordings.asyncInvokeArn)}`);
      // A content-bearing call over the same handler is audited, not refused.
      await http1.send(start());
      await audit.spansWhen(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(audit.spans().map((s) => [s.attributes['llm_audit.status'], s.attributes['llm_audit.action']])).toEqual([['success', 'StartAsyncInvoke']]);
      expect(warnings).toEqual([]);
    } finally {
      stop();
      http1.destroy();
    }
  });
});

describe('InvokeGuardrailChecks', () => {
  it('one apply_guardrail record: messages redacted and hashed (system apart), each scored entry an event, never the offsets', async () => {
    const output = await client.send(
      new InvokeGuardrailChecksCommand({
        messages: [
          { role: 'system', content: [{ text: `${CANARY} you are a support bot` }] },
          { role: 'user', content: [{ text: `${CANARY} mail me at ${EMAIL}, idiot` }] },
        ],
        checks: { contentFilter: { categories: [{ category: 'VIOLENCE' }, { category: 'INSULTS' }] }, promptAttack: { categories: [{ category: 'JAILBREAK' }] }, sensitiveInformation: { entities: [{ type: 'EMAIL' }] } },
      }),
    );
    expect(output.results.contentFilter.results).toHaveLength(2);
    const sent = fake.requests[0]!;
    expect([sent.method, sent.path]).toEqual(['POST', '/guardrail-checks/invoke']);
    expect(sent.body.messages[1].content[0].text).toBe(`${CANARY} mail me at [EMAIL], idiot`);
    const [span] = await audit.spansWhen(1);
    expect(span!.attributes).toMatchObject({
      'gen_ai.operation.name': 'apply_guardrail',
      'llm_audit.action': 'InvokeGuardrailChecks',
      'llm_audit.status': 'success',
      'llm_audit.cost.status': 'unpriced',
      'llm_audit.system_prompt.hash': hasher.hashRepeated([{ type: 'text', content: `${CANARY} you are a support bot` }]),
      'llm_audit.input.hash': hasher.hashMessages([{ role: 'user', parts: [{ type: 'text', content: `${CANARY} mail me at [EMAIL], idiot` }] }]),
    });
    const events = span!.events.filter((e) => e.name === 'llm_audit.guardrail').map((e) => e.attributes);
    expect(events).toEqual([
      expect.objectContaining({ 'llm_audit.guardrail.name': 'aws.bedrock.guardrail_checks', 'llm_audit.guardrail.action': 'allowed', 'llm_audit.guardrail.category': 'contentFilter.VIOLENCE', 'llm_audit.guardrail.score': 0 }),
      expect.objectContaining({ 'llm_audit.guardrail.action': 'flagged', 'llm_audit.guardrail.category': 'contentFilter.INSULTS', 'llm_audit.guardrail.score': 0.72 }),
      expect.objectContaining({ 'llm_audit.guardrail.action': 'allowed', 'llm_audit.guardrail.category': 'promptAttack.JAILBREAK' }),
      expect.objectContaining({ 'llm_audit.guardrail.action': 'flagged', 'llm_audit.guardrail.category': 'sensitiveInformation.EMAIL', 'llm_audit.guardrail.score': 0.99 }),
    ]);
    expect(open(span!).system_instructions).toEqual([{ type: 'text', content: `${CANARY} you are a support bot` }]);
    expectNoCanary([span!]);
  });
});
