/**
 * `register` loads only the exporter configured (issue 19): @opentelemetry/sdk-node's entry point
 * and its utils require every exporter NodeSDK ships (563 modules at start whatever was
 * configured; bench/results/startup.md), so they must not be loaded at all.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runNodeApp } from '../support/child-app';

/** The @opentelemetry packages (and sdk-node's own files) loaded once register has run. */
async function loaded(env: Record<string, string>): Promise<string[]> {
  const script = `console.log(JSON.stringify(Object.keys(require.cache)))`;
  const run = await runNodeApp(['--require', 'otel-llm-audit/register', '-e', script], env);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const files = JSON.parse(run.stdout) as string[];
  return [
    ...new Set(
      files.flatMap((file) => {
        const match = /node_modules\/(@opentelemetry\/[^/]+)(\/build\/src\/(?:index|utils|create-from-env)\.js)?/.exec(file);
        if (match === null) return [];
        return match[1] === '@opentelemetry/sdk-node' ? [`${match[1]}${match[2] ?? ''}`] : [match[1]!];
      }),
    ),
  ];
}

/** How many modules `require(id)` adds, in a fresh process. */
async function modulesOf(id: string): Promise<{ count: number; files: string[] }> {
  const script = `const before = new Set(Object.keys(require.cache)); require(${JSON.stringify(id)}); const files = Object.keys(require.cache).filter((f) => !before.has(f)); console.log(JSON.stringify(files))`;
  const run = await runNodeApp(['-e', script], {});
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const files = JSON.parse(run.stdout) as string[];
  return { count: files.length, files };
}

describe('what the main entry loads', () => {
  it("require('otel-llm-audit') loads at most twice the modules of the contrib OpenAI instrumentation, and no OpenTelemetry SDK package", async () => {
    const ours = await modulesOf('otel-llm-audit');
    const contrib = await modulesOf('@opentelemetry/instrumentation-openai');
    // An application that brings its own SDK already has these; the instrumentation must not pull them in.
    expect(ours.files.filter((f) => /node_modules\/@opentelemetry\/(core|sdk-[^/]+|resources|exporter-[^/]+)\//.test(f))).toEqual([]);
    expect(ours.count).toBeLessThanOrEqual(2 * contrib.count);
  });
});

describe('what register loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'startup-modules-'));

  it('with the ledger: no exporter package, no sdk-node entry or utils, no metrics SDK', async () => {
    const packages = await loaded({ LLM_AUDIT_EXPORTER: 'ledger', LLM_AUDIT_LEDGER_DIR: join(dir, 'ledger'), LLM_AUDIT_HASH_KEY: 'startup-modules-key-0123456789' });
    expect(packages.filter((p) => p.includes('exporter') || p.startsWith('@opentelemetry/sdk-node') || p === '@opentelemetry/sdk-metrics')).toEqual([]);
  });

  it.each([
    // The OTLP metric exporters build on the OTLP/HTTP one's package (its temporality code).
    ['http/protobuf', ['@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-metrics-otlp-proto', '@opentelemetry/exporter-trace-otlp-proto']],
    ['grpc', ['@opentelemetry/exporter-metrics-otlp-grpc', '@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-trace-otlp-grpc']],
  ])('with OTLP %s: that protocol’s trace and metric exporters only', async (protocol, exporters) => {
    const packages = await loaded({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      LLM_AUDIT_SPOOL_DIR: join(dir, 'spool'),
      LLM_AUDIT_HASH_KEY: 'startup-modules-key-0123456789',
    });
    expect(packages.filter((p) => /^@opentelemetry\/exporter-(trace|metrics|logs)|zipkin|prometheus/.test(p)).sort()).toEqual(exporters);
    expect(packages.filter((p) => p.startsWith('@opentelemetry/sdk-node'))).toEqual([]);
  });
});
