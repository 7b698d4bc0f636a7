// Summarises a V8 .cpuprofile (from `node --cpu-prof`) into where the time went: by category, by
// file of one package, and the top self-time functions of that package's code. Only the samples
// taken during the measured calls count (the child reports that window on the same monotonic
// clock as the profile's timestamps), so module loading and warm-up are left out.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { relative, sep } from 'node:path';

function pathOf(url) {
  if (!url) return '';
  if (url.startsWith('file://')) {
    try {
      return fileURLToPath(url);
    } catch {
      return url;
    }
  }
  return url;
}

const PACKAGE = 'otel-llm-audit';

/** Which bucket a frame belongs to. `packageDir` is the directory of the package's compiled code. */
function categoryOf(node, packageDir) {
  const { functionName, url } = node.callFrame;
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(idle)') return 'idle (waiting for I/O)';
  if (functionName === '(program)') return 'V8 / native (program)';
  if (functionName === '(root)') return 'root';
  const path = pathOf(url);
  if (path.startsWith(packageDir)) return PACKAGE;
  if (path === '') return 'native / builtins';
  if (path.startsWith('node:')) return 'node core';
  const nm = path.lastIndexOf(`${sep}node_modules${sep}`);
  if (nm >= 0) {
    const rest = path.slice(nm + 14).split(sep);
    const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    if (name.startsWith('@opentelemetry/')) return '@opentelemetry/*';
    return name;
  }
  return 'other (bench harness, ...)';
}

/**
 * @param file path of a .cpuprofile
 * @param options.packageDir absolute directory of the package's code (the dist snapshot)
 * @param options.srcHint maps a path relative to packageDir to how it is shown (its src/ name)
 * @param options.window [startUs, endUs] on the profile's clock; samples outside are ignored
 * @param options.calls number of calls made in the window (for per-call figures)
 */
export function summariseProfile(file, { packageDir, srcHint = (p) => p, window, calls }) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map();
  for (const node of profile.nodes) byId.set(node.id, node);
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const isPackage = (node) => categoryOf(node, packageDir) === PACKAGE;
  const fileOf = (node) => srcHint(relative(packageDir, pathOf(node.callFrame.url)));
  const frameKey = (node) => `${node.callFrame.functionName || '(anonymous)'} (${fileOf(node)}:${node.callFrame.lineNumber + 1})`;

  // timeDeltas[i] is the time between sample i-1 and sample i; charge it to sample i-1's node
  // (the one that was running during that interval).
  const self = new Map();
  // Inclusive time of the package's functions: each sample counts once for every distinct package
  // function on its stack (a recursive one once), so a caller's figure holds what it calls.
  const inclusiveOf = new Map();
  const stackKeys = (id) => {
    const keys = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (isPackage(node)) keys.add(frameKey(node));
    }
    return keys;
  };
  const keysOf = new Map();
  let total = 0;
  let t = profile.startTime;
  const samples = profile.samples;
  const deltas = profile.timeDeltas;
  for (let i = 0; i < samples.length - 1; i++) {
    t += deltas[i];
    if (window && (t < window[0] || t > window[1])) continue;
    const dt = Math.max(0, deltas[i + 1]);
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
    if (!keysOf.has(samples[i])) keysOf.set(samples[i], stackKeys(samples[i]));
    for (const key of keysOf.get(samples[i])) inclusiveOf.set(key, (inclusiveOf.get(key) ?? 0) + dt);
    total += dt;
  }

  const categories = new Map();
  const packageSelf = new Map();
  const packageFiles = new Map(); // self time of the package's files, plus what they call directly outside the package
  const calledFromPackage = new Map();
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  for (const [id, us] of self) {
    const node = byId.get(id);
    const cat = categoryOf(node, packageDir);
    add(categories, cat, us);
    if (cat === PACKAGE) {
      add(packageSelf, frameKey(node), us);
      add(packageFiles, fileOf(node), us);
      continue;
    }
    // A native or dependency frame called directly by package code (crypto HMAC, a RegExp, the
    // OTel span API...): its self time is work the package asked for.
    const up = byId.get(parent.get(id));
    if (up && isPackage(up)) {
      add(calledFromPackage, `${node.callFrame.functionName || '(anonymous)'} [${cat}] from ${frameKey(up)}`, us);
      add(packageFiles, fileOf(up), us);
    }
  }
  const top = (map, n) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, pct: (100 * us) / total, usPerCall: calls ? us / calls : undefined }));
  return {
    file,
    windowed: Boolean(window),
    totalMs: total / 1000,
    calls,
    samples: samples.length,
    categories: top(categories, 50),
    packageFiles: top(packageFiles, 20),
    packageSelf: top(packageSelf, 15),
    packageInclusive: top(inclusiveOf, 15),
    calledFromPackage: top(calledFromPackage, 12),
  };
}
