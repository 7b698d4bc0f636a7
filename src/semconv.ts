/**
 * Every attribute, event and metric name this package writes, in one place.
 *
 * The `gen_ai.*` names follow the OpenTelemetry GenAI semantic conventions (development status,
 * as published in @opentelemetry/semantic-conventions 1.45 `experimental_attributes`). They are
 * spelled out here rather than imported from the `incubating` entry point because that entry point
 * is explicitly unstable and pulls thousands of unrelated constants into the hot path's module.
 * docs/attributes.md documents every name below; keep the two in step.
 */

// --- GenAI semantic conventions: request -------------------------------------------------------
export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
/**
 * The `gen_ai.provider.name` values this package knows, by a short key: the one table they come
 * from (the SDK patches, the built-in hosts, the client classes, the Vercel AI SDK's provider ids,
 * the price aliases name them through it; `ProviderName` in core/types.ts derives from it). The
 * conventions' name where they list the provider, else the provider's id in @pydantic/genai-prices,
 * so that such a call is priced with that provider's prices. Any other name (the operator's
 * LLM_AUDIT_PROVIDER_HOSTS, a Vercel AI SDK provider) is recorded as given.
 */
export const GEN_AI_PROVIDER = {
  openai: 'openai',
  azureOpenai: 'azure.ai.openai',
  azureAiInference: 'azure.ai.inference',
  anthropic: 'anthropic',
  gemini: 'gcp.gemini',
  vertexAi: 'gcp.vertex_ai',
  gcpGenAi: 'gcp.gen_ai',
  bedrock: 'aws.bedrock',
  mistral: 'mistral_ai',
  groq: 'groq',
  deepseek: 'deepseek',
  xai: 'x_ai',
  perplexity: 'perplexity',
  openrouter: 'openrouter',
  together: 'together',
  fireworks: 'fireworks',
  cerebras: 'cerebras',
} as const;
export type KnownProviderName = (typeof GEN_AI_PROVIDER)[keyof typeof GEN_AI_PROVIDER];
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens';
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature';
export const ATTR_GEN_AI_REQUEST_TOP_P = 'gen_ai.request.top_p';
export const ATTR_GEN_AI_REQUEST_TOP_K = 'gen_ai.request.top_k';
export const ATTR_GEN_AI_REQUEST_FREQUENCY_PENALTY = 'gen_ai.request.frequency_penalty';
export const ATTR_GEN_AI_REQUEST_PRESENCE_PENALTY = 'gen_ai.request.presence_penalty';
export const ATTR_GEN_AI_REQUEST_STOP_SEQUENCES = 'gen_ai.request.stop_sequences';
export const ATTR_GEN_AI_REQUEST_SEED = 'gen_ai.request.seed';
export const ATTR_GEN_AI_REQUEST_CHOICE_COUNT = 'gen_ai.request.choice.count';
export const ATTR_GEN_AI_REQUEST_STREAM = 'gen_ai.request.stream';
export const ATTR_GEN_AI_REQUEST_ENCODING_FORMATS = 'gen_ai.request.encoding_formats';
export const ATTR_GEN_AI_OUTPUT_TYPE = 'gen_ai.output.type';
export const ATTR_GEN_AI_CONVERSATION_ID = 'gen_ai.conversation.id';

// --- GenAI semantic conventions: response and usage --------------------------------------------
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id';
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = 'gen_ai.response.time_to_first_chunk';
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.usage.cache_read.input_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = 'gen_ai.usage.cache_write.input_tokens';
/**
 * The name the conventions used before open-telemetry/semantic-conventions-genai renamed it
 * `cache_write`; emitted beside the new one, with the same value, while backends migrate.
 */
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = 'gen_ai.usage.cache_creation.input_tokens';
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = 'gen_ai.usage.reasoning.output_tokens';
export const ATTR_GEN_AI_EMBEDDINGS_DIMENSION_COUNT = 'gen_ai.embeddings.dimension.count';
export const ATTR_GEN_AI_OPENAI_RESPONSE_SERVICE_TIER = 'gen_ai.openai.response.service_tier';
export const ATTR_GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT = 'gen_ai.openai.response.system_fingerprint';
export const ATTR_GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';

