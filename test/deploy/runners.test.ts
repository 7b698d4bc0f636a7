import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, closeFakeProvider, deploy, ensureDeployApps, expectAppWorked, expectEachCallOnce, REGISTER, registerFlag, type Trail } from './support';

// Deployment matrix, family "how the app is started": plain CommonJS and ESM, the wrong flag for the
// module system, dynamic import, and the TypeScript runners (tsx). Issue 25.

beforeAll(() => ensureDeployApps(), 300_000);
afterAll(() => closeFakeProvider());

const modes = ['require', 'import'] as const;
const trails: Trail[] = ['ledger', 'otlp'];

describe.concurrent.each(trails)('trail: %s', (trail) => {
  describe.each(modes)('--%s otel-llm-audit/register', (mode) => {
    it.each([
      ['CommonJS app', 'app.cjs'],
      ['ESM app', 'app.mjs'],
      ['CommonJS app with await import(openai)', 'dynamic-import.cjs'],
    ])('%s', async (_label, file) => {
      const d = await deploy({ args: [...registerFlag(mode), file], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('node --import tsx, app.ts', async () => {
      const d = await deploy({ args: ['--import', 'tsx', ...registerFlag(mode), 'app.ts'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('node --import tsx, app.cts', async () => {
      const d = await deploy({ args: ['--import', 'tsx', ...registerFlag(mode), 'app.cts'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });

    it('tsx CLI (npx tsx), app.ts', async () => {
      const d = await deploy({ command: bin('tsx'), args: [...registerFlag(mode), 'app.ts'], trail });
      expectAppWorked(d);
      expectEachCallOnce(d);
    });
  });
});

it('npx tsx --require, as users type it', async () => {
  const d = await deploy({ command: 'npx', args: ['--no-install', 'tsx', '--require', REGISTER, 'app.ts'], trail: 'ledger' });
  expectAppWorked(d);
  expectEachCallOnce(d);
  expect(d.stderr).not.toMatch(/configuration error/);
});
