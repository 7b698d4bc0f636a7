/**
 * The audited Anthropic operations: `messages.create` (its `stream` / `parse` helpers name
 * themselves), `messages.countTokens`, `messages.batches.create`, and the same under `beta.`.
 * A batch's results are recorded as they are read (./batches.ts).
 */
import * as A from '../../semconv';
import type { Attributes } from '@opentelemetry/api';
import type { OperationSpec, ResponseSummary } from '../../core/types';
import { setRequestSettings, tokenCountSummary } from '../../core/values';
import { batchListSummary, batchPollingSpec } from '../../core/batches';
import { batchRequest, messagesRequest, promptOf } from './request';
import { MessageStreamAccumulator, summarizeMessage } from './response';

type Obj = Record<string, unknown>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `messages.create`; its request attributes and response mapping serve Claude on Bedrock too (InvokeModel). */
export const anthropicMessagesSpec: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.anthropic,
  operationName: 'chat',
  action: 'messages.create',
  requestKind: messagesRequest,
  isStream: (params) => params?.stream === true,
  requestAttributes(params, attributes) {
    setRequestSettings(attributes, { maxTokens: params.max_tokens, temperature: params.temperature, topP: params.top_p, topK: params.top_k, stop: params.stop_sequences });
  },
  prompt: promptOf,
  summarize: summarizeMessage,
  accumulator: () => new MessageStreamAccumulator(),
};

/** `beta.messages.create`: the messages API with beta features switched on, recorded as its own action. */
export const betaMessagesSpec: OperationSpec = { ...anthropicMessagesSpec, action: 'beta.messages.create' };

/**
 * `messages.countTokens`: the whole request (system, messages, tools) goes to the provider, so it is
 * a record with the same hashes as the call it sizes. The GenAI conventions have no operation for
 * it: `count_tokens`. No tokens are consumed and Anthropic does not charge for it, so the answer's
 * count is `llm_audit.token_count` (never `gen_ai.usage.*`, which sums consumption) and the cost 0.
 */
export const countTokensSpec: OperationSpec = {
  ...anthropicMessagesSpec,
  operationName: 'count_tokens',
  action: 'messages.countTokens',
  isStream: () => false,
  requestAttributes: () => undefined,
  pricing: 'free',
  summarize: (data) => tokenCountSummary(isObj(data) ? data.input_tokens : undefined),
};

export const betaCountTokensSpec: OperationSpec = { ...countTokensSpec, action: 'beta.messages.countTokens' };

function batchRequests(params: unknown): unknown[] {
  return isObj(params) && Array.isArray(params.requests) ? params.requests : [];
}

/**
 * `messages.batches.create`: one record for the batch (operation `create_batch`, which the
 * conventions do not name), its input hash over all `requests`, and per request its `custom_id` and
 * the hashes the same request sent directly would carry (ResponseSummary.batch, src/core/batches.ts:
 * remembered under the batch id, so that each result read in this process is linked to its
 * request). Creating a batch is not charged (cost 0): each result is, and is priced on its own
 * record when the results are read.
 */
export const batchCreateSpec: OperationSpec = {
  provider: A.GEN_AI_PROVIDER.anthropic,
  operationName: 'create_batch',
  action: 'messages.batches.create',
  requestKind: batchRequest,
  isStream: () => false,
  // The model when every request names the same one; a mixed batch names none here (each result does).
  requestModel(params) {
    const models = new Set(batchRequests(params).map((r) => (isObj(r) && isObj(r.params) ? r.params.model : undefined)));
    const [model] = models;
    return models.size === 1 && typeof model === 'string' ? model : undefined;
  },
  requestAttributes: () => undefined,
  prompt: (params) => ({ input: batchRequests(params) }),
  pricing: 'free',
  // `params`: the requests as sent (redacted where redaction applies).
  summarize: (data, params) => {
    const summary = batchSummary(data);
    const items = batchRequests(params).map((r) => {
      const item = isObj(r) ? r : {};
      const model = isObj(item.params) ? item.params.model : undefined;
      return { id: typeof item.custom_id === 'string' ? item.custom_id : undefined, model: typeof model === 'string' ? model : undefined, ...promptOf(item.params) };
    });
    return { ...summary, batch: { items, key: summary.id } };
  },
  accumulator: () => new MessageStreamAccumulator(),
};

export const betaBatchCreateSpec: OperationSpec = { ...batchCreateSpec, action: 'beta.messages.batches.create' };

/** A Message Batch object: its id and processing status (`in_progress`, `canceling`, `ended`). */
function batchSummary(data: unknown): ResponseSummary {
  const id = isObj(data) && typeof data.id === 'string' ? data.id : undefined;
  if (id === undefined) return {};
  const attributes: Attributes = { [A.ATTR_AUDIT_BATCH_ID]: id };
  if (isObj(data) && typeof data.processing_status === 'string') attributes[A.ATTR_AUDIT_BATCH_STATUS] = data.processing_status;
  return { id, attributes };
}

/**
 * Polling, cancelling and deleting a batch, by method, for `messages.batches` (`prefix` '') and
 * `beta.messages.batches`: light records (core/batches.ts batchPollingSpec). The later pages of
 * `list` (fetched by the SDK's page iterator outside the call) are let through by the
 * unaudited-request watcher as content-free.
 */
export function batchPollingSpecs(prefix: '' | 'beta.'): Record<'retrieve' | 'list' | 'cancel' | 'delete', OperationSpec> {
  const spec = (operationName: string, method: string, summarize: OperationSpec['summarize']) => batchPollingSpec(batchCreateSpec, operationName, `${prefix}messages.batches.${method}`, summarize);
  return {
    retrieve: spec('retrieve_batch', 'retrieve', batchSummary),
    list: spec('list_batches', 'list', (page) => batchListSummary(page)),
    cancel: spec('cancel_batch', 'cancel', batchSummary),
    delete: spec('delete_batch', 'delete', batchSummary),
  };
}
