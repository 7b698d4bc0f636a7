// `llm-audit serve --tls-cert --tls-key --tls-client-ca` (issue 23, section 5): HTTPS with client
// certificates, on loopback, with a CA made at test time by the openssl CLI. A client with a
// certificate of that CA is served; one without, or with another CA's, is refused in the TLS
// handshake. The Collector's otlphttp exporter (the real binary, .cache/bin/otelcol-llm-audit)
// sends to it over mutual TLS, and the same collector without its client certificate gets nothing in.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectorBin, ensureBinaries, ledgerEntries, postOtlpJson } from '../e2e/support/stack';
import { freePorts, startProcess, stopAll, waitFor, waitForPort } from '../support/processes';
import { MAIN, ensureBuilt, scratchDir, serve, type Served } from './helpers';

const HOST = '127.0.0.1';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA (ca.pem), a server certificate for 127.0.0.1 and a client certificate signed by it, and a client certificate of another CA. */
function makePki(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=llm-audit test CA', '-keyout', 'ca.key', '-out', 'ca.pem'], dir);
  openssl(['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=someone else CA', '-keyout', 'other-ca.key', '-out', 'other-ca.pem'], dir);
  const issue = (name: string, subject: string, ca: string, extensions: string) => {
    openssl(['req', ...ec, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
  };
  issue('server', '/CN=127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=collector', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue('stranger', '/CN=stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
}

function auditSpanBody(spanId: string): string {
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              {
                traceId: '5b8efff798038103d269b633813fc60c',
                spanId,
                name: 'chat gpt-4o',
                kind: 3,
                startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n + 1_000_000n),
                attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }],
              },
            ],
          },
        ],
      },
    ],
  });
}

/** POSTs over HTTPS trusting `ca`, with the client certificate `client` (a name in `dir`) or none. */
function post(url: string, dir: string, client: string | undefined, body: string): Promise<{ status: number; stored: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ca: readFileSync(join(dir, 'ca.pem')),
        ...(client ? { cert: readFileSync(join(dir, `${client}.pem`)), key: readFileSync(join(dir, `${client}.key`)) } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, stored: res.headers['x-llm-audit-stored'] as string | undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('serve with client certificates (--tls-client-ca)', () => {
  let dir: string;
  let server: Served;
  beforeAll(async () => {
    ensureBuilt();
    dir = scratchDir('mtls-');
    makePki(dir);
    server = await serve([
      '--ledger',
      join(dir, 'ledger'),
      '--tls-cert',
      join(dir, 'server.pem'),
      '--tls-key',
      join(dir, 'server.key'),
      '--tls-client-ca',
      join(dir, 'ca.pem'),
    ]);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('serves a client with a certificate of the CA; refuses one without a certificate or with another CA\'s, in the handshake', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    expect(server.stdout()).toContain('client certificate required');
    expect(await post(server.url, dir, 'client', auditSpanBody('1000000000000001'))).toEqual({ status: 200, stored: '1' });
    await expect(post(server.url, dir, undefined, auditSpanBody('1000000000000002'))).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i);
    await expect(post(server.url, dir, 'stranger', auditSpanBody('1000000000000003'))).rejects.toThrow(/certificate|unknown ca|socket hang up|ECONNRESET/i);
    expect(ledgerEntries(join(dir, 'ledger')).map((e) => e.record.span_id)).toEqual(['1000000000000001']);
  });

  it('refuses --tls-client-ca without a server certificate (exit 2, one line)', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--port', '0', '--ledger', join(dir, 'other'), '--tls-client-ca', join(dir, 'ca.pem')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^llm-audit: LEDGER_USAGE: --tls-client-ca needs --tls-cert and --tls-key/);
  });
});

describe("the Collector's otlphttp exporter to serve over mutual TLS", () => {
  let dir: string;
  let server: Served;
  beforeAll(async () => {
    await ensureBinaries();
    dir = scratchDir('mtls-collector-');
    makePki(dir);
    server = await serve([
      '--ledger',
      join(dir, 'ledger'),
      '--tls-cert',
      join(dir, 'server.pem'),
      '--tls-key',
      join(dir, 'server.key'),
      '--tls-client-ca',
      join(dir, 'ca.pem'),
    ]);
  }, 30 * 60_000);
  afterAll(async () => {
    await stopAll();
    await server?.stop();
  });

  /** A collector whose only pipeline receives OTLP/HTTP and exports it to serve with these TLS settings. */
  async function collector(name: string, tls: string): Promise<{ url: string; log: () => string }> {
    const [http, health] = await freePorts(2);
    const config = join(dir, `${name}.yaml`);
    writeFileSync(
      config,
      `extensions:
  health_check:
    endpoint: ${HOST}:${health}
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${HOST}:${http}
exporters:
  otlp_http/ledger:
    endpoint: ${server.base}
    encoding: json
    tls:
${tls}
    retry_on_failure:
      enabled: true
      initial_interval: 200ms
      max_interval: 1s
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_http/ledger]
  telemetry:
    metrics:
      level: none
`,
    );
    const p = startProcess(`otelcol-mtls-${name}`, collectorBin, { args: ['--config', config] });
    await waitForPort(HOST, http, { process: p, timeoutMs: 30_000 });
    return { url: `http://${HOST}:${http}`, log: () => p.log() };
  }

  const span = (spanId: string) => ({
    traceId: '6b8efff798038103d269b633813fc60c',
    spanId,
    name: 'chat gpt-4o',
    kind: 3,
    startTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
    endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n + 1_000_000n),
    attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }],
  });

  it('with the client certificate: the span lands in the ledger', async () => {
    const c = await collector(
      'with-cert',
      `      ca_file: ${join(dir, 'ca.pem')}\n      cert_file: ${join(dir, 'client.pem')}\n      key_file: ${join(dir, 'client.key')}`,
    );
    await postOtlpJson(c.url, 'mtls-app', 'test', [span('2000000000000001')]);
    const entries = await waitFor('the span in the ledger', () => {
      const found = ledgerEntries(join(dir, 'ledger'));
      return found.length > 0 ? found : undefined;
    }, { timeoutMs: 30_000 });
    expect(entries.map((e) => e.record.span_id)).toEqual(['2000000000000001']);
  }, 60_000);

  it('without a client certificate: the handshake is refused and nothing lands', async () => {
    const c = await collector('no-cert', `      ca_file: ${join(dir, 'ca.pem')}`);
    await postOtlpJson(c.url, 'mtls-app', 'test', [span('2000000000000002')]);
    await waitFor('the refused export in the collector log', () => (/Exporting failed.*remote error: tls: certificate required/.test(c.log()) ? true : undefined), {
      timeoutMs: 30_000,
    });
    expect(ledgerEntries(join(dir, 'ledger')).map((e) => e.record.span_id)).not.toContain('2000000000000002');
  }, 60_000);
});
