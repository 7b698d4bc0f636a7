#!/usr/bin/env node
// `node bench/ab.mjs --base DIR [--new DIR] [--sdk openai6|anthropic] [--messages reused|fresh] [--rounds N] [--block N] [--out FILE]`
//
// A/B of two builds of this package's call path IN ONE PROCESS, for a machine too loaded for
// process-per-configuration comparisons (bench/run.mjs, bench/hot-path.mjs): each build wraps the
// `create` method of a client of its own, as auditClient() does, with the services of its own
// LlmAuditInstrumentation (constructed disabled, so neither patches the SDK module); a plain client
// is the baseline, and a client inside one hand-written span the floor. The configurations take
// turns in short blocks of calls (every order of them in turn), each block ending with a flush of the
// span processor, and CPU time (process.cpuUsage: user + system, all threads) is read around each
// block. Load changes then fall on all configurations alike, within a fraction of a second.
//
// Same SDK, transport (replay: bench/lib/replay.mjs), conversation, exporter (OTLP/protobuf
// encoding, BatchSpanProcessor) and audit context as bench/child.mjs. The heap and the JIT are
// shared by the configurations, which is not how an application runs one of them: read the
// differences between builds, not absolute overheads (bench/run.mjs measures those).
//
// Writes FILE.md / FILE.json (default bench/results/ab) and prints the markdown.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MODELS, SDKS, DEFAULT_SIZE } from './lib/configs.mjs';
import { buildConversation, SYSTEM_PROMPT } from './lib/conversation.mjs';
import { replayingFetch } from './lib/replay.mjs';
import { startFakeProcess } from './lib/children.mjs';
import { median, quantile } from './lib/stats.mjs';
import { summariseProfile } from './lib/profile.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const { values: opts } = parseArgs({
  options: {
    base: { type: 'string' },
    new: { type: 'string', default: join(root, 'dist/cjs') },
    sdk: { type: 'string', default: 'openai6' },
    messages: { type: 'string', default: 'reused' },
    rounds: { type: 'string', default: '40' },
    block: { type: 'string', default: '150' },
    'no-floor': { type: 'boolean', default: false },
    profile: { type: 'string' },
    pipeline: { type: 'string', default: 'none' },
    out: { type: 'string', default: join(root, 'bench/results/ab') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help || !opts.base) {
  process.stdout.write('usage: node bench/ab.mjs --base DIR [--new DIR (default dist/cjs)] [--sdk openai6|anthropic] [--messages reused|fresh] [--rounds N (40)] [--block N (150)] [--no-floor] [--out FILE] [--profile FILE (instead of the A/B: a CPU profile of N = --rounds × --block calls of the new build, summarised to FILE.md)] [--pipeline none|new|base|both (builds that also write an audit record, as register does: --new = --base then measures the second span)]\n');
  process.exit(opts.help ? 0 : 2);
}
const rounds = Number(opts.rounds);
const block = Number(opts.block);
const sdkInfo = SDKS[opts.sdk];
if (!sdkInfo || !['openai6', 'anthropic'].includes(opts.sdk)) throw new Error('--sdk must be openai6 or anthropic');
const provider = sdkInfo.provider;
process.env.LLM_AUDIT_HASH_KEY = 'bench-only-hash-key-0123456789abcdef';

// A scratch directory per process: two runs at once must not copy the fake provider over each other's.
const { fake, process: fakeProcess } = await startFakeProcess(join(root, '.cache/bench-ab', String(process.pid)));

// OpenTelemetry as bench/child.mjs sets it up: one provider, BatchSpanProcessor, an exporter that
// encodes every batch to OTLP/protobuf.
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { ProtobufTraceSerializer } = require('@opentelemetry/otlp-transformer');
const exported = { spans: 0, attributes: 0 };
const exporter = {
  export(spans, done) {
    for (const span of spans) {
      exported.spans++;
      exported.attributes += Object.keys(span.attributes).length;
    }
    ProtobufTraceSerializer.serializeRequest(spans);
    done({ code: 0 });
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
const tracerProvider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
tracerProvider.register();

const sdk = createRequire(join(root, sdkInfo.resolveFrom, 'package.json'))(provider === 'openai' ? 'openai' : '@anthropic-ai/sdk');
const Client = sdk.OpenAI ?? sdk.Anthropic ?? sdk.default ?? sdk;
const model = MODELS[provider];
const turns = buildConversation(DEFAULT_SIZE);
const held = (value) => {
  if (opts.messages !== 'fresh') return () => value;
  const json = JSON.stringify(value);
  return () => JSON.parse(json);
};
const messagesOf = held(provider === 'openai' ? [{ role: 'system', content: SYSTEM_PROMPT }, ...turns] : turns);

function newClient(telemetry) {
  const transport = { fetch: replayingFetch(() => 'plain') };
  if (provider === 'openai') return new Client({ baseURL: fake.openaiBaseURL, apiKey: 'bench-not-a-key', maxRetries: 0, ...transport });
  return new Client({ baseURL: fake.anthropicBaseURL, apiKey: 'bench-not-a-key', maxRetries: 0, openTelemetry: telemetry, ...transport });
}
const resourceOf = (client) => (provider === 'openai' ? client.chat.completions : client.messages);
const request = () =>
  provider === 'openai' ? { model, messages: messagesOf() } : { model, max_tokens: 1024, system: SYSTEM_PROMPT, messages: messagesOf() };

/**
 * --pipeline: the audit record pipeline of `register` (src/sdk/start.ts) installed in a build: a
 * private provider that samples and limits nothing, with its own BatchSpanProcessor and the same
 * encoding exporter, so that each call makes the record and the application's trace span.
 */
function installPipeline(dist) {
  const { BasicTracerProvider, AlwaysOnSampler, RandomIdGenerator } = require('@opentelemetry/sdk-trace-base');
  const { auditRecordIdGenerator, installAuditRecordPipeline } = require(join(dist, 'core/audit-records.js'));
  const unlimited = { attributeValueLengthLimit: Infinity, attributeCountLimit: Infinity };
  const provider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanLimits: { ...unlimited, linkCountLimit: Infinity, eventCountLimit: Infinity, attributePerEventCountLimit: Infinity, attributePerLinkCountLimit: Infinity },
    generalLimits: unlimited,
    idGenerator: auditRecordIdGenerator(new RandomIdGenerator()),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  installAuditRecordPipeline({ tracer: provider.getTracer('otel-llm-audit') });
  recordProviders.push(provider);
}
const recordProviders = [];
if (!['none', 'new', 'base', 'both'].includes(opts.pipeline)) throw new Error('--pipeline must be none, new, base or both');

/** A client whose `create` is wrapped by the build in `dist`, with that build's services. */
function auditedClient(dist, pipeline) {
  if (pipeline) installPipeline(dist);
  const lib = require(join(dist, 'index.js'));
  const { targetWrapper, methodOptions } = require(join(dist, 'core/patch.js'));
  const patch =
    provider === 'openai' ? require(join(dist, 'instrumentations/openai/index.js')).openaiPatch : require(join(dist, 'instrumentations/anthropic/index.js')).anthropicPatch;
  const instrumentation = new lib.LlmAuditInstrumentation({ enabled: false, providers: [provider] });
  const services = instrumentation.services;
  const client = newClient(true);
  const resource = resourceOf(client);
  const proto = Object.getPrototypeOf(resource);
  const target = patch.targets(sdk).find((t) => t.proto === proto && t.method === 'create');
  const wrapped = targetWrapper(() => services, target, methodOptions(patch))(proto.create);
  Object.defineProperty(resource, 'create', { value: wrapped, configurable: true, writable: true });
  const audit = { userId: 'user-4711', sessionId: 'session-42', tenantId: 'tenant-acme', metadata: { feature: 'bench' } };
  return () => lib.withAuditContext(audit, () => resource.create(request()));
}

const plain = resourceOf(newClient(false));
const tracer = require('@opentelemetry/api').trace.getTracer('bench-hand-span');
const spanAttributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': provider, 'gen_ai.request.model': model };
const configs = {
  baseline: () => plain.create(request()),
  base: auditedClient(resolve(opts.base), opts.pipeline === 'base' || opts.pipeline === 'both'),
  new: auditedClient(resolve(opts.new), opts.pipeline === 'new' || opts.pipeline === 'both'),
};
// The floor: one hand-written span around the call (--no-floor leaves it out, for shorter rounds).
if (!opts['no-floor']) {
  configs['hand-span'] = () =>
    tracer.startActiveSpan(`chat ${model}`, { kind: 2, attributes: spanAttributes }, async (span) => {
      try {
        return await plain.create(request());
      } finally {
        span.end();
      }
    });
}
const names = Object.keys(configs);

if (opts.profile !== undefined) {
  await profileNew(resolve(opts.profile));
  fakeProcess.stdin.end();
  process.exit(0);
}

/**
 * --profile: after the same warm-up, only the new build's calls, under the inspector's CPU profiler
 * (100 µs sampling), with nothing else running in between: where its µs per call go, by self and
 * inclusive time of the package's functions.
 */
async function profileNew(file) {
  const { Session } = await import('node:inspector/promises');
  const calls = rounds * block;
  for (let w = 0; w < 5; w++) await runBlock(configs.new, block);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const cpu = await runBlock(configs.new, calls);
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.cpuprofile`, JSON.stringify(profile));
  const dist = resolve(opts.new);
  const s = summariseProfile(`${file}.cpuprofile`, { packageDir: dist, srcHint: (rel) => `src/${rel.replace(/\.js$/, '.ts')}`, calls });
  // The profiler samples wall time, which on a loaded machine includes the time the thread waited
  // for a core: each row is shown as its share of the CPU time the calls took.
  const table = (title, rows) => [`| ${title} | CPU µs/call | % of samples |`, '|---|---:|---:|', ...rows.slice(0, 10).map((r) => `| \`${r.name}\` | ${((r.pct / 100) * cpu).toFixed(1)} | ${r.pct.toFixed(1)} |`), ''];
  const markdown = [
    `## Profile: ${opts.sdk}, ${opts.messages} messages, plain calls of ${relative(root, dist) || '.'} (bench/ab.mjs --profile)`,
    '',
    `${new Date().toISOString()}, Node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${calls} calls after warm-up, CPU ${cpu.toFixed(1)} µs per call under the profiler (100 µs sampling; ${(s.totalMs * 1000 / calls).toFixed(1)} µs of samples per call: the rows are their share of the CPU time; line numbers are of the compiled .js).`,
    '',
    ...table('where (self time)', s.categories),
    ...table('this package, self time (with what V8 inlined into it)', s.packageSelf),
    ...table('this package, inclusive time', s.packageInclusive),
    ...table('outside frames called directly from this package (self time)', s.calledFromPackage),
  ].join('\n');
  writeFileSync(`${file}.md`, markdown);
  process.stdout.write(markdown);
}

function permutations(items) {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

async function runBlock(call, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const response = await call();
    if (response == null) throw new Error('no response');
  }
  await tracerProvider.forceFlush();
  for (const provider of recordProviders) await provider.forceFlush();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

// Warm-up: every configuration until the JIT has settled.
for (let w = 0; w < 3; w++) for (const name of names) await runBlock(configs[name], block);
const perCall = Object.fromEntries(names.map((n) => [n, []]));
const spans0 = exported.spans;
const attrs0 = exported.attributes;
const loadBefore = os.loadavg();
const started = Date.now();
// Every order of the configurations in turn: each block is preceded as often by each of the others,
// so the garbage one configuration leaves for the next block's collector does not always land on
// the same neighbour (a rotation of one order would put it there in most rounds).
const orders = permutations(names);
for (let r = 0; r < rounds; r++) {
  const order = orders[r % orders.length];
  for (const name of order) perCall[name].push(await runBlock(configs[name], block));
}
fakeProcess.stdin.end();

const d = (name) => perCall[name].map((v, i) => v - perCall.baseline[i]);
const stats = (xs) => ({ median: median(xs), q1: quantile(xs, 0.25), q3: quantile(xs, 0.75) });
const diff = perCall.new.map((v, i) => v - perCall.base[i]);
const result = {
  date: new Date().toISOString(),
  sdk: opts.sdk,
  messages: opts.messages,
  pipeline: opts.pipeline,
  rounds,
  block,
  baselineUs: stats(perCall.baseline),
  overheadUs: Object.fromEntries(names.filter((n) => n !== 'baseline').map((n) => [n, stats(d(n))])),
  newMinusBaseUs: stats(diff),
  attributesPerSpan: (exported.attributes - attrs0) / Math.max(1, exported.spans - spans0),
  perCall,
};
const f = (x) => x.toFixed(1);
const row = (label, s) => `| ${label} | ${f(s.median)} | ${f(s.q1)}..${f(s.q3)} |`;
const markdown = [
  `## ${opts.sdk}, ${opts.messages} messages: ${relative(root, resolve(opts.new)) || '.'} against ${relative(root, resolve(opts.base))}`,
  '',
  `${result.date}, Node ${process.version}, load ${loadBefore.map((l) => l.toFixed(1)).join(' ')}; ${rounds} rounds × ${block} plain calls per configuration, in one process (bench/ab.mjs), ${Math.round((Date.now() - started) / 1000)} s.${opts.pipeline === 'none' ? '' : ` Audit record pipeline (two spans per call) in: ${opts.pipeline}.`} Baseline ${f(result.baselineUs.median)} µs per call.`,
  '',
  '| CPU µs per call | median | interquartile range |',
  '|---|---:|---|',
  ...(result.overheadUs['hand-span'] ? [row('hand-span − baseline', result.overheadUs['hand-span'])] : []),
  row('base − baseline', result.overheadUs.base),
  row('new − baseline', result.overheadUs.new),
  row('**new − base** (same round)', result.newMinusBaseUs),
  '',
].join('\n');
mkdirSync(dirname(resolve(opts.out)), { recursive: true });
writeFileSync(`${resolve(opts.out)}.json`, JSON.stringify(result, null, 1) + '\n');
writeFileSync(`${resolve(opts.out)}.md`, markdown);
process.stdout.write(markdown);
process.exit(0);
