import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/audit/canonical-json';
import {
  contentPayload,
  embeddingsInput,
  jsonSafe,
  outputMessages,
  requestContent,
  type ConvertOptions,
} from '../../../src/audit/content';
import type { RequestWalker } from '../../../src/core/types';
import { chatRequest, embeddingsRequest, responsesRequest } from '../../../src/instrumentations/openai/request';

// The OpenAI request shapes are defined by the provider's own walker (src/instrumentations/openai).
const openaiChatMessages = (messages: unknown, options?: ConvertOptions) => requestContent(chatRequest, { messages }, options).input_messages;
const openaiResponsesInput = (input: unknown) => requestContent(responsesRequest, { input }).input_messages;
const openaiResponsesInstructions = (instructions: unknown) => requestContent(responsesRequest, { instructions }).system_instructions;
const KINDS: Record<string, RequestWalker> = { 'openai.chat': chatRequest, 'openai.responses': responsesRequest, 'openai.embeddings': embeddingsRequest };
import { messagesRequest } from '../../../src/instrumentations/anthropic/request';

const PNG_B64 = Buffer.from('\x89PNG fake image bytes').toString('base64');
const sha = (b64: string) => createHash('sha256').update(Buffer.from(b64, 'base64')).digest('hex');

describe('OpenAI chat messages', () => {
  it('maps roles, text, tool calls and tool results to the conventions; system and developer messages are the system instructions', () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
      { role: 'user', content: 'Weather in Paris?', name: 'alice' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_2', type: 'custom', custom: { name: 'grep', input: 'rain' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      { role: 'assistant', content: [{ type: 'text', text: 'It is 21 C.' }, { type: 'refusal', refusal: 'no more' }] },
      { role: 'function', name: 'legacy_fn', content: 'legacy result' },
    ];
    expect(openaiChatMessages(messages)).toEqual([
      { role: 'user', name: 'alice', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
      {
        role: 'assistant',
        parts: [
          { type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { type: 'tool_call', id: 'call_2', name: 'grep', arguments: 'rain' },
        ],
      },
      { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: '{"temp":21}' }] },
      { role: 'assistant', parts: [{ type: 'text', content: 'It is 21 C.' }, { type: 'text', content: 'no more' }] },
      { role: 'tool', name: 'legacy_fn', parts: [{ type: 'tool_call_response', id: null, response: 'legacy result' }] },
    ]);
    // What llm_audit.system_prompt.hash covers (the system and developer messages), in order.
    expect(requestContent(chatRequest, { messages }).system_instructions).toEqual([
      { type: 'text', content: 'You are terse.' },
      { type: 'text', content: 'Use metric units.' },
    ]);
  });

  it('turns images, audio and files into uri / file / blob_digest parts (or blobs with binary: include)', () => {
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } },
          { type: 'input_audio', input_audio: { data: PNG_B64, format: 'wav' } },
          { type: 'file', file: { file_id: 'file-123', filename: 'report.pdf' } },
          { type: 'file', file: { file_data: `data:application/pdf;base64,${PNG_B64}`, filename: 'inline.pdf' } },
        ],
      },
    ];
    expect(openaiChatMessages(messages)[0]!.parts).toEqual([
      { type: 'uri', modality: 'image', uri: 'https://example.com/cat.png' },
      { type: 'blob_digest', modality: 'image', mime_type: 'image/png', sha256: sha(PNG_B64), bytes: Buffer.from(PNG_B64, 'base64').length },
      { type: 'blob_digest', modality: 'audio', mime_type: 'audio/wav', sha256: sha(PNG_B64), bytes: Buffer.from(PNG_B64, 'base64').length },
      { type: 'file', modality: 'document', file_id: 'file-123', filename: 'report.pdf' },
      { type: 'blob_digest', modality: 'document', mime_type: 'application/pdf', sha256: sha(PNG_B64), bytes: Buffer.from(PNG_B64, 'base64').length, filename: 'inline.pdf' },
    ]);
    expect(openaiChatMessages(messages, { binary: 'include' })[0]!.parts[1]).toEqual({ type: 'blob', modality: 'image', mime_type: 'image/png', content: PNG_B64 });
  });
});

