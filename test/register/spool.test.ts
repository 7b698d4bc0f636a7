import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { repoRoot } from '../support/harness';
import { runNodeApp, type AppRun } from '../support/child-app';
import { freePort, startOtlpReceiver } from '../support/otlp-receiver';
import { readSpoolFile } from '../../src/export/spool-file';
import { CONFIG_FIX } from '../../src/config/problems';

// The durable OTLP spool through `node --require otel-llm-audit/register`, with real apps in child
// processes and a real OTLP/HTTP receiver on loopback: while the endpoint is down, the spans of
// finished calls survive the process's end (normal exit and SIGTERM) in the spool, and the next
// process started with the same spool directory sends every one of them exactly once.

const app = join(repoRoot, 'test', 'fixtures', 'spool-app.cjs');
let fake: FakeProvider;
beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});

function runApp(env: Record<string, string>, onStdout?: (text: string, child: ChildProcess) => void): Promise<AppRun> {
  return runNodeApp(
    ['--require', 'otel-llm-audit/register', app],
    {
      FAKE_PROVIDER_URL: fake.url,
      OTEL_SERVICE_NAME: 'spool-test-app',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      // A refused connection is given up after 500 ms instead of the default 10 s of retries.
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      // Several batches, hence several spool files, per run.
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4',
      LLM_AUDIT_HASH_KEY: 'spool-test-hash-key-0123456',
      ...env,
    },
    onStdout,
  );
}

const requestIds = (result: AppRun): string[] => JSON.parse(result.stdout.split('\n')[0]!) as string[];

/** The request ids of every span in the spool files under `dir`, sorted. */
async function spooledRequestIds(dir: string): Promise<string[]> {
  const ids: string[] = [];
  for (const name of spoolFiles(dir)) {
    const { spans } = await readSpoolFile(join(dir, name));
    for (const span of spans) ids.push(span.attributes['llm_audit.request_id'] as string);
  }
  return ids.sort();
}

/** Every `.spool` file under the spool root (process subdirectories included), quarantine excluded. */
function spoolFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.spool') && !name.startsWith('quarantine'));
}

