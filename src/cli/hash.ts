/**
 * `llm-audit hash --messages FILE`: the keyed hashes of a request's prompt, computed by the
 * instrumentation's own code (the operation's `prompt()` split into system prompt and input, then
 * the ContentHasher over the canonical JSON), so that an incident responder holding a prompt can
 * show that it is, or is not, the one a record's `input_hash` stands for, without writing code.
 */
import { readFileSync } from 'node:fs';
import { hasherFromEnv } from '../audit/hashing';
import type { OperationSpec } from '../core/types';
import { LedgerError, fsError } from '../ledger/errors';
import { queryRecords } from '../ledger/query';
import type { LedgerRecord } from '../ledger/record';
import { writeRows } from './format';
import { oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

type Prompt = OperationSpec['prompt'];

/**
 * The operations whose prompt is hashed, by `llm_audit.action`, with the request field a bare
 * message list stands for. Loaded when asked for: each brings its provider's request reader.
 */
const OPERATIONS: Record<string, { field: string; prompt: () => Prompt }> = {
  'chat.completions.create': { field: 'messages', prompt: () => (require('../instrumentations/openai/index') as typeof import('../instrumentations/openai/index')).chatCompletions.prompt },
  'responses.create': { field: 'input', prompt: () => (require('../instrumentations/openai/index') as typeof import('../instrumentations/openai/index')).responses.prompt },
  'messages.create': { field: 'messages', prompt: () => (require('../instrumentations/anthropic') as typeof import('../instrumentations/anthropic')).anthropicMessagesSpec.prompt },
  'beta.messages.create': { field: 'messages', prompt: () => (require('../instrumentations/anthropic') as typeof import('../instrumentations/anthropic')).anthropicMessagesSpec.prompt },
  'models.generateContent': { field: 'contents', prompt: () => (require('../instrumentations/google-genai/request') as typeof import('../instrumentations/google-genai/request')).promptOf },
  'models.generateContentStream': { field: 'contents', prompt: () => (require('../instrumentations/google-genai/request') as typeof import('../instrumentations/google-genai/request')).promptOf },
  'chat.complete': { field: 'messages', prompt: () => (require('../instrumentations/mistral/request') as typeof import('../instrumentations/mistral/request')).promptOf },
  'chat.stream': { field: 'messages', prompt: () => (require('../instrumentations/mistral/request') as typeof import('../instrumentations/mistral/request')).promptOf },
  Converse: { field: 'messages', prompt: converse },
  ConverseStream: { field: 'messages', prompt: converse },
  // Vercel ai: the model's prompt as the provider package receives it (system and messages in one list).
  ...Object.fromEntries(
    ['generateText', 'streamText', 'generateObject', 'streamObject', 'experimental_streamTextLowMemory'].map((action) => [
      action,
      { field: 'prompt', prompt: () => (require('../instrumentations/vercel-ai/request') as typeof import('../instrumentations/vercel-ai/request')).promptForHash },
    ]),
  ),
};

function converse(): Prompt {
  const { promptFromContent } = require('../core/request-walk') as typeof import('../core/request-walk');
  const { converseWalker } = require('../instrumentations/bedrock-runtime/converse') as typeof import('../instrumentations/bedrock-runtime/converse');
  return promptFromContent(converseWalker);
}

const ACTIONS = Object.keys(OPERATIONS);

export const HASH_USAGE =
  `llm-audit hash --messages FILE [--action ${ACTIONS[0]}|...] [--request-id ID [--ledger DIR | --postgres URL]] [--format table|json]\n` +
  '  FILE: JSON, the request as the application passed it to the SDK method (an object), or only its message list (an array)\n' +
  '  the key is $LLM_AUDIT_HASH_KEY (and $LLM_AUDIT_HASH_KEY_ID), as the instrumentation reads it; without one the hashes are plain SHA-256\n' +
  '  --request-id: compare with that record (its action is used): exit 0 when the input hash matches, 1 when it does not\n' +
  `  actions: ${ACTIONS.join(', ')}\n` +
  "  (Vercel ai's actions take the model's prompt list as the provider package receives it, the system message in it)";

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw fsError(error, 'cannot read the messages', file);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new LedgerError('LEDGER_USAGE', `${file} is not JSON: ${(error as Error).message}`);
  }
}

