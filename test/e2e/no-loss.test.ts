/**
 * Issue 5: no audit record is lost or duplicated when the pipeline's servers restart under load.
 *
 * An app (test/e2e/fixtures/load-app.cjs, real SDKs against the local fake provider, run under
 * `node --require otel-llm-audit/register`) makes calls in a loop for LOAD_MS and prints each
 * call's `llm_audit.request_id` as it completes. Meanwhile the collector (the repo's
 * collector-config.yaml) is killed (SIGKILL by default), left down for COLLECTOR_OUTAGE_MS and started
 * again on the same file_storage directory, then `llm-audit serve --ledger DIR` is stopped with
 * SIGTERM for LEDGER_OUTAGE_MS and started again on the same ledger directory. When the app has
 * exited normally (its exit flush) and the ledger has stopped growing, every printed request id
 * must be in the ledger exactly once, nothing else may be there, and `llm-audit verify` must pass.
 *
 * Tuning, standard variables only:
 *   app        OTEL_BSP_SCHEDULE_DELAY=200: spans leave the app within ~200 ms, so exports are in
 *              flight while the collector is down (with the default 5 s most of the load would
 *              wait in the app's memory across the restart and the restart would prove little).
 *              OTEL_EXPORTER_OTLP_TIMEOUT=10000 (the default, set to make it visible): the OTLP
 *              exporter retries a refused export (ECONNREFUSED, 429/502/503/504) with back-off
 *              1 s, 1.5 s, 2.25 s... within this budget, which must outlast the collector's
 *              restart; past it the batch is dropped (OTEL_LOG_LEVEL=info logs that in the app's
 *              log).
 *   collector  OTELCOL_LEDGER_RETRY_INITIAL_INTERVAL=200ms / OTELCOL_LEDGER_RETRY_MAX_INTERVAL=1s:
 *              the ledger exporter resumes within about a second of the ledger's return instead
 *              of up to 30 s (its defaults 5s/30s). Retrying stays unlimited and the queue stays
 *              on disk either way: the setting changes how long the test waits, not what is kept.
 *
 * On a mismatch the failure says where the missing calls are (in Jaeger or not: lost on the audit
 * path only, or before / on both of the collector's pipelines) with the relevant log lines of each
 * process. Logs: .cache/logs.
 *
 * Known limits this test does not cross (try them with the NOLOSS_* variables below): a collector
 * down for longer than the app exporter's retry budget (~6.5-8 s with the 10 s timeout; 5 retries
 * at most, ~13 s, whatever the timeout) loses the batch being retried in the app; a collector
 * killed with SIGKILL loses what its batch processors held (up to their 200 ms timeout) although
 * the app was already answered 200.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { ensureDir, repoRoot, startProcess, stopAll, waitFor, type ManagedProcess } from '../support/processes';
import {
  attributesOf,
  baseEnv,
  BUILD_TIMEOUT_MS,
  Collector,
  ensureBinaries,
  type Jaeger,
  jaegerFindTraces,
  ledgerBytes,
  ledgerEntries,
  type LedgerEntry,
  LedgerServer,
  metricValue,
  startStack,
  verifyLedger,
  waitLedgerQuiet,
} from './support/stack';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
// Overridable for investigations (e.g. NOLOSS_COLLECTOR_OUTAGE_MS=12000 NOLOSS_LOAD_MS=30000 shows
// the app's exporter giving up); NOLOSS_LOG_LEVEL=verbose shows each export retry in the app's log.
const LOAD_MS = Number(process.env.NOLOSS_LOAD_MS ?? 18_000);
const COLLECTOR_OUTAGE_MS = Number(process.env.NOLOSS_COLLECTOR_OUTAGE_MS ?? 2_000);
const LEDGER_OUTAGE_MS = Number(process.env.NOLOSS_LEDGER_OUTAGE_MS ?? 4_000);
// The collector is killed with SIGKILL (a crash: nothing flushed); NOLOSS_COLLECTOR_SIGNAL=SIGTERM tries a graceful stop.
const COLLECTOR_SIGNAL = (process.env.NOLOSS_COLLECTOR_SIGNAL ?? 'SIGKILL') as NodeJS.Signals;
const CANARY = `CANARY-noloss-${hex(6)}`;
const SERVICE = `no-loss-e2e-app-${hex(3)}`;
const TOKEN = `ingest-token-${hex(8)}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What the app's OTLP exporter and batch span processor log (OTEL_LOG_LEVEL=info) when they give spans up. */
const APP_EXPORT_GIVE_UP = /not retrying further|failed after maximum retry|non-retryable|dropped \d+ spans/i;

