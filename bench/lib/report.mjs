// The markdown report (bench/results/latest.md), the tables of bench/ledger.mjs and bench/ingest.mjs
// (their own ledger.md / ingest.md and the "Ledger and ingest" section of latest.md are rendered by
// the same functions, from their JSON), and the run metadata they share.
import os from 'node:os';
import { SDKS } from './configs.mjs';
import { sizeLabel } from './conversation.mjs';

const num = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const ratio = (value) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–');
const ms = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '–');
const signed = (value) => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(0)}` : '–');

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function configLabel(group, config) {
  const bits = [config];
  if (config === group.lightest) bits.push('(lightest peer)');
  if (config === 'hand-span') bits.push('(floor)');
  return bits.join(' ');
}

function notes(entry, group) {
  const out = [];
  if (entry.errors.length) out.push(`failed: ${entry.errors[0].slice(0, 140)}`);
  else if (entry.kind === 'peer' && entry.spansPerCall < 0.99 && entry.rounds > 0) out.push('did not instrument these calls (no span)');
  if (entry.kind !== 'baseline' && entry.spanNames && Object.keys(entry.spanNames).length > 1) {
    out.push(`span kinds: ${Object.keys(entry.spanNames).join('; ')}`);
  }
  if (group.shape === 'stream' && entry.streamDeltas && entry.rounds > 0 && (entry.streamDeltas.min !== 50 || entry.streamDeltas.max !== 50)) {
    out.push(`stream had ${entry.streamDeltas.min}–${entry.streamDeltas.max} text chunks (expected 50)`);
  }
  return out.join('; ');
}

/** What each exporter does with a batch (runs before --exporter took a list name one in settings.exporter). */
const EXPORTER_TEXT = {
  'otlp-proto': 'encodes every batch to OTLP/protobuf (what the default OTLP exporter sends)',
  'otlp-json': 'encodes every batch to OTLP/JSON',
  count: 'does not encode them (what the attributes cost to export is not counted)',
};
const exportersOf = (settings) => settings.exporters ?? [settings.exporter ?? 'otlp-proto'];

/** A budget line's result: reported ratios have none; a margin inside the null control's noise is no verdict. */
export function verdict(b) {
  if (b.reported) return 'reported';
  if (b.missing) return `n/a (${b.missing})`;
  if (!Number.isFinite(b.value)) return 'n/a';
  if (b.conclusive === false) return `inconclusive (${b.pass ? 'pass' : 'fail'} within noise)`;
  return b.pass ? 'met' : '**NOT MET**';
}

export function renderMarkdown(report) {
  const out = [];
  const { machine, settings } = report;
  out.push('# otel-llm-audit: overhead against the peer instrumentations');
  out.push('');
  out.push(
    `Run ${report.date} with \`${report.command}\` (${settings.rounds} interleaved round(s), ` +
      `${settings.calls} plain / ${settings.streamCalls} streaming calls per child at 10 KB, exporter ${exportersOf(settings).map((e) => `\`${e}\``).join(' and ')}, transport \`${settings.transport ?? 'loopback'}\`, ` +
      `${settings.durationSeconds} s${Number.isFinite(settings.totalSeconds) ? `; ${settings.totalSeconds} s in all with the ledger and ingest benchmarks` : ''}). ` +
      'Method: [bench/README.md](../README.md).' +
      (report.reanalysed ? ` Re-rendered ${report.reanalysed.date} from that run's numbers with \`--reanalyse\` (the analysis and report of this version, no new measurement).` : ''),
  );
  out.push('');
  out.push(
    `Machine: Node ${machine.node}, ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGB} GB, ${machine.platform}; ` +
      `load average before ${machine.loadAverageBefore.join(' / ')}, after ${machine.loadAverageAfter.join(' / ')} ` +
      '(1 / 5 / 15 min; above the core count means other work competed for the CPU and the numbers are noisy).',
  );
  out.push('');
  out.push(
    'Versions: ' +
      Object.entries(report.versions)
        .map(([name, version]) => `${SDKS[name] ? SDKS[name].label.replace(/ \(.*\)/, '') : name} ${version ?? '?'}`)
        .join(', ') +
      '.',
  );
  out.push('');
  out.push(
    'All numbers are medians over rounds. **CPU µs/call** is the client process\'s user+system CPU over the measured ' +
      'calls (in 10 segments, each ending with a span flush, so exporting is included) divided by the number of calls; **overhead** is that minus the uninstrumented ' +
      'baseline of the same round; **× floor** and **× lightest peer** are, per round, the overhead divided by the ' +
      'hand-written span\'s / the lightest peer\'s overhead in that round, then the median over rounds. ' +
      '[min..max] is the spread of the overhead over rounds. **Main-thread CPU** (Linux schedstat ' +
      'of the JS thread only: no GC-helper or compiler threads) is given as a second opinion. `sdk-only` makes no span and ' +
      'should cost ~0: the spread of its "overhead" is the noise of the run, and differences within it mean nothing.',
  );

  if (report.budget.length) {
    out.push('');
    out.push('## Budget (CPU overhead per call)');
    out.push('');
    out.push(
      table(
        ['SDK', 'calls', 'messages', 'exporter', 'line', 'otel-llm-audit (median of per-round ratios)', 'ratio of median overheads (cross-check)', 'margin / noise µs', 'result'],
        report.budget.map((b) => [
          SDKS[b.sdk].label,
          b.shape,
          b.messages ?? 'reused',
          b.exporter ?? exportersOf(settings)[0],
          b.line,
          b.unit === 'MiB' ? `${b.value >= 0 ? '+' : ''}${num(b.value)} MiB` : ratio(b.value),
          b.unit === 'MiB' ? '–' : ratio(b.ratioOfMedians),
          Number.isFinite(b.marginUs) ? `${num(b.marginUs)} / ±${num(b.noiseUs)}` : '–',
          verdict(b),
        ]),
      ),
    );
  }

  for (const group of report.groups.filter((g) => !g.scaling)) {
    out.push('');
    const messages = group.messages === 'fresh' ? ', new message objects every call' : ', the same message objects every call';
    const exporter = exportersOf(settings).length > 1 ? `, exporter \`${group.exporter}\`` : '';
    out.push(`## ${SDKS[group.sdk].label}: ${group.shape === 'plain' ? 'plain calls' : 'streaming calls (50 chunks)'}, ${sizeLabel(group.bytes)} conversation${messages}${exporter}`);
    out.push('');
    const rows = group.configs.map((config) => {
      const e = group.byConfig[config];
      const base = config === 'baseline';
      return [
        configLabel(group, config),
        num(e.spansPerCall, 2),
        num(e.attributesPerSpan, 0),
        ms(e.latencyMedianUs),
        ms(e.latencyP99Us),
        num(e.cpuPerCallUs, 0),
        base ? '' : `${signed(e.cpuOverheadUs)} [${signed(e.cpuOverheadRange[0])}..${signed(e.cpuOverheadRange[1])}]`,
        base ? '' : ratio(e.cpuVsFloor),
        base ? '' : ratio(e.cpuVsLightestPeer),
        base ? '' : signed(e.latencyOverheadUs),
        base ? '' : `${signed(e.mainThreadOverheadUs)} (${ratio(e.mainThreadVsFloor)} / ${ratio(e.mainThreadVsLightestPeer)})`,
        notes(e, group),
      ];
    });
    const control = group.byConfig['sdk-only'];
    if (control && control.rounds > 0) {
      const noise = Math.max(Math.abs(control.cpuOverheadRange[0]), Math.abs(control.cpuOverheadRange[1]));
      out.push(
        `Noise of this group (null control \`sdk-only\`, overhead ${signed(control.cpuOverheadUs)} µs, range ` +
          `[${signed(control.cpuOverheadRange[0])}..${signed(control.cpuOverheadRange[1])}]): about ±${num(noise)} µs per round; ` +
          `ratios whose denominator overhead is within that are unreliable.`,
      );
      out.push('');
    }
    out.push(
      table(
        ['configuration', 'spans/call', 'attrs/span', 'latency p50 ms', 'latency p99 ms', 'CPU µs/call', 'CPU overhead µs', '× floor', '× lightest peer', 'latency p50 overhead µs', 'main-thread CPU overhead µs (× floor / × lightest)', 'notes'],
        rows,
      ),
    );
  }

  // Abandoned streams
  // Whether a span comes out does not depend on how the messages are held: one column per SDK.
  const streamGroups = report.groups.filter((g) => g.shape === 'stream' && !g.scaling && g.messages !== 'fresh' && (g.exporter ?? exportersOf(settings)[0]) === exportersOf(settings)[0]);
  if (streamGroups.length) {
    out.push('');
    out.push('## Streams abandoned after 3 chunks (`break`): spans exported after a flush, per abandoned stream');
    out.push('');
    const configs = [...new Set(streamGroups.flatMap((g) => g.configs))].filter((c) => c !== 'baseline' && c !== 'sdk-only');
    out.push(
      table(
        ['configuration', ...streamGroups.map((g) => SDKS[g.sdk].label)],
        configs.map((config) => [
          config,
          ...streamGroups.map((g) => {
            const e = g.byConfig[config];
            if (!e) return '';
            if (e.errors.length) return 'failed';
            return e.abandon ? `${num(e.abandon.spansPerCall, 2)} (${e.abandon.spans}/${e.abandon.calls})` : '–';
          }),
        ]),
      ),
    );
  }

  // Scaling
  const s = report.scaling;
  if (s && s.points.length > 1) {
    out.push('');
    out.push('## otel-llm-audit overhead against conversation size (openai 6, plain calls, new message objects every call)');
    out.push('');
    out.push(
      table(
        ['conversation', 'baseline CPU µs/call', 'otel-llm-audit CPU µs/call', 'overhead µs', 'hashing alone µs', 'hashing / overhead', 'latency p50 overhead µs'],
        s.points.map((p) => [
          sizeLabel(p.bytes),
          num(p.baselineCpuUs),
          num(p.oursCpuUs),
          signed(p.overheadUs),
          num(p.hashUs, 1),
          Number.isFinite(p.hashUs / p.overheadUs) && p.overheadUs > 0 ? `${Math.round((100 * p.hashUs) / p.overheadUs)}%` : '–',
          signed(p.latencyOverheadUs),
        ]),
      ),
    );
    out.push('');
    out.push(
      `Least-squares fit over the sizes: overhead ≈ ${num(s.overheadFit.a)} µs + ${num(s.overheadFit.b, 2)} µs/KB (r² ${num(s.overheadFit.r2, 3)}); ` +
        `hashing alone ≈ ${num(s.hashFit.a, 1)} µs + ${num(s.hashFit.b, 2)} µs/KB (r² ${num(s.hashFit.r2, 3)}). ` +
        '"Hashing alone" is this package\'s hasher (RFC 8785 canonical JSON + HMAC-SHA256) over the same conversation, ' +
        'timed in the same child after the measured calls.',
    );
  }

  // Profiles
  for (const p of report.profiles ?? []) {
    const perCall = (f) => num(f.usPerCall, 1);
    out.push('');
    out.push(`## Profile: otel-llm-audit, ${SDKS[p.sdk].label}, ${p.shape} calls (--cpu-prof, 100 µs sampling)`);
    out.push('');
    out.push(
      `${p.calls} measured calls; ${num(p.totalMs)} ms of samples during them (warm-up and module loading left out); ` +
        `CPU ${num(p.cpuPerCallUs)} µs/call in that run (the profiler itself adds to it). µs/call below = sampled time / calls.`,
    );
    out.push('');
    out.push(table(['where (self time)', 'µs/call', '%'], p.categories.slice(0, 12).map((c) => [c.name, perCall(c), num(c.pct, 1)])));
    out.push('');
    out.push("This package's files: their own self time plus the self time of the native / dependency frames they call directly:");
    out.push('');
    out.push(table(['file', 'µs/call', '%'], p.packageFiles.slice(0, 10).map((f) => [`\`${f.name}\``, perCall(f), num(f.pct, 2)])));
    out.push('');
    out.push("Top self-time functions of this package (line numbers are of the compiled .js):");
    out.push('');
    out.push(table(['function', 'µs/call', '%'], p.packageSelf.map((f) => [`\`${f.name}\``, perCall(f), num(f.pct, 2)])));
    if (p.calledFromPackage.length) {
      out.push('');
      out.push('Native / dependency frames called directly from this package (self time):');
      out.push('');
      out.push(table(['frame', 'µs/call', '%'], p.calledFromPackage.map((f) => [`\`${f.name}\``, perCall(f), num(f.pct, 2)])));
    }
  }

  out.push('');
  out.push('## Configurations');
  out.push('');
  out.push(
    [
      '- Same for every configuration with OpenTelemetry: `NodeTracerProvider` (AsyncLocalStorage context manager, W3C propagators, ' +
        'always-on sampler) registered globally, one `BatchSpanProcessor` with default settings and an exporter that counts the spans and ' +
        exportersOf(settings).map((e) => `${EXPORTER_TEXT[e]} (\`${e}\`)`).join(', or, in the groups marked so, ') +
        '. No meter or logger provider is registered, so metrics and log events are no-ops for everyone.',
      '- `baseline`: no OpenTelemetry at all. `sdk-only`: the tracer provider, no instrumentation. `hand-span`: one ' +
        '`tracer.startActiveSpan` per call with 3 attributes, ended when the call (or the stream) ends: the floor for any span-based instrumentation.',
      '- `otel-llm-audit`: `LlmAuditInstrumentation` from dist/cjs, `LLM_AUDIT_HASH_KEY` set (HMAC hashes), every call inside `withAuditContext` ' +
        '(user, session, tenant, one metadata key); cost from the bundled prices.',
      '- Messages: "the same message objects every call" is an application that keeps its conversation in memory (an agent loop, a chat ' +
        'session); the input hash then resumes from the state after the turns it has hashed before. "New message objects every call" is a ' +
        'server that receives the whole conversation with each request (the child parses it from JSON per call, in every configuration ' +
        'including the baseline, so the parsing cancels out): every turn is hashed every time.',
      '- Peers with their default configuration (note: Traceloop and OpenInference record prompt and completion content in span attributes by default; ' +
        'the OpenTelemetry contrib instrumentation does not).',
      '- Anthropic: the SDK emits its own span per call whenever a tracer provider is registered. `anthropic-builtin` is that span alone ' +
        '(client option `openTelemetry` left at its default). `otel-llm-audit` also keeps the default option (the package suppresses the ' +
        'SDK span for the calls it audits; spans/call above shows whether it yields exactly one). Every other Anthropic configuration, ' +
        'baseline included, constructs the client with `openTelemetry: false`.',
      '- Same request for everyone: a deterministic conversation (system prompt + alternating turns) of the stated size; OpenAI model ' +
        '`gpt-4o-mini` (streams with `stream_options.include_usage: true`), Anthropic `claude-3-5-haiku-20241022`, `max_tokens` 1024. ' +
        'The fake provider answers every request with the same 174-character text, in 50 chunks when streamed.',
    ].join('\n'),
  );
  out.push('');
  out.push(...ledgerAndIngestSection(report));
  out.push(...spoolMemorySection(report.spoolMemory));
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// bench/ledger.mjs, bench/ingest.mjs and bench/spool-memory.mjs in the report
// ---------------------------------------------------------------------------------------------

