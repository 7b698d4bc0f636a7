// CPU per record of the ingest path's serialise + append, in-process: `before` measures the size
// check's canonicalJson then append(record); `after` appends SerializedRecord.of(record).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { records } from './lib/dataset.mjs';
const require = createRequire(import.meta.url);
const [dist, backend, N = '50000'] = process.argv.slice(2);
const { canonicalJson } = require(dist + '/audit/canonical-json.js');
const protocol = require(dist + '/ledger/protocol.js');
const { openLedgerWriter } = require(dist + '/ledger/writer.js');
const all = [...records({ count: Number(N), seed: 7 })];
let config, dir;
if (backend === 'file') { dir = mkdtempSync(join(tmpdir(), 'speed-append-')); config = { backend: 'file', dir, fsync: 'none' }; }
else config = { backend: 'postgres', url: process.env.PGURL_DB };
const writer = await openLedgerWriter(config);
const c0 = process.cpuUsage(); const t0 = performance.now();
const inflight = [];
for (let i = 0; i < all.length; i += 512) {
  const batch = all.slice(i, i + 512).map((r) => {
    if (protocol.SerializedRecord) { const s = protocol.SerializedRecord.of(r); if (Buffer.byteLength(s.json) > 1 << 20) throw new Error(); return s; }
    if (Buffer.byteLength(canonicalJson(r)) > 1 << 20) throw new Error(); return r;
  });
  inflight.push(writer.append(batch));
  if (inflight.length >= 8) await inflight.shift();
}
await Promise.all(inflight);
const c = process.cpuUsage(c0); const wall = performance.now() - t0;
await writer.close();
if (dir) rmSync(dir, { recursive: true, force: true });
console.log(`${backend} ${dist.split('/').pop()}: ${((c.user + c.system) / all.length).toFixed(1)} us CPU/record, ${Math.round(all.length / (wall / 1000))} records/s wall`);
