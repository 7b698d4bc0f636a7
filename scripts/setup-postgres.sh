#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests, on loopback only, and prints its connection
# URL as the last line of standard output. Idempotent: a server it already started is reused.
#
#   1. `apt-get install -y postgresql` when no PostgreSQL server binaries are found (needs root);
#   2. a cluster in .cache/pg/data (owned by the `postgres` user when run as root, else by the
#      calling user), listening on 127.0.0.1 only, on a port of 55432..55531 picked from the
#      checkout's path (the next free one when taken), so that two clones' servers do not meet;
#   3. a superuser role and a database, both named llm_audit_test (password llm_audit_test).
#
# `setup-postgres.sh stop` (npm run test:stop) stops this checkout's server, if it runs. The test
# run stops the server it started itself when it ends (test/support/global-setup.ts).
#
# Environment: LLM_AUDIT_PG_DIR (default <repo>/.cache/pg), LLM_AUDIT_PG_PORT (the first port to
# try). Exit status 0 with the URL printed, anything else with the reason on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${LLM_AUDIT_PG_DIR:-$ROOT/.cache/pg}"
DATA="$BASE/data"
SOCK="$BASE/socket"
LOG="$BASE/server.log"
PORT_FILE="$BASE/port"
ROLE=llm_audit_test
PASSWORD=llm_audit_test
DB=llm_audit_test

say() { echo "setup-postgres: $*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$BASE"
# Several test files may call this at once: one at a time.
exec 9>"$BASE/.lock"
flock -w 120 9 || die "timed out waiting for $BASE/.lock"

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  return 1
}

if [ "${1:-}" = stop ]; then
  if [ -f "$DATA/postmaster.pid" ]; then
    BIN="$(find_bindir)" || die "a server runs in $DATA but no pg_ctl was found to stop it"
    if [ "$(id -u)" -eq 0 ]; then AS=(runuser -u postgres --); else AS=(); fi
    "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || die "pg_ctl could not stop the server in $DATA"
    say "stopped the test server in $DATA"
  else
    say "no test server runs in $DATA"
  fi
  exit 0
fi

BIN="$(find_bindir || true)"
if [ -z "$BIN" ]; then
  say "no PostgreSQL server found; installing Debian's postgresql package"
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else die "PostgreSQL is not installed and this user cannot install it (run as root, or: apt-get install -y postgresql)"; fi
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package's own cluster (port 5432) is not used; ours lives in $DATA.
  $SUDO apt-get update -qq >&2 || die "apt-get update failed"
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
  BIN="$(find_bindir || true)"
  [ -n "$BIN" ] || die "postgresql was installed but its server binaries were not found under /usr/lib/postgresql/*/bin"
fi

# As root, the cluster belongs to the postgres user (the server refuses to run as root).
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$BASE" --shell /usr/sbin/nologin postgres
  AS=(runuser -u postgres --)
  chown postgres: "$BASE"
  mkdir -p "$SOCK" && chown postgres: "$SOCK" && chmod 700 "$SOCK"
else
  AS=()
  mkdir -p "$SOCK" && chmod 700 "$SOCK"
fi
run() { "${AS[@]}" "$@"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() {
  [ -f "$DATA/postmaster.pid" ] && run "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() { echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$1/$DB"; }

if [ ! -f "$DATA/PG_VERSION" ]; then
  say "initialising a cluster in $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$DATA"
  run "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 \
    || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
fi

if running; then
  PORT="$(cat "$PORT_FILE" 2>/dev/null || true)"
  if [ -n "$PORT" ] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    url "$PORT"
    exit 0
  fi
  say "a server runs in $DATA but does not answer; restarting it"
  run "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
fi

# From the checkout's own place in the range: another clone starting its server at the same
# moment most likely tries another port, instead of both finding 55432 free and one failing.
PORT="${LLM_AUDIT_PG_PORT:-$((55432 + $(printf '%s' "$BASE" | cksum | cut -d' ' -f1) % 100))}"
tries=0
while ! port_free "$PORT"; do
  PORT=$((PORT + 1))
  [ "$PORT" -lt 55532 ] || PORT=55432
  tries=$((tries + 1))
  [ "$tries" -lt 100 ] || die "no free port in 55432..55531"
done
echo "$PORT" >"$PORT_FILE"

say "starting PostgreSQL ($BIN) on 127.0.0.1:$PORT"
run "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c max_connections=200" \
  start >/dev/null 9>&- || { tail -n 30 "$LOG" >&2 || true; die "the server did not start (log: $LOG)"; }

psql_su() { run "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }
psql_su -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$PASSWORD';
  END IF;
END \$\$;" >&2 || die "could not create the role $ROLE"
if [ -z "$(psql_su -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  psql_su -c "CREATE DATABASE $DB OWNER $ROLE" >&2 || die "could not create the database $DB"
fi
url "$PORT"
