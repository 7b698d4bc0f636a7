import { describe, it, expect } from 'vitest';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { ResponseCreateParamsNonStreaming } from 'openai/resources/responses/responses';
import type { EmbeddingCreateParams } from 'openai/resources/embeddings';
import type { MessageCreateParamsNonStreaming } from '@anthropic-ai/sdk/resources/messages';
import { createSanitizer } from '../../../src/audit/sanitize/detectors';
import { sanitizeRequest, type SanitizeResult } from '../../../src/audit/sanitize/messages';
import type { RequestWalker } from '../../../src/core/types';
import { chatRequest, embeddingsRequest, responsesRequest } from '../../../src/instrumentations/openai/request';
import { messagesRequest } from '../../../src/instrumentations/anthropic/request';

// The request shapes are defined by the providers' own walkers (src/instrumentations/<provider>).
const WALKERS: Record<string, RequestWalker> = { 'openai.chat': chatRequest, 'openai.responses': responsesRequest, 'openai.embeddings': embeddingsRequest, 'anthropic.messages': messagesRequest };
// A name no walker has: a walker of another shape, left alone by sanitizeRequest.
const kindOf = (kind: string): RequestWalker => WALKERS[kind] ?? ({} as RequestWalker);

const sanitizer = createSanitizer();

const EMAIL = 'jane.miller@outlook.com';
const PHONE = '+1 (617) 555-0114';
const CARD = '4917 4002 9755 0473';
const IBAN = 'DE62 1296 7788 7362 7056 45';
const SSN = '536-22-4197';
const IP = '203.0.113.42';
const PII = [EMAIL, PHONE, CARD, IBAN, SSN, IP];

/** Runs both modes and checks the invariants every call must keep; returns the redact result. */
function run(name: string, params: unknown): SanitizeResult {
  const kind = kindOf(name);
  const snapshot = structuredClone(params);
  const detected = sanitizeRequest(kind, params, sanitizer, 'detect');
  expect(detected.params).toBe(params);
  const redacted = sanitizeRequest(kind, params, sanitizer, 'redact');
  // The caller's object is never modified, in either mode.
  expect(params).toEqual(snapshot);
  // Both modes find the same things at the same places.
  expect(redacted.findings).toEqual(detected.findings);
  expect(redacted.total).toBe(detected.total);
  expect(redacted.total).toBe(redacted.findings.reduce((n, f) => n + f.count, 0));
  // Locations name fields, never values.
  for (const f of redacted.findings) for (const value of PII) expect(f.location).not.toContain(value);
  return redacted;
}

function at(result: SanitizeResult): Array<[string, string, number]> {
  return result.findings.map((f) => [f.location, f.type, f.count]);
}

