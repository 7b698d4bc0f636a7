/**
 * End-to-end smoke test of the collector pipeline with REAL binaries: the project's collector
 * distribution (collector/builder-config.yaml, built by scripts/build-collector.sh) running
 * collector-config.yaml, and a Jaeger v2 (scripts/build-jaeger.sh) running
 * collector/jaeger-config.yaml. A small stand-in OTLP/HTTP server plays the ledger in place of
 * `llm-audit serve`, recording every request.
 *
 * The build scripts run first; they return at once when their cached binaries are up to date
 * and take several minutes each otherwise (about 10 min for Jaeger and 6 for the collector on
 * 2 cores, cold). Set LLM_AUDIT_E2E_BUILD=0 to skip them and use the binaries already in
 * .cache/bin; a missing binary or any other setup failure fails every test, never skips it.
 * LLM_AUDIT_E2E_COLLECTOR_CONFIG=path runs the same checks against another collector config.
 * Process logs: .cache/logs/<name>-<time>-<pid>.log.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureDir,
  freePorts,
  repoRoot,
  runToCompletion,
  startProcess,
  stopAll,
  waitFor,
  waitForHttp,
  waitForPort,
  type ManagedProcess,
} from '../support/processes';
import { BUILD_TIMEOUT_MS, collectorBin, ensureBinaries, jaegerBin } from './support/stack';

const HOST = '127.0.0.1';
const collectorConfig = process.env.LLM_AUDIT_E2E_COLLECTOR_CONFIG ?? join(repoRoot, 'collector-config.yaml');
const jaegerConfig = join(repoRoot, 'collector', 'jaeger-config.yaml');
const INGEST_TOKEN = `test-token-${randomBytes(6).toString('hex')}`;
const ENVELOPE = JSON.stringify({ llm_audit_envelope: 1, alg: 'AES-256-GCM', kid: 'k1', iv: 'aXY=', ct: 'Y3Q=', tag: 'dGFn' });
const RETRY_LOG = 'Exporting failed. Will retry the request after interval.';

// ---------------------------------------------------------------------------------------------
// OTLP JSON helpers

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpAttribute[];
  events?: { timeUnixNano: string; name: string; attributes: OtlpAttribute[] }[];
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const str = (key: string, value: string): OtlpAttribute => ({ key, value: { stringValue: value } });

function makeSpan(traceId: string, name: string, attributes: OtlpAttribute[], extra: Partial<OtlpSpan> = {}): OtlpSpan {
  const start = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId,
    spanId: hex(8),
    name,
    kind: 3, // CLIENT
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 5_000_000n),
    attributes,
    ...extra,
  };
}

/** POSTs spans as one OTLP/HTTP JSON export to the collector and checks it accepted all of them. */
async function sendSpans(endpoint: string, spans: OtlpSpan[]): Promise<void> {
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'collector-smoke-test')] },
        scopeSpans: [{ scope: { name: 'otel-llm-audit-e2e', version: '0.0.0' }, spans }],
      },
    ],
  };
  const res = await fetch(`${endpoint}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, `collector answered ${res.status}: ${text}`).toBe(200);
  const answer = text ? JSON.parse(text) : {};
  expect(Number(answer.partialSuccess?.rejectedSpans ?? 0), `partial success: ${text}`).toBe(0);
}

function spansOf(doc: any): any[] {
  const out: any[] = [];
  for (const rs of doc?.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) out.push(...(ss.spans ?? []));
  return out;
}

function attributesOf(span: any): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of span.attributes ?? []) {
    const v = a.value ?? {};
    out[a.key] = v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue ?? v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Stand-in ledger: records every OTLP/HTTP request; can be stopped and restarted on its port.

interface LedgerRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

class StandInLedger {
  readonly requests: LedgerRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        this.requests.push({ path: req.url ?? '', headers: req.headers, body: body.toString('utf8') });
        const json = String(req.headers['content-type'] ?? '').includes('json');
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : '');
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, HOST, () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Every span received at /v1/traces. */
  spans(): any[] {
    return this.requests.filter((r) => r.path === '/v1/traces').flatMap((r) => spansOf(JSON.parse(r.body)));
  }

  allBytes(): string {
    return this.requests.map((r) => r.body).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------

describe('collector pipeline (real otelcol-llm-audit and Jaeger v2)', () => {
  let jaeger: ManagedProcess | undefined;
  let collector: ManagedProcess | undefined;
  let ledger: StandInLedger;
  let collectorEnv: NodeJS.ProcessEnv;
  let collectorHttp: string;
  let collectorHealth: string;
  let jaegerQuery: string;
  let runDir: string;

  function startCollector(): ManagedProcess {
    return startProcess('otelcol-llm-audit', collectorBin, { args: ['--config', collectorConfig], env: collectorEnv });
  }

  async function waitCollectorReady(p: ManagedProcess): Promise<void> {
    await waitForHttp(collectorHealth, { process: p, timeoutMs: 30_000 });
    await waitForPort(HOST, Number(new URL(collectorHttp).port), { process: p, timeoutMs: 10_000 });
  }

  async function jaegerTrace(traceId: string): Promise<{ raw: string; spans: any[] }> {
    const res = await fetch(`${jaegerQuery}/api/v3/traces/${traceId}`);
    const raw = await res.text();
    if (res.status === 404) return { raw, spans: [] };
    expect(res.status, `Jaeger answered ${res.status}: ${raw}`).toBe(200);
    return { raw, spans: spansOf(JSON.parse(raw).result) };
  }

  function retryLogCount(): number {
    return collector ? collector.log().split(RETRY_LOG).length - 1 : 0;
  }

  async function setUp(): Promise<void> {
    await ensureBinaries();

    const [cGrpc, cHttp, cHealth, cMetrics, jGrpc, jHttp, jQueryHttp, jQueryGrpc, jHealth, ledgerPort] = await freePorts(10);
    runDir = ensureDir(join(repoRoot, '.cache', 'e2e', `collector-smoke-${process.pid}-${Date.now()}`));

    jaeger = startProcess('jaeger', jaegerBin, {
      args: ['--config', jaegerConfig],
      env: {
        ...process.env,
        JAEGER_OTLP_GRPC_ENDPOINT: `${HOST}:${jGrpc}`,
        JAEGER_OTLP_HTTP_ENDPOINT: `${HOST}:${jHttp}`,
        JAEGER_QUERY_HTTP_ENDPOINT: `${HOST}:${jQueryHttp}`,
        JAEGER_QUERY_GRPC_ENDPOINT: `${HOST}:${jQueryGrpc}`,
        JAEGER_HEALTH_CHECK_ENDPOINT: `${HOST}:${jHealth}`,
      },
    });
    jaegerQuery = `http://${HOST}:${jQueryHttp}`;

    ledger = new StandInLedger(ledgerPort);
    await ledger.start();

    collectorHttp = `http://${HOST}:${cHttp}`;
    collectorHealth = `http://${HOST}:${cHealth}/`;
    collectorEnv = {
      ...process.env,
      OTELCOL_OTLP_GRPC_ENDPOINT: `${HOST}:${cGrpc}`,
      OTELCOL_OTLP_HTTP_ENDPOINT: `${HOST}:${cHttp}`,
      OTELCOL_HEALTH_CHECK_ENDPOINT: `${HOST}:${cHealth}`,
      OTELCOL_METRICS_HOST: HOST,
      OTELCOL_METRICS_PORT: String(cMetrics),
      OTELCOL_JAEGER_ENDPOINT: `${HOST}:${jGrpc}`,
      LLM_AUDIT_LEDGER_ENDPOINT: `http://${HOST}:${ledgerPort}`,
      LLM_AUDIT_INGEST_TOKEN: INGEST_TOKEN,
      OTELCOL_FILE_STORAGE_DIR: join(runDir, 'file_storage'),
      OTELCOL_LEDGER_RETRY_INITIAL_INTERVAL: '200ms',
      OTELCOL_LEDGER_RETRY_MAX_INTERVAL: '1s',
    };

    // Jaeger first, so the collector's exporter finds it at once.
    await waitForPort(HOST, jGrpc, { process: jaeger, timeoutMs: 30_000 });
    await waitForHttp(`${jaegerQuery}/api/v3/services`, { process: jaeger, timeoutMs: 30_000 });
    collector = startCollector();
    await waitCollectorReady(collector);
  }

  // A failed setup (build error, missing binary, a process that does not start) must fail every
  // test with its message rather than leave them reported as skipped.
  let setupError: unknown;
  beforeAll(async () => {
    try {
      await setUp();
    } catch (error) {
      setupError = error;
    }
  }, BUILD_TIMEOUT_MS * 2 + 120_000);

  function check(name: string, fn: () => Promise<void>, timeoutMs: number): void {
    it(name, async () => {
      if (setupError) throw setupError;
      await fn();
    }, timeoutMs);
  }

  afterAll(async () => {
    await stopAll(10_000);
    await ledger?.stop();
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  }, 60_000);

  check('validates collector-config.yaml with the built collector', async () => {
    const result = await runToCompletion('otelcol-validate', collectorBin, {
      args: ['validate', '--config', collectorConfig],
      env: collectorEnv,
      timeoutMs: 30_000,
    });
    expect(result.code).toBe(0);
  }, 60_000);

  check('sends every span to Jaeger and only audit spans to the ledger, with raw content removed', async () => {
    const canary = `CANARY-${hex(8)}`;
    const traceId = hex(16);
    const root = makeSpan(
      traceId,
      'GET /chat',
      // Not an audit span: "llm_audit." must start the key, not just appear in it.
      [str('http.route', '/chat'), str('app.llm_audit.note', 'x'), str('gen_ai.prompt', `plain ${canary} prompt`)],
      { kind: 2 },
    );
    const chat = makeSpan(
      traceId,
      'chat gpt-4o-mini',
      [
        str('gen_ai.operation.name', 'chat'),
        str('gen_ai.provider.name', 'openai'),
        str('gen_ai.input.messages', JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: `secret ${canary}` }] }])),
        str('gen_ai.output.messages', ENVELOPE),
        // Looks like an envelope only further in: not one, so deleted.
        str('gen_ai.system_instructions', `{"x":1,"llm_audit_envelope":1,"note":"${canary}"}`),
      ],
      {
        parentSpanId: root.spanId,
        events: [{ timeUnixNano: root.startTimeUnixNano, name: 'gen_ai.content.prompt', attributes: [str('gen_ai.prompt', `event ${canary}`)] }],
      },
    );
    const auditOnly = makeSpan(traceId, 'llm_audit.checkpoint', [str('llm_audit.record_id', 'r-1')], { parentSpanId: root.spanId, kind: 1 });

    await sendSpans(collectorHttp, [root, chat, auditOnly]);

    // Jaeger: all three spans, no canary anywhere, the envelope kept.
    const stored = await waitFor(
      'the trace in Jaeger',
      async () => {
        const t = await jaegerTrace(traceId);
        return t.spans.length >= 3 ? t : undefined;
      },
      { process: jaeger, timeoutMs: 20_000 },
    );
    expect(stored.spans.map((s) => s.name).sort()).toEqual(['GET /chat', 'chat gpt-4o-mini', 'llm_audit.checkpoint']);
    expect(stored.raw).not.toContain(canary);
    const storedChat = attributesOf(stored.spans.find((s) => s.name === 'chat gpt-4o-mini'));
    expect(storedChat['gen_ai.operation.name']).toBe('chat');
    expect(storedChat['gen_ai.output.messages']).toBe(ENVELOPE);
    expect(storedChat).not.toHaveProperty('gen_ai.input.messages');
    expect(storedChat).not.toHaveProperty('gen_ai.system_instructions');
    expect(attributesOf(stored.spans.find((s) => s.name === 'GET /chat'))).not.toHaveProperty('gen_ai.prompt');

    // Ledger: the two audit spans only, no canary, the bearer token, OTLP JSON.
    const audit = await waitFor(
      'the audit spans at the ledger',
      () => {
        const got = ledger.spans().filter((s) => s.traceId === traceId);
        return got.length >= 2 ? got : undefined;
      },
      { process: collector, timeoutMs: 20_000 },
    );
    // Everything came in one export; give a stray non-audit span time to show up anyway.
    await new Promise((r) => setTimeout(r, 1_000));
    const atLedger = ledger.spans().filter((s) => s.traceId === traceId);
    expect(atLedger.map((s) => s.name).sort()).toEqual(['chat gpt-4o-mini', 'llm_audit.checkpoint']);
    expect(audit.map((s) => s.spanId).sort()).toEqual([chat.spanId, auditOnly.spanId].sort());
    expect(ledger.allBytes()).not.toContain(canary);
    expect(attributesOf(atLedger.find((s) => s.name === 'chat gpt-4o-mini'))['gen_ai.output.messages']).toBe(ENVELOPE);
    const req = ledger.requests.find((r) => r.body.includes(traceId))!;
    expect(req.path).toBe('/v1/traces');
    expect(req.headers.authorization).toBe(`Bearer ${INGEST_TOKEN}`);
    expect(String(req.headers['content-type'])).toContain('application/json');
  }, 60_000);

  check('delivers an audit span sent while the ledger is down once it is back', async () => {
    await ledger.stop();
    const before = retryLogCount();
    const traceId = hex(16);
    const span = makeSpan(traceId, 'chat outage', [str('gen_ai.operation.name', 'chat')]);
    await sendSpans(collectorHttp, [span]);

    // The collector tries, fails (connection refused) and retries; keep the ledger down for a
    // few attempts and a couple of seconds (longer than a default 1s-ish retry budget would last).
    const downSince = Date.now();
    await waitFor('failed exports to the ledger', () => (retryLogCount() >= before + 3 && Date.now() - downSince >= 2_500 ? true : undefined), {
      process: collector,
      timeoutMs: 20_000,
    });
    expect(ledger.spans().some((s) => s.traceId === traceId)).toBe(false);

    await ledger.start();
    const arrived = await waitFor(
      'the span at the ledger after the outage',
      () => ledger.spans().find((s) => s.traceId === traceId),
      { process: collector, timeoutMs: 20_000 },
    );
    expect(arrived.spanId).toBe(span.spanId);
  }, 60_000);

  check('keeps queued audit spans on disk across a collector restart', async () => {
    await ledger.stop();
    const before = retryLogCount();
    const traceId = hex(16);
    const span = makeSpan(traceId, 'chat restart', [str('gen_ai.operation.name', 'chat')]);
    await sendSpans(collectorHttp, [span]);
    await waitFor('a failed export to the ledger', () => (retryLogCount() > before ? true : undefined), { process: collector, timeoutMs: 20_000 });

    // Stop the collector while the span is only in its persistent queue.
    const exit = await collector!.stop(15_000);
    expect(exit.signal, `collector did not stop on SIGTERM; log ${collector!.logFile}`).toBeNull();
    expect(exit.code).toBe(0);

    collector = startCollector();
    await waitCollectorReady(collector);
    await ledger.start();
    const arrived = await waitFor(
      'the queued span at the ledger after the restart',
      () => ledger.spans().find((s) => s.traceId === traceId),
      { process: collector, timeoutMs: 30_000 },
    );
    expect(arrived.spanId).toBe(span.spanId);
  }, 90_000);
});