const grouped = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const fixed1 = (value) => (Number.isFinite(value) ? value.toFixed(1) : '–');
/** Text made safe for one markdown table cell. */
const cell = (text) => String(text).replace(/\s*\n\s*/g, ' ').replaceAll('|', '\\|');

/** The machine a benchmark ran on, with the load average before (given) and now. */
export function machineInfo(loadAverageBefore = os.loadavg()) {
  const cpus = os.cpus();
  const load = (values) => values.map((l) => Number(l.toFixed(2)));
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model,
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageBefore: load(loadAverageBefore),
    loadAverageAfter: load(os.loadavg()),
  };
}

/** "Run <date> with `<command>` (<s> s; Node ..., load average ...)." for a ledger.json / ingest.json. */
function runLine(result) {
  const m = result.machine ?? {};
  return (
    `Run ${result.date} with \`${result.command}\` (${result.durationSeconds} s; Node ${m.node}, ${m.cores} cores, ` +
    `load average before ${(m.loadAverageBefore ?? []).join(' / ')}, after ${(m.loadAverageAfter ?? []).join(' / ')}).`
  );
}

const LEDGER_METHOD =
  'Appends per fsync policy on fresh ledgers (`FileLedger`, a checkpoint every 1,000 records); then a ledger of the stated ' +
  'size is built (fsync none, 1,000 records per append), verified by the streaming verifier, reopened by a writer (from ' +
  'its newest checkpoint) and scanned by the cost-by-user report, each of these three in a child process of its own ' +
  'whose peak RSS is given.';

