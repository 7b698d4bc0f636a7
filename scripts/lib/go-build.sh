# Shared by build-collector.sh and build-jaeger.sh: Go on PATH, one build at a time, and the
# stamp that makes a rebuild a no-op. Expects `die`, `bin_dir`, `out` and `stamp` from the caller.
#
# The stamp records what a binary was built from (a manifest or module version) and, for the
# record, the Go that built it. Only the first decides whether to rebuild: a binary that is up to
# date needs no Go at all (a fresh machine with the cache restored, a developer without Go), and a
# Go update alone does not cost the ~24 minutes of building both again.
#
# `--check` as the script's first argument: exit 0 when up to date, 1 when a build is needed,
# building nothing (the test run uses it to announce a build before it starts).
CHECK_ONLY=0
[ "${1:-}" = --check ] && CHECK_ONLY=1

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

# Exits 0 when $out exists and $stamp records the same inputs ($2, whatever Go it names); FORCE=1
# rebuilds anyway. With --check, exits 1 instead of going on to the build.
exit_if_up_to_date() {
  local recorded=
  [ -f "$stamp" ] && recorded=$(cat "$stamp")
  if [ "${FORCE:-0}" != 1 ] && [ -x "$out" ] && [ "${recorded%% go=*}" = "$2" ]; then
    echo "build-$1: up to date: $out ($recorded)"
    exit 0
  fi
  if [ "$CHECK_ONLY" = 1 ]; then
    echo "build-$1: $out needs a build (${recorded:-no stamp}; wanted $2)"
    exit 1
  fi
  rm -f "$stamp"
}
