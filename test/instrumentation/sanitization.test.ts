import { beforeAll, describe, expect, it } from 'vitest';
import { createContentHasher } from '../../src/audit/hashing';
import { LlmRequestBlockedError } from '../../src/guardrails';
import type { FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';

// LLM_AUDIT_SANITIZE=redact with the real SDKs: the provider receives the redacted text, the span
// says what was found where (never the value), and the input hash covers what was sent.

const EMAIL = 'jane.doe@example.org';
const CARD = '4111 1111 1111 1111';
const KEY = 'sk-proj-AbCdEf0123456789AbCdEf0123456789';
const failingHook = { on: false };
const audit = setupAudit({
  sanitize: {
    mode: 'redact',
    patterns: [{ type: 'EMPLOYEE_ID', pattern: /\bEMP-\d{6}\b/ }],
    hook: () => {
      if (failingHook.on) throw new Error('custom detector crashed');
    },
  },
});
const { OpenAI } = audit.load('openai');
const { Anthropic } = audit.load('@anthropic-ai/sdk');
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
beforeAll(() => {
  fake = fakeProvider();
});
const openai = () => new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake.anthropicBaseURL, maxRetries: 0 });
const sanitizationEvents = (span: { events: { name: string; attributes?: Record<string, unknown> }[] }) =>
  span.events.filter((e) => e.name === 'llm_audit.sanitization').map((e) => e.attributes);

describe('redact: evasions (issue 14 item 9)', () => {
  it('new String(...) content, a zero-width space inside an e-mail and full-width card digits are redacted in what is sent', async () => {
    const boxed = new String(`Escalate to ${EMAIL}.`);
    const messages = [
      { role: 'system', content: boxed },
      { role: 'user', content: 'Mail jane.doe\u200b@example.org the card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11' },
    ];
    await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: messages as any });
    const sent = fake.requests[0].body;
    expect(sent.messages[0].content).toBe('Escalate to [EMAIL].');
    expect(sent.messages[1].content).toBe('Mail [EMAIL] the card [CARD]');
    expect(fake.requests[0].rawBody).not.toContain('example.org');
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.sanitization.count']).toBe(3);
    // The app's objects are untouched.
    expect(String(messages[0].content)).toBe(`Escalate to ${EMAIL}.`);
  });

  it('anthropic: the same evasions in a system prompt and a text block', async () => {
    await anthropic().messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      system: new String(`ops: ${EMAIL}`) as any,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'ssn \uff11\uff12\uff13-45-6789, mail jane\u200d.doe@example.org' }] }],
    });
    const sent = fake.requests[0].body;
    expect(sent.system).toBe('ops: [EMAIL]');
    expect(sent.messages[0].content[0].text).toBe('ssn [SSN], mail [EMAIL]');
  });
});

