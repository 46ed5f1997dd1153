#!/usr/bin/env bash
# A throwaway PostgreSQL for the side-by-side acknowledgment benchmark (benches/ingest.rs, GONGWEN_BENCH_PG).
#
#   benches/pg/start-postgres.sh [DIR]        start (installing Debian's postgresql if initdb/pg_ctl are missing),
#                                             print the connection URL on stdout
#   benches/pg/start-postgres.sh stop [DIR]   stop it (the cluster stays in DIR; rm -rf DIR to forget it)
#
# DIR defaults to $GONGWEN_PG_DIR or /tmp/gongwen-bench-pg. The cluster listens on 127.0.0.1 only, on a free port,
# with trust authentication for the local user "bench" and the database "gongwen_bench". Durability settings are
# PostgreSQL's defaults (fsync on, synchronous_commit on, wal_sync_method the platform default): a COMMIT returns
# after its WAL is flushed, as gongwen's replies come after sled's flush and fsync.
#
# Typical use:
#   export GONGWEN_BENCH_PG=$(benches/pg/start-postgres.sh)
#   cargo bench --bench ingest
#   benches/pg/start-postgres.sh stop
set -euo pipefail

action=start
if [[ "${1:-}" == "stop" || "${1:-}" == "start" ]]; then
    action=$1
    shift
fi
dir=${1:-${GONGWEN_PG_DIR:-/tmp/gongwen-bench-pg}}
data=$dir/data

log() { echo "start-postgres: $*" >&2; }

find_bin() {
    local name=$1 found
    if found=$(command -v "$name" 2>/dev/null); then
        echo "$found"
        return 0
    fi
    # Debian keeps the server programs out of PATH, one directory per major version; take the newest.
    found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$found" ]] && echo "$found"
}

need_bins() {
    if [[ -z "$(find_bin initdb)" || -z "$(find_bin pg_ctl)" ]]; then
        log "initdb/pg_ctl not found: installing Debian's postgresql package"
        local sudo=()
        [[ $(id -u) -ne 0 ]] && sudo=(sudo)
        "${sudo[@]}" apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >&2
    fi
    INITDB=$(find_bin initdb) || { log "initdb still missing after install"; exit 1; }
    PG_CTL=$(find_bin pg_ctl) || { log "pg_ctl still missing after install"; exit 1; }
    PSQL=$(find_bin psql) || { log "psql missing"; exit 1; }
}

# PostgreSQL refuses to run as root: run its programs as the postgres user then.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local p
    for p in $(seq 55432 55631); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    log "no free port in 55432..55631"
    exit 1
}

case $action in
stop)
    need_bins
    if [[ -f "$data/postmaster.pid" ]]; then
        as_owner "$PG_CTL" -D "$data" -m fast -w stop >&2
    else
        log "not running ($data)"
    fi
    ;;
start)
    need_bins
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir"
    if [[ ! -f "$data/PG_VERSION" ]]; then
        log "creating a cluster in $data"
        as_owner "$INITDB" -D "$data" -U bench --auth=trust -E UTF8 --locale=C >"$dir/initdb.log"
    fi
    if [[ -f "$data/postmaster.pid" ]] && as_owner "$PG_CTL" -D "$data" status >/dev/null 2>&1; then
        port=$(cat "$dir/port")
        log "already running on port $port"
    else
        port=$(free_port)
        echo "$port" >"$dir/port"
        # The socket directory is the cluster's own, so nothing under /var/run is needed.
        as_owner "$PG_CTL" -D "$data" -l "$dir/server.log" -w \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2
    fi
    url="postgres://bench@127.0.0.1:$port/gongwen_bench"
    if ! "$PSQL" -h 127.0.0.1 -p "$port" -U bench -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'gongwen_bench'" | grep -q 1; then
        "$PSQL" -h 127.0.0.1 -p "$port" -U bench -d postgres -qc "CREATE DATABASE gongwen_bench" >&2
    fi
    settings=$("$PSQL" -h 127.0.0.1 -p "$port" -U bench -d gongwen_bench -tAc \
        "SELECT version() || '; fsync=' || current_setting('fsync') || ', synchronous_commit=' ||
                current_setting('synchronous_commit') || ', wal_sync_method=' || current_setting('wal_sync_method')")
    log "$settings"
    echo "$url"
    ;;
esac
