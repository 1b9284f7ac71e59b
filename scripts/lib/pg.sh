# Private PostgreSQL cluster helpers, sourced by scripts/test, scripts/run and scripts/bench.
# The cluster runs as the unprivileged `postgres` user (initdb refuses root), listens on
# 127.0.0.1 only, and lives entirely under the directory it is given.

pg_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

ensure_postgres() {
  if ! pg_bindir >/dev/null; then
    echo "PostgreSQL binaries not found: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql postgresql-contrib >&2
  fi
  PG_BIN=$(pg_bindir) || { echo "no PostgreSQL binaries after install" >&2; return 1; }
  export PG_BIN
  if ! id -u postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
  fi
}

# as_pg CMD...: run a command as the cluster's owner (root cannot run initdb or postgres).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_dir DIR: DIR if the cluster's owner can reach it, else a directory of its own under
# /var/tmp (a checkout under a private home directory is not reachable by `postgres`).
pg_dir() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"; chmod 700 "$dir"
    if ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
      dir=/var/tmp/ledger-pg-$(printf '%s' "$dir" | md5sum | cut -c1-12)
      mkdir -p "$dir"; chown postgres "$dir"; chmod 700 "$dir"
    fi
  fi
  echo "$dir"
}

# pg_start DIR PORT [durable|fast]: initialise (once) and start a cluster; prints its URL.
# `fast` turns fsync off: for tests, where Postgres itself is never killed.
pg_start() {
  local dir=$1 port=$2 mode=${3:-durable}
  ensure_postgres
  dir=$(pg_dir "$dir")
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  # The socket goes in /tmp: a long checkout path would exceed the 107-byte socket path limit.
  local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=/tmp -c max_connections=300"
  opts="$opts -c shared_buffers=256MB -c max_wal_size=2GB -c log_min_messages=warning"
  if [ "$mode" = fast ]; then opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w -t 60 start >/dev/null \
      || { tail -20 "$dir/postgres.log" >&2; return 1; }
  fi
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  local dir
  dir=$(pg_dir "$1")
  [ -f "$dir/data/PG_VERSION" ] || return 0
  as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
