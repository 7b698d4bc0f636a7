// Turns the per-round child results into the numbers of the report: per configuration medians
// over rounds, overheads over the baseline OF THE SAME ROUND, and ratios to the floor and the peers.
import { CONFIGS, SDKS } from './configs.mjs';
import { linearFit, max, median, min } from './stats.mjs';

const FLOOR = 'hand-span';
const OURS = 'otel-llm-audit';

/** A child result that measured something. */
const ok = (r) => r !== undefined && r.error === undefined && Number.isFinite(r.cpuPerCallUs);

/**
 * @param group { key, sdk, shape, bytes, configs: string[] }
 * @param rounds results[round][config] (child results, or undefined when not run)
 */
export function analyseGroup(group, rounds) {
  const byConfig = {};
  for (const config of group.configs) {
    const runs = rounds.map((round) => round[config]);
    const good = runs.filter(ok);
    const errors = runs.filter((r) => r && r.error).map((r) => `${r.error.stage}: ${r.error.message}`);
    byConfig[config] = {
      config,
      kind: CONFIGS[config].kind,
      rounds: good.length,
      errors: [...new Set(errors)],
      latencyMedianUs: median(good.map((r) => r.latency.median)),
      latencyP99Us: median(good.map((r) => r.latency.p99)),
      cpuPerCallUs: median(good.map((r) => r.cpuPerCallUs)),
      mainThreadCpuPerCallUs: median(good.map((r) => r.mainThreadCpuPerCallUs)),
      runQueueWaitPerCallUs: median(good.map((r) => r.runQueueWaitPerCallUs)),
      spansPerCall: median(good.map((r) => r.spansPerCall)),
      attributesPerSpan: median(good.map((r) => r.attributesPerSpan)),
      spanNames: good.at(-1)?.spanNames,
      streamDeltas: good.length ? { min: min(good.map((r) => r.streamDeltas?.min)), max: max(good.map((r) => r.streamDeltas?.max)) } : undefined,
      abandon: sumAbandon(good),
      hashUs: median(good.map((r) => r.hashUs)),
      rssMiB: median(good.map((r) => r.rssMB)),
      bytes: good[0]?.bytes,
      sampleSpan: good.at(-1)?.sampleSpan,
    };
  }

  // Overheads over the baseline of the same round.
  const overhead = (config, metric) =>
    rounds.map((round) => {
      const base = round.baseline;
      const run = round[config];
      return ok(base) && ok(run) ? metric(run) - metric(base) : NaN;
    });
  const cpu = (r) => r.cpuPerCallUs;
  const lat = (r) => r.latency.median;
  const main = (r) => r.mainThreadCpuPerCallUs;
  for (const config of group.configs) {
    const entry = byConfig[config];
    entry.cpuOverheadByRound = overhead(config, cpu);
    entry.latencyOverheadByRound = overhead(config, lat);
    entry.mainThreadOverheadByRound = overhead(config, main);
    entry.mainThreadOverheadUs = median(entry.mainThreadOverheadByRound);
    entry.cpuOverheadUs = median(entry.cpuOverheadByRound);
    entry.cpuOverheadRange = [min(entry.cpuOverheadByRound), max(entry.cpuOverheadByRound)];
    entry.latencyOverheadUs = median(entry.latencyOverheadByRound);
  }

  // Peers that did instrument these calls (a span per call, no crash) are the comparison set.
  const peers = group.configs.filter(
    (c) => CONFIGS[c].kind === 'peer' && byConfig[c].rounds > 0 && byConfig[c].errors.length === 0 && byConfig[c].spansPerCall >= 0.99,
  );
  const lightest = peers.length
    ? peers.reduce((best, c) => (byConfig[c].cpuOverheadUs < byConfig[best].cpuOverheadUs ? c : best))
    : undefined;

  // Ratio per round, then the median over rounds. A denominator <= 0 (noise swamping a small
  // overhead) gives no ratio for that round.
  const ratioByRound = (num, den) => num.map((n, i) => (den[i] > 0 && Number.isFinite(n) ? n / den[i] : NaN));
  for (const config of group.configs) {
    const entry = byConfig[config];
    if (config === 'baseline') continue;
    if (byConfig[FLOOR]) {
      entry.cpuVsFloor = median(ratioByRound(entry.cpuOverheadByRound, byConfig[FLOOR].cpuOverheadByRound));
      entry.latencyVsFloor = median(ratioByRound(entry.latencyOverheadByRound, byConfig[FLOOR].latencyOverheadByRound));
      entry.mainThreadVsFloor = median(ratioByRound(entry.mainThreadOverheadByRound, byConfig[FLOOR].mainThreadOverheadByRound));
    }
    if (lightest) {
      entry.cpuVsLightestPeer = median(ratioByRound(entry.cpuOverheadByRound, byConfig[lightest].cpuOverheadByRound));
      entry.latencyVsLightestPeer = median(ratioByRound(entry.latencyOverheadByRound, byConfig[lightest].latencyOverheadByRound));
      entry.mainThreadVsLightestPeer = median(ratioByRound(entry.mainThreadOverheadByRound, byConfig[lightest].mainThreadOverheadByRound));
    }
  }
  const ours = byConfig[OURS];
  const vsEachPeer = {};
  if (ours) {
    for (const peer of peers) vsEachPeer[peer] = median(ratioByRound(ours.cpuOverheadByRound, byConfig[peer].cpuOverheadByRound));
  }
  return { ...group, byConfig, peers, lightest, oursVsEachPeer: vsEachPeer };
}

