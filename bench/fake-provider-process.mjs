// The fake provider of the test suite (test/support/fake-provider.ts, compiled by
// `tsc -p tsconfig.demo.json` to .cache/demo/fake-provider.js), run in a process of its own so that
// the CPU it spends answering is not counted against the client being measured.
//
// Prints one JSON line, { url, openaiBaseURL, anthropicBaseURL }, once it listens on loopback, and
// exits when its stdin closes (the parent went away) or on SIGTERM / SIGINT.
//
// Every request takes the next scenario from the fake's FIFO queue, and an empty queue means the
// default answer (a 29-character text in 5 stream chunks). The benchmark wants every answer to be
// the same BENCH_SCENARIO (50 stream chunks), so the queue is kept topped up: on a short timer, when
// requests arrived, the recorded requests are dropped (the fake keeps every request body, which
// with 1 MB conversations would grow without bound) and the queue is refilled. Both happen in one
// synchronous step, so no request can find the queue empty in between.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const compiled = resolve(process.argv[2] ?? join(root, '.cache/demo/fake-provider.js'));
const { startFakeProvider } = require(compiled);

/** 50 text deltas for streams; the whole text for plain calls (the fake needs >= 50 characters). */
const BENCH_TEXT =
  'The quarterly report shows revenue up four percent, costs flat, and a backlog that the ' +
  'operations team expects to clear within six weeks if hiring stays on plan this quarter.';
const BENCH_SCENARIO = { text: BENCH_TEXT, chunks: 50 };
const BATCH = 2000;
const TICK_MS = 50;

const fake = await startFakeProvider();
const refill = () => {
  fake.reset();
  fake.enqueue(...new Array(BATCH).fill(BENCH_SCENARIO));
};
refill();
const timer = setInterval(() => {
  if (fake.requests.length > 0) refill();
}, TICK_MS);

let closing = false;
async function stop() {
  if (closing) return;
  closing = true;
  clearInterval(timer);
  await fake.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();

process.stdout.write(
  JSON.stringify({ url: fake.url, openaiBaseURL: fake.openaiBaseURL, anthropicBaseURL: fake.anthropicBaseURL, chunks: 50 }) + '\n',
);
