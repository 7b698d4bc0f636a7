export { LlmAuditInstrumentation } from './instrumentation';
export type { LlmAuditInstrumentationConfig, ProviderId } from './instrumentation';
export { withAuditContext, getAuditContext } from './context';
export type { AuditContext } from './context';
export { getAuditRequestId } from './core/audited-call';
export { startAudit } from './sdk/start';
export type { StartedAudit } from './sdk/start';
export type { ModelPriceOverride } from './audit/cost';
export * as semconv from './semconv';
