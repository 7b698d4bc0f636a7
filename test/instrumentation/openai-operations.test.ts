import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createContentHasher } from '../../src/audit/hashing';
import { DEFAULT_TEXT, expectedUsage, fakeImage, MODERATION_TRIGGER, SPEECH_AUDIO, TRANSCRIPT_TEXT, type FakeProvider } from '../support/fake-provider';
import { NEWER_NODE } from '../support/drivers';
import { eventually, repoRoot, setupAudit, useFakeProvider } from '../support/harness';

// Every OpenAI operation that sends data, besides chat / Responses / embeddings (sdk-behaviour
// covers those): legacy completions, moderations, images, audio, files and batches, with the real
// SDK of each major against the fake provider. Each call is one audit record with the operation's
// name, its hashes, its usage and cost status; a failed call is a record too; nothing of what was
// said leaves in plaintext.

const audit = setupAudit();
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});
const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
const CANARY = 'OPS-CANARY-c41d';

const SDKS = [
  ...(NEWER_NODE ? [{ label: 'openai 7', dir: join(repoRoot, 'test', 'sdk-versions', 'openai-7') }] : []),
  { label: 'openai 6', dir: repoRoot },
  { label: 'openai 5', dir: join(repoRoot, 'test', 'sdk-versions', 'openai-5') },
  { label: 'openai 4', dir: join(repoRoot, 'test', 'sdk-versions', 'openai-4') },
];

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const byAction = (spans: ReadableSpan[], action: string) => spans.filter((s) => s.attributes['llm_audit.action'] === action);

/** The exported form of the spans: what must never hold a prompt or an output. */
const exported = (spans: ReadableSpan[]) => JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events, s.status, s.links]));

function expectFailed(span: ReadableSpan, status: number): void {
  expect(span.attributes['llm_audit.status']).toBe('error');
  expect(span.attributes['error.type']).toBeTruthy();
  expect(span.attributes['http.response.status_code']).toBe(status);
}

/** Cost is priced (never 0) or explicitly not. */
function expectCostStated(span: ReadableSpan): void {
  const status = span.attributes['llm_audit.cost.status'];
  expect(['priced', 'unpriced', 'no_usage']).toContain(status);
  if (status === 'priced') expect(span.attributes['gen_ai.usage.cost.amount']).toBeGreaterThan(0);
  else expect(span.attributes['gen_ai.usage.cost.amount']).toBeUndefined();
}

