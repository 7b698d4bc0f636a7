/**
 * `node --require otel-llm-audit/register app.js`: starts OpenTelemetry with the audit
 * instrumentation before the application loads its LLM SDKs. (ESM apps use
 * `--import otel-llm-audit/register`, which installs the loader hook first; see src/esm/register.mjs.)
 *
 * A configuration error stops the process here, at startup, with one clear line: running without
 * the audit trail the operator asked for would be the worse failure.
 */
import { startAudit } from './sdk/start';

try {
  startAudit();
} catch (error) {
  process.stderr.write(`otel-llm-audit: configuration error: ${(error as Error).message}\n`);
  process.exit(78); // EX_CONFIG
}
