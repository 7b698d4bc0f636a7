import { AggregationTemporality, InstrumentType, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { canConnect, connectTarget, otlpEndpointFromEnv, type OtlpEndpoint } from '../../src/export/endpoint-probe';
import { ProbedMetricExporter } from '../../src/export/probed-metric-exporter';
import { freePort } from '../support/otlp-receiver';
import { captureDiag } from './helpers';

// The question asked before a flush or the last metrics export hands data to an OTLP exporter:
// does anything listen at the endpoint? Real sockets on loopback.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return { server, port: (server.address() as { port: number }).port };
}

function withEnv(vars: Record<string, string>): void {
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  cleanups.push(() => {
    process.env = saved;
  });
}

describe('connectTarget', () => {
  it('takes host and port from OTLP/HTTP URLs, with the scheme default port when none is given', () => {
    expect(connectTarget('http://collector.internal:4318/v1/traces', 'http/protobuf')).toEqual({ host: 'collector.internal', port: 4318 });
    expect(connectTarget('https://otlp.example.com/v1/metrics', 'http/json')).toEqual({ host: 'otlp.example.com', port: 443 });
    expect(connectTarget('http://otlp.example.com/v1/traces', 'http/protobuf')).toEqual({ host: 'otlp.example.com', port: 80 });
    expect(connectTarget('http://[::1]:4318/v1/traces', 'http/protobuf')).toEqual({ host: '::1', port: 4318 });
  });

  it('reads gRPC addresses with or without a scheme, and unix sockets', () => {
    expect(connectTarget('localhost:4317', 'grpc')).toEqual({ host: 'localhost', port: 4317 });
    expect(connectTarget('https://collector:4317', 'grpc')).toEqual({ host: 'collector', port: 4317 });
    expect(connectTarget('unix:///run/otel.sock', 'grpc')).toEqual({ path: '/run/otel.sock' });
    expect(connectTarget('unix:relative.sock', 'grpc')).toEqual({ path: 'relative.sock' });
  });

  it('gives up (no probe) on what is not an address', () => {
    expect(connectTarget('not a url', 'http/protobuf')).toBeUndefined();
    expect(connectTarget('ftp://host/path', 'http/protobuf')).toBeUndefined();
  });
});

describe('canConnect', () => {
  it('is true for a listening port and false for a closed one', async () => {
    const { port } = await listening();
    expect(await canConnect({ host: '127.0.0.1', port }, 1_000)).toBe(true);
    expect(await canConnect({ host: '127.0.0.1', port: await freePort() }, 1_000)).toBe(false);
  });
});

