#!/usr/bin/env bash
# Builds the project's OpenTelemetry Collector distribution (otelcol-llm-audit) from
# collector/builder-config.yaml with the OpenTelemetry Collector Builder (ocb), into
# .cache/bin/otelcol-llm-audit, for collector-config.yaml and the end-to-end tests.
#
#   1. go install go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION into .cache/go/bin
#   2. builder --config collector/builder-config.yaml (generates sources in
#      .cache/otelcol-llm-audit-build, resolves modules through the Go module proxy, compiles)
#   3. moves the binary to .cache/bin/otelcol-llm-audit (the generated sources stay in the build dir)
#
# Cached: nothing is rebuilt, and no Go is needed, while the binary exists and
# .cache/bin/otelcol-llm-audit.stamp records the sha256 of builder-config.yaml and the builder
# version it was built from (scripts/lib/go-build.sh). Set FORCE=1 to rebuild anyway; --check only
# tells (exit 1: a build is needed). The first build takes several minutes (with Jaeger's, about
# 24 min on a 2-core machine).
set -euo pipefail

BUILDER_VERSION=v0.161.0 # keep in step with the versions in collector/builder-config.yaml

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest="$root/collector/builder-config.yaml"
gobin="$root/.cache/go/bin"
builder="$gobin/builder"
bin_dir="$root/.cache/bin"
out="$bin_dir/otelcol-llm-audit"
stamp="$bin_dir/otelcol-llm-audit.stamp"
build_dir="$root/.cache/otelcol-llm-audit-build" # must match dist.output_path in the manifest

die() {
  echo "build-collector: error: $*" >&2
  exit 1
}

# shellcheck source=lib/go-build.sh
. "$root/scripts/lib/go-build.sh"
[ -f "$manifest" ] || die "missing $manifest"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"

manifest_sha=$(sha256sum "$manifest" | cut -d' ' -f1)
inputs="manifest-sha256=$manifest_sha builder=$BUILDER_VERSION"
[ "$CHECK_ONLY" = 1 ] || lock_build otelcol-llm-audit
exit_if_up_to_date collector "$inputs"
require_go "the collector builder $BUILDER_VERSION needs Go 1.26 or newer"
go_version=$(go env GOVERSION) || die "'go env GOVERSION' failed"
want="$inputs go=$go_version"

mkdir -p "$gobin" "$bin_dir"

start=$(date +%s)
# (`builder version` prints "ocb version vX.Y.Z" on stderr.)
if [ -x "$builder" ] && "$builder" version 2>&1 | grep -q "version v${BUILDER_VERSION#v}\$"; then
  echo "build-collector: using $builder ($BUILDER_VERSION)"
else
  echo "build-collector: installing go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION into $gobin"
  GOBIN="$gobin" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" ||
    die "go install go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION failed (Go module proxy: $(go env GOPROXY))"
fi

echo "build-collector: building otelcol-llm-audit from collector/builder-config.yaml with $go_version; the first build takes several minutes (with the other Go build, about 24 min on 2 cores)"
rm -rf "$build_dir"
# The builder runs `go` from PATH in dist.output_path, which the manifest gives relative to the
# repository root.
if ! (cd "$root" && "$builder" --config "$manifest"); then
  die "the collector builder failed (see its output above); a module that does not resolve through the Go module proxy shows up as a 'go get' or 'go mod tidy' error"
fi
[ -x "$build_dir/otelcol-llm-audit" ] || die "the builder finished but $build_dir/otelcol-llm-audit is missing (does dist.output_path in the manifest still match?)"

mv -f "$build_dir/otelcol-llm-audit" "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$want" >"$stamp"
echo "build-collector: built $out in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