describe('OpenAI Responses', () => {
  it('puts instructions in system_instructions and maps each input item to a message', () => {
    const params = {
      instructions: 'Answer in French.',
      input: [
        { role: 'user', content: 'Hi' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: 'https://x/y.jpg' }, { type: 'input_file', file_id: 'file-9' }] },
        { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'thinking about it' }], encrypted_content: 'OPAQUE' },
        { type: 'function_call', call_id: 'fc_1', name: 'lookup', arguments: '{"q":1}' },
        { type: 'function_call_output', call_id: 'fc_1', output: 'found' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Voilà', annotations: [] }] },
        { type: 'item_reference', id: 'msg_0' },
      ],
    };
    const out = requestContent(responsesRequest, params);
    expect(out.system_instructions).toEqual([{ type: 'text', content: 'Answer in French.' }]);
    expect(out.input_messages).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'Hi' }] },
      { role: 'user', parts: [{ type: 'text', content: 'What is this?' }, { type: 'uri', modality: 'image', uri: 'https://x/y.jpg' }, { type: 'file', modality: 'document', file_id: 'file-9' }] },
      { role: 'assistant', parts: [{ type: 'reasoning', content: 'thinking about it' }] },
      { role: 'assistant', parts: [{ type: 'tool_call', id: 'fc_1', name: 'lookup', arguments: '{"q":1}' }] },
      { role: 'tool', parts: [{ type: 'tool_call_response', id: 'fc_1', response: 'found' }] },
      { role: 'assistant', parts: [{ type: 'text', content: 'Voilà' }] },
      { role: 'unknown', parts: [{ type: 'unknown', provider_type: 'item_reference', value: { type: 'item_reference', id: 'msg_0' } }] },
    ]);
    expect(JSON.stringify(out)).not.toContain('OPAQUE');
  });

  it('accepts a plain string input and array instructions', () => {
    expect(openaiResponsesInput('Hello')).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'Hello' }] }]);
    expect(openaiResponsesInstructions([{ role: 'developer', content: 'be brief' }])).toEqual([{ type: 'text', content: 'be brief' }]);
    expect(openaiResponsesInstructions(null)).toBeUndefined();
  });
});

describe('Embeddings', () => {
  it('makes one user message whose parts are the inputs', () => {
    expect(embeddingsInput('one')).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'one' }] }]);
    expect(embeddingsInput(['a', 'b'])).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'a' }, { type: 'text', content: 'b' }] }]);
    expect(embeddingsInput([1, 2, 3])).toEqual([{ role: 'user', parts: [{ type: 'tokens', content: [1, 2, 3] }] }]);
    expect(embeddingsInput([[1, 2], [3]])).toEqual([{ role: 'user', parts: [{ type: 'tokens', content: [1, 2] }, { type: 'tokens', content: [3] }] }]);
  });
});

describe('Anthropic messages', () => {
  it('maps system blocks, tool use, tool results, thinking and documents', () => {
    const system = [{ type: 'text', text: 'You are Claude.', cache_control: { type: 'ephemeral' } }];
    const messages = [
      { role: 'user', content: 'Summarise this.' },
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
          { type: 'image', source: { type: 'url', url: 'https://x/a.png' } },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'doc body' }, title: 'Doc' },
          { type: 'document', source: { type: 'file', file_id: 'file_abc' } },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'let me see', signature: 'SIGNATURE' },
          { type: 'redacted_thinking', data: 'REDACTED_BLOB' },
          { type: 'text', text: 'Calling a tool.' },
          { type: 'tool_use', id: 'toolu_1', name: 'search', input: { q: 'cats' } },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '3 results' }], is_error: false }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'boom', is_error: true }] },
    ];
    expect(requestContent(messagesRequest, { system }).system_instructions).toEqual([{ type: 'text', content: 'You are Claude.' }]);
    expect(requestContent(messagesRequest, { system: 'plain' }).system_instructions).toEqual([{ type: 'text', content: 'plain' }]);
    const out = requestContent(messagesRequest, { messages }).input_messages;
    expect(out).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'Summarise this.' }] },
      {
        role: 'user',
        parts: [
          { type: 'blob_digest', modality: 'image', mime_type: 'image/png', sha256: sha(PNG_B64), bytes: Buffer.from(PNG_B64, 'base64').length },
          { type: 'uri', modality: 'image', uri: 'https://x/a.png' },
          { type: 'text', content: 'doc body', title: 'Doc' },
          { type: 'file', modality: 'document', file_id: 'file_abc' },
        ],
      },
      {
        role: 'assistant',
        parts: [
          { type: 'reasoning', content: 'let me see' },
          { type: 'reasoning', content: '', redacted: true },
          { type: 'text', content: 'Calling a tool.' },
          { type: 'tool_call', id: 'toolu_1', name: 'search', arguments: { q: 'cats' } },
        ],
      },
      { role: 'user', parts: [{ type: 'tool_call_response', id: 'toolu_1', response: [{ type: 'text', content: '3 results' }] }] },
      { role: 'user', parts: [{ type: 'tool_call_response', id: 'toolu_2', response: 'boom', is_error: true }] },
    ]);
    const text = JSON.stringify(out);
    expect(text).not.toContain('SIGNATURE');
    expect(text).not.toContain('REDACTED_BLOB');
  });
});

