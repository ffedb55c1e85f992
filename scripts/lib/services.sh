# shellcheck shell=bash disable=SC2034
# (SC2034: PG_PORT, PG_DIR, CH_* are outputs for the sourcing script.)
# Helpers shared by scripts/run-local.sh and benches/e2e.sh: throw-away
# PostgreSQL and ClickHouse servers on local ports. Source it; not a program.
#
# Running as root: initdb/pg_ctl/postgres refuse to run as root, so they run
# through `runuser -u pgtrail-test --` (a system user created on demand, the
# same one the Rust test harness uses) and the data directory is chowned to it.
# ClickHouse 18.16 runs as root without complaint.

SVC_USER=pgtrail-test
RUN_AS=()

svc_log() { printf '%s: %s\n' "${SVC_NAME:-pgtrail}" "$*" >&2; }
svc_die() {
    svc_log "error: $*"
    exit 1
}

# Sets RUN_AS (empty, or runuser prefix when root).
svc_init_user() {
    if [[ $(id -u) == 0 ]]; then
        if ! id -u "$SVC_USER" >/dev/null 2>&1; then
            useradd --system --no-create-home --user-group --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$SVC_USER" 2>/dev/null || id -u "$SVC_USER" >/dev/null ||
                svc_die "cannot create system user $SVC_USER"
        fi
        RUN_AS=(runuser -u "$SVC_USER" --)
    else
        RUN_AS=()
    fi
}

# Highest /usr/lib/postgresql/N/bin (or $PGTRAIL_PG_BIN).
svc_pg_bin() {
    if [[ -n "${PGTRAIL_PG_BIN:-}" ]]; then
        printf '%s\n' "$PGTRAIL_PG_BIN"
        return
    fi
    local best="" v
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/postgres" ]] || continue
        v=$(basename "$(dirname "$d")")
        if [[ -z "$best" ]] || ((v > $(basename "$(dirname "$best")"))); then best=$d; fi
    done
    [[ -n "$best" ]] || svc_die "no PostgreSQL under /usr/lib/postgresql (run scripts/install-deps.sh)"
    printf '%s\n' "$best"
}

# Is something listening on 127.0.0.1:$1?
svc_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# First port >= $1 that nothing listens on (and not in the space-separated
# list $2 of ports already handed out).
svc_free_port() {
    local p=$1 taken=" ${2:-} "
    while svc_port_busy "$p" || [[ "$taken" == *" $p "* ]]; do
        p=$((p + 1))
        ((p < 65535)) || svc_die "no free port"
    done
    printf '%s\n' "$p"
}

# A random starting point for free ports (benchmarks run side by side).
svc_random_port() {
    printf '%s\n' $((20000 + RANDOM % 30000))
}