/** The request ids the app printed so far, in order. */
function printedIds(app: ManagedProcess): string[] {
  return [...app.log().matchAll(/^REQ (\S+)$/gm)].map((m) => m[1]!);
}

function counts(values: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

/** Lines of a log that matter when looking for a loss. */
function notable(log: string, pattern: RegExp, max = 15): string {
  const lines = log.split('\n').filter((l) => pattern.test(l));
  const shown = lines.slice(0, max).map((l) => `    ${l.slice(0, 400)}`);
  return `${lines.length} line(s)${lines.length > 0 ? `:\n${shown.join('\n')}` : ''}`;
}

describe('no audit record lost or duplicated across a collector restart and a ledger outage under load', () => {
  let fake: FakeProvider | undefined;
  let jaeger: Jaeger;
  let collector: Collector;
  let ledger: LedgerServer;
  let runDir: string | undefined;
  let ledgerDir: string;
  let setupError: unknown;
  let failed = false;
  const startedAt = new Date();

  beforeAll(async () => {
    try {
      await ensureBinaries();
      runDir = ensureDir(join(repoRoot, '.cache', 'e2e', `no-loss-${process.pid}-${Date.now()}`));
      ledgerDir = join(runDir, 'ledger');
      fake = await startFakeProvider();
      ({ jaeger, ledger, collector } = await startStack({
        runDir,
        token: TOKEN,
        collectorEnv: { OTELCOL_LEDGER_RETRY_INITIAL_INTERVAL: '200ms', OTELCOL_LEDGER_RETRY_MAX_INTERVAL: '1s' },
      }));
    } catch (error) {
      setupError = error;
    }
  }, BUILD_TIMEOUT_MS * 2 + 120_000);

  afterAll(async () => {
    await stopAll(10_000);
    await fake?.close();
    if (runDir && !failed && !setupError) rmSync(runDir, { recursive: true, force: true });
  }, 60_000);

  /** Where the ids missing from the ledger are, with the evidence of each process's log. */
  async function lossReport(missing: string[], extra: string[], duplicated: string[], app: ManagedProcess): Promise<string> {
    const lines = [`${missing.length} printed request id(s) missing from the ledger, ${extra.length} unexpected, ${duplicated.length} duplicated.`];
    if (missing.length > 0) {
      try {
        const all = await jaegerFindTraces(jaeger, SERVICE, startedAt, 50_000);
        const inJaeger = new Set(all.spans.map((s) => attributesOf(s)['llm_audit.request_id']));
        const seen = missing.filter((id) => inJaeger.has(id));
        const giveUps = app.log().split('\n').filter((l) => APP_EXPORT_GIVE_UP.test(l)).length;
        lines.push(
          `Jaeger holds ${inJaeger.size} of the app's spans. Of the missing ids, ${seen.length} are in Jaeger: the collector accepted them and ` +
            `its Jaeger pipeline delivered them, so they were lost on the audit path (the audit pipeline's batch processor memory, the ` +
            `ledger exporter's queue, or the ledger server). ${missing.length - seen.length} are not in Jaeger either: lost in the app's ` +
            `exporter (${giveUps} give-up line(s) in the app log) or in the collector's memory on both pipelines (batch processors).`,
        );
      } catch (error) {
        lines.push(`(Jaeger could not be asked: ${(error as Error).message})`);
      }
      lines.push(`missing (first 10): ${missing.slice(0, 10).join(', ')}`);
    }
    if (extra.length > 0) lines.push(`unexpected (first 10): ${extra.slice(0, 10).join(', ')}`);
    if (duplicated.length > 0) lines.push(`duplicated (first 10): ${duplicated.slice(0, 10).join(', ')}`);
    lines.push(`app log ${app.logFile}: export problems ${notable(app.log(), /retry|dropped|failed|timed? ?out|exceeds/i)}`);
    lines.push(`collector logs ${collector.runs.map((p) => p.logFile).join(', ')}: warnings and drops ${notable(collector.log(), /\t(warn|error)\t|dropping|dropped|rejected/i)}`);
    lines.push(`ledger server logs ${ledger.runs.map((p) => p.logFile).join(', ')}:\n${ledger.log()}`);
    return lines.join('\n');
  }

  it('every call the app printed is in the ledger exactly once, nothing else is, and verify passes', async () => {
    try {
      if (setupError) throw setupError;
      const t0 = Date.now();
      const app = startProcess('load-app', process.execPath, {
        args: ['--require', 'otel-llm-audit/register', join(repoRoot, 'test', 'e2e', 'fixtures', 'load-app.cjs')],
        env: baseEnv({
          FAKE_PROVIDER_URL: fake!.url,
          APP_PROMPT: CANARY,
          LOAD_DURATION_MS: String(LOAD_MS),
          LOAD_WORKERS: '2',
          LOAD_PAUSE_MS: '20',
          OTEL_SERVICE_NAME: SERVICE,
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpHttpUrl,
          OTEL_BSP_SCHEDULE_DELAY: '200',
          OTEL_EXPORTER_OTLP_TIMEOUT: '10000',
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_LOGS_EXPORTER: 'none',
          OTEL_LOG_LEVEL: process.env.NOLOSS_LOG_LEVEL ?? 'info',
          LLM_AUDIT_HASH_KEY: `no-loss-hash-key-${hex(8)}`,
        }),
      });
      const at = () => Date.now() - t0;
      const timeline: string[] = [];
      const mark = (what: string) => timeline.push(`${(at() / 1000).toFixed(1)}s ${what} (app printed ${printedIds(app).length})`);

      // Load flowing end to end before anything is disturbed.
      await waitFor('the app to complete 20 calls', () => (printedIds(app).length >= 20 ? true : undefined), { process: app, timeoutMs: 30_000 });
      await waitFor('the first records in the ledger', () => (ledgerEntries(ledgerDir).length > 0 ? true : undefined), { process: app, timeoutMs: 30_000 });
      await sleep(1_500);

      // 1. The collector: killed, then a new process on the same file_storage directory.
      mark(`collector ${COLLECTOR_SIGNAL}`);
      const beforeCollector = printedIds(app).length;
      if (COLLECTOR_SIGNAL === 'SIGTERM') await collector.stop();
      else await collector.kill(COLLECTOR_SIGNAL);
      mark('collector exited');
      // Down long enough that the app's exports are refused and retried (its back-off starts at
      // 1 s), well inside its 10 s retry budget.
      await sleep(COLLECTOR_OUTAGE_MS);
      await collector.start();
      mark('collector ready again');
      const duringCollectorRestart = printedIds(app).length - beforeCollector;

      await sleep(2_000);

      // 2. The ledger server: SIGTERM, down for a few seconds, then again on the same directory.
      mark('ledger server SIGTERM');
      await ledger.stop();
      const sizeAtLedgerStop = ledgerEntries(ledgerDir).length;
      const beforeLedger = printedIds(app).length;
      mark(`ledger server exited (${sizeAtLedgerStop} records)`);
      await sleep(LEDGER_OUTAGE_MS);
      expect(ledgerEntries(ledgerDir).length, 'nothing writes the ledger while its server is down').toBe(sizeAtLedgerStop);
      await ledger.start();
      mark('ledger server ready again');
      const duringLedgerOutage = printedIds(app).length - beforeLedger;
      // The disturbances happened under load, not after it.
      expect(app.exitInfo(), 'the load ran past both disturbances').toBeUndefined();
      expect(duringCollectorRestart, 'calls completed while the collector restarted').toBeGreaterThan(0);
      expect(duringLedgerOutage, 'calls completed while the ledger server was down').toBeGreaterThan(0);

      // 3. The load ends; the app exits on its own (exit flush of the remaining spans).
      const exit = await Promise.race([app.exited, sleep(LOAD_MS + 30_000).then(() => 'timeout' as const)]);
      if (exit === 'timeout') throw new Error(`the load app did not exit; log ${app.logFile}:\n${app.logTail()}`);
      mark('app exited');
      expect(exit, `load app exit; log ${app.logFile}:\n${app.logTail()}`).toEqual({ code: 0, signal: null });
      const printed = printedIds(app);
      const done = /^DONE (\d+) (\d+)$/m.exec(app.log());
      expect(done?.slice(1), 'calls and errors the app reported').toEqual([String(printed.length), '0']);

      // 4. Wait until the ledger stops growing: unchanged for 3 s (longer than the collector's 1 s
      //    maximum retry interval and the server's 2 s Retry-After) with the collector's queue to
      //    the ledger empty.
      const entries: LedgerEntry[] = await waitLedgerQuiet(ledgerDir, {
        quietMs: 3_000,
        timeoutMs: 60_000,
        process: ledger.process!,
        settled: async () => metricValue(await collector.metrics(), 'otelcol_exporter_queue_size', { exporter: 'otlp_http/ledger' }) === 0,
      });
      mark(`ledger quiet (${entries.length} records)`);

      // The calls: not the audit.start record the app's process writes before its first one.
      const stored = entries.filter((e) => e.record.action !== 'audit.start').map((e) => e.record.request_id as string);
      const storedCounts = counts(stored);
      const printedSet = new Set(printed);
      const missing = printed.filter((id) => !storedCounts.has(id));
      const extra = [...storedCounts.keys()].filter((id) => !printedSet.has(id));
      const duplicated = [...storedCounts].filter(([, n]) => n > 1).map(([id]) => id);
      const summary = `${printed.length} calls printed, ${entries.length} ledger records; timeline:\n  ${timeline.join('\n  ')}`;
      // For the record only (Jaeger's path has an in-memory queue; this test is about the ledger).
      const inJaeger = await jaegerFindTraces(jaeger, SERVICE, startedAt, 50_000).then(
        (a) => `${a.spans.length} of the app's spans are in Jaeger`,
        (error: Error) => `Jaeger could not be asked: ${error.message}`,
      );
      console.log(
        `no-loss: ${summary}\n  ${duringCollectorRestart} calls completed during the collector restart, ${duringLedgerOutage} during the ledger outage; ${inJaeger}`,
      );
      if (missing.length + extra.length + duplicated.length > 0) {
        throw new Error(`${summary}\n${await lossReport(missing, extra, duplicated, app)}`);
      }
      expect(new Set(printed).size, 'the app printed each request id once').toBe(printed.length);
      expect(stored.sort()).toEqual([...printed].sort());
      for (const e of entries.filter((x) => x.record.action !== 'audit.start')) expect(e.record).toMatchObject({ tenant_id: 'load-tenant', status: 'success' });

      const verify = await verifyLedger(ledgerDir);
      expect(verify.code).toBe(0);
      expect(ledgerBytes(ledgerDir).includes(CANARY)).toBe(false);
    } catch (error) {
      failed = true;
      throw error;
    }
  }, LOAD_MS + 130_000);
});
