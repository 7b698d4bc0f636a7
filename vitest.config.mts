import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Instrumentation patches process-wide module state (require hooks, global tracer provider),
    // so each test file runs in its own child process.
    pool: 'forks',
    // Stops the test PostgreSQL server when the run ends, if the run started it.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