// Cost is not (yet) in the GenAI conventions; these names follow their `gen_ai.usage.*` style.
export const ATTR_GEN_AI_USAGE_COST_AMOUNT = 'gen_ai.usage.cost.amount';
export const ATTR_GEN_AI_USAGE_COST_CURRENCY = 'gen_ai.usage.cost.currency';
export const ATTR_GEN_AI_USAGE_COST_SOURCE = 'gen_ai.usage.cost.source';

// Raw content attributes of the conventions. This package never writes them in plaintext; they are
// listed so that the exporters' guard and the collector config can name them.
export const RAW_CONTENT_ATTRIBUTES = [
  'gen_ai.input.messages',
  'gen_ai.output.messages',
  'gen_ai.system_instructions',
  'gen_ai.tool.call.arguments',
  'gen_ai.tool.call.result',
  'gen_ai.prompt',
  'gen_ai.completion',
] as const;

// --- General conventions ------------------------------------------------------------------------
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_USER_ID = 'user.id';
export const ATTR_SESSION_ID = 'session.id';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
/** The request path, never the query string (which can hold API keys). */
export const ATTR_URL_PATH = 'url.path';
/** The end user's client (withAuditContext), as LLM_AUDIT_CLIENT_ADDRESS allows: full, truncated or hashed. */
export const ATTR_CLIENT_ADDRESS = 'client.address';
export const ATTR_USER_AGENT_ORIGINAL = 'user_agent.original';
/** Resource attributes the audit record keeps (which application, where). */
export const RESOURCE_SERVICE_NAME = 'service.name';
export const RESOURCE_SERVICE_NAMESPACE = 'service.namespace';
export const RESOURCE_SERVICE_VERSION = 'service.version';
export const RESOURCE_SERVICE_INSTANCE_ID = 'service.instance.id';
export const RESOURCE_DEPLOYMENT_ENVIRONMENT = 'deployment.environment.name';
/** The name before semantic conventions 1.27; read when the new one is absent. */
export const RESOURCE_DEPLOYMENT_ENVIRONMENT_OLD = 'deployment.environment';

// --- Audit attributes (this package) ------------------------------------------------------------
export const ATTR_AUDIT_TENANT_ID = 'llm_audit.tenant.id';
export const ATTR_AUDIT_METADATA_PREFIX = 'llm_audit.metadata.';
export const ATTR_AUDIT_REQUEST_ID = 'llm_audit.request_id';
export const ATTR_AUDIT_ACTION = 'llm_audit.action';
export const ATTR_AUDIT_STATUS = 'llm_audit.status';
/** On an audit record: whether a Collector should also send it to the tracing backend (see core/audit-records.ts). */
export const ATTR_AUDIT_TRACE_FORWARD = 'llm_audit.trace.forward';
/** On a trace span whose audit record is written apart: this span is a copy for tracing, not the record. */
export const ATTR_AUDIT_TRACE_COPY = 'llm_audit.trace_copy';
export const ATTR_AUDIT_SYSTEM_PROMPT_HASH = 'llm_audit.system_prompt.hash';
export const ATTR_AUDIT_INPUT_HASH = 'llm_audit.input.hash';
export const ATTR_AUDIT_OUTPUT_HASH = 'llm_audit.output.hash';
export const ATTR_AUDIT_COST_STATUS = 'llm_audit.cost.status';
export const ATTR_AUDIT_USAGE_STATUS = 'llm_audit.usage.status';
export const ATTR_AUDIT_ERROR_MESSAGE = 'llm_audit.error.message';
export const ATTR_AUDIT_TOOL_NAMES = 'llm_audit.tool.names';
export const ATTR_AUDIT_STREAM_OUTCOME = 'llm_audit.stream.outcome';
/** Written by sanitization and guardrails (issue 6); the ledger already reads them. */
export const ATTR_AUDIT_SANITIZATION_COUNT = 'llm_audit.sanitization.count';
export const ATTR_AUDIT_SANITIZATION_MODE = 'llm_audit.sanitization.mode';
export const EVENT_AUDIT_SANITIZATION = 'llm_audit.sanitization';
export const ATTR_AUDIT_SANITIZATION_TYPE = 'llm_audit.sanitization.type';
export const ATTR_AUDIT_SANITIZATION_LOCATION = 'llm_audit.sanitization.location';
export const ATTR_AUDIT_RAG_DOCUMENT_IDS = 'llm_audit.rag.document_ids';
export const ATTR_AUDIT_RAG_SOURCE = 'llm_audit.rag.source';
export const ATTR_AUDIT_RAG_SCORES = 'llm_audit.rag.scores';
export const EVENT_AUDIT_RETRIEVAL = 'llm_audit.retrieval';
/** Call ids of the tool calls the model requested, in the order of `llm_audit.tool.names`. */
export const ATTR_AUDIT_TOOL_CALL_IDS = 'llm_audit.tool.call_ids';
/**
 * The call's content (system prompt, input and output messages in the GenAI conventions' shapes) as
 * an AES-256-GCM envelope; only with LLM_AUDIT_CONTENT=encrypted (docs/content-encryption.md).
 */
