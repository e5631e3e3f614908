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
# Each checkout's cluster has a port of its own, so that `make test` in one
# checkout and `make run` in another both work: a free port is chosen at the
# first start (from 54330 up, starting at a place that depends on the
# checkout's path) and recorded in .data/pg.port (beside LOCALPG_DIR when that
# is set), then reused. When the recorded port is taken by something else, a
# free one is chosen and recorded instead; when what holds it is a cluster
# whose checkout no longer exists, that cluster is stopped first.
# LOCALPG_PORT overrides the port.
#
# PostgreSQL refuses to run as root. When we are root (CI and these dev machines),
# the cluster runs as the unprivileged `postgres` system user through runuser.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
datadir=${LOCALPG_DIR:-$root/.data/pg}
portfile=$datadir.port
port=${LOCALPG_PORT:-}
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

# running_port prints the port the cluster in $datadir listens on, if it runs
# (line 4 of postmaster.pid).
running_port() {
  local d=$datadir
  [ -L "$d" ] && d=$(readlink -f "$d")
  as_owner "$bindir/pg_ctl" -D "$d" status >/dev/null 2>&1 || return 0
  as_owner sed -n 4p "$d/postmaster.pid" 2>/dev/null || true
}

# taken says whether something accepts connections on 127.0.0.1:$1.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# orphan_on prints the PID of a PostgreSQL postmaster listening on port $1
# whose checkout no longer exists: its data folder is gone (a .data/pg or a
# /var/tmp/imagehub-pg-* one), or it records a checkout path that is gone.
orphan_on() {
  local want=$1 proc pid dir p arg prev checkout
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$(cat "$proc/comm" 2>/dev/null)" = postgres ] || continue
    dir="" p="" prev=""
    while IFS= read -r -d '' arg; do
      case $prev in -D) dir=$arg ;; -p) p=$arg ;; esac
      prev=$arg
    done < <(cat "$proc/cmdline" 2>/dev/null)
    [ -n "$dir" ] && [ "$p" = "$want" ] || continue
    if [ ! -d "$dir" ]; then
      case $dir in */.data/pg | /var/tmp/imagehub-pg-*) echo "$pid"; return ;; esac
    elif [ -f "$dir/imagehub.checkout" ]; then
      checkout=$(cat "$dir/imagehub.checkout")
      if [ -n "$checkout" ] && [ ! -d "$checkout" ]; then echo "$pid"; return; fi
    fi
  done
  return 0
}

# stop_orphan stops the cluster that a checkout which no longer exists left
# running on port $1 (its data folder under /var/tmp goes too), and reports
# whether there was one.
stop_orphan() {
  local pid dir
  pid=$(orphan_on "$1")
  [ -n "$pid" ] || return 1
  dir=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-D$/{n;p;q}')
  echo "localpg: port $1 is held by a cluster whose checkout is gone ($dir, pid $pid); stopping it" >&2
  kill -INT "$pid" 2>/dev/null || true # fast shutdown
  for _ in $(seq 100); do taken "$1" || break; sleep 0.1; done
  case $dir in /var/tmp/imagehub-pg-*) rm -rf "$dir" "$dir.log" ;; esac
  return 0
}

# free_port prints a port nothing listens on (other than $1), from 54330
# up, starting where the checkout's path says, so that checkouts seldom try
# the same ones.
free_port() {
  local start i p
  start=$(($(printf '%s' "$root:$datadir" | cksum | cut -d' ' -f1) % 1000))
  for i in $(seq 0 999); do
    p=$((54330 + (start + i) % 1000))
    [ "$p" = "${1:-}" ] && continue
    taken "$p" || { echo "$p"; return; }
  done
  die "no free port between 54330 and 55329; set LOCALPG_PORT"
}

# choose_port sets $port for a cluster that is not running: LOCALPG_PORT,
# else the recorded port if it is free (or can be freed), else a free one.
choose_port() {
  if [ -n "${LOCALPG_PORT:-}" ]; then port=$LOCALPG_PORT; return; fi
  local recorded
  recorded=$(cat "$portfile" 2>/dev/null || true)
  if [[ $recorded =~ ^[0-9]+$ ]]; then
    if ! taken "$recorded" || { stop_orphan "$recorded" && ! taken "$recorded"; }; then
      port=$recorded
      return
    fi
    echo "localpg: port $recorded is taken by something else; choosing another" >&2
  fi
  port=$(free_port "$recorded")
}

record_port() { if [ -z "${LOCALPG_PORT:-}" ]; then echo "$port" >"$portfile"; fi; }

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
  # Which checkout the cluster belongs to, so that another can tell when
  # this one is gone (see orphan_on).
  [ -f "$datadir/imagehub.checkout" ] || printf '%s\n' "$root" >"$datadir/imagehub.checkout"
  if ! as_owner "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
    # The port is given at start, not written into the cluster, so a later
    # LOCALPG_PORT takes effect. Another checkout may take the port between
    # the choice and the start: then choose again.
    choose_port
    local tries=0
    until as_owner "$bindir/pg_ctl" -D "$datadir" -l "$log" -o "-p $port" -w -t 60 start >/dev/null; do
      tries=$((tries + 1))
      if [ -n "${LOCALPG_PORT:-}" ] || [ "$tries" -ge 5 ] || ! taken "$port"; then
        die "could not start PostgreSQL on port $port; see $log"
      fi
      echo "localpg: port $port was taken meanwhile; choosing another" >&2
      port=$(free_port "$port")
    done
  else
    # Already running, perhaps on another port than asked: use the port it
    # listens on.
    local running
    running=$(running_port)
    if [ -n "${LOCALPG_PORT:-}" ] && [ "$running" != "$LOCALPG_PORT" ]; then
      echo "localpg: the cluster is already running on port $running; using it (make stop, then start again to move it)" >&2
    fi
    port=$running
  fi
  record_port
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
  url)
    # LOCALPG_PORT, else the recorded port, else (a cluster started before
    # ports were recorded) the port it runs on.
    [ -n "$port" ] || port=$(cat "$portfile" 2>/dev/null || true)
    [ -n "$port" ] || port=$(running_port)
    [ -n "$port" ] || die "no port recorded in $portfile yet; run $0 start"
    url
    ;;
  *) die "usage: $0 start|stop|url" ;;
esac