describe('the OTLP spool through register', () => {
  it('endpoint down: a normal exit and a SIGTERM leave every span in the spool; the next process sends each exactly once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-register-'));
    const port = await freePort();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, LLM_AUDIT_SPOOL_DIR: dir };

    const exited = await runApp({ ...env, APP_CALLS: '10' });
    expect(exited.code).toBe(0);
    const firstIds = requestIds(exited);
    expect(firstIds).toHaveLength(10);
    // Every span of the run is in the spool (in how many files depends on how the writes bunched up).
    expect(await spooledRequestIds(dir)).toEqual([...firstIds].sort());

    // A long batch delay: the last 3 spans are still in memory when SIGTERM comes, and go to the
    // spool during the shutdown flush.
    const terminated = await runApp({ ...env, APP_CALLS: '7', APP_STAY_ALIVE: '1', OTEL_BSP_SCHEDULE_DELAY: '60000' }, (stdout, child) => {
      if (stdout.includes('ready\n') && !child.killed) child.kill('SIGTERM');
    });
    expect(terminated.signal).toBe('SIGTERM');
    const secondIds = requestIds(terminated);
    expect(secondIds).toHaveLength(7);
    expect(await spooledRequestIds(dir)).toEqual([...firstIds, ...secondIds].sort());

    const otlp = await startOtlpReceiver({ port });
    try {
      const third = await runApp({ ...env, APP_CALLS: '2' });
      expect(third.code).toBe(0);
      const thirdIds = requestIds(third);
      const spans = otlp.jsonSpans();
      const arrived = spans.map((s) => s.attributes['llm_audit.request_id'] as string);
      // Exactly once: no request id and no span id twice, and every call of the three runs present.
      expect(new Set(arrived).size).toBe(arrived.length);
      expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length);
      expect(arrived.sort()).toEqual([...firstIds, ...secondIds, ...thirdIds].sort());
      for (const span of spans) {
        expect(span.resource['service.name']).toBe('spool-test-app');
        expect(span.scope).toBe('otel-llm-audit');
        expect(span.attributes['llm_audit.input.hash']).toMatch(/^hmac-sha256:/);
      }
      // The spool is empty and the directories of the processes that ended are gone.
      expect(spoolFiles(dir)).toEqual([]);
      expect(readdirSync(dir).filter((name) => statSync(join(dir, name)).isDirectory() && name !== 'quarantine')).toEqual([]);
    } finally {
      await otlp.close();
    }
  });

  /**
   * An app run against a closed port with the exporters' default 10 s timeout and OTLP metrics on:
   * it must end without waiting for their retries (without the probe this app took 13.6 s), every
   * span in the spool.
   */
  async function runWithNothingListening(protocol: string) {
    const dir = mkdtempSync(join(tmpdir(), 'spool-register-probe-'));
    const port = await freePort();
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_EXPORTER_OTLP_TIMEOUT: '10000',
      OTEL_METRICS_EXPORTER: 'otlp',
      LLM_AUDIT_SPOOL_DIR: dir,
    };
    const started = Date.now();
    const down = await runApp({ ...env, APP_CALLS: '3' });
    expect(down.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(6_000); // the first retry round alone would end after 10 s
    expect(await spooledRequestIds(dir)).toEqual([...requestIds(down)].sort());
    return { dir, port, env, down };
  }

  it("endpoint down with the exporters' default 10 s timeout and OTLP metrics on: the app ends without waiting for their retries, every span in the spool; endpoint up: spans and the last metrics are sent at exit", async () => {
    const { dir, port, env, down } = await runWithNothingListening('http/json');
    expect(down.stderr).toBe('');

    const otlp = await startOtlpReceiver({ port });
    try {
      const up = await runApp({ ...env, APP_CALLS: '2' });
      expect(up.code).toBe(0);
      expect(otlp.jsonSpans().map((s) => s.attributes['llm_audit.request_id'] as string).sort()).toEqual([...requestIds(down), ...requestIds(up)].sort());
      const metricExports = otlp.received.filter((r) => r.path === '/v1/metrics');
      expect(metricExports.length).toBeGreaterThan(0);
      expect(Buffer.concat(metricExports.map((r) => r.body)).toString()).toContain('gen_ai.client.operation.duration');
      expect(spoolFiles(dir)).toEqual([]);
    } finally {
      await otlp.close();
    }
  });

  it('the same over gRPC (the gRPC exporters for spans and metrics): nothing listening, no wait, every span in the spool', async () => {
    await runWithNothingListening('grpc');
  });

  it('http/protobuf: spooled spans are re-sent in the protocol the environment asks for, each request id once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-register-pb-'));
    const port = await freePort();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', LLM_AUDIT_SPOOL_DIR: dir };
    const down = await runApp({ ...env, APP_CALLS: '6' });
    expect(down.code).toBe(0);
    expect(spoolFiles(dir).length).toBeGreaterThan(0);
    const otlp = await startOtlpReceiver({ port });
    try {
      const up = await runApp({ ...env, APP_CALLS: '1' });
      expect(up.code).toBe(0);
      const exports = otlp.traceExports();
      for (const e of exports) expect(e.contentType).toBe('application/x-protobuf');
      // Protobuf carries strings verbatim: each request id is in the bytes exactly once.
      const bytes = otlp.allBytes().toString('latin1');
      for (const id of [...requestIds(down), ...requestIds(up)]) expect(bytes.split(id).length - 1).toBe(1);
      expect(spoolFiles(dir)).toEqual([]);
    } finally {
      await otlp.close();
    }
  });

  it('process.exit() right after the calls: what was only in memory is written to the spool on the exit event and sent by the next process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-exit-'));
    const port = await freePort();
    // A batch delay far longer than the app lives: at process.exit() every span is still in memory.
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, LLM_AUDIT_SPOOL_DIR: dir, OTEL_BSP_SCHEDULE_DELAY: '60000', APP_EXIT_NOW: '1' };
    const otlp = await startOtlpReceiver({ port });
    let exitedWhileUp: AppRun;
    try {
      // The endpoint is up, but the app exits before anything could be sent.
      exitedWhileUp = await runApp({ ...env, APP_CALLS: '3' });
      expect(exitedWhileUp.code).toBe(0);
      expect(spoolFiles(dir).length).toBeGreaterThan(0);
      // Said once, on stderr: the last calls reach the collector only when a later process starts.
      expect(exitedWhileUp.stderr.match(/process\.exit\(\) before the last 3 span\(s\) were sent; they are in the spool .*Await shutdownAudit\(\)/g)).toHaveLength(1);
      expect(otlp.jsonSpans()).toHaveLength(0);
    } finally {
      await otlp.close();
    }
    // The endpoint is down and the app exits at once again.
    const exitedWhileDown = await runApp({ ...env, APP_CALLS: '5' });
    expect(exitedWhileDown.code).toBe(0);
    const again = await startOtlpReceiver({ port });
    try {
      const last = await runApp({ ...env, APP_CALLS: '1', APP_EXIT_NOW: '', OTEL_BSP_SCHEDULE_DELAY: '100' });
      expect(last.code).toBe(0);
      const arrived = again.jsonSpans().map((s) => s.attributes['llm_audit.request_id'] as string);
      expect(new Set(arrived).size).toBe(arrived.length);
      expect(arrived.sort()).toEqual([...requestIds(exitedWhileUp), ...requestIds(exitedWhileDown), ...requestIds(last)].sort());
      expect(spoolFiles(dir)).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it("an application's own NodeSDK with auditSpanProcessors(): spooled while the endpoint is down, sent once when it is back", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spool-own-sdk-'));
    const port = await freePort();
    const own = join(repoRoot, 'test', 'fixtures', 'own-sdk.cjs');
    const env = {
      FAKE_PROVIDER_URL: fake.url,
      OTEL_SERVICE_NAME: 'own-sdk-app',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      LLM_AUDIT_SPOOL_DIR: dir,
    };
    const down = await runNodeApp(['--require', own, app], { ...env, APP_CALLS: '5' });
    expect(down.code).toBe(0);
    expect(spoolFiles(dir).length).toBeGreaterThan(0);
    const otlp = await startOtlpReceiver({ port });
    try {
      const up = await runNodeApp(['--require', own, app], { ...env, APP_CALLS: '1' });
      expect(up.code).toBe(0);
      // Each call arrives as its audit record, and as the trace span the app's SDK made (marked as a copy).
      const spans = otlp.jsonSpans();
      const arrived = spans.filter((s) => s.attributes['llm_audit.trace_copy'] !== true).map((s) => s.attributes['llm_audit.request_id'] as string);
      expect(arrived.sort()).toEqual([...requestIds(down), ...requestIds(up)].sort());
      const copies = spans.filter((s) => s.attributes['llm_audit.trace_copy'] === true).map((s) => s.attributes['llm_audit.request_id'] as string);
      expect(copies.sort()).toEqual(arrived);
      expect(spoolFiles(dir)).toEqual([]);
    } finally {
      await otlp.close();
    }
  });

  it('LLM_AUDIT_SPOOL=off: the plain BatchSpanProcessor, nothing is written to the spool directory', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'spool-off-')), 'spool');
    const port = await freePort();
    const result = await runApp({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, LLM_AUDIT_SPOOL_DIR: dir, LLM_AUDIT_SPOOL: 'off', APP_CALLS: '3' });
    expect(result.code).toBe(0);
    expect(() => readdirSync(dir)).toThrow(/ENOENT/);
  });

  it.each([
    [{ LLM_AUDIT_SPOOL_MAX_BYTES: '12 parsecs' }, `otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_SPOOL_MAX_BYTES=12 parsecs is not a positive size in bytes (e.g. 536870912, 512MiB, 2GiB)\nfix: ${CONFIG_FIX}\n`],
    [{ LLM_AUDIT_SPOOL_MAX_BYTES: '0' }, `otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_SPOOL_MAX_BYTES=0 is not a positive size in bytes (e.g. 536870912, 512MiB, 2GiB)\nfix: ${CONFIG_FIX}\n`],
    [{ LLM_AUDIT_SPOOL: 'maybe' }, `otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_SPOOL=maybe is not one of on, off\nfix: ${CONFIG_FIX}\n`],
    [{ LLM_AUDIT_SPOOL_DIR: app }, `otel-llm-audit: CONFIG_INVALID: LLM_AUDIT_SPOOL_DIR=${app} exists and is not a directory\n`],
  ])('a bad spool setting %o stops the app at startup with exit status 78', async (setting, message) => {
    const result = await runApp({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', APP_CALLS: '0', ...setting });
    expect(result.code).toBe(78);
    expect(result.stderr).toBe(message);
  });
});
