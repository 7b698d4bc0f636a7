// ESM entry point: the CommonJS build is the single implementation, so that an app mixing
// `import` and `require` shares one instrumentation and one audit context.
import cjs from '../cjs/index.js';

export const {
  LlmAuditInstrumentation,
  withAuditContext,
  getAuditContext,
  getAuditRequestId,
  recordGuardrail,
  blockRequest,
  LlmRequestBlockedError,
  UnauditedLlmRequestError,
  AuditError,
  isAuditError,
  ERROR_CODES,
  LlmAuditUnavailableError,
  auditTrailUnavailable,
  recordRetrieval,
  startAudit,
  shutdownAudit,
  auditSpanProcessors,
  semconv,
  auditClient,
} = cjs;
