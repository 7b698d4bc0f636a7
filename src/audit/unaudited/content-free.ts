/**
 * Requests to an LLM host that the watcher lets pass unrecorded: they send no prompt and receive
 * no output, so an unaudited one leaves nothing out of the audit trail.
 *
 * Only reads of a batch's status: `GET .../batches` (a page of the list) and `GET .../batches/{id}`
 * (OpenAI `/v1/batches`, Anthropic `/v1/messages/batches`, under any base path). Through the SDKs
 * they are audited calls anyway (light records, docs/attributes.md), but a list's later pages are
 * fetched by the SDK's page iterator outside the `list()` call, and a bare status poll is no gap
 * in the trail. What carries content or acts stays watched: a batch's results
 * (`/batches/{id}/results`), a file's content, a cancel or a delete.
 */
const BATCH_STATUS = /\/batches(?:\/[A-Za-z0-9_-]+)?$/;

/** Whether `method` `path` (without its query) is a content-free request. */
export function isContentFree(method: string, path: string): boolean {
  return method === 'GET' && BATCH_STATUS.test(path);
}
