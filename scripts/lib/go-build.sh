# Shared by build-collector.sh and build-jaeger.sh: Go on PATH, one build at a time, and the
# stamp that makes a rebuild a no-op. Expects `die`, `bin_dir`, `out` and `stamp` from the caller.

# Puts Go on PATH (it may live in /usr/local/go/bin without being on PATH); $1 says what needs it.
require_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
      export PATH="/usr/local/go/bin:$PATH"
    else
      die "the go command is not on PATH ($1)"
    fi
  fi
}

# One build at a time: concurrent runs (parallel test runs, several engineers in one tree) wait
# here, then find the binary up to date. flock comes with util-linux. $1 names the build.
lock_build() {
  mkdir -p "$bin_dir"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$bin_dir/.$1.lock"
    if ! flock -n 9; then
      echo "build-$1: another build is running; waiting for it"
      flock 9 || die "could not lock $bin_dir/.$1.lock"
    fi
  fi
}

# Exits 0 when $out exists and $stamp records the same inputs ($2); FORCE=1 rebuilds anyway.
exit_if_up_to_date() {
  if [ "${FORCE:-0}" != 1 ] && [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$2" ]; then
    echo "build-$1: up to date: $out ($2)"
    exit 0
  fi
  rm -f "$stamp"
}