export async function hashCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(
    argv,
    { messages: { type: 'string' }, action: { type: 'string' }, 'request-id': { type: 'string' }, format: { type: 'string' }, ledger: { type: 'string' }, ...POSTGRES_OPTION },
    HASH_USAGE,
  );
  const file = str(p, 'messages');
  if (file === undefined) throw new LedgerError('LEDGER_USAGE', `--messages FILE is required\nusage: ${HASH_USAGE}`);
  const format = oneOf(str(p, 'format'), ['table', 'json'] as const, '--format', 'table');
  const requestId = str(p, 'request-id');
  let recorded: LedgerRecord | undefined;
  if (requestId !== undefined) {
    recorded = await withSource(p, io, async (source) => {
      for await (const hit of queryRecords(source, { requestId })) return hit.record;
      throw new LedgerError('LEDGER_RECORD_NOT_FOUND', `${source.name} holds no record with request id ${JSON.stringify(requestId)}`);
    });
  }
  const action = oneOf(str(p, 'action') ?? recorded?.action ?? undefined, ACTIONS, '--action', ACTIONS[0]!);
  const operation = OPERATIONS[action]!;
  const body = readJson(file);
  const params = Array.isArray(body) ? { [operation.field]: body } : body;
  if (params === null || typeof params !== 'object') throw new LedgerError('LEDGER_USAGE', `${file} must hold a request object or a message list`);
  // The key exactly as the instrumentation reads it; a malformed one is a usage error here.
  let hasher;
  try {
    hasher = hasherFromEnv(io.env);
  } catch (error) {
    throw new LedgerError('LEDGER_USAGE', (error as Error).message);
  }
  if (!hasher.keyed) io.err('note: LLM_AUDIT_HASH_KEY is not set: these are plain SHA-256 hashes, which match only records of an unkeyed instrumentation');
  const { system, input } = operation.prompt()(params);
  const computed = {
    system_prompt_hash: system === undefined ? null : hasher.hash(system),
    input_hash: input === undefined ? null : hasher.hash(input),
  };
  const rows = (['system_prompt_hash', 'input_hash'] as const).map((field) => ({
    field,
    computed: computed[field],
    ...(recorded ? { recorded: recorded[field], match: recorded[field] === computed[field] } : {}),
  }));
  if (format === 'json') await io.out(JSON.stringify({ action, key_id: hasher.keyId ?? null, ...(requestId ? { request_id: requestId } : {}), hashes: rows }, null, 2) + '\n');
  else await writeRows(io, 'table', recorded ? ['field', 'computed', 'recorded', 'match'] : ['field', 'computed'], rows);
  if (!recorded) return 0;
  const same = recorded.input_hash !== null && recorded.input_hash === computed.input_hash;
  const keyOf = (h: string | null) => (h?.startsWith('hmac-sha256:') ? h.split(':')[1] : h?.startsWith('sha256:') ? '(none: unkeyed)' : undefined);
  const recordedKey = keyOf(recorded.input_hash);
  io.err(
    same
      ? `MATCH: this input is the one recorded for request ${requestId} (${action})`
      : recorded.input_hash === null
        ? `NO HASH: request ${requestId} recorded no input hash`
        : `DIFFERENT: this input is not the one recorded for request ${requestId}` +
          (recordedKey !== undefined && recordedKey !== keyOf(computed.input_hash) ? ` (and the record was hashed with key id ${recordedKey}, not ${keyOf(computed.input_hash)})` : ''),
  );
  return same ? 0 : 1;
}
