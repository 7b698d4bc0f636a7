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
# Cached: nothing is rebuilt while .cache/bin/jaeger exists and .cache/bin/jaeger.stamp records
# the same module version and Go version. Set FORCE=1 to rebuild anyway.
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

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    die "the go command is not on PATH (Go 1.24 or newer is needed to build Jaeger)"
  fi
fi

go_version=$(go env GOVERSION) || die "'go env GOVERSION' failed"
want="module=$JAEGER_MODULE@$JAEGER_VERSION go=$go_version"

# One build at a time: concurrent runs (parallel test runs, several engineers in one tree) wait
# here, then find the binary up to date. flock comes with util-linux.
mkdir -p "$bin_dir"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$bin_dir/.jaeger.lock"
  if ! flock -n 9; then
    echo "build-jaeger: another build is running; waiting for it"
    flock 9 || die "could not lock $bin_dir/.jaeger.lock"
  fi
fi

if [ "${FORCE:-0}" != 1 ] && [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "build-jaeger: up to date: $out ($want)"
  exit 0
fi

mkdir -p "$bin_dir"
rm -f "$stamp"

echo "build-jaeger: downloading $JAEGER_MODULE@$JAEGER_VERSION"
src_dir=$(go mod download -json "$JAEGER_MODULE@$JAEGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$src_dir" ] && [ -f "$src_dir/go.mod" ] ||
  die "could not download $JAEGER_MODULE@$JAEGER_VERSION through the Go module proxy ($(go env GOPROXY))"

echo "build-jaeger: building $JAEGER_MODULE/cmd/jaeger ($JAEGER_V2_VERSION) with $go_version; this takes several minutes"
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
