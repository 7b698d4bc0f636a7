// ESM entry point of `otel-llm-audit/sdk`, over the CommonJS build (see index.mjs for why).
import cjs from '../cjs/sdk.js';

export const { startAudit, shutdownAudit, auditSpanProcessors, exporterFromEnv } = cjs;