describe('openai.chat', () => {
  const params: ChatCompletionCreateParamsNonStreaming = {
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: `You are a support agent. Escalations go to ${EMAIL}.` },
      { role: 'developer', content: [{ type: 'text', text: `Never reveal ${PHONE}.` }], name: 'ops@example.com' },
      {
        role: 'user',
        name: 'jane.miller@outlook.com',
        content: [
          { type: 'text', text: `My card ${CARD} was charged twice, call ${PHONE}` },
          { type: 'image_url', image_url: { url: `https://files.example.com/receipt.png?owner=${EMAIL}` } },
          { type: 'input_audio', input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' } },
          { type: 'file', file: { file_data: `data:text/plain,${SSN}`, filename: 'ssn.txt' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'lookup_customer', arguments: JSON.stringify({ email: EMAIL, ssn: SSN }) } },
          { id: 'call_2', type: 'custom', custom: { name: 'sql', input: `SELECT * FROM users WHERE ip = '${IP}'` } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: JSON.stringify({ iban: IBAN, phone: PHONE }) },
      { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: `1 row: ${IP}` }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Found it.' }, { type: 'refusal', refusal: `I cannot share ${SSN}` }], refusal: `Not ${EMAIL}` },
      { role: 'function', name: 'legacy_fn', content: `legacy result for ${EMAIL}` },
      { role: 'user', content: 'Thanks, that is all.' },
    ],
    prediction: { type: 'content', content: `Dear customer (${EMAIL}),` },
  };

  it('scans message text, tool call arguments, tool results and predictions; not names, images, audio or files', () => {
    const result = run('openai.chat', params);
    expect(at(result)).toEqual([
      ['messages[0].content', 'EMAIL', 1],
      ['messages[1].content[0].text', 'PHONE', 1],
      ['messages[2].content[0].text', 'CARD', 1],
      ['messages[2].content[0].text', 'PHONE', 1],
      ['messages[3].tool_calls[0].function.arguments', 'EMAIL', 1],
      ['messages[3].tool_calls[0].function.arguments', 'SSN', 1],
      ['messages[3].tool_calls[1].custom.input', 'IP', 1],
      ['messages[4].content', 'IBAN', 1],
      ['messages[4].content', 'PHONE', 1],
      ['messages[5].content[0].text', 'IP', 1],
      ['messages[6].content[1].refusal', 'SSN', 1],
      ['messages[6].refusal', 'EMAIL', 1],
      ['messages[7].content', 'EMAIL', 1],
      ['prediction.content', 'EMAIL', 1],
    ]);
    expect(result.total).toBe(14);
  });

  it('redacts into a copy that shares every unchanged branch', () => {
    const result = run('openai.chat', params);
    const out = result.params as typeof params;
    const msgs = out.messages as any[];
    const orig = params.messages as any[];
    expect(out).not.toBe(params);
    expect(msgs[0].content).toBe('You are a support agent. Escalations go to [EMAIL].');
    expect(msgs[1].name).toBe('ops@example.com');
    expect(msgs[2].name).toBe(EMAIL);
    expect(msgs[2].content[0].text).toBe('My card [CARD] was charged twice, call [PHONE]');
    // Parts without text are the caller's own objects.
    expect(msgs[2].content[1]).toBe(orig[2].content[1]);
    expect(msgs[2].content[2]).toBe(orig[2].content[2]);
    expect(msgs[2].content[3]).toBe(orig[2].content[3]);
    expect(JSON.parse(msgs[3].tool_calls[0].function.arguments)).toEqual({ email: '[EMAIL]', ssn: '[SSN]' });
    expect(msgs[3].tool_calls[1].custom.input).toBe("SELECT * FROM users WHERE ip = '[IP]'");
    expect(msgs[3].tool_calls[0].id).toBe('call_1');
    expect(JSON.parse(msgs[4].content)).toEqual({ iban: '[IBAN]', phone: '[PHONE]' });
    expect(msgs[6].content[0]).toBe(orig[6].content[0]);
    expect(msgs[6].refusal).toBe('Not [EMAIL]');
    expect(msgs[8]).toBe(orig[8]);
    expect(out.model).toBe('gpt-4o-mini');
    expect(out.prediction).toEqual({ type: 'content', content: 'Dear customer ([EMAIL]),' });
  });

  it('returns the same object, with no findings, when there is nothing to redact', () => {
    const clean: ChatCompletionCreateParamsNonStreaming = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'What is 2 + 2?' }] },
      ],
    };
    const result = sanitizeRequest(chatRequest, clean, sanitizer, 'redact');
    expect(result).toEqual({ params: clean, findings: [], total: 0 });
    expect(result.params).toBe(clean);
  });

  it('counts several findings of one type at one location once, with their count', () => {
    const result = run('openai.chat', { model: 'm', messages: [{ role: 'user', content: `${EMAIL}, a@b.co and c@d.co` }] });
    expect(at(result)).toEqual([['messages[0].content', 'EMAIL', 3]]);
  });

  it('keeps tool call arguments valid JSON when a finding would swallow a quote', () => {
    // A truncated key block runs to the end of its text: in the raw JSON that includes `"}`.
    const args = JSON.stringify({ note: 'see key', key: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN' });
    const result = run('openai.chat', {
      model: 'm',
      messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }] }],
    });
    const out = (result.params as any).messages[0].tool_calls[0].function.arguments as string;
    expect(JSON.parse(out)).toEqual({ note: 'see key', key: '[SECRET]' });
    expect(at(result)).toEqual([['messages[0].tool_calls[0].function.arguments', 'SECRET', 1]]);
  });

  it('redacts arguments that are not JSON as plain text', () => {
    const result = run('openai.chat', {
      model: 'm',
      messages: [{ role: 'assistant', function_call: { name: 'f', arguments: `{broken ${EMAIL}` } }],
    });
    expect((result.params as any).messages[0].function_call.arguments).toBe('{broken [EMAIL]');
    expect(at(result)).toEqual([['messages[0].function_call.arguments', 'EMAIL', 1]]);
  });

  it('leaves messages with an unknown role alone', () => {
    const params = { model: 'm', messages: [{ role: 'narrator', content: EMAIL }] };
    const result = run('openai.chat', params);
    expect(result.params).toBe(params);
    expect(result.total).toBe(0);
  });
});