function sumAbandon(results) {
  const withAbandon = results.filter((r) => r.abandon);
  if (withAbandon.length === 0) return undefined;
  const calls = withAbandon.reduce((s, r) => s + r.abandon.calls, 0);
  const spans = withAbandon.reduce((s, r) => s + r.abandon.spans, 0);
  return { calls, spans, spansPerCall: spans / calls };
}

/**
 * What each provider's calls are held to (issue 19): the instrumentation a user would otherwise run
 * for that SDK, at a ratio of 1.0, for plain calls and streams alike, under every exporter measured.
 * The peers that record the conversation as span attributes (a different purpose: they keep the
 * content, this package keeps keyed digests) get a ratio reported beside it, with no verdict.
 */
export const BUDGET_REFERENCE = { openai: 'otel-contrib', anthropic: 'anthropic-builtin' };
export const CONTENT_PEERS = ['traceloop-openai', 'openinference-openai', 'traceloop-anthropic', 'openinference-anthropic'];

/**
 * The budget lines, per group (SDK, call shape, message handling, exporter), on CPU time per call
 * (the quantity least disturbed by other load on the machine): otel-llm-audit's overhead at most
 * 1.0x the reference's; then one reported ratio per content-recording peer that ran.
 */
export function budget(analysed) {
  const lines = [];
  for (const g of analysed.filter((g) => g.scaling !== true)) {
    const ours = g.byConfig[OURS];
    if (!ours) continue;
    // The null control's spread: a margin smaller than that, or per-round and median ratios that
    // disagree, is not a verdict either way.
    const control = g.byConfig['sdk-only'];
    const noiseUs = control?.cpuOverheadRange ? Math.max(...control.cpuOverheadRange.map(Math.abs)) : NaN;
    // Cross-check: the ratio of the median overheads (less sensitive to one round whose
    // denominator was swamped by noise, more to a drift between rounds).
    const ofMedians = (other) => (other && other.cpuOverheadUs > 0 ? ours.cpuOverheadUs / other.cpuOverheadUs : NaN);
    const base = { sdk: g.sdk, shape: g.shape, messages: g.messages ?? 'reused', exporter: g.exporter, noiseUs };
    const reference = BUDGET_REFERENCE[SDKS[g.sdk]?.provider];
    const ref = g.byConfig[reference];
    if (ref && g.peers.includes(reference)) {
      const value = g.oursVsEachPeer[reference];
      const ratioOfMedians = ofMedians(ref);
      const pass = value <= 1;
      const marginUs = Math.abs(ours.cpuOverheadUs - ref.cpuOverheadUs);
      const agree = Number.isFinite(ratioOfMedians) && ratioOfMedians <= 1 === pass && ratioOfMedians !== 1;
      lines.push({ ...base, line: `≤ 1.0× ${reference}`, reference, value, ratioOfMedians, limit: 1, pass, marginUs, conclusive: agree && Number.isFinite(noiseUs) && marginUs > noiseUs });
    } else if (reference) {
      lines.push({ ...base, line: `≤ 1.0× ${reference}`, reference, value: NaN, ratioOfMedians: NaN, limit: 1, pass: false, marginUs: NaN, conclusive: false, missing: `${reference} did not run or did not make one span per call` });
    }
    // Memory kept: the process's RSS at the end of its calls (warm-up and measured), beside the
    // reference's; a line of its own for plain calls, where nothing else holds memory per call.
    if (ref && g.shape === 'plain' && Number.isFinite(ours.rssMiB) && Number.isFinite(ref.rssMiB)) {
      const differenceMiB = ours.rssMiB - ref.rssMiB;
      lines.push({ ...base, line: `RSS ≤ ${reference}'s + 10 MiB`, reference, value: differenceMiB, unit: 'MiB', limit: 10, pass: differenceMiB <= 10, marginUs: NaN, conclusive: true });
    }
    for (const peer of CONTENT_PEERS.filter((p) => g.peers.includes(p))) {
      lines.push({ ...base, line: `ratio to ${peer} (records the conversation; reported, no budget)`, reference: peer, value: g.oursVsEachPeer[peer], ratioOfMedians: ofMedians(g.byConfig[peer]), limit: undefined, marginUs: NaN, reported: true });
    }
  }
  return lines;
}

/** The scaling series: otel-llm-audit's overhead against the conversation size, and a linear fit. */
export function scaling(analysed) {
  const candidates = analysed.filter((g) => g.sdk === 'openai6' && g.shape === 'plain' && g.byConfig[OURS] && g.byConfig.baseline);
  // Fresh message objects each call (reports from before that option have reused ones only).
  const fresh = candidates.filter((g) => g.messages === 'fresh');
  const points = (fresh.length > 0 ? fresh : candidates)
    .map((g) => ({
      bytes: g.byConfig[OURS].bytes ?? g.bytes,
      baselineCpuUs: g.byConfig.baseline.cpuPerCallUs,
      oursCpuUs: g.byConfig[OURS].cpuPerCallUs,
      overheadUs: g.byConfig[OURS].cpuOverheadUs,
      latencyOverheadUs: g.byConfig[OURS].latencyOverheadUs,
      hashUs: g.byConfig[OURS].hashUs,
    }))
    .sort((a, b) => a.bytes - b.bytes);
  const kb = points.map((p) => p.bytes / 1024);
  return {
    points,
    overheadFit: linearFit(kb, points.map((p) => p.overheadUs)),
    hashFit: linearFit(kb, points.map((p) => p.hashUs)),
  };
}
