import { diag, type Attributes } from '@opentelemetry/api';
import { startAuditSpan } from './core/audit-records';
import { pendingRetrievals, type Retrieval } from './context';
import { currentCall } from './guardrails';
import * as A from './semconv';

/** Attributes of a `llm_audit.retrieval` event: which documents fed the prompt (ids, never text). */
export function retrievalAttributes(retrieval: Retrieval): Attributes {
  const attributes: Attributes = { [A.ATTR_AUDIT_RAG_DOCUMENT_IDS]: retrieval.documentIds.map(String) };
  if (retrieval.source !== undefined) attributes[A.ATTR_AUDIT_RAG_SOURCE] = String(retrieval.source);
  if (Array.isArray(retrieval.scores) && retrieval.scores.every((s) => typeof s === 'number' && Number.isFinite(s))) {
    attributes[A.ATTR_AUDIT_RAG_SCORES] = retrieval.scores;
  }
  return attributes;
}

/**
 * Records the documents a retrieval step found for the prompt: on the LLM call whose hook is
 * running; else on the next LLM call made in the same {@link withAuditContext} scope; else (no
 * scope to carry it) as an audit span of its own, so that the ids still reach the audit trail.
 */
export function recordRetrieval(retrieval: Retrieval): void {
  try {
    if (!Array.isArray(retrieval?.documentIds)) {
      diag.warn(`otel-llm-audit: recordRetrieval needs documentIds (an array); got ${JSON.stringify(retrieval)}`);
      return;
    }
    const call = currentCall();
    if (call !== undefined) {
      call.addRetrieval(retrieval);
      return;
    }
    const pending = pendingRetrievals();
    if (pending !== undefined) {
      pending.push(retrieval);
      return;
    }
    diag.debug('otel-llm-audit: recordRetrieval outside withAuditContext: recorded on a span of its own');
    const span = startAuditSpan('retrieval', { [A.ATTR_AUDIT_ACTION]: 'retrieval', [A.ATTR_AUDIT_STATUS]: A.AUDIT_STATUS.success });
    span.setAttribute(A.ATTR_AUDIT_RAG_DOCUMENT_IDS, retrieval.documentIds.map(String));
    span.addEvent(A.EVENT_AUDIT_RETRIEVAL, retrievalAttributes(retrieval));
    span.end();
  } catch (error) {
    diag.error('otel-llm-audit: recordRetrieval failed', error);
  }
}
