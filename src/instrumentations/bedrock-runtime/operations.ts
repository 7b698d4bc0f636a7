/**
 * The Bedrock Runtime commands that send content but run no model generation:
 *
 * - `CountTokens`: the request a Converse or InvokeModel call would send (`input.converse`,
 *   `input.invokeModel.body`), walked by those operations' own walkers, so its hashes and
 *   redaction are theirs. Operation `count_tokens` (the GenAI conventions have none); the answer's
 *   `inputTokens` is `llm_audit.token_count`, not usage; AWS does not charge for it (cost 0).
 * - `ApplyGuardrail`: text (and images) checked by a guardrail without a model call. Operation
 *   `apply_guardrail`; the content is hashed (and redacted, and sealed) like a prompt (`source`
 *   `INPUT`) or an answer (`OUTPUT`); each finding of the answer's `assessments` is an
 *   `llm_audit.guardrail` event with `aws.bedrock.guardrail.id` and the stage, and an answer
 *   without findings is one `allowed` event (one `blocked` when the guardrail intervened without
 *   listing why), so the outcome is always on the record. The masked or blocked text the guardrail
 *   returns (`outputs`) is the call's output (output hash). Billed per text unit of each policy,
 *   which the price data does not cover: `unpriced`.
 */
import type { Attributes } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { ProviderGuardrail, RequestWalker, ResponseSummary } from '../../core/types';
import { tokenCountSummary } from '../../core/values';
import type { ContentParts, GenAIPart } from '../../audit/content/genai-messages';
import type { TextWalk } from '../../audit/sanitize';
import { contentBlock, converseWalker, isObj, readOnly, type Obj } from './converse';
import { BEDROCK_GUARDRAIL_NAME, assessmentEvents } from './guardrails';
import { invokeModelRequest } from './invoke-model';

/** `input.converse` through the Converse walker; `input.invokeModel` through InvokeModel's, with the command's model id. */
export const countTokensRequest: RequestWalker = {
  sanitize: (w, params) =>
    w.field(params, 'input', (input) => {
      if (!isObj(input)) return input;
      if (isObj(input['converse'])) return w.field(input, 'converse', (converse) => converseWalker.sanitize(w, converse as Obj));
      return w.field(input, 'invokeModel', (invoke) => {
        if (!isObj(invoke)) return invoke;
        const request = { ...invoke, modelId: params['modelId'] };
        const next = invokeModelRequest.sanitize(w, request);
        return next === request ? invoke : { ...invoke, body: next['body'] };
      });
    }),
  content(params, parts) {
    const input = isObj(params['input']) ? params['input'] : {};
    if (isObj(input['converse'])) return converseWalker.content(input['converse'], parts);
    if (isObj(input['invokeModel'])) return invokeModelRequest.content({ ...input['invokeModel'], modelId: params['modelId'] }, parts);
    return { input_messages: [{ role: 'unknown', parts: [parts.unknown(params['input'])] }] };
  },
};

/** CountTokens' answer: `inputTokens`. */
export function summarizeCountTokens(data: unknown): ResponseSummary {
  return tokenCountSummary(isObj(data) ? data['inputTokens'] : undefined);
}

const roleOf = (params: unknown): string => (isObj(params) && params['source'] === 'OUTPUT' ? 'assistant' : 'user');

/** ApplyGuardrail's `content`: `{ text: { text, qualifiers } }` and `{ image: ... }` blocks (the latter as Converse's). */
function walkGuardrailContent(w: TextWalk, params: Obj, parts: GenAIPart[], make?: ContentParts): Obj {
  return w.field(params, 'content', (blocks) =>
    Array.isArray(blocks)
      ? w.array(blocks, (block) => {
          if (isObj(block) && isObj(block['text'])) {
            return w.field(block, 'text', (text) => {
              const next = w.textField(text as Obj, 'text');
              parts.push(typeof next['text'] === 'string' ? { type: 'text', content: next['text'] } : { type: 'unknown', value: null });
              return next;
            });
          }
          return contentBlock(w, block, parts, make);
        })
      : blocks,
  );
}

export const applyGuardrailRequest: RequestWalker = {
  sanitize: (w, params) => walkGuardrailContent(w, params, []),
  content(params, make) {
    const parts: GenAIPart[] = [];
    walkGuardrailContent(readOnly, params, parts, make);
    return { input_messages: [{ role: roleOf(params), parts }] };
  },
};

/** The guardrail the request names. */
export function guardrailRequestAttributes(params: Obj, attributes: Attributes): void {
  const id = params['guardrailIdentifier'];
  if (typeof id === 'string') attributes[A.ATTR_AWS_BEDROCK_GUARDRAIL_ID] = id;
}