/** The table bench/ledger.mjs prints, from its JSON result. */
export function renderLedgerTable(result) {
  const lines = ['| measurement | size | throughput | memory |', '| --- | --- | --- | --- |'];
  for (const m of result.measurements) {
    const throughput = m.recordsPerSec !== undefined ? `${grouped(m.recordsPerSec)} records/s` : `${grouped(m.ms)} ms`;
    const memory = m.peakRssMiB !== undefined ? `${grouped(m.peakRssMiB)} MiB peak RSS` : '';
    lines.push(`| ${m.label} | ${grouped(m.records)} records | ${throughput} | ${memory} |`);
  }
  return lines.join('\n');
}

/** bench/results/ledger.md: also what bench/ledger.mjs prints. */
export function renderLedgerMarkdown(result) {
  return ['# Ledger benchmark (`bench/ledger.mjs`)', '', runLine(result), '', LEDGER_METHOD, '', renderLedgerTable(result), ''].join('\n');
}

const INGEST_HEADER =
  '| backend | 1 client: spans/s | batch latency p50 / p99 (ms) | 8 clients: spans/s | p50 / p99 (ms) | server CPU per span, 8 clients (µs) | ' +
  'flood (64 clients, max-inflight 16): spans/s | 200 / 503 | server RSS idle → peak (MiB) |';

