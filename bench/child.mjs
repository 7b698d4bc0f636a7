// One measurement: one configuration, one SDK, one call shape, one conversation size, in a fresh
// process. Started by bench/run.mjs with the job as a JSON argument; writes its result as JSON to
// job.out and exits.
//
// Order matters: OpenTelemetry (tracer provider, then the instrumentation) is set up BEFORE the
// SDK is required, as an application does with `--require`; the instrumentations patch the SDK
// when it is loaded (require-in-the-middle).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CONFIGS, MODELS, SDKS } from './lib/configs.mjs';
import { buildConversation, conversationBytes, SYSTEM_PROMPT } from './lib/conversation.mjs';
import { median, quantile } from './lib/stats.mjs';
import { replayingFetch } from './lib/replay.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const job = JSON.parse(process.argv[2]);
const config = CONFIGS[job.config];
const sdkInfo = SDKS[job.sdk];
const provider = sdkInfo.provider;
const require = createRequire(join(root, 'package.json'));

function finish(result) {
  writeFileSync(job.out, JSON.stringify({ job: { ...job, out: undefined }, ...result }));
  process.exit(0);
}
function failed(stage, error) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  writeFileSync(job.out, JSON.stringify({ job: { ...job, out: undefined }, error: { stage, message } }));
  process.exit(0);
}
let stage = 'setup';
process.on('uncaughtException', (error) => failed(`${stage} (uncaught)`, error));
process.on('unhandledRejection', (error) => failed(`${stage} (unhandled rejection)`, error));