function guardrailOutcome(data: unknown, params: unknown): ProviderGuardrail[] {
  const id = isObj(params) && typeof params['guardrailIdentifier'] === 'string' ? params['guardrailIdentifier'] : 'unknown';
  const stage = isObj(params) && params['source'] === 'OUTPUT' ? 'output' : 'input';
  const events: ProviderGuardrail[] = [];
  const assessments = isObj(data) && Array.isArray(data['assessments']) ? data['assessments'] : [];
  for (const assessment of assessments) assessmentEvents(events, id, stage, assessment);
  const intervened = isObj(data) && data['action'] === 'GUARDRAIL_INTERVENED';
  const decided = events.some((event) => event.result.action === 'blocked' || event.result.action === 'modified');
  const attributes = { [A.ATTR_AWS_BEDROCK_GUARDRAIL_ID]: id, [A.ATTR_AUDIT_GUARDRAIL_STAGE]: stage };
  if (intervened && !decided) events.push({ result: { name: BEDROCK_GUARDRAIL_NAME, action: 'blocked', category: 'guardrail_intervened' }, attributes });
  if (!intervened && events.length === 0) events.push({ result: { name: BEDROCK_GUARDRAIL_NAME, action: 'allowed', category: 'none' }, attributes });
  return events;
}

/** ApplyGuardrail's answer: the outcome (as the finish reason and as guardrail events) and the text it returns. */
export function summarizeApplyGuardrail(data: unknown, params: unknown): ResponseSummary {
  const outputs = isObj(data) && Array.isArray(data['outputs']) ? data['outputs'] : [];
  const texts = outputs.flatMap((o) => (isObj(o) && typeof o['text'] === 'string' ? [{ type: 'text' as const, content: o['text'] }] : []));
  const action = isObj(data) && typeof data['action'] === 'string' ? data['action'] : undefined;
  return {
    finishReasons: action !== undefined ? [action] : [],
    output: texts.length > 0 ? [{ role: 'assistant', parts: texts }] : undefined,
    guardrails: guardrailOutcome(data, params),
  };
}

/**
 * `InvokeGuardrailChecks`: messages (`{ role: user | assistant | system, content: [{ text }] }`)
 * scored by inline checks (content filter, prompt attack, sensitive information) without a
 * configured guardrail or a model. Operation `apply_guardrail` as ApplyGuardrail's; the system
 * messages are the system instructions, the others the input. The answer scores, it does not
 * decide: each entry of its `results` is an `llm_audit.guardrail` event (`<check>.<category or
 * type>`, the score as `score`), `flagged` when the score is above 0, `allowed` at 0; the
 * entity offsets are not recorded. Billed per text unit of each check: `unpriced`.
 */
function walkCheckMessages(w: TextWalk, params: Obj, roles: { role: string; parts: GenAIPart[] }[]): Obj {
  return w.field(params, 'messages', (messages) =>
    Array.isArray(messages)
      ? w.array(messages, (message) => {
          if (!isObj(message)) return message;
          const parts: GenAIPart[] = [];
          roles.push({ role: typeof message['role'] === 'string' ? message['role'] : 'unknown', parts });
          return w.field(message, 'content', (blocks) =>
            Array.isArray(blocks)
              ? w.array(blocks, (block) => {
                  if (!isObj(block) || typeof block['text'] !== 'string') {
                    parts.push({ type: 'unknown', value: null });
                    return block;
                  }
                  const next = w.textField(block, 'text');
                  parts.push({ type: 'text', content: next['text'] as string });
                  return next;
                })
              : blocks,
          );
        })
      : messages,
  );
}

export const guardrailChecksRequest: RequestWalker = {
  sanitize: (w, params) => walkCheckMessages(w, params, []),
  content(params) {
    const messages: { role: string; parts: GenAIPart[] }[] = [];
    walkCheckMessages(readOnly, params, messages);
    const system = messages.filter((m) => m.role === 'system').flatMap((m) => m.parts);
    const input = messages.filter((m) => m.role !== 'system');
    return system.length > 0 ? { system_instructions: system, input_messages: input } : { input_messages: input };
  },
};

// Each check of the answer: where its entries name what they scored, and which field scores.
const CHECKS: ReadonlyArray<[check: string, label: string, score: string]> = [
  ['contentFilter', 'category', 'severityScore'],
  ['promptAttack', 'category', 'severityScore'],
  ['sensitiveInformation', 'type', 'confidenceScore'],
];

/** InvokeGuardrailChecks' answer: one guardrail event per scored entry, nothing of the text. */
export function summarizeGuardrailChecks(data: unknown): ResponseSummary {
  const results = isObj(data) && isObj(data['results']) ? data['results'] : {};
  const guardrails: ProviderGuardrail[] = [];
  for (const [check, label, scoreField] of CHECKS) {
    const section = results[check];
    const entries = isObj(section) && Array.isArray(section['results']) ? section['results'] : [];
    for (const entry of entries) {
      if (!isObj(entry)) continue;
      const score = entry[scoreField];
      const name = typeof entry[label] === 'string' ? entry[label] : 'unknown';
      guardrails.push({
        result: { name: BEDROCK_GUARDRAIL_CHECKS_NAME, action: typeof score === 'number' && score > 0 ? 'flagged' : 'allowed', category: `${check}.${name}`, ...(typeof score === 'number' ? { score } : {}) },
      });
    }
  }
  return { guardrails };
}

/** The guardrail event `name` of InvokeGuardrailChecks' scores (inline checks, no guardrail id). */
export const BEDROCK_GUARDRAIL_CHECKS_NAME = 'aws.bedrock.guardrail_checks';