/** The table bench/ingest.mjs prints, from its JSON result: a backend that was not measured says why. */
export function renderIngestTable(result) {
  const lines = [INGEST_HEADER, '|---|---|---|---|---|---|---|---|---|'];
  for (const b of result.backends) {
    if (b.status !== 'ok') {
      lines.push(`| ${b.label} | ${cell(`${b.status}: ${b.reason}`)} | – | – | – | – | – | – | – |`);
      continue;
    }
    const { oneClient: one, eightClients: eight, flood } = b;
    lines.push(
      `| ${b.label} | ${num(one.spansPerSec)} | ${fixed1(one.p50Ms)} / ${fixed1(one.p99Ms)} | ${num(eight.spansPerSec)} | ` +
        `${fixed1(eight.p50Ms)} / ${fixed1(eight.p99Ms)} | ${fixed1(eight.serverCpuUsPerSpan ?? NaN)} | ${num(flood.spansPerSec)} | ${flood.statuses['200'] ?? 0} / ${flood.statuses['503'] ?? 0} | ` +
        `${num(b.rssIdleMiB)} → ${num(b.rssPeakMiB)} |`,
    );
  }
  return lines.join('\n');
}

function ingestLine(result) {
  const o = result.options;
  return (
    `Ingest over OTLP/HTTP (protobuf + gzip, ${o.batch} spans per request, ${o.seconds} s per phase, loopback, ` +
    `${result.machine?.platform ?? '?'}, Node ${result.machine?.node ?? '?'}).`
  );
}