try {
  // ---------------------------------------------------------------------------------------------
  // OpenTelemetry: the same tracer provider, span processor and exporter for every configuration.
  // ---------------------------------------------------------------------------------------------

  /**
   * Counts what reaches it. With `serialize` ('otlp-proto' or 'otlp-json'), it also encodes every
   * batch as an OTLP/HTTP exporter would before sending (http/protobuf is the exporters' default),
   * so that spans pay for what they carry, as they do in production.
   */
  class CountingExporter {
    constructor(serialize) {
      const transformer = serialize ? require('@opentelemetry/otlp-transformer') : undefined;
      this.serialize = serialize === 'otlp-proto' ? transformer.ProtobufTraceSerializer : serialize === 'otlp-json' ? transformer.JsonTraceSerializer : undefined;
      this.spans = 0;
      this.attributes = 0;
      this.bytes = 0;
      this.byName = {};
      this.last = undefined;
    }
    export(spans, resultCallback) {
      for (const span of spans) {
        this.spans++;
        this.attributes += Object.keys(span.attributes).length;
        const key = `${span.instrumentationScope?.name ?? span.instrumentationLibrary?.name} | ${span.name}`;
        this.byName[key] = (this.byName[key] ?? 0) + 1;
        this.last = span;
      }
      if (this.serialize) this.bytes += this.serialize.serializeRequest(spans)?.byteLength ?? 0;
      resultCallback({ code: 0 });
    }
    forceFlush() {
      return Promise.resolve();
    }
    shutdown() {
      return Promise.resolve();
    }
  }

  let tracerProvider;
  let exporter;
  if (config.otel) {
    const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
    const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
    exporter = new CountingExporter(job.exporter === 'count' ? undefined : job.exporter);
    tracerProvider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
    tracerProvider.register();
  }

  let lib; // this package's dist, from the snapshot run.mjs took
  if (job.config === 'otel-llm-audit' || job.hashProbe) lib = require(join(job.dist, 'index.js'));

  stage = 'instrumentation';
  const instrumentations = [];
  if (job.config === 'otel-llm-audit') {
    // LLM_AUDIT_HASH_KEY is in the environment (set by run.mjs): keyed HMAC hashes, as in production.
    instrumentations.push(new lib.LlmAuditInstrumentation({ providers: [provider] }));
  } else if (config.package) {
    const Instrumentation = require(config.package)[config.exportName];
    instrumentations.push(new Instrumentation());
  }
  if (instrumentations.length > 0) {
    const { registerInstrumentations } = require('@opentelemetry/instrumentation');
    registerInstrumentations({ instrumentations, tracerProvider });
  }

  // ---------------------------------------------------------------------------------------------
  // The SDK client and the request
  // ---------------------------------------------------------------------------------------------

  stage = 'sdk';
  const sdkRequire = createRequire(join(root, sdkInfo.resolveFrom, 'package.json'));
  const model = MODELS[provider];
  const turns = buildConversation(job.bytes);
  const bytes = conversationBytes(turns);
  let client;
  let create;
  // --transport replay: the client's fetch answers from a recording of the fake provider's answer
  // to this shape of call (see lib/replay.mjs); loopback (the default) goes through a socket.
  let currentShape = 'plain';
  const transport = job.transport === 'replay' ? { fetch: replayingFetch(() => currentShape) } : {};
  let countDelta;
  let textOf;
  // How the application holds its conversation (job.messages): 'reused', the same objects every
  // call (kept in memory, as an agent loop or a chat session does), or 'fresh', new objects parsed
  // from JSON for every call (as a server receiving the conversation with each request does).
  const held = (value) => {
    if (job.messages !== 'fresh') return () => value;
    const json = JSON.stringify(value);
    return () => JSON.parse(json);
  };
  if (provider === 'openai') {
    const mod = sdkRequire('openai');
    const OpenAI = mod.OpenAI ?? mod.default ?? mod;
    client = new OpenAI({ baseURL: job.fake.openaiBaseURL, apiKey: 'bench-not-a-key', maxRetries: 0, ...transport });
    const messagesOf = held([{ role: 'system', content: SYSTEM_PROMPT }, ...turns]);
    create = (stream) => {
      const messages = messagesOf();
      return client.chat.completions.create(
        stream ? { model, messages, stream: true, stream_options: { include_usage: true } } : { model, messages },
      );
    };
    countDelta = (chunk) => (typeof chunk.choices?.[0]?.delta?.content === 'string' && chunk.choices[0].delta.content !== '' ? 1 : 0);
    textOf = (response) => response.choices?.[0]?.message?.content ?? '';
  } else {
    const mod = sdkRequire('@anthropic-ai/sdk');
    const Anthropic = mod.Anthropic ?? mod.default ?? mod;
    const options = { baseURL: job.fake.anthropicBaseURL, apiKey: 'bench-not-a-key', maxRetries: 0, ...transport };
    if (!config.anthropicTelemetry) options.openTelemetry = false;
    client = new Anthropic(options);
    const turnsOf = held(turns);
    create = (stream) =>
      client.messages.create({ model, max_tokens: 1024, system: SYSTEM_PROMPT, messages: turnsOf(), ...(stream ? { stream: true } : {}) });
    countDelta = (event) => (event.type === 'content_block_delta' ? 1 : 0);
    textOf = (response) => response.content?.map((block) => block.text ?? '').join('') ?? '';
  }

  /**
   * One call, read the way the shape says, written as applications write it (`await`: some peers
   * hand back a stream that is not a thenable). Resolves to the number of text deltas read.
   */
  async function rawCall(shape) {
    currentShape = shape === 'plain' ? 'plain' : 'stream';
    if (shape === 'plain') {
      const response = await create(false);
      if (textOf(response).length === 0) throw new Error('empty answer');
      return 0;
    }
    const stream = await create(true);
    let deltas = 0;
    for await (const event of stream) {
      deltas += countDelta(event);
      if (shape === 'abandon' && deltas === 3) break;
    }
    return deltas;
  }

  let call = rawCall;
  if (job.config === 'hand-span') {
    // The floor for any span-based instrumentation: one active span around the call, three
    // attributes, ended when the call (or the stream) ends.
    const { trace, SpanKind } = require('@opentelemetry/api');
    const tracer = trace.getTracer('bench-hand-span');
    const name = `chat ${model}`;
    call = (shape) =>
      tracer.startActiveSpan(
        name,
        { kind: SpanKind.CLIENT, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': provider, 'gen_ai.request.model': model } },
        async (span) => {
          try {
            return await rawCall(shape);
          } finally {
            span.end();
          }
        },
      );
  } else if (job.config === 'otel-llm-audit') {
    // As an application uses it: who is behind the call, per request.
    const audit = { userId: 'user-4711', sessionId: 'session-42', tenantId: 'tenant-acme', metadata: { feature: 'bench' } };
    call = (shape) => lib.withAuditContext(audit, () => rawCall(shape));
  }

  // ---------------------------------------------------------------------------------------------
  // Measurement
  // ---------------------------------------------------------------------------------------------

  /**
   * CPU time of the main thread alone, in µs, from Linux's /proc/self/task/<tid>/schedstat
   * (nanoseconds on the CPU, nanoseconds waiting for one): without V8's compiler and GC helper
   * threads, and with the time the thread waited for a core (a measure of how busy the machine was).
   * Undefined elsewhere than Linux.
   */
  function mainThreadSched() {
    try {
      const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
      return { runUs: run / 1000, waitUs: wait / 1000 };
    } catch {
      return undefined;
    }
  }

  const flush = () => (tracerProvider ? tracerProvider.forceFlush() : Promise.resolve());
  const spanCount = () => exporter?.spans ?? 0;

  stage = 'warmup';
  let deltaMin = Infinity;
  let deltaMax = -Infinity;
  for (let i = 0; i < job.warmup; i++) await call(job.shape);
  await flush();
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 20));

  stage = 'measure';
  // The measured calls run in SEGMENTS segments; each ends with a flush of the span processor, so
  // that every segment pays for the export of its own spans. CPU per call is the total over all the
  // measured calls divided by their number: it includes the periodic costs (major GCs, batch
  // exports) that land in some segments only. The per-segment numbers are kept for diagnosis.
  const SEGMENTS = Math.min(10, job.calls);
  const spans0 = spanCount();
  const attrs0 = exporter?.attributes ?? 0;
  const latencies = new Float64Array(job.calls);
  const segments = [];
  const window0 = process.hrtime.bigint(); // same clock as a --cpu-prof profile's timestamps
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  const sched0 = mainThreadSched();
  let segCpu = cpu0;
  let segSched = sched0;
  let done = 0;
  for (let s = 0; s < SEGMENTS; s++) {
    const end = Math.round(((s + 1) * job.calls) / SEGMENTS);
    const n = end - done;
    for (; done < end; done++) {
      const t0 = performance.now();
      const deltas = await call(job.shape);
      latencies[done] = (performance.now() - t0) * 1000;
      if (job.shape !== 'plain') {
        if (deltas < deltaMin) deltaMin = deltas;
        if (deltas > deltaMax) deltaMax = deltas;
      }
    }
    await flush();
    const cpuNow = process.cpuUsage();
    const schedNow = mainThreadSched();
    segments.push({
      cpuPerCallUs: (cpuNow.user - segCpu.user + cpuNow.system - segCpu.system) / n,
      mainThreadCpuPerCallUs: schedNow && segSched ? (schedNow.runUs - segSched.runUs) / n : undefined,
    });
    segCpu = cpuNow;
    segSched = schedNow;
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  const window1 = process.hrtime.bigint();
  const sched1 = mainThreadSched();
  const spans = spanCount() - spans0;
  const attributes = (exporter?.attributes ?? 0) - attrs0;
  const last = exporter?.last; // a span of the measured calls (before any abandoned stream)

  // Streams abandoned after 3 chunks: is a span exported for them (after a flush)?
  let abandon;
  if (job.shape === 'stream' && job.abandonCalls > 0) {
    stage = 'abandon';
    const before = spanCount();
    for (let i = 0; i < job.abandonCalls; i++) await call('abandon');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await flush();
    abandon = { calls: job.abandonCalls, spans: spanCount() - before };
  }

  // What hashing alone costs: this package's hasher over the same conversation, in this process.
  let hashUs;
  if (job.hashProbe && lib) {
    stage = 'hash-probe';
    const { createContentHasher } = require(join(job.dist, 'audit/hashing.js'));
    const hasher = createContentHasher({ key: process.env.LLM_AUDIT_HASH_KEY });
    const messages = [{ role: 'system', content: SYSTEM_PROMPT }, ...turns];
    for (let i = 0; i < 5; i++) hasher.hash(messages);
    let n = 0;
    const h0 = process.cpuUsage();
    const until = performance.now() + 150;
    while (performance.now() < until || n < 3) {
      hasher.hash(messages);
      n++;
    }
    const h = process.cpuUsage(h0);
    hashUs = (h.user + h.system) / n;
  }

  const sorted = Array.from(latencies).sort((a, b) => a - b);
  finish({
    bytes,
    calls: job.calls,
    latency: { median: median(sorted), p99: quantile(sorted, 0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length },
    cpuPerCallUs: (cpu.user + cpu.system) / job.calls,
    cpuSegmentMedianPerCallUs: median(segments.map((seg) => seg.cpuPerCallUs)),
    mainThreadCpuPerCallUs: sched0 && sched1 ? (sched1.runUs - sched0.runUs) / job.calls : undefined,
    segments,
    userPerCallUs: cpu.user / job.calls,
    systemPerCallUs: cpu.system / job.calls,
    runQueueWaitPerCallUs: sched0 && sched1 ? (sched1.waitUs - sched0.waitUs) / job.calls : undefined,
    wallMs,
    measureWindowUs: [Number(window0 / 1000n), Number(window1 / 1000n)],
    spansPerCall: config.otel ? spans / job.calls : 0,
    attributesPerSpan: spans > 0 ? attributes / spans : 0,
    exportedBytes: exporter?.bytes ?? 0,
    spanNames: exporter?.byName ?? {},
    streamDeltas: job.shape === 'plain' ? undefined : { min: deltaMin, max: deltaMax },
    abandon,
    hashUs,
    sampleSpan: last
      ? {
          name: last.name,
          scope: last.instrumentationScope?.name ?? last.instrumentationLibrary?.name,
          attributes: Object.fromEntries(
            Object.entries(last.attributes).map(([k, v]) => [k, typeof v === 'string' && v.length > 80 ? `${v.slice(0, 77)}...` : v]),
          ),
        }
      : undefined,
    rssMB: process.memoryUsage().rss / 2 ** 20,
  });
} catch (error) {
  failed(stage, error);
}
