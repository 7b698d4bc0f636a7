/**
 * Asynchronous invocations (`StartAsyncInvoke`, `GetAsyncInvoke`, `ListAsyncInvokes`): a model
 * (Amazon Nova Reel, Luma Ray, TwelveLabs Marengo...) runs on `modelInput` in the background and
 * writes what it generates to the caller's S3 bucket.
 *
 * - `StartAsyncInvoke` sends the content: one record, operation `start_async_invoke`, with the
 *   model, the input hash over `modelInput` (the model's own JSON, whatever its shape: every
 *   string in it is scanned and redacted, and it is sealed whole as one part), the S3 location the
 *   output goes to, and the `invocationArn` the answer names, which the application (and an
 *   auditor, in Bedrock's own records) follows the job by. The output never comes back through
 *   this call, so the record has no output hash; billing is per generated second or image, which
 *   the price data does not cover: `unpriced`.
 * - `GetAsyncInvoke` / `ListAsyncInvokes` only poll by ARN (no content leaves): they make no
 *   record, and their requests are marked as made by an audited call so that the unaudited-request
 *   watcher neither reports nor refuses them (./index.ts).
 */
import type { Attributes } from '@opentelemetry/api';
import * as A from '../../semconv';
import type { RequestWalker, ResponseSummary } from '../../core/types';
import { isObj, unknownPart } from './converse';

export const asyncInvokeRequest: RequestWalker = {
  sanitize: (w, params) => w.field(params, 'modelInput', (input) => w.json(input)),
  content: (params) => ({ input_messages: [{ role: 'user', parts: [unknownPart(params['modelInput'])] }] }),
};

/** Where the output will be written: `outputDataConfig.s3OutputDataConfig.s3Uri`. */
export function asyncInvokeRequestAttributes(params: Record<string, unknown>, attributes: Attributes): void {
  const config = isObj(params['outputDataConfig']) ? params['outputDataConfig']['s3OutputDataConfig'] : undefined;
  if (isObj(config) && typeof config['s3Uri'] === 'string') attributes[A.ATTR_AWS_BEDROCK_ASYNC_INVOKE_OUTPUT_S3_URI] = config['s3Uri'];
}

/** The answer: `{ invocationArn }`. */
export function summarizeStartAsyncInvoke(data: unknown): ResponseSummary {
  const arn = isObj(data) ? data['invocationArn'] : undefined;
  return typeof arn === 'string' ? { attributes: { [A.ATTR_AWS_BEDROCK_ASYNC_INVOKE_ARN]: arn } } : {};
}

/** The commands that poll an asynchronous invocation: no content leaves, no record. */
export const ASYNC_INVOKE_POLLS: readonly string[] = ['GetAsyncInvokeCommand', 'ListAsyncInvokesCommand'];