export const ATTR_AUDIT_CONTENT_ENCRYPTED = 'llm_audit.content.encrypted';
/** Why a guardrail blocked the call (`llm_audit.status` = `blocked`). */
export const ATTR_AUDIT_BLOCK_REASON = 'llm_audit.block.reason';
export const EVENT_AUDIT_GUARDRAIL = 'llm_audit.guardrail';
/** The GenAI conventions' AWS Bedrock attribute: the guardrail a request named (span) or that decided (guardrail event). */
export const ATTR_AWS_BEDROCK_GUARDRAIL_ID = 'aws.bedrock.guardrail.id';
/** Which side a provider's guardrail assessed: `input` (the prompt) or `output` (the answer). */
export const ATTR_AUDIT_GUARDRAIL_STAGE = 'llm_audit.guardrail.stage';
/** OpenAI audio transcriptions and translations: the language heard and the audio's length in seconds, as the API reports them. */
export const ATTR_AUDIT_AUDIO_LANGUAGE = 'llm_audit.audio.language';
export const ATTR_AUDIT_AUDIO_DURATION = 'llm_audit.audio.duration';
/**
 * The audio and image parts of `gen_ai.usage.input_tokens` / `output_tokens` (and of the cache
 * reads), where the provider reports them (OpenAI Realtime): they are priced at their own rates.
 */
export const ATTR_AUDIT_USAGE_INPUT_AUDIO_TOKENS = 'llm_audit.usage.input_audio_tokens';
export const ATTR_AUDIT_USAGE_CACHE_READ_AUDIO_TOKENS = 'llm_audit.usage.cache_read_audio_tokens';
export const ATTR_AUDIT_USAGE_OUTPUT_AUDIO_TOKENS = 'llm_audit.usage.output_audio_tokens';
export const ATTR_AUDIT_USAGE_INPUT_IMAGE_TOKENS = 'llm_audit.usage.input_image_tokens';
export const ATTR_AUDIT_USAGE_CACHE_READ_IMAGE_TOKENS = 'llm_audit.usage.cache_read_image_tokens';
/**
 * OpenAI Realtime (src/instrumentations/openai/realtime.ts). On a response record: the request id
 * of its session's record, who started the response (`client`: a response.create the app sent;
 * `server`: the server's voice activity detection), and the response's own status
 * (completed, cancelled, failed, incomplete) with its reason. On the session record: how many
 * responses it had, how many `error` events the server sent, how many sends the audit refused,
 * and the WebSocket close code.
 */
export const ATTR_AUDIT_REALTIME_SESSION_REQUEST_ID = 'llm_audit.realtime.session.request_id';
export const ATTR_AUDIT_REALTIME_TRIGGER = 'llm_audit.realtime.response.trigger';
export const ATTR_AUDIT_REALTIME_RESPONSE_STATUS = 'llm_audit.realtime.response.status';
export const ATTR_AUDIT_REALTIME_STATUS_REASON = 'llm_audit.realtime.response.status_reason';
export const ATTR_AUDIT_REALTIME_RESPONSES = 'llm_audit.realtime.session.responses';
export const ATTR_AUDIT_REALTIME_ERRORS = 'llm_audit.realtime.session.errors';
export const ATTR_AUDIT_REALTIME_REFUSED = 'llm_audit.realtime.session.refused_sends';
export const ATTR_AUDIT_REALTIME_CLOSE_CODE = 'llm_audit.realtime.session.close_code';
/** An `error` event the Realtime server sent that no response of the session owns: its type, code and message (scrubbed). */
export const EVENT_AUDIT_REALTIME_ERROR = 'llm_audit.realtime.error';
/**
 * Batches (OpenAI, Anthropic; src/core/batches.ts): the batch id, how many requests it holds, and
 * the input hash of each (in file or request order, each as `llm_audit.input.hash` would be for
 * the same request sent alone); see docs/attributes.md.
 */
