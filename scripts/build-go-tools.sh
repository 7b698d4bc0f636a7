#!/usr/bin/env bash
# Builds the stock transparency-log tools the ledger tests check against, into .cache/bin:
#
#   tlogcheck    test/go/tlogcheck: verifies checkpoint notes with golang.org/x/mod/sumdb/note and
#                inclusion/consistency proofs with golang.org/x/mod/sumdb/tlog (v0.43.0, go.sum pinned)
#   litewitness  filippo.io/torchwood/cmd/litewitness $TORCHWOOD_VERSION: a c2sp.org/tlog-witness witness
#   witnessctl   filippo.io/torchwood/cmd/witnessctl: provisions litewitness (add-log, add-key)
#
# torchwood is built inside its downloaded module (like build-jaeger.sh does for Jaeger), where its
# own go.mod/go.sum apply. Cached: nothing is rebuilt while the three binaries exist and
# .cache/bin/go-tools.stamp records the same inputs (the sha256 of tlogcheck's sources, the
# torchwood version, the Go version). Set FORCE=1 to rebuild anyway.
set -euo pipefail

TORCHWOOD_MODULE=filippo.io/torchwood
TORCHWOOD_VERSION=v0.6.1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/test/go/tlogcheck"
bin_dir="$root/.cache/bin"
out="$bin_dir/tlogcheck"
stamp="$bin_dir/go-tools.stamp"

die() {
  echo "build-go-tools: error: $*" >&2
  exit 1
}

# shellcheck source=lib/go-build.sh
. "$root/scripts/lib/go-build.sh"
require_go "Go 1.26 or newer is needed (golang.org/x/mod v0.43.0)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

go_version=$(go env GOVERSION) || die "'go env GOVERSION' failed"
src_sha=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -d' ' -f1)
want="tlogcheck-sha256=$src_sha torchwood=$TORCHWOOD_VERSION go=$go_version"
lock_build go-tools
if [ "${FORCE:-0}" != 1 ] && [ -x "$bin_dir/litewitness" ] && [ -x "$bin_dir/witnessctl" ]; then
  exit_if_up_to_date go-tools "$want"
fi
rm -f "$stamp"
mkdir -p "$bin_dir"

start=$(date +%s)
echo "build-go-tools: building tlogcheck (golang.org/x/mod v0.43.0) with $go_version"
(cd "$src" && go build -trimpath -o "$out.tmp" .) || die "go build of test/go/tlogcheck failed (see above; modules come from $(go env GOPROXY))"
mv -f "$out.tmp" "$out"
echo "build-go-tools: tlogcheck built in $(($(date +%s) - start))s"

start=$(date +%s)
echo "build-go-tools: downloading $TORCHWOOD_MODULE@$TORCHWOOD_VERSION"
tw_dir=$(go mod download -json "$TORCHWOOD_MODULE@$TORCHWOOD_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$tw_dir" ] && [ -f "$tw_dir/go.mod" ] ||
  die "could not download $TORCHWOOD_MODULE@$TORCHWOOD_VERSION through the Go module proxy ($(go env GOPROXY))"
echo "build-go-tools: building litewitness and witnessctl ($TORCHWOOD_VERSION); the first build takes about a minute"
for cmd in litewitness witnessctl; do
  (cd "$tw_dir" && go build -trimpath -o "$bin_dir/$cmd.tmp" "./cmd/$cmd") || die "go build of $TORCHWOOD_MODULE/cmd/$cmd failed (see above)"
  mv -f "$bin_dir/$cmd.tmp" "$bin_dir/$cmd"
done
echo "$want" >"$stamp"
echo "build-go-tools: litewitness and witnessctl built in $(($(date +%s) - start))s"
