import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFakeProvider, deploy, ensureDeployApps, expectAppWorked, expectEachCallOnce, registerFlag, type Trail } from './support';

// Deployment matrix, family "beside other OpenTelemetry setups": @sentry/node 11,
// @opentelemetry/auto-instrumentations-node before and after ours, the app's own NodeSDK,
// @vercel/otel. Each call must be one GenAI span with the audit attributes, and the app's own
// exporter and service name must keep working. Issue 25.

beforeAll(() => ensureDeployApps(), 300_000);
afterAll(() => closeFakeProvider());

const modes = ['require', 'import'] as const;
const trails: Trail[] = ['ledger', 'otlp'];
const AUTO = '@opentelemetry/auto-instrumentations-node/register';

describe.concurrent.each(trails)('trail: %s', (trail) => {
  describe.each(modes)('--%s otel-llm-audit/register', (mode) => {
    it('@sentry/node 11 Sentry.init in a CommonJS app', async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'sentry-app.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('auto-instrumentations-node/register first, then ours', async () => {
      const d = await deploy({ args: [`--${mode}`, AUTO, ...registerFlag(mode), 'app.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('ours first, then auto-instrumentations-node/register', async () => {
      const d = await deploy({ args: [...registerFlag(mode), `--${mode}`, AUTO, 'app.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it("the app's own NodeSDK: its exporter still receives its spans, under its service name", async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'own-sdk-app.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
      const own = JSON.parse(/^OWN (.*)$/m.exec(d.stdout)?.[1] ?? '[]') as { name: string; service: string }[];
      expect(own.filter((s) => s.name === 'app-work'), d.stderr).toEqual([{ name: 'app-work', service: 'own-sdk-app' }]);
      if (trail === 'otlp') for (const s of d.spans.filter((x) => x.scope === 'otel-llm-audit')) expect(s.resource['service.name']).toBe('own-sdk-app');
    });

    it('@vercel/otel registerOTel({ serviceName }): the service name is kept', async () => {
      const d = await deploy({ args: [...registerFlag(mode), 'vercel-app.cjs'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
      if (trail === 'otlp') for (const s of d.spans.filter((x) => x.scope === 'otel-llm-audit')) expect(s.resource['service.name']).toBe('vercel-otel-app');
    });
  });
});
