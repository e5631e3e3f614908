#!/usr/bin/env bash
# localpg.sh: a private PostgreSQL cluster for development and tests, kept in the
# project's git-ignored data folder. `make run` and `make test` use it when
# DATABASE_URL / TEST_DATABASE_URL are unset.
#
#   scripts/localpg.sh start   create (first time) and start the cluster; prints the URL
#   scripts/localpg.sh stop    stop it
#   scripts/localpg.sh url     print the URL of the imagehub database (a superuser,
#                              so tests may also create their own databases there)
#
# PostgreSQL refuses to run as root. When we are root (CI and these dev machines),
# the cluster runs as the unprivileged `postgres` system user through runuser.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
datadir=${LOCALPG_DIR:-$root/.data/pg}
port=${LOCALPG_PORT:-54329}
log=$datadir.log

die() { echo "localpg: $*" >&2; exit 1; }

find_bin() {
  local d
  # Debian keeps the real server binaries out of PATH; prefer the newest of them.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}

bindir=$(find_bin || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "localpg: PostgreSQL not found; installing it with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bindir=$(find_bin || true)
  fi
  [ -n "$bindir" ] || die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. 'sudo apt-get install postgresql' (Debian/Ubuntu) or 'brew install postgresql' (macOS), or set DATABASE_URL."
fi

# as_owner runs a PostgreSQL binary as the cluster's owner.
runas=""
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  runas=postgres
fi
as_owner() {
  # From / so that the owner is never left in a folder it cannot enter.
  if [ -n "$runas" ]; then (cd / && runuser -u "$runas" -- "$@"); else "$@"; fi
}

url() { echo "postgres://postgres@127.0.0.1:$port/imagehub?sslmode=disable"; }

start() {
  mkdir -p "$(dirname "$datadir")"
  if [ -n "$runas" ] && [ ! -e "$datadir" ] && ! runuser -u "$runas" -- test -x "$(dirname "$datadir")"; then
    # The checkout sits where the postgres user cannot enter (under /root,
    # say): keep the cluster in a folder it can reach, linked from .data/pg.
    real=/var/tmp/imagehub-pg-$(printf '%s' "$root" | cksum | cut -d' ' -f1)
    mkdir -p "$real"
    chown "$runas" "$real"
    ln -sfn "$real" "$datadir"
    echo "localpg: $runas cannot reach $(dirname "$datadir"); the cluster lives in $real" >&2
  fi
  if [ -L "$datadir" ]; then
    datadir=$(readlink -f "$datadir")
    log=$datadir.log
  fi
  if [ ! -s "$datadir/PG_VERSION" ]; then
    mkdir -p "$datadir"
    if [ -n "$runas" ]; then
      chown "$runas" "$datadir"
      as_owner test -w "$datadir" || die "user $runas cannot write $datadir; set LOCALPG_DIR to a folder $runas can reach."
    fi
    chmod 700 "$datadir"
    as_owner "$bindir/initdb" -D "$datadir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null \
      || die "initdb failed"
    # Tuned for a development machine: durability is not the point here, speed is.
    cat >>"$datadir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  touch "$log" && { [ -z "$runas" ] || chown "$runas" "$log"; }
  if ! as_owner "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
    # The port is given at start, not written into the cluster, so a later
    # LOCALPG_PORT takes effect.
    as_owner "$bindir/pg_ctl" -D "$datadir" -l "$log" -o "-p $port" -w -t 60 start >/dev/null \
      || die "could not start PostgreSQL; see $log"
  else
    # Already running, perhaps on another port than asked: use the port it
    # listens on (line 4 of postmaster.pid).
    running=$(as_owner sed -n 4p "$datadir/postmaster.pid" 2>/dev/null || true)
    if [ -n "$running" ] && [ "$running" != "$port" ]; then
      echo "localpg: the cluster is already running on port $running; using it (make stop, then start again to move it)" >&2
      port=$running
    fi
  fi
  if [ "$("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'imagehub'")" != 1 ]; then
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres imagehub || die "could not create database imagehub"
  fi
  url
}

stop() {
  [ -L "$datadir" ] && datadir=$(readlink -f "$datadir")
  [ -s "$datadir/PG_VERSION" ] || return 0
  as_owner "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) die "usage: $0 start|stop|url" ;;
esac
