import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/harness';
import { composeText, dockerfile, envOf, imageOf, services, uidOf, under, writtenPaths } from './support/compose';

// No Docker engine runs here, so docker-compose.yml is checked statically: it must describe the
// topology that the end-to-end tests run with locally built binaries (same collector config, same
// Jaeger config, ports and endpoints that agree with each other, the token on both ends).

const collectorConfig = readFileSync(join(repoRoot, 'collector-config.yaml'), 'utf8');
const jaegerConfig = readFileSync(join(repoRoot, 'collector', 'jaeger-config.yaml'), 'utf8');
const port = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint.replace(/\/$/, ''))?.[1]);
const host = (endpoint: string) => /^(?:https?:\/\/)?([^:/]+)/.exec(endpoint)?.[1];
/** Names of the ${env:NAME...} variables a config reads, and whether each has a default. */
const envRefs = (text: string) => [...text.matchAll(/\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}/g)].map((m) => ({ name: m[1], hasDefault: m[2] !== undefined }));

describe('docker-compose.yml', () => {
  it('has the services of the topology, images pinned to exact versions', () => {
    expect(Object.keys(services).sort()).toEqual(['collector', 'collector-queue-init', 'demo', 'jaeger', 'ledger', 'postgres']);
    expect(services['collector-queue-init'].image).toMatch(/^busybox:\d+\.\d+\.\d+$/);
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

// ---------------------------------------------------------------------------------------------
// Users, ownership, restarts and health (issue 21): what kept `docker compose up` from showing
// anything. Who each service runs as, and what it writes: support/compose.ts.

/** One-shot services `name` waits for (service_completed_successfully) that chown a path. */
function chownedBefore(name: string, path: string): number | undefined {
  for (const [dep, cond] of Object.entries<any>(services[name].depends_on ?? {})) {
    if (cond?.condition !== 'service_completed_successfully') continue;
    const [cmd, ...args] = services[dep].command as string[];
    if (cmd === 'chown' && args.slice(-1)[0] && under(path, args.slice(-1)[0]!) && uidOf(dep) === 0) return Number(args[args.length - 2]!.split(':')[0]);
  }
  return undefined;
}

/** Who owns `path` when `name` starts: a chown before it, else the image (Docker creates a volume's
 *  missing mount point, and anything the image does not give away, as root). */
function ownerAtStart(name: string, path: string): number {
  const chowned = chownedBefore(name, path);
  if (chowned !== undefined) return chowned;
  const owned = Object.entries(imageOf(name).owned).filter(([dir]) => under(path, dir));
  return owned.length > 0 ? owned[0]![1] : 0;
}

const oneShot = (name: string): boolean =>
  services[name].restart === 'no' &&
  Object.values<any>(services).some((s) => Object.entries<any>(s.depends_on ?? {}).some(([dep, c]) => dep === name && c?.condition === 'service_completed_successfully'));
/** Services whose image has no program to run a healthcheck with; the compose file says why. */
const NO_HEALTHCHECK: Record<string, RegExp> = { collector: /No healthcheck: the image is the binary alone/, demo: /No healthcheck: a client loop/ };

describe('docker-compose.yml: users, restarts, health', () => {
  it('every service may write every path it writes (volumes, spool, queue, working directory)', () => {
    const problems: string[] = [];
    for (const name of Object.keys(services)) {
      const uid = uidOf(name);
      for (const path of writtenPaths(name)) {
        const owner = ownerAtStart(name, path);
        if (uid !== 0 && owner !== uid) problems.push(`${name} runs as uid ${uid} but writes ${path}, owned by uid ${owner}`);
      }
    }
    expect(problems).toEqual([]);
    // What bit: the demo app's spool, and the collector's queue volume.
    expect(writtenPaths('demo')).toContain(envOf('demo').LLM_AUDIT_SPOOL_DIR);
    expect(writtenPaths('collector')).toContain(envOf('collector').OTELCOL_FILE_STORAGE_DIR);
  });

  it('every long-running service restarts, and has a healthcheck unless its image cannot run one', () => {
    for (const name of Object.keys(services)) {
      if (oneShot(name)) continue;
      expect(['always', 'unless-stopped', 'on-failure'], `${name} restart policy`).toContain(services[name].restart);
      if (NO_HEALTHCHECK[name]) {
        expect(services[name].healthcheck, name).toBeUndefined();
        expect(composeText, `docker-compose.yml says why ${name} has no healthcheck`).toMatch(NO_HEALTHCHECK[name]!);
      } else {
        expect(services[name].healthcheck?.test, `${name} healthcheck`).toBeDefined();
      }
    }
    // A dependency waits for health only where there is one to wait for.
    for (const s of Object.values<any>(services)) {
      for (const [dep, c] of Object.entries<any>(s.depends_on ?? {})) if (c?.condition === 'service_healthy') expect(services[dep].healthcheck, dep).toBeDefined();
    }
  });

  it('the healthchecks ask the endpoints the services serve', () => {
    const ledger = services.ledger.healthcheck.test.join(' ');
    expect(ledger).toContain(`http://127.0.0.1:${services.ledger.command[services.ledger.command.indexOf('--port') + 1]}/healthz`);
    const jaeger = services.jaeger.healthcheck.test.join(' ');
    expect(jaeger).toContain(`http://127.0.0.1:${port(services.jaeger.environment.JAEGER_HEALTH_CHECK_ENDPOINT)}/status`);
    expect(jaegerConfig).toMatch(/healthcheckv2:[\s\S]*JAEGER_HEALTH_CHECK_ENDPOINT/);
  });

  it('every variable the usage comments name is set where the command runs, and expanded there', () => {
    const usage = composeText.split('\n').filter((l) => l.startsWith('#'));
    const execs = usage.map((l) => /docker compose exec (\S+) (.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    expect(execs.length).toBeGreaterThan(0);
    for (const [, service, command] of execs) {
      expect(services, `${service} is a service`).toHaveProperty(service!);
      const vars = [...command!.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
      for (const name of vars) {
        expect(envOf(service!), `$${name} is in the environment of ${service}`).toHaveProperty(name);
        // Expanded by the container's shell, inside single quotes, not by the caller's.
        expect(command, `$${name} in single quotes`).toMatch(new RegExp(`sh -c '[^']*\\$\\{?${name}[^']*'`));
      }
    }
  });
});
