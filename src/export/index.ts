/** The durable local spool for OTLP export: see docs/spool.md. */
export { spoolConfigFromEnv, DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_BYTES, type SpoolConfig } from './config';
export { SpoolDirectory } from './spool-dir';
export { SpoolingSpanProcessor, type SpoolingSpanProcessorOptions } from './spooling-span-processor';
export { SpoolTelemetry, type DropReason } from './telemetry';
export { encodeSpoolFile, decodeSpoolFile, readSpoolFile, SpoolFileError, SPOOL_FORMAT, SPOOL_VERSION } from './spool-file';
export { tracePipeline, otlpTraceExporter, type TracePipeline } from './from-env';
