/**
 * docker-compose.yml and the Dockerfile read as data, for the static compose test and for the tests
 * that run the services' commands as the images' users (no Docker engine runs here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../support/processes';

export const composeText = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8');
export const services = parse(composeText, { merge: true }).services as Record<string, any>;
export const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');

// A service runs as its `user:`, else as its image's user; the built image's user and the
// directories it owns are read from the Dockerfile, the upstream images' are their Dockerfiles'
// USER (PostgreSQL's entrypoint starts as root and hands its data directory to postgres itself).

export interface ImageFacts {
  uid: number;
  workdir: string;
  /** Directories the image gives to a user (with what is below them): path -> uid. */
  owned: Record<string, number>;
}

export function builtImage(): ImageFacts {
  const user = /USER (\S+)\s*$/m.exec(dockerfile.split(/^FROM /m).pop()!)?.[1];
  const add = new RegExp(`useradd [^\\n]*--uid (\\d+)[^\\n]* ${user}\\b`).exec(dockerfile);
  if (!add) throw new Error(`the Dockerfile must create its USER ${user} with a fixed --uid`);
  const uid = Number(add![1]);
  const owned: Record<string, number> = {};
  for (const m of dockerfile.matchAll(new RegExp(`chown -R ${user}(?::\\S+)? (\\S+)`, 'g'))) owned[m[1]!] = uid;
  const workdirs = [...dockerfile.matchAll(/^WORKDIR (\S+)/gm)];
  return { uid, workdir: workdirs[workdirs.length - 1]![1]!, owned };
}

const UPSTREAM: Record<string, ImageFacts> = {
  'otel/opentelemetry-collector-contrib': { uid: 10001, workdir: '/', owned: {} },
  'jaegertracing/jaeger': { uid: 10001, workdir: '/', owned: {} },
  postgres: { uid: 0, workdir: '/', owned: {} },
  busybox: { uid: 0, workdir: '/', owned: {} },
};

export function imageOf(name: string): ImageFacts {
  const s = services[name];
  if (s.build === '.') return builtImage();
  const facts = UPSTREAM[String(s.image).split(':')[0]!];
  if (!facts) throw new Error(`what user does the image of ${name} (${s.image}) run as? Add it to UPSTREAM`);
  return facts;
}

export const uidOf = (name: string): number => (services[name].user !== undefined ? Number(String(services[name].user).split(':')[0]) : imageOf(name).uid);
export const under = (path: string, dir: string): boolean => path === dir || path.startsWith(`${dir.replace(/\/$/, '')}/`);
export const envOf = (name: string): Record<string, string> => services[name].environment ?? {};

/** Every path a service writes: its writable volumes, the directories its environment names, and
 *  the default OTLP spool (./llm-audit-spool in the working directory) of an app run under register. */
export function writtenPaths(name: string): string[] {
  const s = services[name];
  const paths = (s.volumes ?? []).filter((v: string) => !v.endsWith(':ro')).map((v: string) => v.split(':')[1]);
  const env = envOf(name);
  for (const key of ['LLM_AUDIT_SPOOL_DIR', 'LLM_AUDIT_LEDGER_DIR', 'OTELCOL_FILE_STORAGE_DIR', 'PGDATA']) if (env[key]) paths.push(env[key]);
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.LLM_AUDIT_SPOOL_DIR) paths.push(`${s.working_dir ?? imageOf(name).workdir}/llm-audit-spool`);
  return [...new Set(paths)];
}

