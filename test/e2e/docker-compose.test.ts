import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../support/harness';

// No Docker engine runs here, so docker-compose.yml is checked statically: it must describe the
// topology that the end-to-end tests run with locally built binaries (same collector config, same
// Jaeger config, ports and endpoints that agree with each other, the token on both ends).

const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true });
const collectorConfig = readFileSync(join(repoRoot, 'collector-config.yaml'), 'utf8');
const jaegerConfig = readFileSync(join(repoRoot, 'collector', 'jaeger-config.yaml'), 'utf8');
const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const services = compose.services as Record<string, any>;
const port = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint.replace(/\/$/, ''))?.[1]);
const host = (endpoint: string) => /^(?:https?:\/\/)?([^:/]+)/.exec(endpoint)?.[1];
/** Names of the ${env:NAME...} variables a config reads, and whether each has a default. */
const envRefs = (text: string) => [...text.matchAll(/\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}/g)].map((m) => ({ name: m[1], hasDefault: m[2] !== undefined }));

describe('docker-compose.yml', () => {
  it('has the services of the topology, images pinned to exact versions', () => {
    expect(Object.keys(services).sort()).toEqual(['collector', 'demo', 'jaeger', 'ledger', 'postgres']);
    expect(services.collector.image).toMatch(/^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/);
    expect(services.jaeger.image).toMatch(/^jaegertracing\/jaeger:\d+\.\d+\.\d+$/);
    expect(services.postgres.image).toMatch(/^postgres:\d+\.\d+/);
    expect(services.ledger.build).toBe('.');
    expect(services.demo.build).toBe('.');
  });

  it('the collector image is the release collector/builder-config.yaml pins', () => {
    const builder = readFileSync(join(repoRoot, 'collector', 'builder-config.yaml'), 'utf8');
    const release = /otlpreceiver v(\d+\.\d+\.\d+)/.exec(builder)?.[1];
    expect(services.collector.image).toBe(`otel/opentelemetry-collector-contrib:${release}`);
  });

  it('the collector runs the repo collector-config.yaml, with every variable it needs', () => {
    const [mount] = services.collector.volumes.filter((v: string) => v.startsWith('./collector-config.yaml:'));
    const target = mount.split(':')[1];
    expect(services.collector.command).toContain(`--config=${target}`);
    const env = services.collector.environment;
    for (const ref of envRefs(collectorConfig)) if (!ref.hasDefault) expect(env, `collector needs ${ref.name}`).toHaveProperty(ref.name);
    for (const name of Object.keys(env)) expect(envRefs(collectorConfig).map((r) => r.name), `${name} is read by collector-config.yaml`).toContain(name);
    // The persistent queue lives on a volume, so it survives a container restart.
    const queueDir = env.OTELCOL_FILE_STORAGE_DIR;
    expect(services.collector.volumes.some((v: string) => v.endsWith(`:${queueDir}`) && !v.startsWith('./'))).toBe(true);
  });

  it('the collector sends to Jaeger and the ledger where those listen', () => {
    const env = services.collector.environment;
    expect(host(env.OTELCOL_JAEGER_ENDPOINT)).toBe('jaeger');
    expect(port(env.OTELCOL_JAEGER_ENDPOINT)).toBe(port(services.jaeger.environment.JAEGER_OTLP_GRPC_ENDPOINT));
    expect(host(env.LLM_AUDIT_LEDGER_ENDPOINT)).toBe('ledger');
    const command: string[] = services.ledger.command;
    expect(port(env.LLM_AUDIT_LEDGER_ENDPOINT)).toBe(Number(command[command.indexOf('--port') + 1]));
    expect(command[command.indexOf('--host') + 1]).toBe('0.0.0.0');
    // Same bearer token on both ends.
    expect(env.LLM_AUDIT_INGEST_TOKEN).toBeTruthy();
    expect(services.ledger.environment.LLM_AUDIT_INGEST_TOKEN).toBe(env.LLM_AUDIT_INGEST_TOKEN);
  });

  it('Jaeger runs the repo jaeger-config.yaml, listening on the container interfaces, UI published', () => {
    const [mount] = services.jaeger.volumes;
    expect(mount.startsWith('./collector/jaeger-config.yaml:')).toBe(true);
    expect(services.jaeger.command).toContain(`--config=${mount.split(':')[1]}`);
    for (const [name, value] of Object.entries(services.jaeger.environment)) {
      expect(envRefs(jaegerConfig).map((r) => r.name)).toContain(name);
      expect(host(String(value))).toBe('0.0.0.0');
    }
    expect(services.jaeger.ports).toContain(`127.0.0.1:16686:${port(services.jaeger.environment.JAEGER_QUERY_HTTP_ENDPOINT)}`);
  });

  it('the ledger server writes to the compose PostgreSQL, and the demo app exports to the collector', () => {
    const url = new URL(services.ledger.environment.LLM_AUDIT_POSTGRES_URL);
    expect(url.hostname).toBe('postgres');
    expect(url.username).toBe(services.postgres.environment.POSTGRES_USER);
    expect(url.pathname).toBe(`/${services.postgres.environment.POSTGRES_DB}`);
    expect(services.ledger.depends_on.postgres.condition).toBe('service_healthy');
    const otlp = services.demo.environment.OTEL_EXPORTER_OTLP_ENDPOINT;
    expect(host(otlp)).toBe('collector');
    expect(port(otlp)).toBe(port(services.collector.environment.OTELCOL_OTLP_HTTP_ENDPOINT));
    expect(services.demo.environment.OTEL_EXPORTER_OTLP_PROTOCOL).toMatch(/^http\//);
  });

  it('the Dockerfile builds the CLI the services run', () => {
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "dist/cjs/cli/main.js"]');
    expect(services.demo.entrypoint).toEqual(['node', 'scripts/compose-demo.mjs']);
  });
});