export const ATTR_AUDIT_BATCH_ID = 'llm_audit.batch.id';
export const ATTR_AUDIT_BATCH_REQUEST_COUNT = 'llm_audit.batch.request_count';
export const ATTR_AUDIT_BATCH_REQUEST_HASHES = 'llm_audit.batch.request.input_hashes';
/**
 * Whether a record is linked to the requests' hashes: a batch record (`file`: its input file was
 * uploaded in this process; `unlinked`), a result record (`request`: its request was sent from
 * this process, the record carries its hashes; `unlinked`).
 */
export const ATTR_AUDIT_BATCH_LINK = 'llm_audit.batch.link';
/** A batch's status as the provider last reported it (`batches.retrieve`..., Anthropic `processing_status`). */
export const ATTR_AUDIT_BATCH_STATUS = 'llm_audit.batch.status';
/** OpenAI: the files a batch's results are in, once it has ended. */
export const ATTR_AUDIT_BATCH_OUTPUT_FILE_ID = 'llm_audit.batch.output_file_id';
export const ATTR_AUDIT_BATCH_ERROR_FILE_ID = 'llm_audit.batch.error_file_id';
/** A batch results file read back (`files.content`): how many result lines it holds, each a record of its own. */
export const ATTR_AUDIT_BATCH_RESULT_COUNT = 'llm_audit.batch.result_count';
/** `batches.list`: how many batches the page named. */
export const ATTR_AUDIT_BATCH_LISTED_COUNT = 'llm_audit.batch.listed_count';
/** An uploaded file: its id and the hash of its bytes (keyed like the other hashes). */
export const ATTR_AUDIT_FILE_ID = 'llm_audit.file.id';
export const ATTR_AUDIT_FILE_HASH = 'llm_audit.file.hash';
/** The files a multipart call uploaded (audio, images): a keyed hash of each one's bytes, in field order. */
export const ATTR_AUDIT_FILE_HASHES = 'llm_audit.file.hashes';
/** The AWS SDK conventions' request id (`x-amzn-RequestId`): what Bedrock invocation logs and CloudTrail carry. */
export const ATTR_AWS_REQUEST_ID = 'aws.request_id';
/** Bedrock StartAsyncInvoke: the invocation the answer names (what GetAsyncInvoke and Bedrock's own records follow) and where its output is written. */
/** Bedrock InvokeModelWithBidirectionalStream: the completions the session's answer started (completionStart events). */
export const ATTR_AUDIT_BEDROCK_COMPLETIONS = 'llm_audit.bedrock.bidirectional.completions';
export const ATTR_AWS_BEDROCK_ASYNC_INVOKE_ARN = 'aws.bedrock.async_invoke.arn';
export const ATTR_AWS_BEDROCK_ASYNC_INVOKE_OUTPUT_S3_URI = 'aws.bedrock.async_invoke.output_s3_uri';
export const ATTR_AUDIT_GUARDRAIL_PREFIX = 'llm_audit.guardrail.';
/** An application audit event (recordAuditEvent, src/audit-events.ts); its type is also `llm_audit.action`. */
export const ATTR_AUDIT_EVENT_TYPE = 'llm_audit.event.type';
export const ATTR_AUDIT_EVENT_OUTCOME = 'llm_audit.event.outcome';
export const ATTR_AUDIT_EVENT_TARGET = 'llm_audit.event.target';
/** The reason with PII and secrets redacted; `.hash`: the keyed hash of the reason as given. */
export const ATTR_AUDIT_EVENT_REASON = 'llm_audit.event.reason';
export const ATTR_AUDIT_EVENT_REASON_HASH = 'llm_audit.event.reason.hash';
export const ATTR_AUDIT_EVENT_DETAILS_PREFIX = 'llm_audit.event.details.';
/**
 * The Azure OpenAI `api-version` the request was sent with. The GenAI conventions have no
 * attribute for it (checked in open-telemetry/semantic-conventions-genai, December 2026).
 */
export const ATTR_AUDIT_AZURE_OPENAI_API_VERSION = 'llm_audit.azure_openai.api_version';

/**
 * Batches, besides the batch id and the requests' input hashes above: the aligned arrays of each
 * request's `custom_id` and system prompt hash (ResponseSummary.batch); each result record's
 * `custom_id` and result type (`succeeded`, `errored`, `canceled`, `expired`).
 */
