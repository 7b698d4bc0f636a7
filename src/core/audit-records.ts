/**
 * The audit record of a call, kept apart from the call's trace span.
 *
 * Production tracing samples and limits spans: `OTEL_TRACES_SAMPLER=traceidratio` keeps one call
 * in ten, an unsampled upstream `traceparent` keeps none, `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` cuts
 * a 64-digit HMAC to its prefix, `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` drops the cost. An audit trail
 * must be neither sampled nor cut, while the tracing backend should keep seeing only what its
 * sampler keeps. So each audited call has two spans made from the same calls:
 *
 * - the **trace span**, from the global tracer (whatever SDK the application runs, or none): the
 *   application's sampler, limits and exporters decide about it, exactly as for any other span;
 * - the **audit record**, from a private tracer provider that samples everything, limits nothing
 *   and feeds only the audit pipeline (ledger, spool/OTLP audit route). It is not registered
 *   globally, so it never replaces or is replaced by the application's SDK.
 *
 * The record carries the trace span's ids when the trace span has its own (so a trace and its
 * audit record name the same span), and `llm_audit.trace.forward`: true when the record is also the
 * call's only trace span and the sampler kept it, which is what lets a Collector send the audit
 * route to the tracing backend without showing it sampled-out or duplicated calls. The trace span
 * carries `llm_audit.trace_copy` = true, so an audit pipeline fed from the same exporter can tell a
 * (possibly sampled or cut) copy from the record.
 */