describe.each(SDKS)('$label', ({ dir }) => {
  const sdk = () => audit.load('openai', dir);
  const client = () => new (sdk().OpenAI ?? sdk().default ?? sdk())({ apiKey: 'sk-test-ops', baseURL: fake.openaiBaseURL, maxRetries: 0 });
  const toFile = (bytes: Buffer, name: string) => (sdk().toFile ?? sdk().default.toFile)(bytes, name);

  it('completions.create (legacy): text_completion with hashes, usage and cost; a stream gives the same output hash', async () => {
    const prompt = `${CANARY} Once upon a time`;
    const plain = await client().completions.create({ model: 'gpt-3.5-turbo-instruct', prompt, max_tokens: 50 });
    expect(plain.choices[0].text).toBe(DEFAULT_TEXT);
    const stream = await client().completions.create({ model: 'gpt-3.5-turbo-instruct', prompt, max_tokens: 50, stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(DEFAULT_TEXT);
    const [a, b] = await audit.spansWhen(2);
    expect(a.name).toBe('text_completion gpt-3.5-turbo-instruct');
    expect(a.attributes['gen_ai.operation.name']).toBe('text_completion');
    expect(a.attributes['llm_audit.action']).toBe('completions.create');
    expect(a.attributes['llm_audit.input.hash']).toBe(hasher.hash({ prompt }));
    expect(a.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: DEFAULT_TEXT }], finish_reason: 'stop' }]));
    expect(a.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
    expect(a.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    expectCostStated(a);
    expect(b.attributes['gen_ai.request.stream']).toBe(true);
    expect(b.attributes['llm_audit.output.hash']).toBe(a.attributes['llm_audit.output.hash']);
    expect(b.attributes['gen_ai.usage.output_tokens']).toBe(expectedUsage().output);
    fake.enqueue({ status: 429 });
    await expect(client().completions.create({ model: 'gpt-3.5-turbo-instruct', prompt })).rejects.toThrow();
    const [, , failed] = await audit.spansWhen(3);
    expectFailed(failed, 429);
    expect(exported(audit.spans())).not.toContain(CANARY);
  });

  it('moderations.create: the verdict as guardrail events and an output hash; a refused request is a record', async () => {
    const input = `${CANARY} ${MODERATION_TRIGGER} here`;
    const result = await client().moderations.create({ model: 'omni-moderation-latest', input });
    expect(result.results[0].flagged).toBe(true);
    await expect(client().moderations.create({ model: 'omni-moderation-latest' } as any)).rejects.toThrow();
    const [ok, failed] = await audit.spansWhen(2);
    expect(ok.attributes['gen_ai.operation.name']).toBe('moderation');
    expect(ok.attributes['llm_audit.input.hash']).toBe(hasher.hash(input));
    expect(ok.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: '{"flagged":true,"categories":["violence"]}' }] }]));
    expect(ok.events.map((e) => [e.name, e.attributes?.['llm_audit.guardrail.name'], e.attributes?.['llm_audit.guardrail.action'], e.attributes?.['llm_audit.guardrail.category']])).toEqual([
      ['llm_audit.guardrail', 'openai.moderation', 'flagged', 'violence'],
    ]);
    expect(ok.attributes['llm_audit.usage.status']).toBe('missing');
    expectCostStated(ok);
    expectFailed(failed, 400);
    expect(exported(audit.spans())).not.toContain(CANARY);
  });

  it('images.generate and images.edit: the images as digests in the output hash, usage of gpt-image-1; failures recorded', async () => {
    const prompt = `${CANARY} a lighthouse at dusk`;
    const generated = await client().images.generate({ model: 'gpt-image-1', prompt });
    expect(Buffer.from(generated.data[0].b64_json, 'base64')).toEqual(fakeImage(prompt, 0));
    const source = Buffer.from('\x89PNG source image bytes', 'latin1');
    const edited = await client().images.edit({ model: 'gpt-image-1', prompt, image: await toFile(source, 'source.png') });
    expect(edited.data).toHaveLength(1);
    fake.enqueue({ status: 400 });
    await expect(client().images.generate({ model: 'dall-e-3', prompt })).rejects.toThrow();
    const [gen, edit, failed] = await audit.spansWhen(3);
    const image = fakeImage(prompt, 0);
    const digest = { type: 'blob_digest', modality: 'image', mime_type: 'image/png', sha256: sha256(image), bytes: image.length };
    expect(gen.attributes['gen_ai.operation.name']).toBe('generate_content');
    expect(gen.attributes['gen_ai.output.type']).toBe('image');
    expect(gen.attributes['llm_audit.input.hash']).toBe(hasher.hash(prompt));
    expect(gen.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [digest] }]));
    expect(gen.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
    expectCostStated(gen);
    expect(edit.attributes['llm_audit.action']).toBe('images.edit');
    expect(edit.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:test:/);
    expect(edit.attributes['llm_audit.input.hash']).not.toBe(gen.attributes['llm_audit.input.hash']);
    // The uploaded image's bytes, hashed once the SDK sent them.
    expect(edit.attributes['llm_audit.file.hashes']).toEqual([hasher.hash(`sha256:${sha256(source)}`)]);
    expect(fake.requests.find((r) => r.path === '/v1/images/edits')!.body.image.bytes).toEqual(source);
    expectFailed(failed, 400);
    expect(exported(audit.spans())).not.toContain(CANARY);
  });

  it('audio transcriptions and translations: the transcript hashed as output, the audio never recorded', async () => {
    const audio = Buffer.from(`RIFF fake wav ${CANARY}`);
    const transcript = await client().audio.transcriptions.create({ model: 'whisper-1', file: await toFile(audio, 'call.wav'), response_format: 'verbose_json', prompt: `${CANARY} banking terms` });
    expect(transcript.text).toBe(TRANSCRIPT_TEXT);
    const translation = await client().audio.translations.create({ model: 'whisper-1', file: await toFile(audio, 'call.wav') });
    expect(translation.text).toBe(TRANSCRIPT_TEXT);
    fake.enqueue({ status: 500 });
    await expect(client().audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await toFile(audio, 'call.wav') })).rejects.toThrow();
    const [heard, translated, failed] = await audit.spansWhen(3);
    const output = hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: TRANSCRIPT_TEXT }] }]);
    expect(heard.attributes['gen_ai.operation.name']).toBe('transcription');
    expect(heard.attributes['llm_audit.output.hash']).toBe(output);
    expect(heard.attributes['llm_audit.audio.language']).toBe('english');
    expect(heard.attributes['llm_audit.audio.duration']).toBe(3);
    expect(heard.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:test:/);
    // The voice is hashed (its bytes, read again once sent), never recorded.
    expect(heard.attributes['llm_audit.file.hashes']).toEqual([hasher.hash(`sha256:${sha256(audio)}`)]);
    expect(translated.attributes['llm_audit.file.hashes']).toEqual([hasher.hash(`sha256:${sha256(audio)}`)]);
    expectCostStated(heard);
    expect(translated.attributes['gen_ai.operation.name']).toBe('translation');
    expect(translated.attributes['llm_audit.output.hash']).toBe(output);
    expectFailed(failed, 500);
    const all = exported(audit.spans());
    expect(all).not.toContain(CANARY);
    expect(all).not.toContain(TRANSCRIPT_TEXT);
  });

  it('audio.speech: the text hashed as input, the audio digested for the output hash, the app reads the body unchanged', async () => {
    const input = `${CANARY} your balance is twelve euros`;
    const response = await client().audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input });
    expect(Buffer.from(await response.arrayBuffer())).toEqual(SPEECH_AUDIO);
    // Never read by the app: still recorded, once.
    await client().audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input });
    fake.enqueue({ status: 429 });
    await expect(client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input })).rejects.toThrow();
    const spans = await audit.spansWhen(3);
    const [read, unread] = byAction(spans, 'audio.speech.create').filter((s) => s.attributes['llm_audit.status'] === 'success');
    const digest = { type: 'blob_digest', modality: 'audio', mime_type: 'audio/mpeg', sha256: sha256(SPEECH_AUDIO), bytes: SPEECH_AUDIO.length };
    for (const span of [read!, unread!]) {
      expect(span.attributes['gen_ai.operation.name']).toBe('generate_content');
      expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash({ input }));
      expect(span.attributes['llm_audit.output.hash']).toBe(hasher.hash([{ role: 'assistant', parts: [digest] }]));
      expectCostStated(span);
    }
    expectFailed(spans.find((s) => s.attributes['llm_audit.status'] === 'error')!, 429);
    expect(exported(audit.spans())).not.toContain(CANARY);
  });

  it('batches: the upload, the batch and its results are linked by the file ids and the per-request hashes; one record per result line', async () => {
    const requests = [0, 1, 2].map((i) => ({
      custom_id: `req-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: `${CANARY} question ${i}` },
        ],
      },
    }));
    const jsonl = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const file = await client().files.create({ file: await toFile(Buffer.from(jsonl), 'batch.jsonl'), purpose: 'batch' });
    fake.enqueue({ text: `${CANARY} answer`, batchResults: ['succeeded', 'errored', 'expired'] });
    const batch = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await expect(client().batches.create({ input_file_id: 'file-missing', endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toThrow();
    const [upload] = byAction(await audit.spansWhen(3), 'files.create');
    const [created, failed] = byAction(audit.spans(), 'batches.create');
    // Each request's hashes are those the same request would have carried sent alone.
    const inputHashes = requests.map((r) => hasher.hash([r.body.messages[1]]));
    const perRequest = {
      'llm_audit.batch.request_count': 3,
      'llm_audit.batch.request.custom_ids': ['req-0', 'req-1', 'req-2'],
      'llm_audit.batch.request.input_hashes': inputHashes,
      'llm_audit.batch.request.system_prompt_hashes': requests.map((r) => hasher.hash([r.body.messages[0]])),
    };
    expect(upload!.attributes).toMatchObject({ 'llm_audit.file.id': file.id, 'llm_audit.file.hash': hasher.hash(`sha256:${sha256(Buffer.from(jsonl))}`), ...perRequest });
    expect(created!.attributes).toMatchObject({
      'gen_ai.operation.name': 'create_batch',
      'llm_audit.batch.id': batch.id,
      'llm_audit.file.id': file.id,
      'llm_audit.batch.link': 'file',
      'llm_audit.batch.output_file_id': batch.output_file_id,
      'llm_audit.batch.error_file_id': batch.error_file_id,
      ...perRequest,
    });
    expectFailed(failed!, 400);
    audit.reset();

    // The results: each download is one record, each line after it one record of its own.
    const output = await client().files.content(batch.output_file_id);
    const outputText = await output.text();
    const errors = await client().files.content(batch.error_file_id);
    const errorText = await errors.text();
    // The application reads the bytes the provider sent, untouched.
    for (const [id, text] of [[batch.output_file_id, outputText], [batch.error_file_id, errorText]]) {
      expect(text).toBe(await (await fetch(`${fake.openaiBaseURL}/files/${id}/content`)).text());
    }
    const spans = await audit.spansWhen(5);
    expect(spans.map((s) => [s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.batch.custom_id'] ?? s.attributes['llm_audit.file.id']])).toEqual([
      ['retrieve_file', batch.output_file_id],
      ['chat', 'req-0'],
      ['retrieve_file', batch.error_file_id],
      ['chat', 'req-1'],
      ['chat', 'req-2'],
    ]);
    const [outputFile, line0, errorFile, line1, line2] = spans;
    expect(outputFile!.attributes).toMatchObject({
      'llm_audit.action': 'files.content',
      'llm_audit.batch.id': batch.id,
      'llm_audit.batch.result_count': 1,
      'llm_audit.file.hash': hasher.hash(`sha256:${sha256(Buffer.from(outputText))}`),
    });
    expect(errorFile!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'llm_audit.batch.result_count': 2 });
    const result = JSON.parse(outputText.trim());
    const usage = expectedUsage();
    expect(line0!.attributes).toMatchObject({
      'llm_audit.action': 'files.content',
      'llm_audit.status': 'success',
      'llm_audit.batch.id': batch.id,
      'llm_audit.batch.result_type': 'succeeded',
      'llm_audit.batch.link': 'request',
      'llm_audit.file.id': batch.output_file_id,
      'llm_audit.input.hash': inputHashes[0],
      'llm_audit.system_prompt.hash': perRequest['llm_audit.batch.request.system_prompt_hashes'][0],
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.id': result.response.body.id,
      'gen_ai.usage.input_tokens': usage.input,
      'gen_ai.usage.output_tokens': usage.output,
      'llm_audit.cost.status': 'unpriced',
      'llm_audit.output.hash': hasher.hash([{ role: 'assistant', parts: [{ type: 'text', content: result.response.body.choices[0].message.content }], finish_reason: 'stop' }]),
    });
    expect(line1!.attributes).toMatchObject({
      'llm_audit.status': 'error',
      'llm_audit.batch.result_type': 'errored',
      'error.type': 'integer_below_min_value',
      'http.response.status_code': 400,
      'llm_audit.input.hash': inputHashes[1],
      'llm_audit.file.id': batch.error_file_id,
    });
    expect(line2!.attributes).toMatchObject({ 'llm_audit.status': 'error', 'llm_audit.batch.result_type': 'expired', 'error.type': 'batch_expired', 'llm_audit.input.hash': inputHashes[2] });
    expect(line2!.attributes['llm_audit.output.hash']).toBeUndefined();
    expect(exported(audit.spans())).not.toContain(CANARY);
    expect(exported(audit.spans())).not.toContain(DEFAULT_TEXT);
  });

  it('batches: a results file of many lines is recorded a slice at a time, and a shutdown records what is left at once', async () => {
    const count = 250;
    const jsonl = Array.from({ length: count }, (_, i) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i}` }] } })).join('\n') + '\n';
    const file = await client().files.create({ file: await toFile(Buffer.from(jsonl), 'batch.jsonl'), purpose: 'batch' });
    const batch = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await audit.spansWhen(2);
    audit.reset();
    await (await client().files.content(batch.output_file_id)).text();
    // The download's record is made once its body is read; the lines follow in slices.
    await eventually(() => audit.spans().length > 0);
    expect(audit.spans().length).toBeLessThan(count + 1);
    await audit.instrumentation.settleOpenCalls(0);
    const lines = audit.spans().filter((s) => s.attributes['llm_audit.batch.custom_id'] !== undefined);
    expect(lines.map((s) => s.attributes['llm_audit.batch.custom_id'])).toEqual(Array.from({ length: count }, (_, i) => `r${i}`));
    expect(new Set(lines.map((s) => s.attributes['llm_audit.batch.link']))).toEqual(new Set(['request']));
  });

  it('batches: retrieve, list and cancel are light records (ids and status, no content, cost 0)', async () => {
    const jsonl = JSON.stringify({ custom_id: 'only', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } }) + '\n';
    const file = await client().files.create({ file: await toFile(Buffer.from(jsonl), 'batch.jsonl'), purpose: 'batch' });
    const batch = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    audit.reset();
    const retrieved = await client().batches.retrieve(batch.id);
    expect(retrieved.id).toBe(batch.id);
    const page = await client().batches.list({ limit: 1 });
    expect(page.data[0].id).toBe(batch.id);
    const cancelled = await client().batches.cancel(batch.id);
    expect(cancelled.status).toBe('cancelling');
    await expect(client().batches.retrieve('batch_unknown')).rejects.toThrow();
    const spans = await audit.spansWhen(4);
    expect(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['gen_ai.operation.name'], s.attributes['llm_audit.status']])).toEqual([
      ['batches.retrieve', 'retrieve_batch', 'success'],
      ['batches.list', 'list_batches', 'success'],
      ['batches.cancel', 'cancel_batch', 'success'],
      ['batches.retrieve', 'retrieve_batch', 'error'],
    ]);
    expect(spans[0]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'llm_audit.batch.status': 'completed', 'llm_audit.batch.output_file_id': batch.output_file_id, 'gen_ai.usage.cost.amount': 0 });
    expect(spans[1]!.attributes).toMatchObject({ 'llm_audit.batch.listed_count': 1 });
    expect(spans[2]!.attributes).toMatchObject({ 'llm_audit.batch.id': batch.id, 'llm_audit.batch.status': 'cancelling' });
    expect(spans[3]!.attributes).toMatchObject({ 'llm_audit.batch.id': 'batch_unknown', 'http.response.status_code': 404 });
    for (const span of spans) expect(span.attributes['llm_audit.input.hash']).toBeUndefined();
  });
});

