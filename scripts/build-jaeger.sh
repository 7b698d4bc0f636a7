#!/usr/bin/env bash
# Builds a real Jaeger v2 (the all-in-one `jaeger` binary, itself an OpenTelemetry Collector
# distribution) from its Go module into .cache/bin/jaeger, for the end-to-end collector tests.
#
# Jaeger v2 is published on the Go module path github.com/jaegertracing/jaeger with v1.x tags
# (v1.76.0 is the module tag of Jaeger v2.13.0). Its go.mod carries a `replace` directive, so
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` is refused by the go command
# ("The go.mod file for the module providing named packages contains one or more replace
# directives"). Instead the module source is fetched into the module cache with
# `go mod download` and `go build` runs inside it, where the module's own go.mod/go.sum (and its
# replace) apply. No UI assets are embedded: a plain build serves a placeholder page, which is
# all the tests need (they use the HTTP APIs only).
#
# Cached: nothing is rebuilt, and no Go is needed, while .cache/bin/jaeger exists and
# .cache/bin/jaeger.stamp records the same module version (scripts/lib/go-build.sh). Set FORCE=1
# to rebuild anyway; --check only tells (exit 1: a build is needed).
set -euo pipefail

JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=v1.76.0 # Jaeger v2.13.0
JAEGER_V2_VERSION=v2.13.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$root/.cache/bin"
out="$bin_dir/jaeger"
stamp="$bin_dir/jaeger.stamp"

die() {
  echo "build-jaeger: error: $*" >&2
  exit 1
}

# shellcheck source=lib/go-build.sh
. "$root/scripts/lib/go-build.sh"

inputs="module=$JAEGER_MODULE@$JAEGER_VERSION"
[ "$CHECK_ONLY" = 1 ] || lock_build jaeger
exit_if_up_to_date jaeger "$inputs"
require_go "Go 1.24 or newer is needed to build Jaeger"
go_version=$(go env GOVERSION) || die "'go env GOVERSION' failed"
want="$inputs go=$go_version"

echo "build-jaeger: downloading $JAEGER_MODULE@$JAEGER_VERSION"
src_dir=$(go mod download -json "$JAEGER_MODULE@$JAEGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$src_dir" ] && [ -f "$src_dir/go.mod" ] ||
  die "could not download $JAEGER_MODULE@$JAEGER_VERSION through the Go module proxy ($(go env GOPROXY))"

echo "build-jaeger: building $JAEGER_MODULE/cmd/jaeger ($JAEGER_V2_VERSION) with $go_version; the first build takes several minutes (with the other Go build, about 24 min on 2 cores)"
start=$(date +%s)
buildinfo="$JAEGER_MODULE/internal/version"
ldflags="-s -w -X $buildinfo.latestVersion=$JAEGER_V2_VERSION -X $buildinfo.commitSHA=$JAEGER_VERSION"
# Built in place: the module cache is read-only, which is fine since go build (in its default
# -mod=readonly mode) writes nothing there; the binary goes to .cache/bin.
if ! (cd "$src_dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" ./cmd/jaeger); then
  rm -f "$out.tmp"
  die "go build of $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION failed (see the compiler output above)"
fi
mv -f "$out.tmp" "$out"
echo "$want" >"$stamp"
echo "build-jaeger: built $out in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
