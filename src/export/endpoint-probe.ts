/**
 * Asks whether an OTLP endpoint takes TCP connections before spans or metrics are handed to an
 * OpenTelemetry exporter at a flush or at exit.
 *
 * Why: the OTLP exporters retry a refused connection for up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s by
 * default) with timers that hold Node's event loop, and there is no public way to cancel them. A
 * script that made a few LLM calls while the collector was down therefore ended 8 to 14 s after
 * its last line (measured: trace flush, then the SDK's final metrics export). Asking first costs
 * one TCP connect (well under a millisecond on loopback, one round trip to a remote collector) and,
 * when the answer is no, the spans go straight to the spool and the metrics export fails at once.
 *
 * The probe only says "nobody is listening": a collector that accepts connections and then stalls
 * is still left to the exporter's own timeout.
 */
import { context, diag } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { connect, type NetConnectOpts } from 'node:net';
import { exporterRequire } from './sdk-node-require';

export type OtlpSignal = 'TRACES' | 'METRICS';

/** An OTLP endpoint as the exporter for one signal will reach it. */
export interface OtlpEndpoint {
  /** The URL or address the exporter sends to (for messages). */
  readonly url: string;
  /**
   * True when a TCP connection to it opens within the probe timeout. An answer is reused for
   * {@link ANSWER_REUSE_MS}, so the trace flush and the metrics export at exit share one connect.
   */
  reachable(): Promise<boolean>;
}

/** How long one answer stands: long enough to cover one exit, short enough to notice a restart. */
export const ANSWER_REUSE_MS = 2_000;

const answers = new Map<string, { at: number; answer: Promise<boolean> }>();

/**
 * The endpoint the OTLP exporter for `signal` uses, read from OTEL_EXPORTER_OTLP_(signal_)ENDPOINT
 * by the exporter packages' own configuration code, so that the address probed is the address
 * sent to. Undefined when it cannot be told (then nothing is probed and the exporter is used as is).
 */
export function otlpEndpointFromEnv(signal: OtlpSignal, protocol: string, timeoutMs: number): OtlpEndpoint | undefined {
  let url: string | undefined;
  try {
    url = protocol === 'grpc' ? grpcConfiguredUrl(signal) : httpConfiguredUrl(signal);
  } catch (error) {
    diag.debug(`otel-llm-audit: cannot tell the OTLP ${signal.toLowerCase()} endpoint: ${(error as Error).message}`);
  }
  const target = url === undefined ? undefined : connectTarget(url, protocol);
  if (url === undefined || target === undefined) return undefined;
  const key = JSON.stringify(target);
  return {
    url,
    reachable() {
      const now = Date.now();
      const known = answers.get(key);
      if (known !== undefined && now - known.at < ANSWER_REUSE_MS) return known.answer;
      const answer = canConnect(target, timeoutMs);
      answers.set(key, { at: now, answer });
      return answer;
    },
  };
}

/**
 * Where a TCP (or Unix socket) connection for `url` goes: `http(s)://host[:port]/path` for the
 * HTTP protocols; for gRPC also `host:port` without a scheme and `unix:` paths.
 */
export function connectTarget(url: string, protocol: string): NetConnectOpts | undefined {
  if (protocol === 'grpc') {
    if (url.startsWith('unix://')) return { path: url.slice('unix://'.length) };
    if (url.startsWith('unix:')) return { path: url.slice('unix:'.length) };
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) url = `http://${url}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const defaultPort = parsed.protocol === 'https:' ? 443 : parsed.protocol === 'http:' ? 80 : undefined;
  const port = parsed.port !== '' ? Number(parsed.port) : defaultPort;
  if (port === undefined || parsed.hostname === '') return undefined;
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/** True when a connection to `target` opens within `timeoutMs`; never throws. */
export function canConnect(target: NetConnectOpts, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // The probe's own socket must not become a span (an application may instrument `net`).
    context.with(suppressTracing(context.active()), () => {
      let settled = false;
      const socket = connect(target);
      const settle = (answer: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(answer);
      };
      const timer = setTimeout(() => settle(false), timeoutMs);
      socket.once('connect', () => settle(true));
      socket.once('error', () => settle(false));
    });
  });
}

// The exporters' own configuration helpers: the same code turns the environment into the URL they
// send to.
type ConfigHelper = (config: object, signal: OtlpSignal, ...rest: unknown[]) => { url?: string };

function httpConfiguredUrl(signal: OtlpSignal): string | undefined {
  const exporterPkg = signal === 'TRACES' ? '@opentelemetry/exporter-trace-otlp-proto' : '@opentelemetry/exporter-metrics-otlp-proto';
  const { convertLegacyHttpOptions } = exporterRequire(exporterPkg)('@opentelemetry/otlp-exporter-base/node-http') as {
    convertLegacyHttpOptions: ConfigHelper;
  };
  return convertLegacyHttpOptions({}, signal, signal === 'TRACES' ? 'v1/traces' : 'v1/metrics', {}).url;
}

function grpcConfiguredUrl(signal: OtlpSignal): string | undefined {
  const exporterPkg = signal === 'TRACES' ? '@opentelemetry/exporter-trace-otlp-grpc' : '@opentelemetry/exporter-metrics-otlp-grpc';
  const { convertLegacyOtlpGrpcOptions } = exporterRequire(exporterPkg)('@opentelemetry/otlp-grpc-exporter-base') as {
    convertLegacyOtlpGrpcOptions: ConfigHelper;
  };
  return convertLegacyOtlpGrpcOptions({}, signal).url;
}