# pg_start DIR PORT PASSWORD
# initdb (once) into DIR/data with SCRAM auth, superuser postgres, C locale;
# (re)writes the settings; starts with pg_ctl. If PORT is taken at start,
# tries the next free ports. PG_EXTRA_CONF (lines) is added to the settings.
# Sets PG_BIN, PG_PORT, PG_DIR.
pg_start() {
    local dir=$1 port=$2 password=$3
    PG_BIN=$(svc_pg_bin)
    svc_init_user
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    PG_DIR=$dir
    if ((${#RUN_AS[@]})); then
        chown -R "$SVC_USER:" "$dir"
        # The server user must be able to reach the directory.
        if ! (cd / && "${RUN_AS[@]}" test -x "$dir"); then
            svc_die "$SVC_USER cannot reach $dir (a parent directory is not world-traversable); move the checkout or chmod o+x its parents"
        fi
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        rm -rf "$dir/data"
        local pwfile="$dir/pwfile"
        printf '%s\n' "$password" >"$pwfile"
        ((${#RUN_AS[@]})) && chown "$SVC_USER:" "$pwfile"
        (cd "$dir" && "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres \
            --auth=scram-sha-256 --pwfile="$pwfile" -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1) ||
            {
                cat "$dir/initdb.log" >&2
                svc_die "initdb failed"
            }
        rm -f "$pwfile"
        cat >"$dir/data/pg_hba.conf" <<'EOF'
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
EOF
    fi
    for _ in 1 2 3 4 5; do
        port=$(svc_free_port "$port")
        cat >"$dir/data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
${PG_EXTRA_CONF:-}
EOF
        ((${#RUN_AS[@]})) && chown -R "$SVC_USER:" "$dir"
        if (cd "$dir" && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null); then
            PG_PORT=$port
            return 0
        fi
        if ! grep -qE 'could not bind|already in use' "$dir/postgres.log" 2>/dev/null; then
            break
        fi
        port=$((port + 1))
    done
    tail -n 20 "$dir/postgres.log" >&2 || true
    svc_die "PostgreSQL did not start (log: $dir/postgres.log)"
}

# pg_stop DIR [mode]
pg_stop() {
    local dir=$1 mode=${2:-fast}
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    (cd "$dir" && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1) || true
}

# The clickhouse server command (18.16: clickhouse-server; modern: clickhouse server).
svc_ch_cmd() {
    if [[ -n "${PGTRAIL_CLICKHOUSE_SERVER:-}" ]]; then
        CH_CMD=("$PGTRAIL_CLICKHOUSE_SERVER")
    elif command -v clickhouse-server >/dev/null 2>&1; then
        CH_CMD=("$(command -v clickhouse-server)")
    elif [[ -x /usr/sbin/clickhouse-server ]]; then
        CH_CMD=(/usr/sbin/clickhouse-server)
    elif command -v clickhouse >/dev/null 2>&1; then
        CH_CMD=("$(command -v clickhouse)" server)
    else
        svc_die "no clickhouse-server (run scripts/install-deps.sh)"
    fi
}

# ch_start DIR HTTP_PORT_START
# Writes a minimal config (old <yandex> root, accepted by every release),
# starts the server in the background and waits for /ping.
# Sets CH_PID, CH_HTTP_PORT, CH_TCP_PORT.
ch_start() {
    local dir=$1 http=$2
    svc_ch_cmd
    mkdir -p "$dir"/{data,tmp,user_files,format_schemas}
    dir=$(cd "$dir" && pwd)
    cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
EOF
    for _ in 1 2 3 4 5; do
        CH_HTTP_PORT=$(svc_free_port "$http")
        CH_TCP_PORT=$(svc_free_port $((CH_HTTP_PORT + 1)) "$CH_HTTP_PORT")
        cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/clickhouse-server.log</log>
        <errorlog>$dir/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
EOF
        "${CH_CMD[@]}" --config-file="$dir/config.xml" </dev/null >>"$dir/stdout.log" 2>&1 &
        CH_PID=$!
        for _ in $(seq 1 300); do
            if ! kill -0 "$CH_PID" 2>/dev/null; then break; fi
            if curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null | grep -q '^Ok'; then
                return 0
            fi
            sleep 0.1
        done
        kill -KILL "$CH_PID" 2>/dev/null || true
        wait "$CH_PID" 2>/dev/null || true
        CH_PID=
        if ! grep -qiE 'already in use|address in use' "$dir/clickhouse-server.err.log" "$dir/stdout.log" 2>/dev/null; then
            break
        fi
        http=$((CH_TCP_PORT + 1))
    done
    tail -n 20 "$dir/clickhouse-server.err.log" "$dir/stdout.log" >&2 2>/dev/null || true
    svc_die "ClickHouse did not start (logs in $dir)"
}

# svc_stop PID SECONDS: TERM, then KILL if PID still runs after SECONDS.
svc_stop() {
    [[ -n "${1:-}" ]] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ch_stop: TERM, then KILL after 10 s (18.16 takes a few seconds to stop).
ch_stop() {
    svc_stop "${CH_PID:-}" 10
    CH_PID=
}

# pgbench_init SCALE: pgbench -i into the server pg_start started; the
# output goes to $TMP/pgbench-init.log and is shown if it fails.
pgbench_init() {
    "$PG_BIN/pgbench" -i -s "$1" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$TMP/pgbench-init.log" 2>&1 ||
        {
            cat "$TMP/pgbench-init.log" >&2
            svc_die "pgbench -i failed"
        }
}

# CPU time (utime+stime, in clock ticks) of process $1 from /proc/PID/stat.
svc_cpu_ticks() {
    # Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

# CPU time (clock ticks) of process $1 and everything it started: its own,
# that of its children that have exited (added to its cutime/cstime when it
# reaped them) and that of its live children. For a PostgreSQL postmaster:
# the server's whole CPU, backends included.
svc_tree_cpu_ticks() {
    local root=$1 stat total pid
    stat=$(cat "/proc/$root/stat" 2>/dev/null) || {
        echo 0
        return
    }
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    total=$((${12} + ${13} + ${14} + ${15}))
    for pid in $(pgrep -P "$root"); do
        total=$((total + $(svc_cpu_ticks "$pid")))
    done
    echo "$total"
}

# Waits until port $1 listens; dies if process $2 (optional) exits first,
# showing the tail of log $4 (optional). $3 names the service.
svc_wait_port() {
    for _ in $(seq 1 200); do
        svc_port_busy "$1" && return 0
        if [[ -n "${2:-}" ]] && ! kill -0 "$2" 2>/dev/null; then
            [[ -n "${4:-}" ]] && tail -n 20 "$4" >&2 2>/dev/null
            svc_die "$3 exited during startup"
        fi
        sleep 0.05
    done
    svc_die "$3 is not listening on port $1"
}

# Removes work directory $1 unless KEEP_TMP=1 (then says where it is).
svc_remove_tmp() {
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        svc_log "work directory kept: $1"
    else
        rm -rf "$1"
    fi
}
