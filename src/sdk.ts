/**
 * `otel-llm-audit/sdk`: starting the audit pipeline yourself (what `register` does) or adding its
 * span processors to your own NodeSDK. The main entry exports the same functions, loading this half
 * on first use (./sdk/lazy.ts).
 */
export { startAudit, shutdownAudit, auditSpanProcessors, exporterFromEnv } from './sdk/start';
export type { StartedAudit, AuditExporter } from './sdk/start';
