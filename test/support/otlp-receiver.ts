import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedExport {
  path: string;
  contentType: string;
  /** The request body as sent (gunzipped when the exporter compressed it). */
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

export interface JsonSpan {
  name: string;
  traceId: string;
  spanId: string;
  kind: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  scope: string;
}

/**
 * A minimal OTLP/HTTP endpoint for tests of the exporting side: it accepts every export, keeps the
 * raw bytes (so a test can scan every exported byte) and answers 200 with an empty body of the
 * request's content type, as the OTLP specification asks.
 */
export async function startOtlpReceiver(options: { port?: number } = {}) {
  const received: ReceivedExport[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const contentType = String(req.headers['content-type'] ?? '');
      received.push({ path: req.url ?? '', contentType, body, headers: req.headers });
      res.writeHead(200, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' });
      res.end(contentType.includes('json') ? '{}' : '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    traceExports: () => received.filter((r) => r.path === '/v1/traces'),
    /** Every byte that reached the endpoint, for canary scans. */
    allBytes: () => Buffer.concat(received.map((r) => r.body)),
    /**
     * Spans from http/json trace exports, attributes flattened. The `audit.start` record each
     * audited process writes once (test/postgres/records-v3-postgres.test.ts) is left out unless
     * asked for: these tests are about the calls.
     */
    jsonSpans(options: { auditStart?: boolean } = {}): JsonSpan[] {
      const spans: JsonSpan[] = [];
      for (const exp of received.filter((r) => r.path === '/v1/traces' && r.contentType.includes('json'))) {
        const doc = JSON.parse(exp.body.toString('utf8'));
        for (const rs of doc.resourceSpans ?? []) {
          const resource = flatten(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const span of ss.spans ?? []) {
              const attributes = flatten(span.attributes);
              if (!options.auditStart && isAuditStart(attributes)) continue;
              spans.push({ name: span.name, traceId: span.traceId, spanId: span.spanId, kind: span.kind, attributes, resource, scope: ss.scope?.name });
            }
          }
        }
      }
      return spans;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The process's own `audit.start` record (src/sdk/audit-start.ts), by its span attributes or its ledger record. */
export function isAuditStart(attributesOrRecord: Record<string, unknown>): boolean {
  return attributesOrRecord['llm_audit.event.type'] === 'audit.start' || attributesOrRecord.action === 'audit.start';
}

/**
 * A loopback port nothing listens on (taken from the OS, then released): an OTLP endpoint that is
 * down, on which a receiver can be started later.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function flatten(attributes: { key: string; value: Record<string, unknown> }[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of attributes ?? []) out[key] = anyValue(value);
  return out;
}

function anyValue(value: any): unknown {
  if (value === undefined || value === null) return undefined;
  if ('stringValue' in value) return value.stringValue;
  if ('boolValue' in value) return value.boolValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return value.doubleValue;
  if ('arrayValue' in value) return (value.arrayValue.values ?? []).map(anyValue);
  return value;
}