describe('redact', () => {
  it('OpenAI chat: the provider gets placeholders, the app object is untouched, the span records type/count/location', async () => {
    const messages = [
      { role: 'system', content: `Escalate to ${EMAIL}.` },
      { role: 'user', content: [{ type: 'text', text: `Charge card ${CARD}, employee EMP-123456, key ${KEY}` }] },
    ];
    const original = JSON.stringify(messages);
    await openai().chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(JSON.stringify(messages)).toBe(original);
    const sent = fake.requests[0].body;
    expect(sent.messages[0].content).toBe('Escalate to [EMAIL].');
    expect(sent.messages[1].content[0].text).toBe('Charge card [CARD], employee [EMPLOYEE_ID], key [SECRET]');
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.sanitization.count']).toBe(4);
    expect(span.attributes['llm_audit.sanitization.mode']).toBe('redact');
    expect(sanitizationEvents(span)).toEqual([
      { 'llm_audit.sanitization.type': 'EMAIL', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[0].content', 'llm_audit.sanitization.mode': 'redact' },
      { 'llm_audit.sanitization.type': 'CARD', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[1].content[0].text', 'llm_audit.sanitization.mode': 'redact' },
      { 'llm_audit.sanitization.type': 'EMPLOYEE_ID', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[1].content[0].text', 'llm_audit.sanitization.mode': 'redact' },
      { 'llm_audit.sanitization.type': 'SECRET', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[1].content[0].text', 'llm_audit.sanitization.mode': 'redact' },
    ]);
    // The input hash is over what was sent.
    const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
    expect(span.attributes['llm_audit.input.hash']).toBe(hasher.hash([sent.messages[1]]));
    expect(span.attributes['llm_audit.system_prompt.hash']).toBe(hasher.hash([sent.messages[0]]));
    const exported = JSON.stringify([span.attributes, span.events]);
    for (const secret of [EMAIL, CARD, KEY, 'EMP-123456']) expect(exported).not.toContain(secret);
  });

  it('Anthropic: system prompt, text blocks and tool results are redacted in what is sent', async () => {
    await anthropic().messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 32,
      system: [{ type: 'text', text: `Reply to ${EMAIL}` }],
      messages: [
        { role: 'user', content: 'look up the customer' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'crm', input: { q: 'x' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: `card on file ${CARD}` }] },
      ],
    });
    const sent = fake.requests[0].body;
    expect(sent.system[0].text).toBe('Reply to [EMAIL]');
    expect(sent.messages[2].content[0].content).toBe('card on file [CARD]');
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.sanitization.count']).toBe(2);
  });

  it('nothing to find: the same params object is sent and the count says 0', async () => {
    await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.sanitization.count']).toBe(0);
    expect(sanitizationEvents(span)).toEqual([]);
  });

  it('a failing custom detector fails closed in redact mode: blocked, nothing sent', async () => {
    failingHook.on = true;
    try {
      const error = await openai()
        .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${EMAIL}` }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LlmRequestBlockedError);
      expect(fake.requests).toHaveLength(0);
      const [span] = await audit.spansWhen(1);
      expect(span.attributes['llm_audit.status']).toBe('blocked');
      expect(String(span.attributes['llm_audit.block.reason'])).toContain('redaction failed');
    } finally {
      failingHook.on = false;
    }
  });
});

describe('redact: the other OpenAI operations', () => {
  it('legacy completions, moderations, image prompts, speech text and transcription prompts are redacted in what is sent; the hash covers it', async () => {
    const hasher = createContentHasher({ key: 'test-hash-key-0123456789', keyId: 'test' });
    const { toFile } = audit.load('openai');
    await openai().completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: `Write to ${EMAIL}`, suffix: `card ${CARD}` });
    await openai().moderations.create({ input: [`mail ${EMAIL}`, 'fine'] });
    await openai().images.generate({ model: 'gpt-image-1', prompt: `a card ${CARD}` });
    await (await openai().audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: `Say ${EMAIL}` })).arrayBuffer();
    await openai().audio.transcriptions.create({ model: 'whisper-1', file: await toFile(Buffer.from('RIFF'), 'a.wav'), prompt: `names like ${EMAIL}` });
    const sent = (path: string) => fake.requests.find((r) => r.path === path)!.body;
    expect(sent('/v1/completions')).toMatchObject({ prompt: 'Write to [EMAIL]', suffix: 'card [CARD]' });
    expect(sent('/v1/moderations').input).toEqual(['mail [EMAIL]', 'fine']);
    expect(sent('/v1/images/generations').prompt).toBe('a card [CARD]');
    expect(sent('/v1/audio/speech').input).toBe('Say [EMAIL]');
    expect(sent('/v1/audio/transcriptions').prompt).toBe('names like [EMAIL]');
    for (const request of fake.requests) expect(request.rawBody).not.toContain('example.org');
    const spans = await audit.spansWhen(5);
    const completion = spans.find((s) => s.attributes['llm_audit.action'] === 'completions.create')!;
    expect(completion.attributes['llm_audit.input.hash']).toBe(hasher.hash({ prompt: 'Write to [EMAIL]', suffix: 'card [CARD]' }));
    expect(sanitizationEvents(completion)).toEqual([
      expect.objectContaining({ 'llm_audit.sanitization.type': 'EMAIL', 'llm_audit.sanitization.location': 'prompt' }),
      expect.objectContaining({ 'llm_audit.sanitization.type': 'CARD', 'llm_audit.sanitization.location': 'suffix' }),
    ]);
    const counts = Object.fromEntries(spans.map((s) => [s.attributes['llm_audit.action'], s.attributes['llm_audit.sanitization.count']]));
    expect(counts).toEqual({
      'completions.create': 2,
      'moderations.create': 1,
      'images.generate': 1,
      'audio.speech.create': 1,
      'audio.transcriptions.create': 1,
    });
  });
});