import {
  context,
  createContextKey,
  diag,
  isSpanContextValid,
  SpanKind,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import * as A from '../semconv';
import { PACKAGE_VERSION } from '../version';

/**
 * The context key of @opentelemetry/core's suppressTracing(). createContextKey is Symbol.for of the
 * description, so every copy of core uses this very key; naming it here keeps the main entry from
 * loading core's 32 modules for one deleteValue (bench/results/startup.md).
 */
const SUPPRESS_TRACING_KEY = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/** What decides `llm_audit.trace.forward` (the sampler the tracing backend would apply). */
export type TraceSampled = (parent: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes) => boolean;

export interface AuditRecordPipeline {
  /**
   * A tracer of a private provider that samples every span, limits nothing, feeds only the audit
   * pipeline and uses {@link auditRecordIdGenerator}. Built by the caller (src/sdk/start.ts), so
   * that the SDK packages are loaded only where a pipeline is set up.
   */
  tracer: Tracer;
  /** Whether the tracing backend should see a record that is the call's only trace span. Default: yes. */
  traceSampled?: TraceSampled;
  /**
   * Run once, just before the first record of the process is started (register writes its
   * `audit.start` record there: a process that audits nothing opens and writes nothing).
   */
  beforeFirstRecord?: () => void;
}

/** The ids of the next record, set just before it is started (see {@link startCallSpans}). */
const nextIds: { traceId: string | undefined; spanId: string | undefined } = { traceId: undefined, spanId: undefined };

let installed: AuditRecordPipeline | undefined;

/**
 * The private provider's id generator: the ids {@link startCallSpans} set aside for the next
 * record (the trace span's own), else the fallback's.
 */
export function auditRecordIdGenerator(fallback: { generateTraceId(): string; generateSpanId(): string }): { generateTraceId(): string; generateSpanId(): string } {
  return {
    generateTraceId: () => take('traceId') ?? fallback.generateTraceId(),
    generateSpanId: () => take('spanId') ?? fallback.generateSpanId(),
  };
}

/**
 * Installs the audit record pipeline for this thread: from now on every audited call writes its
 * record through `pipeline.tracer`, whatever the application's tracing does. Returns the function
 * that uninstalls it.
 */
export function installAuditRecordPipeline(pipeline: AuditRecordPipeline): () => void {
  installed = pipeline;
  return () => {
    if (installed === pipeline) installed = undefined;
  };
}

function take(which: 'traceId' | 'spanId'): string | undefined {
  const id = nextIds[which];
  nextIds[which] = undefined;
  return id;
}

export interface CallSpans {
  /** The span to make active while the SDK runs (children and propagation follow the app's tracing). */
  trace: Span;
  /** Where the call's facts are recorded: the record and, while it records, the trace span. */
  record: Span;
}

/** An audit span of its own (a guardrail decision or a retrieval outside a call), recorded like a call. */
export function startAuditSpan(name: string, attributes: Attributes, parent: Context = context.active()): Span {
  return startCallSpans(trace.getTracer(A.INSTRUMENTATION_NAME, PACKAGE_VERSION), name, attributes, parent, SpanKind.INTERNAL).record;
}

/**
 * Starts the spans of one call: the trace span from `tracer` and, when a pipeline is installed,
 * the audit record. Without a pipeline (an application that put the instrumentation in its own
 * NodeSDK and nothing else) the trace span is the record, as its exporters see it.
 */
export function startCallSpans(tracer: Tracer, name: string, attributes: Attributes, parent: Context, kind: SpanKind = SpanKind.CLIENT): CallSpans {
  const pipeline = installed;
  if (pipeline === undefined) {
    const span = tracer.startSpan(name, { kind, attributes }, parent);
    return { trace: span, record: span };
  }
  const first = pipeline.beforeFirstRecord;
  if (first !== undefined) {
    pipeline.beforeFirstRecord = undefined;
    try {
      first();
    } catch (error) {
      diag.error('otel-llm-audit: the hook before the first audit record failed', error);
    }
  }
  // Another GenAI instrumentation wrapped the same SDK method outside this one and its span for
  // this very call is the active one: that span is the call's trace span (enriched with the audit
  // attributes, ended by its owner), so the application's trace shows one GenAI span per call.
  const outer = foreignCallSpan(parent);
  const traceSpan = outer ?? tracer.startSpan(name, { kind, attributes }, parent);
  if (outer !== undefined) outer.setAttributes(attributes);
  // Set after the start, not in a copy of the attributes: a call's hot path, and a no-op without a tracing SDK.
  traceSpan.setAttribute(A.ATTR_AUDIT_TRACE_COPY, true);
  const own = traceSpan.spanContext();
  // With an outer span as the trace span, the record's parent is that span's parent (SDK spans
  // expose it), not the span itself.
  const parentOfCall = outer === undefined ? parent : outerParent(parent, outer);
  const parentContext = trace.getSpanContext(parentOfCall);
  // A tracing SDK gives its span (sampled or not) an id of its own; the API's no-op tracer hands
  // back the parent's context, or an invalid one.
  const traced = isSpanContextValid(own) && own.spanId !== parentContext?.spanId;
  const forward = !traced && sampledForTracing(pipeline.traceSampled, parentOfCall, parentContext, name, kind, attributes);
  if (traced) {
    nextIds.traceId = own.traceId;
    nextIds.spanId = own.spanId;
  }
  let record: Span;
  try {
    // Never suppressed: a call made where tracing is switched off is still a call to audit.
    record = pipeline.tracer.startSpan(name, { kind, attributes }, parentOfCall.deleteValue(SUPPRESS_TRACING_KEY));
    record.setAttribute(A.ATTR_AUDIT_TRACE_FORWARD, forward);
  } finally {
    nextIds.traceId = nextIds.spanId = undefined;
  }
  // The application's SDK knows which application this is (a service name set in code, as
  // NodeSDK({ serviceName }) or @vercel/otel do, is in no environment variable): its resource is
  // the record's too.
  const resource = (traceSpan as { resource?: unknown }).resource;
  if (traced && resource !== undefined && 'resource' in record) Object.defineProperty(record, 'resource', { value: resource, configurable: true, writable: true });
  return { trace: traceSpan, record: traceSpan.isRecording() ? new TeeSpan(record, traceSpan, outer === undefined) : record };
}

function outerParent(parent: Context, outer: Span): Context {
  const of = (outer as { parentSpanContext?: SpanContext }).parentSpanContext;
  return of !== undefined && isSpanContextValid(of) ? trace.setSpanContext(parent, of) : trace.deleteSpan(parent);
}

function sampledForTracing(sampled: TraceSampled | undefined, parent: Context, parentContext: SpanContext | undefined, name: string, kind: SpanKind, attributes: Attributes): boolean {
  if (sampled === undefined) return true;
  try {
    // The record gets the trace id the sampler judged (a ratio sampler decides by it).
    const traceId = parentContext && isSpanContextValid(parentContext) ? parentContext.traceId : (nextIds.traceId = randomBytes(16).toString('hex'));
    return sampled(parent, traceId, name, kind, attributes);
  } catch (error) {
    diag.error('otel-llm-audit: the trace sampler failed; the audit record is written and not forwarded to tracing', error);
    return false;
  }
}

/**
 * The GenAI instrumentations that wrap the same SDK methods as this package (their scope names).
 * Loaded beside it, for example through @opentelemetry/auto-instrumentations-node, each would add a
 * second GenAI span per call.
 */
const FOREIGN_GENAI_SCOPES: ReadonlySet<string> = new Set([
  '@opentelemetry/instrumentation-openai',
  '@traceloop/instrumentation-openai',
  '@traceloop/instrumentation-anthropic',
  '@arizeai/openinference-instrumentation-openai',
  '@arizeai/openinference-instrumentation-anthropic',
  // The Vercel AI SDK's own telemetry (experimental_telemetry): its model-call spans only.
  'ai',
]);

/** The AI SDK's span of one model call (`ai.generateText.doGenerate`, `ai.streamText.doStream`, `ai.embedMany.doEmbed`...); its other spans cover whole runs of calls. */
const AI_SDK_CALL_SPAN = /^ai\.\w+\.do(Generate|Stream|Embed)$/;

/**
 * The active span when it is another GenAI instrumentation's span of the call being made (it wraps
 * the SDK method outside this package, so its span was started just now, by the same call, and is
 * still open). Read from the SDK span's public fields; any other span gives undefined.
 */
function foreignCallSpan(parent: Context): Span | undefined {
  const span = trace.getSpan(parent) as (Span & { instrumentationScope?: { name?: string }; ended?: boolean; startTime?: [number, number] }) | undefined;
  if (span === undefined || !span.isRecording() || span.ended === true) return undefined;
  const scope = span.instrumentationScope?.name;
  if (scope === undefined || !FOREIGN_GENAI_SCOPES.has(scope)) return undefined;
  if (scope === 'ai' && !AI_SDK_CALL_SPAN.test((span as { name?: string }).name ?? '')) return undefined;
  // Started within the last 50 ms: an enclosing span of the same instrumentation (an agent run
  // wrapped around several calls) is not this call's.
  const started = span.startTime;
  if (started !== undefined && Date.now() - (started[0] * 1e3 + started[1] / 1e6) > 50) return undefined;
  return span;
}

/**
 * Records on the audit record and on a recording trace span alike. The record comes first: what
 * the application's SDK does with its span must not keep a fact from the record.
 */
class TeeSpan implements Span {
  constructor(
    private readonly record: Span,
    private readonly traced: Span,
    /** False when the trace span belongs to another instrumentation, which ends it. */
    private readonly endTraced: boolean,
  ) {}

  spanContext(): SpanContext {
    return this.traced.spanContext();
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.record.setAttribute(key, value);
    this.traced.setAttribute(key, value);
    return this;
  }
  setAttributes(attributes: Attributes): this {
    this.record.setAttributes(attributes);
    this.traced.setAttributes(attributes);
    return this;
  }
  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    this.record.addEvent(name, attributesOrStartTime, startTime);
    this.traced.addEvent(name, attributesOrStartTime, startTime);
    return this;
  }
  addLink(link: Link): this {
    this.record.addLink(link);
    this.traced.addLink(link);
    return this;
  }
  addLinks(links: Link[]): this {
    this.record.addLinks(links);
    this.traced.addLinks(links);
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.record.setStatus(status);
    this.traced.setStatus(status);
    return this;
  }
  updateName(name: string): this {
    this.record.updateName(name);
    this.traced.updateName(name);
    return this;
  }
  end(endTime?: TimeInput): void {
    this.record.end(endTime);
    if (this.endTraced) this.traced.end(endTime);
  }
  isRecording(): boolean {
    return true;
  }
  recordException(exception: Exception, time?: TimeInput): void {
    this.record.recordException(exception, time);
    this.traced.recordException(exception, time);
  }
}
