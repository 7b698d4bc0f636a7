import { randomBytes } from 'node:crypto';
import { diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type DiagLogger } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resources } from '@opentelemetry/sdk-node';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

// Real finished spans (from the SDK's own tracer, not hand-made objects) for the spool's tests.

const resource = resources.resourceFromAttributes(
  { 'service.name': 'spool-unit', 'service.instance.id': 'instance-1', 'deployment.environment': 'test', 'host.cores': 2 },
  { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' },
);

/** One span with every field a ReadableSpan has set to something other than its default. */
export function richSpan(): ReadableSpan {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('otel-llm-audit', '9.9.9', { schemaUrl: 'https://opentelemetry.io/schemas/1.29.0' });
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
    traceState: new TraceState('vendor=abc,other=1'),
  });
  const span = tracer.startSpan(
    'chat gpt-4o-mini',
    {
      kind: SpanKind.CLIENT,
      startTime: [1_700_000_000, 123_456_789],
      attributes: {
        'llm_audit.request_id': 'req-rich-1',
        'gen_ai.usage.input_tokens': 12,
        'llm_audit.cost.usd': 0.000123,
        'llm_audit.stream': false,
        'gen_ai.response.finish_reasons': ['stop', 'length'],
        'llm_audit.scores': [1.5, 2, -0.25],
        'llm_audit.flags': [true, false],
        'llm_audit.not_finite': Number.POSITIVE_INFINITY,
        'llm_audit.unicode': 'naïve — 日本語 \u0000 "quoted"',
      },
      links: [
        {
          context: { traceId: '1af7651916cd43dd8448eb211c80319d', spanId: 'c7ad6b7169203332', traceFlags: 0, isRemote: true, traceState: new TraceState('l=2') },
          attributes: { 'link.kind': 'retry', 'link.n': 3 },
        },
        { context: { traceId: '2af7651916cd43dd8448eb211c80319e', spanId: 'd7ad6b7169203333', traceFlags: 1 } },
      ],
    },
    parent,
  );
  span.addEvent('llm_audit.guardrail', { 'llm_audit.guardrail.name': 'moderation', 'llm_audit.guardrail.score': 0.75 }, [1_700_000_000, 200_000_000]);
  span.addEvent('plain event', undefined, [1_700_000_000, 300_000_000]);
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'provider said 429' });
  span.end([1_700_000_001, 5]);
  const [finished] = exporter.getFinishedSpans();
  return finished!;
}

/**
 * `count` ended spans, each with a distinct `llm_audit.request_id` (`<prefix>-<i>`) and 1 KB of
 * random hex (which compresses alike in every batch, so spool file sizes grow with the span count).
 */
export function makeSpans(count: number, prefix = 'req'): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('otel-llm-audit', '0.1.0');
  for (let i = 0; i < count; i++) {
    tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes: { 'llm_audit.request_id': `${prefix}-${i}`, 'llm_audit.padding': randomBytes(512).toString('hex') } }).end();
  }
  return exporter.getFinishedSpans();
}

/** Captures diag messages (all levels) until the returned `stop()`. */
export function captureDiag() {
  const messages: { level: 'error' | 'warn' | 'info' | 'debug' | 'verbose'; text: string }[] = [];
  const log = (level: (typeof messages)[number]['level']) => (message: string, ...args: unknown[]) => {
    messages.push({ level, text: [message, ...args.map(String)].join(' ') });
  };
  const logger: DiagLogger = { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), verbose: log('verbose') };
  diag.setLogger(logger, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
  return {
    messages,
    errors: () => messages.filter((m) => m.level === 'error').map((m) => m.text),
    stop: () => diag.disable(),
  };
}
