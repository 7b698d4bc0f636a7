// `npm run test:node24` runs on whatever `node` is first on PATH: say so when that is not the newer
// line the leg is for (CI puts Node 24 there: bash scripts/install-node.sh 24).
const [major] = process.versions.node.split('.').map(Number);
const wanted = Number(process.argv[2] ?? 22);
if (major < wanted) {
  console.error(`test:node24 runs on Node ${process.version}; put Node >= ${wanted} first on PATH, e.g.\n  PATH="$(dirname "$(bash scripts/install-node.sh 24 | tail -n 1)"):$PATH" npm run test:node24`);
  process.exit(1);
}
console.log(`test:node24 on Node ${process.version}`);
