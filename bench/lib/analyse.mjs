// Turns the per-round child results into the numbers of the report: per configuration medians
// over rounds, overheads over the baseline OF THE SAME ROUND, and ratios to the floor and the peers.
import { CONFIGS } from './configs.mjs';
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
 * The budget lines, per SDK:
 *   plain:     otel-llm-audit overhead <= 0.8 x the lightest peer's, and <= 1.3 x the floor's;
 *   streaming: otel-llm-audit overhead below every peer's.
 * On CPU time per call (the quantity least disturbed by other load on the machine).
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
    const conclusive = (line, reference) => {
      const marginUs = Math.abs(ours.cpuOverheadUs - line.limit * reference);
      const agree = Number.isFinite(line.ratioOfMedians) && (line.ratioOfMedians <= line.limit) === line.pass && (line.limit !== 1 || line.ratioOfMedians !== 1);
      return { ...line, noiseUs, marginUs, conclusive: agree && Number.isFinite(noiseUs) && marginUs > noiseUs };
    };
    // Cross-check: the ratio of the median overheads (less sensitive to one round whose
    // denominator was swamped by noise, more to a drift between rounds).
    const ofMedians = (other) => (other && other.cpuOverheadUs > 0 ? ours.cpuOverheadUs / other.cpuOverheadUs : NaN);
    if (g.shape === 'plain') {
      lines.push(
        conclusive(
          {
            sdk: g.sdk,
            shape: g.shape,
            messages: g.messages ?? 'reused',
            line: `≤ 0.8× lightest peer (${g.lightest ?? 'none'})`,
            value: ours.cpuVsLightestPeer,
            ratioOfMedians: ofMedians(g.byConfig[g.lightest]),
            limit: 0.8,
            pass: ours.cpuVsLightestPeer <= 0.8,
          },
          g.byConfig[g.lightest]?.cpuOverheadUs,
        ),
      );
      lines.push(
        conclusive(
          {
            sdk: g.sdk,
            shape: g.shape,
            messages: g.messages ?? 'reused',
            line: '≤ 1.3× hand-written span',
            value: ours.cpuVsFloor,
            ratioOfMedians: ofMedians(g.byConfig[FLOOR]),
            limit: 1.3,
            pass: ours.cpuVsFloor <= 1.3,
          },
          g.byConfig[FLOOR]?.cpuOverheadUs,
        ),
      );
    } else if (g.shape === 'stream') {
      const ratios = Object.values(g.oursVsEachPeer);
      const worst = ratios.length ? Math.max(...ratios) : NaN;
      const worstPeer = Object.keys(g.oursVsEachPeer).find((p) => g.oursVsEachPeer[p] === worst);
      const medianRatios = g.peers.map((p) => ofMedians(g.byConfig[p])).filter(Number.isFinite);
      lines.push(
        conclusive(
          {
            sdk: g.sdk,
            shape: g.shape,
            messages: g.messages ?? 'reused',
            line: `below every peer (closest: ${worstPeer ?? 'none'})`,
            value: worst,
            ratioOfMedians: medianRatios.length ? Math.max(...medianRatios) : NaN,
            limit: 1,
            pass: worst < 1,
          },
          g.byConfig[worstPeer]?.cpuOverheadUs,
        ),
      );
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
