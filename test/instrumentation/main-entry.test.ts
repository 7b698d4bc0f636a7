import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metrics as ownMetrics } from '@opentelemetry/api';
import { repoRoot } from '../support/processes';
import { recordsMetrics } from '../../src/util/audit-meter';

/** Runs `script` in a fresh Node process (nothing cached) and returns what it printed as JSON. */
function inFreshProcess(script: string): any {
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: repoRoot, env: { ...process.env, OTEL_LOG_LEVEL: '' } }).toString());
}

const SDK_HALF = String.raw`/@opentelemetry\/(sdk-node|sdk-trace-base|sdk-metrics|exporter-)|dist\/cjs\/sdk\/start\.js$/`;

describe("the main entry loads the SDK half only when it is used", () => {
  it('require("otel-llm-audit") loads no SDK, exporter or sdk/start module', () => {
    const out = inFreshProcess(`
      const entry = require('./dist/cjs/index.js');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        sdk: loaded.filter((k) => ${SDK_HALF}.test(k)),
        exports: ['LlmAuditInstrumentation', 'startAudit', 'auditSpanProcessors', 'shutdownAudit'].filter((n) => typeof entry[n] === 'function'),
      }));`);
    expect(out.sdk).toEqual([]);
    expect(out.exports).toEqual(['LlmAuditInstrumentation', 'startAudit', 'auditSpanProcessors', 'shutdownAudit']);
  });

  it('shutdownAudit() without a start resolves without loading it; startAudit() through the entry starts and stops', () => {
    const out = inFreshProcess(`
      const entry = require('./dist/cjs/index.js');
      (async () => {
        await entry.shutdownAudit();
        const afterShutdown = Object.keys(require.cache).some((k) => ${SDK_HALF}.test(k));
        const started = entry.startAudit({ LLM_AUDIT_EXPORTER: 'console', LLM_AUDIT_HASH_KEY: 'k'.repeat(32) });
        const afterStart = Object.keys(require.cache).some((k) => /dist\\/cjs\\/sdk\\/start\\.js$/.test(k));
        await entry.shutdownAudit();
        console.log(JSON.stringify({ afterShutdown, afterStart, instrumentation: started.instrumentation.constructor.name }));
      })();`);
    expect(out).toEqual({ afterShutdown: false, afterStart: true, instrumentation: 'LlmAuditInstrumentation' });
  });
});

describe('metrics are recorded only when a meter provider collects them', () => {
  it("treats another @opentelemetry/api copy's no-op histogram as no-op", () => {
    // The deployment fixtures carry their own @opentelemetry/api (1.9.1): a second copy, as an app
    // whose API version differs from this package's gets.
    const other = require(join(repoRoot, 'test/deploy/apps/node_modules/@opentelemetry/api'));
    expect(other.metrics).not.toBe(ownMetrics);
    expect(recordsMetrics(other.metrics.getMeter('t').createHistogram('h'))).toBe(false);
    expect(recordsMetrics(ownMetrics.getMeter('t').createHistogram('h'))).toBe(false);
  });

  it('records with a real histogram', async () => {
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
    expect(recordsMetrics(new MeterProvider().getMeter('t').createHistogram('h'))).toBe(true);
  });
});

describe('ESM and CommonJS entries export the same names', () => {
  const apps = join(repoRoot, 'test/deploy/apps');
  for (const entry of ['otel-llm-audit', 'otel-llm-audit/sdk']) {
    it(entry, () => {
      // Resolved as an installed package (the deployment fixtures link this checkout).
      const names = (args: string[]) => JSON.parse(execFileSync(process.execPath, args, { cwd: apps }).toString()).sort();
      const cjs = names(['-e', `console.log(JSON.stringify(Object.keys(require('${entry}')).filter((k) => k !== '__esModule')))`]);
      const esm = names(['--input-type=module', '-e', `import * as m from '${entry}'; console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default')))`]);
      expect(cjs.length).toBeGreaterThan(3);
      expect(esm).toEqual(cjs);
    });
  }
});

describe('the ESM entry', () => {
  it('exports every name the CommonJS entry exports (recordAuditEvent included)', () => {
    const out = inFreshProcess(`
      const cjs = Object.keys(require('./dist/cjs/index.js')).filter((n) => n !== '__esModule').sort();
      import('./dist/esm/index.mjs').then((esm) => console.log(JSON.stringify({ cjs, esm: Object.keys(esm).filter((n) => n !== 'default').sort() })));`);
    expect(out.cjs).toContain('recordAuditEvent');
    expect(out.esm).toEqual(out.cjs);
  });
});