const INGEST_METHOD =
  '`llm-audit serve` runs in a process of its own and gets fresh audit spans (unique request ids) as an OpenTelemetry ' +
  "Collector's otlphttp exporter sends them: one client sending one batch at a time (the batch latency), then 8 clients " +
  'in parallel, then a flood of 64 clients against a server started with `--max-inflight 16`, which answers the excess ' +
  "with 503 (the clients wait 50 ms and send again); the server's RSS is sampled every 100 ms. PostgreSQL is a local " +
  'server: `$LLM_AUDIT_BENCH_POSTGRES_URL`, else `$LLM_AUDIT_TEST_POSTGRES_URL`, else the one `scripts/setup-postgres.sh` starts.';

/** bench/results/ingest.md: also what bench/ingest.mjs prints. */
export function renderIngestMarkdown(result) {
  return ['# Ingest benchmark (`bench/ingest.mjs`)', '', runLine(result), '', `${ingestLine(result)} ${INGEST_METHOD}`, '', renderIngestTable(result), ''].join('\n');
}

/**
 * One benchmark's part of the "Ledger and ingest" section. `entry` is its JSON result as run.mjs
 * stored it in latest.json, or `{ status: 'skipped' | 'failed', ... }`, or absent (a latest.json
 * written before these benchmarks were collected).
 */