describe('openai 6: streams of the newer operations', () => {
  const { OpenAI, toFile } = audit.load('openai');
  const client = () => new OpenAI({ apiKey: 'sk-test-ops', baseURL: fake.openaiBaseURL, maxRetries: 0 });

  it('audio read from disk (fs.createReadStream): the file is hashed from its path once the SDK sent it', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'audio-')), 'call.wav');
    const audio = Buffer.from(`RIFF recorded call ${CANARY}`);
    writeFileSync(path, audio);
    const result = await client().audio.transcriptions.create({ model: 'whisper-1', file: createReadStream(path) });
    expect(result.text).toBe(TRANSCRIPT_TEXT);
    expect(fake.requests[0]!.body.file.bytes).toEqual(audio);
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.file.hashes']).toEqual([hasher.hash(`sha256:${sha256(audio)}`)]);
    expect(exported([span])).not.toContain(CANARY);
  });

  it('a streamed transcription gives the same output hash as a whole one', async () => {
    const file = await toFile(Buffer.from('RIFF audio'), 'a.wav');
    await client().audio.transcriptions.create({ model: 'gpt-4o-transcribe', file });
    const stream = await client().audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await toFile(Buffer.from('RIFF audio'), 'a.wav'), stream: true });
    let text = '';
    for await (const event of stream) if (event.type === 'transcript.text.delta') text += event.delta;
    expect(text).toBe(TRANSCRIPT_TEXT);
    const [whole, streamed] = await audit.spansWhen(2);
    expect(streamed.attributes['gen_ai.request.stream']).toBe(true);
    expect(streamed.attributes['llm_audit.output.hash']).toBe(whole.attributes['llm_audit.output.hash']);
    expect(streamed.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
    expect(whole.attributes['gen_ai.usage.input_tokens']).toBe(expectedUsage().input);
  });
});