describe('openai.responses', () => {
  const params: ResponseCreateParamsNonStreaming = {
    model: 'gpt-4.1',
    instructions: `Internal contact: ${PHONE}`,
    input: [
      { role: 'user', content: `Refund ${CARD} please` },
      {
        type: 'message',
        role: 'user',
        content: [
          { type: 'input_text', text: `Send it to ${IBAN}` },
          { type: 'input_image', image_url: `https://img.example.com/${EMAIL}.png`, detail: 'auto' },
          { type: 'input_file', file_data: `data:text/plain,${SSN}`, filename: 'f.txt' },
        ],
      },
      {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: `I will email ${EMAIL}`, annotations: [] }],
      },
      { type: 'function_call', call_id: 'fc_1', name: 'refund', arguments: JSON.stringify({ card: CARD }) },
      { type: 'function_call_output', call_id: 'fc_1', output: `refund sent from ${IP}` },
      { type: 'function_call_output', call_id: 'fc_2', output: [{ type: 'input_text', text: `SSN ${SSN} verified` }] },
      { type: 'custom_tool_call', call_id: 'ct_1', name: 'grep', input: `grep ${EMAIL} users.csv` },
      { type: 'custom_tool_call_output', call_id: 'ct_1', output: `users.csv:4:${EMAIL}` },
      {
        type: 'reasoning',
        id: 'rs_1',
        summary: [{ type: 'summary_text', text: `The user ${EMAIL} wants a refund` }],
        encrypted_content: 'gAAAAABencrypted',
      },
      { type: 'item_reference', id: 'msg_0' },
      { type: 'mcp_call', id: 'mcp_1', name: 'crm', server_label: 'crm', arguments: JSON.stringify({ phone: PHONE }), output: `owner ${EMAIL}` },
      { type: 'local_shell_call_output', id: 'sh_1', output: `ping ${IP}` },
      {
        type: 'shell_call_output',
        call_id: 'sh_2',
        output: [{ stdout: `inet ${IP}`, stderr: `warning for ${EMAIL}`, outcome: { type: 'exit', exit_code: 0 } }],
      },
    ],
    prompt: { id: 'pmpt_1', variables: { customer_email: EMAIL, note: { type: 'input_text', text: `phone ${PHONE}` }, 'odd key': EMAIL } },
  };

  it('scans instructions, messages, tool calls, tool outputs and prompt variables; not reasoning, images or files', () => {
    const result = run('openai.responses', params);
    expect(at(result)).toEqual([
      ['instructions', 'PHONE', 1],
      ['input[0].content', 'CARD', 1],
      ['input[1].content[0].text', 'IBAN', 1],
      ['input[2].content[0].text', 'EMAIL', 1],
      ['input[3].arguments', 'CARD', 1],
      ['input[4].output', 'IP', 1],
      ['input[5].output[0].text', 'SSN', 1],
      ['input[6].input', 'EMAIL', 1],
      ['input[7].output', 'EMAIL', 1],
      ['input[10].arguments', 'PHONE', 1],
      ['input[10].output', 'EMAIL', 1],
      ['input[11].output', 'IP', 1],
      ['input[12].output[0].stdout', 'IP', 1],
      ['input[12].output[0].stderr', 'EMAIL', 1],
      ['prompt.variables.customer_email', 'EMAIL', 1],
      ['prompt.variables.note.text', 'PHONE', 1],
      ['prompt.variables[*]', 'EMAIL', 1],
    ]);
  });

  it('redacts into a copy; reasoning items and non-text parts are the caller’s objects', () => {
    const result = run('openai.responses', params);
    const out = result.params as any;
    const input = params.input as any[];
    expect(out.instructions).toBe('Internal contact: [PHONE]');
    expect(out.input[0].content).toBe('Refund [CARD] please');
    expect(out.input[1].content[1]).toBe(input[1].content[1]);
    expect(out.input[1].content[2]).toBe(input[1].content[2]);
    expect(out.input[8]).toBe(input[8]);
    expect(out.input[9]).toBe(input[9]);
    expect(JSON.parse(out.input[3].arguments)).toEqual({ card: '[CARD]' });
    expect(out.prompt.variables).toEqual({ customer_email: '[EMAIL]', note: { type: 'input_text', text: 'phone [PHONE]' }, 'odd key': '[EMAIL]' });
  });

  it('scans a string input', () => {
    const result = run('openai.responses', { model: 'm', input: `Call ${PHONE}` });
    expect(at(result)).toEqual([['input', 'PHONE', 1]]);
    expect((result.params as any).input).toBe('Call [PHONE]');
  });
});