function collected(entry, { script, render }) {
  if (!entry) return [`Not collected: this report's latest.json predates it. \`node ${script}\` measures it alone.`];
  if (entry.status === 'skipped') {
    const lines = [`Not run in this run (${entry.reason}).`];
    if (entry.earlier) lines.push('', `The earlier results found in ${entry.earlier.file}:`, '', ...render(entry.earlier.result));
    return lines;
  }
  if (entry.status === 'failed') return [`Failed: \`${entry.command}\`: ${entry.error}`];
  return render(entry);
}

function ledgerAndIngestSection(report) {
  const out = ['## Ledger and ingest', ''];
  out.push(
    "The ledger's and the ingest server's own benchmarks, run by `bench/run.mjs` after the overhead rounds as child " +
      'processes with the options shown (each also writes its own ledger.md / ledger.json, ingest.md / ingest.json).',
  );
  out.push('', '### Ledger: appends, verify, reopen, report (`bench/ledger.mjs`)', '');
  out.push(
    ...collected(report.ledger, {
      script: 'bench/ledger.mjs',
      render: (r) => [runLine(r), '', LEDGER_METHOD, '', renderLedgerTable(r)],
    }),
  );
  out.push('', '### Ingest: `llm-audit serve` over OTLP/HTTP (`bench/ingest.mjs`)', '');
  out.push(
    ...collected(report.ingest, {
      script: 'bench/ingest.mjs',
      render: (r) => [runLine(r), '', `${ingestLine(r)} ${INGEST_METHOD}`, '', renderIngestTable(r)],
    }),
  );
  out.push('');
  return out;
}

/**
 * bench/spool-memory.mjs's results, read (never run) by run.mjs: `{ file, date, command, markdown }`,
 * `{ file, missing: true }` or `{ file, error }`.
 */
function spoolMemorySection(spool) {
  const out = ['## Memory with the OTLP endpoint down', ''];
  if (!spool || spool.missing) {
    out.push(
      `No results: ${spool?.file ?? 'bench/results/spool-memory.json'} does not exist. \`npm run bench:spool\` ` +
        '(bench/spool-memory.mjs) produces it; `node bench/run.mjs --reanalyse bench/results/latest.json` then adds it here.',
    );
  } else if (spool.error) {
    out.push(`Could not read ${spool.file}: ${spool.error}. \`npm run bench:spool\` (bench/spool-memory.mjs) writes it again.`);
  } else {
    out.push(`From ${spool.file} (\`bench/spool-memory.mjs\`), run ${spool.date ?? 'at an unknown date'}${spool.command ? ` with \`${spool.command}\`` : ''}.`);
    out.push('');
    out.push(spool.markdown ? embedMarkdown(spool.markdown) : `It holds no markdown table (its keys: ${(spool.keys ?? []).join(', ')}).`);
  }
  out.push('');
  return out;
}

/** Another benchmark's markdown inside this report: its title dropped, its headings two levels down. */
function embedMarkdown(markdown) {
  return markdown
    .trim()
    .replace(/^# [^\n]*\n+/, '')
    .replace(/^(#{1,4}) /gm, '$1## ');
}