export const ATTR_AUDIT_BATCH_CUSTOM_IDS = 'llm_audit.batch.request.custom_ids';
export const ATTR_AUDIT_BATCH_SYSTEM_PROMPT_HASHES = 'llm_audit.batch.request.system_prompt_hashes';
export const ATTR_AUDIT_BATCH_CUSTOM_ID = 'llm_audit.batch.custom_id';
export const ATTR_AUDIT_BATCH_RESULT_TYPE = 'llm_audit.batch.result_type';
/** What a token-counting call (`count_tokens`) answered: the input tokens the request would use; none are consumed. */
export const ATTR_AUDIT_TOKEN_COUNT = 'llm_audit.token_count';

/**
 * `llm_audit.status`. `interrupted`: the process was shutting down while the call was still running
 * (no response yet, or a stream not read to its end); what had arrived is recorded.
 */
export const AUDIT_STATUS = { success: 'success', error: 'error', blocked: 'blocked', interrupted: 'interrupted' } as const;
export type AuditStatus = (typeof AUDIT_STATUS)[keyof typeof AUDIT_STATUS];

/**
 * `llm_audit.status` of the record of an LLM API request sent outside any audited call
 * (src/audit/unaudited): the trail shows the gap. Not in AUDIT_STATUS, which is what an audited
 * call (and a guardrail hook) can see.
 */
export const AUDIT_STATUS_UNAUDITED = 'unaudited';
/** Counter {request}: those requests, by server.address, server.port and http.request.method. */
export const METRIC_AUDIT_UNAUDITED_REQUESTS = 'llm_audit.unaudited.requests';

/** `llm_audit.cost.status`: why an amount is or is not present. */
export const COST_STATUS = { priced: 'priced', unpriced: 'unpriced', noUsage: 'no_usage' } as const;
/** `llm_audit.usage.status`: whether the provider reported token usage. */
export const USAGE_STATUS = { reported: 'reported', missing: 'missing' } as const;
/**
 * `llm_audit.stream.outcome`: how the application left a stream. Only `completed` streams carry
 * complete usage; the others say why the numbers may be partial.
 */
export const STREAM_OUTCOME = {
  completed: 'completed',
  abandoned: 'abandoned', // iteration stopped early (break / return) before the provider finished
  aborted: 'aborted', // the request's AbortController fired
  errored: 'errored', // the stream threw
  notConsumed: 'not_consumed', // never iterated before the stream object was collected or the process shut down
} as const;

// --- Metrics (GenAI conventions) ----------------------------------------------------------------
export const METRIC_GEN_AI_CLIENT_OPERATION_DURATION = 'gen_ai.client.operation.duration';
export const METRIC_GEN_AI_CLIENT_TOKEN_USAGE = 'gen_ai.client.token.usage';
/** Explicit bucket boundaries the conventions recommend for `gen_ai.client.operation.duration` (s). */
export const OPERATION_DURATION_BUCKETS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/** Explicit bucket boundaries the conventions recommend for `gen_ai.client.token.usage` ({token}). */
export const TOKEN_USAGE_BUCKETS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

/** Instrumentation scope name (also the npm package name). */
export const INSTRUMENTATION_NAME = 'otel-llm-audit';

// --- Spool (src/export): OTLP batches kept on disk while the endpoint cannot be reached ---------
/** Counter {span}: spans dropped because the spool (or the in-memory queue in front of it) was full. */
export const METRIC_AUDIT_SPOOL_DROPPED_SPANS = 'llm_audit.spool.dropped_spans';
/** Counter {span}: spans written to the spool instead of being sent directly. */
export const METRIC_AUDIT_SPOOL_SPILLED_SPANS = 'llm_audit.spool.spilled_spans';
/** Observable gauge {file}: spool files this process holds, waiting to be sent. */
export const METRIC_AUDIT_SPOOL_FILES = 'llm_audit.spool.files';
/** Observable gauge By: bytes of those files (bounded by LLM_AUDIT_SPOOL_MAX_BYTES). */
export const METRIC_AUDIT_SPOOL_SIZE = 'llm_audit.spool.size';
/** Why spans were dropped: `spool_full`, `queue_full` (writes could not keep up), `write_failed`. */
export const ATTR_AUDIT_SPOOL_DROP_REASON = 'llm_audit.spool.drop_reason';