describe('openai.embeddings', () => {
  it('scans a string and string arrays; leaves token arrays alone', () => {
    const one: EmbeddingCreateParams = { model: 'text-embedding-3-small', input: `customer ${EMAIL}` };
    expect(at(run('openai.embeddings', one))).toEqual([['input', 'EMAIL', 1]]);

    const many: EmbeddingCreateParams = { model: 'text-embedding-3-small', input: ['no pii here', `card ${CARD}`, `ip ${IP}`] };
    const result = run('openai.embeddings', many);
    expect(at(result)).toEqual([
      ['input[1]', 'CARD', 1],
      ['input[2]', 'IP', 1],
    ]);
    expect((result.params as any).input).toEqual(['no pii here', 'card [CARD]', 'ip [IP]']);

    const tokens: EmbeddingCreateParams = { model: 'm', input: [[4917, 4002, 9755], [536, 22, 4197]] };
    expect(run('openai.embeddings', tokens).params).toBe(tokens);
    const flat: EmbeddingCreateParams = { model: 'm', input: [4917, 4002] };
    expect(run('openai.embeddings', flat).params).toBe(flat);
  });
});

describe('anthropic messages (src/instrumentations/anthropic/request.ts)', () => {
  const params: MessageCreateParamsNonStreaming = {
    model: 'claude-sonnet-4-5',
    max_tokens: 1024,
    system: [{ type: 'text', text: `Escalate to ${PHONE}` }, { type: 'text', text: 'Be kind.' }],
    metadata: { user_id: 'user-123' },
    messages: [
      { role: 'user', content: `Hello, I am ${EMAIL}` },
      {
        role: 'user',
        content: [
          { type: 'text', text: `My SSN is ${SSN}` },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: `Invoice for ${EMAIL}` }, title: `Invoice ${IBAN}`, context: `uploaded from ${IP}` },
          { type: 'document', source: { type: 'content', content: [{ type: 'text', text: `card ${CARD}` }] } },
          { type: 'document', source: { type: 'content', content: `phone ${PHONE}` } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0xLjQ=' } },
          { type: 'search_result', source: 'https://kb.example.com/1', title: 'KB', content: [{ type: 'text', text: `Contact ${EMAIL}` }] },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: `The user ${EMAIL} gave an SSN`, signature: 'sig' },
          { type: 'text', text: 'Let me look that up.' },
          {
            type: 'tool_use',
            id: 'toolu_1',
            name: 'lookup',
            input: { customer: { email: EMAIL, phones: [PHONE, 'none'] }, limit: 5, 'x-forwarded-for': IP, active: true },
          },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: `found: ${IBAN}` },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: `ssn ${SSN}` }, { type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] },
          { type: 'tool_result', tool_use_id: 'toolu_3', is_error: true },
        ],
      },
    ],
  };

  it('scans system, text, documents, search results, tool_use input leaves and tool results; not images, PDFs or thinking', () => {
    const result = run('anthropic.messages', params);
    expect(at(result)).toEqual([
      ['system[0].text', 'PHONE', 1],
      ['messages[0].content', 'EMAIL', 1],
      ['messages[1].content[0].text', 'SSN', 1],
      ['messages[1].content[2].source.data', 'EMAIL', 1],
      ['messages[1].content[2].context', 'IP', 1],
      ['messages[1].content[2].title', 'IBAN', 1],
      ['messages[1].content[3].source.content[0].text', 'CARD', 1],
      ['messages[1].content[4].source.content', 'PHONE', 1],
      ['messages[1].content[6].content[0].text', 'EMAIL', 1],
      ['messages[2].content[2].input.customer.email', 'EMAIL', 1],
      ['messages[2].content[2].input.customer.phones[0]', 'PHONE', 1],
      ['messages[2].content[2].input[*]', 'IP', 1],
      ['messages[3].content[0].content', 'IBAN', 1],
      ['messages[3].content[1].content[0].text', 'SSN', 1],
    ]);
  });

  it('redacts into a copy; signed thinking, images and PDFs are the caller’s objects', () => {
    const result = run('anthropic.messages', params);
    const out = result.params as any;
    const msgs = params.messages as any[];
    expect(out.system[0].text).toBe('Escalate to [PHONE]');
    expect(out.system[1]).toBe((params.system as any[])[1]);
    expect(out.metadata).toBe(params.metadata);
    expect(out.messages[1].content[1]).toBe(msgs[1].content[1]);
    expect(out.messages[1].content[5]).toBe(msgs[1].content[5]);
    expect(out.messages[2].content[0]).toBe(msgs[2].content[0]);
    expect(out.messages[2].content[2].input).toEqual({
      customer: { email: '[EMAIL]', phones: ['[PHONE]', 'none'] },
      limit: 5,
      'x-forwarded-for': '[IP]',
      active: true,
    });
    expect(out.messages[3].content[1].content[1]).toBe(msgs[3].content[1].content[1]);
    expect(out.messages[3].content[2]).toBe(msgs[3].content[2]);
  });

  it('scans a string system prompt', () => {
    const result = run('anthropic.messages', { model: 'm', max_tokens: 1, system: `Admin: ${EMAIL}`, messages: [] });
    expect(at(result)).toEqual([['system', 'EMAIL', 1]]);
    expect((result.params as any).system).toBe('Admin: [EMAIL]');
  });

  it('walks shared and cyclic tool_use inputs without looping', () => {
    const shared = { email: EMAIL };
    const cyclic: Record<string, unknown> = { note: `ip ${IP}`, a: shared, b: shared };
    cyclic['self'] = cyclic;
    const params = { model: 'm', max_tokens: 1, messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input: cyclic }] }] };
    const result = sanitizeRequest(messagesRequest, params, sanitizer, 'redact');
    const input = (result.params as any).messages[0].content[0].input;
    expect(input.note).toBe('ip [IP]');
    expect(input.a).toEqual({ email: '[EMAIL]' });
    expect(input.b).toBe(input.a);
    expect(cyclic['note']).toBe(`ip ${IP}`);
    expect(result.total).toBe(2);
  });

  it('stops at a bounded depth and leaves non-plain objects alone', () => {
    let deep: Record<string, unknown> = { email: EMAIL };
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const when = new Date(0);
    const params = {
      model: 'm',
      max_tokens: 1,
      messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input: { deep, when, top: EMAIL } }] }],
    };
    const result = sanitizeRequest(messagesRequest, params, sanitizer, 'redact');
    const input = (result.params as any).messages[0].content[0].input;
    expect(input.top).toBe('[EMAIL]');
    expect(input.when).toBe(when);
    expect(input.deep).toBe(deep);
  });
});