describe('tolerance', () => {
  const kinds: RequestWalker[] = [...Object.values(KINDS), messagesRequest];
  const cyclic: Record<string, unknown> = { type: 'mystery' };
  cyclic.self = cyclic;
  const throwing = Object.defineProperty({}, 'content', {
    get() {
      throw new Error('getter exploded');
    },
    enumerable: true,
  });
  const odd: unknown[] = [
    undefined,
    null,
    42,
    'text',
    [],
    { messages: 'not an array', input: 7, system: { weird: true } },
    { messages: [null, 3, 'str', { role: 5, content: { nested: 1n } }, { role: 'user', content: [cyclic, { type: 'text' }, NaN] }, throwing] },
    { input: [null, { type: 'function_call' }, { role: 'user', content: [{ type: 'input_image' }] }, throwing], instructions: 12 },
    { messages: [{ role: 'user', content: [{ type: 'tool_result', content: { a: Infinity } }, { type: 'image', source: { type: 'weird' } }] }], system: [1, { type: 'text', text: 2 }] },
  ];

  it('never throws, and always yields canonical-JSON-serializable output', () => {
    for (const kind of kinds) {
      for (const params of odd) {
        const payload = contentPayload(kind, params, [{ role: 'assistant', parts: [{ type: 'text', content: 'x' }, 'junk'], finish_reason: 'stop' }, null]);
        expect(() => canonicalJson(payload)).not.toThrow();
        expect(Array.isArray(payload.input_messages)).toBe(true);
      }
    }
  });

  it('keeps unknown parts as JSON under {type:"unknown", provider_type, value}', () => {
    const [message] = openaiChatMessages([{ role: 'user', content: [{ type: 'video_url', video_url: { url: 'https://v' } }, cyclic] }]);
    expect(message!.parts[0]).toEqual({ type: 'unknown', provider_type: 'video_url', value: { type: 'video_url', video_url: { url: 'https://v' } } });
    expect(message!.parts[1]).toEqual({ type: 'unknown', provider_type: 'mystery', value: { type: 'mystery', self: '[circular]' } });
    const [broken] = openaiChatMessages([throwing]);
    expect(broken!.role).toBe('unknown');
  });

  it('jsonSafe replaces what JSON cannot hold', () => {
    expect(jsonSafe({ a: 1n, b: NaN, c: () => 1, d: [undefined, Infinity], e: new Date(0), f: Buffer.from('hi') })).toEqual({
      a: '1',
      b: null,
      d: [null, null],
      e: '1970-01-01T00:00:00.000Z',
      f: { type: 'binary', sha256: createHash('sha256').update('hi').digest('hex'), bytes: 2 },
    });
  });

  it('passes instrumentation output messages through unchanged', () => {
    const output = [{ role: 'assistant', parts: [{ type: 'tool_call', id: 'c', name: 'f', arguments: '{}' }], finish_reason: 'tool_calls' }];
    expect(outputMessages(output)).toEqual(output);
    expect(outputMessages(undefined)).toBeUndefined();
  });
});
