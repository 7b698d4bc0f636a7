#!/usr/bin/env node
// `node bench/hmac-cold.cjs [none|tick|gc|thrash|sdk ...]`
//
// Why one HMAC-SHA256 of a call's ~300-byte output costs several times more inside the call path
// than in a loop (bench/results/hot-path.md). Each mode runs some work between hashes, then times
// (wall, hrtime, median of 3,000) the first hash after it and a second one right after the first:
//   none    nothing in between (the tight loop)
//   tick    a setImmediate turn
//   gc      20,000 small objects allocated (young-generation pressure)
//   thrash  one byte per cache line of a 16 MB buffer touched (the CPU caches evicted)
//   sdk     an openai 6 chat.completions.create with a canned Response (no socket): the call path
// Also a plain SHA-256 and a JSON round trip of the same text, and an HMAC right after a SHA-256.
// Same key handling as src/audit/hashing.ts (a KeyObject, createHmac per hash).
const { createHmac, createSecretKey, createHash } = require('node:crypto');
const { OpenAI } = require('openai');

const key = createSecretKey(Buffer.from('bench-only-hash-key-0123456789abcdef'));
const content = 'x'.repeat(174);
const body = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
});
const client = new OpenAI({
  apiKey: 'bench-not-a-key',
  baseURL: 'http://127.0.0.1:1/v1',
  maxRetries: 0,
  fetch: async () => new Response(body, { status: 200, headers: { 'content-type': 'application/json' } }),
});
const messages = [{ role: 'system', content: 'sys' }, ...Array.from({ length: 40 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'y'.repeat(250) + i }))];
const json = JSON.stringify([{ role: 'assistant', content }]);
const text = json + 'x'.repeat(100);
const hmac = () => createHmac('sha256', key).update(text, 'utf8').digest('hex');
const sha = () => createHash('sha256').update(text, 'utf8').digest('hex');
const roundTrip = () => JSON.stringify(JSON.parse(json));
const big = Buffer.alloc(16 << 20);
const now = () => process.hrtime.bigint();
const median = (xs) => (xs.sort((a, b) => a - b)[xs.length >> 1] / 1000).toFixed(1);

async function between(mode) {
  if (mode === 'sdk') await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
  else if (mode === 'thrash') for (let j = 0; j < big.length; j += 64) big[j]++;
  else if (mode === 'gc') for (let j = 0, a = []; j < 20000; j++) a.push({ j });
  else if (mode === 'tick') await new Promise((resolve) => setImmediate(resolve));
}

/** Median µs of `first` right after the work of `mode`, and of `second` right after `first`. */
async function timed(mode, first, second) {
  const a = [];
  const b = [];
  for (let i = 0; i < 3500; i++) {
    await between(mode);
    const t0 = now();
    first();
    const t1 = now();
    second();
    const t2 = now();
    if (i >= 500) a.push(Number(t1 - t0)), b.push(Number(t2 - t1));
  }
  return [median(a), median(b)];
}

(async () => {
  const modes = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['none', 'tick', 'gc', 'thrash', 'sdk'];
  process.stdout.write('| between hashes | HMAC (first) | HMAC (second) | SHA-256 (first) | HMAC after it | JSON round trip (first) |\n|---|---:|---:|---:|---:|---:|\n');
  for (const mode of modes) {
    const [h1, h2] = await timed(mode, hmac, hmac);
    const [s1, hs] = await timed(mode, sha, hmac);
    const [j1] = await timed(mode, roundTrip, () => undefined);
    process.stdout.write(`| ${mode} | ${h1} | ${h2} | ${s1} | ${hs} | ${j1} |\n`);
  }
})();