describe('odd input', () => {
  const kinds = ['openai.chat', 'openai.responses', 'openai.embeddings', 'anthropic.messages'];
  const odd: unknown[] = [
    undefined,
    null,
    42,
    'a@b.co',
    [EMAIL],
    {},
    { messages: 'a@b.co', input: 42, system: 7, instructions: null, prompt: 'x' },
    { messages: [null, 1, 'a@b.co', [], { role: 'user' }, { role: 'user', content: 5 }, { role: 'user', content: [null, 3, { type: 'text' }, { type: 'text', text: 9 }] }] },
    { input: [null, 'plain text', { type: 'message' }, { role: 'user', content: { text: EMAIL } }, { type: 'function_call', arguments: {} }, { type: 'function_call_output', output: 5 }] },
    { messages: [{ role: 'assistant', tool_calls: 'x', function_call: 'y' }, { role: 'assistant', tool_calls: [null, { function: null }, { type: 'custom', custom: 3 }] }] },
    { messages: [{ role: 'user', content: [{ type: 'document', source: null }, { type: 'tool_result', content: 5 }, { type: 'tool_use', input: null }] }] },
    { prompt: { variables: [EMAIL] }, prediction: 'x' },
  ];

  it.each(kinds)('%s never throws and leaves what it does not know untouched', (kind) => {
    for (const params of odd) {
      for (const mode of ['detect', 'redact'] as const) {
        const result = sanitizeRequest(kindOf(kind), params, sanitizer, mode);
        expect(result.params).toBe(params);
        expect(result.total).toBe(0);
        expect(result.findings).toEqual([]);
      }
    }
  });

  it('leaves an unknown kind untouched', () => {
    const params = { messages: [{ role: 'user', content: EMAIL }] };
    const result = sanitizeRequest(kindOf('openai.completions'), params, sanitizer, 'redact');
    expect(result).toEqual({ params, findings: [], total: 0 });
    expect(sanitizeRequest(kindOf('toString'), params, sanitizer, 'redact').params).toBe(params);
  });

  it('uses the sanitizer it is given (types, custom patterns, hook)', () => {
    const custom = createSanitizer({ types: ['EMAIL'], patterns: [{ type: 'ORDER', pattern: /\bORD-\d+\b/ }] });
    const result = sanitizeRequest(chatRequest, { model: 'm', messages: [{ role: 'user', content: `ORD-12 for ${EMAIL}, ${PHONE}` }] }, custom, 'redact');
    expect((result.params as any).messages[0].content).toBe(`[ORDER] for [EMAIL], ${PHONE}`);
  });
});
