// The demo app of docker-compose.yml: starts the fake provider (compiled into the image), then runs
// examples/chat-app.cjs under `--require otel-llm-audit/register` every DEMO_INTERVAL_S seconds, so
// that audit spans keep flowing through the collector to Jaeger and the ledger.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const { startFakeProvider } = require('../.cache/demo/fake-provider.js');
const fake = await startFakeProvider();
const interval = Number(process.env.DEMO_INTERVAL_S ?? 10) * 1000;
for (;;) {
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--require', 'otel-llm-audit/register', 'examples/chat-app.cjs'], {
      env: { ...process.env, FAKE_PROVIDER_URL: fake.url },
      stdio: 'inherit',
    });
    child.on('exit', resolve);
  });
  if (code !== 0) console.error(`demo app exited with ${code}`);
  // 78 is register's configuration error: no later round can succeed, so stop (and let the
  // container's restart policy and `docker compose ps` show it) rather than loop quietly.
  if (code === 78) process.exit(78);
  await sleep(interval);
}