describe('otlpEndpointFromEnv', () => {
  it('probes the address the exporters send to: the signal-specific endpoint first, then the shared one', async () => {
    const traces = await listening();
    const closed = await freePort();
    withEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}`,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${traces.port}/custom/traces`,
    });
    const tracesEndpoint = otlpEndpointFromEnv('TRACES', 'http/protobuf', 1_000)!;
    const metricsEndpoint = otlpEndpointFromEnv('METRICS', 'http/protobuf', 1_000)!;
    expect(tracesEndpoint.url).toBe(`http://127.0.0.1:${traces.port}/custom/traces`);
    expect(metricsEndpoint.url).toBe(`http://127.0.0.1:${closed}/v1/metrics`);
    expect(await tracesEndpoint.reachable()).toBe(true);
    expect(await metricsEndpoint.reachable()).toBe(false);
  });

  it('uses the gRPC defaults when nothing is set', () => {
    withEnv({});
    for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']) delete process.env[name];
    expect(otlpEndpointFromEnv('TRACES', 'grpc', 1_000)!.url).toBe('localhost:4317');
    expect(otlpEndpointFromEnv('METRICS', 'http/protobuf', 1_000)!.url).toBe('http://localhost:4318/v1/metrics');
  });

  it('shares one answer between the questions asked during one exit, and asks again later', async () => {
    const { server, port } = await listening();
    let connections = 0;
    server.on('connection', () => connections++);
    withEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` });
    const endpoint = otlpEndpointFromEnv('TRACES', 'http/protobuf', 1_000)!;
    const [first, second] = await Promise.all([endpoint.reachable(), otlpEndpointFromEnv('METRICS', 'http/protobuf', 1_000)!.reachable()]);
    expect([first, second]).toEqual([true, true]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connections).toBe(1);
  });
});

/** A metric exporter that records what reaches it. */
function recordingExporter() {
  const calls: number[] = [];
  const exporter: PushMetricExporter = {
    export(metrics, done) {
      calls.push(metrics.scopeMetrics.length);
      done({ code: ExportResultCode.SUCCESS });
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    selectAggregationTemporality: () => AggregationTemporality.DELTA,
  };
  return { exporter, calls };
}

function fixedEndpoint(answer: boolean): OtlpEndpoint & { asked: number } {
  const endpoint = {
    url: 'http://127.0.0.1:1/v1/metrics',
    asked: 0,
    reachable: () => {
      endpoint.asked++;
      return Promise.resolve(answer);
    },
  };
  return endpoint;
}

async function exportOnce(exporter: PushMetricExporter): Promise<ExportResult> {
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const withReader = new MeterProvider({ readers: [reader] });
  withReader.getMeter('probe-test').createCounter('calls').add(1);
  const { resourceMetrics } = await reader.collect();
  const result = await new Promise<ExportResult>((resolve) => exporter.export(resourceMetrics, resolve));
  await withReader.shutdown();
  return result;
}

describe('ProbedMetricExporter', () => {
  it('while the process runs, exports go straight through without asking the endpoint', async () => {
    const { exporter, calls } = recordingExporter();
    const endpoint = fixedEndpoint(false);
    const probed = new ProbedMetricExporter(exporter, endpoint);
    expect((await exportOnce(probed)).code).toBe(ExportResultCode.SUCCESS);
    expect(calls).toHaveLength(1);
    expect(endpoint.asked).toBe(0);
    // Preferences are the wrapped exporter's.
    expect(probed.selectAggregationTemporality?.(InstrumentType.HISTOGRAM)).toBe(AggregationTemporality.DELTA);
  });

  it('once the process is ending, an export to an endpoint that does not listen fails at once and says so', async () => {
    const { exporter, calls } = recordingExporter();
    const probed = new ProbedMetricExporter(exporter, fixedEndpoint(false));
    const diagCapture = captureDiag();
    cleanups.push(() => diagCapture.stop());
    probed.closing();
    const result = await exportOnce(probed);
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(result.error?.message).toContain('nothing listens at http://127.0.0.1:1/v1/metrics');
    expect(calls).toEqual([]);
    expect(diagCapture.messages.some((m) => m.level === 'warn' && m.text.includes('last metrics of this process are not sent'))).toBe(true);
  });

  it('once the process is ending, an export to a listening endpoint goes through', async () => {
    const { exporter, calls } = recordingExporter();
    const endpoint = fixedEndpoint(true);
    const probed = new ProbedMetricExporter(exporter, endpoint);
    probed.closing();
    expect((await exportOnce(probed)).code).toBe(ExportResultCode.SUCCESS);
    expect(calls).toHaveLength(1);
    expect(endpoint.asked).toBe(1);
  });
});

describe('metricPipeline', () => {
  it('builds the readers NodeSDK would build from OTEL_METRICS_EXPORTER, the OTLP exporter probed at exit', async () => {
    const { metricPipeline } = await import('../../src/export/from-env');
    const { otelSettings } = await import('../../src/config/otel');
    const metricPipelineFromEnv = (timeoutMs: number) => metricPipeline(otelSettings(process.env), timeoutMs);
    const exporterOf = (reader: unknown) => (reader as { _exporter?: unknown })._exporter;
    withEnv({ OTEL_METRICS_EXPORTER: '', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
    const byDefault = metricPipelineFromEnv(10_000);
    expect(byDefault.metricReaders).toHaveLength(1);
    expect(byDefault.metricReaders[0]).toBeInstanceOf(PeriodicExportingMetricReader);
    expect(exporterOf(byDefault.metricReaders[0])).toBeInstanceOf(ProbedMetricExporter);

    process.env.OTEL_METRICS_EXPORTER = 'console,otlp,console';
    const both = metricPipelineFromEnv(10_000);
    expect(both.metricReaders.map((r) => exporterOf(r)?.constructor.name)).toEqual(['ConsoleMetricExporter', 'ProbedMetricExporter']);

    process.env.OTEL_METRICS_EXPORTER = 'otlp,none';
    expect(metricPipelineFromEnv(10_000).metricReaders).toEqual([]);
    for (const pipeline of [byDefault, both]) await Promise.all(pipeline.metricReaders.map((r) => r.shutdown()));
  });
});
