#!/usr/bin/env bash
# End-to-end benchmark: pgbench -S through a direct connection, pgtrail and
# PgBouncer (session mode), side by side on this machine.
#
#   cargo build --release && bash benches/e2e.sh
#   DURATION=2 bash benches/e2e.sh            # smoke check
#
# Starts its own PostgreSQL (free port, scale 10 pgbench data), pgtrail
# (passthrough auth, audit to a JSON Lines file; WITH_CLICKHOUSE=1 also starts
# a throw-away ClickHouse and audits to it) and PgBouncer (session pooling,
# SCRAM towards clients with the verifier from pg_authid, SCRAM pass-through
# to the server). For each protocol (simple, extended, prepared) and client
# count (1, 8) it runs direct, pgtrail, pgbouncer one after the other, then
# prints TPS, average and p99 latency (from pgbench --log per-transaction
# logs) and the ratio to direct, and pgtrail's CPU time per 1,000 statements
# (utime+stime from /proc/PID/stat; one statement per pgbench -S transaction).
#
# Environment:
#   DURATION=20           seconds per run
#   SCALE=10              pgbench -i scale
#   MODES="simple extended prepared"
#   CLIENTS="1 8"
#   TARGETS="direct pgtrail pgbouncer"   (e.g. TARGETS="direct pgbouncer")
#   WITH_CLICKHOUSE=0     1: pgtrail audits to a local ClickHouse through a
#                         spool instead of to a JSON Lines file
#   DURABILITY=async      with WITH_CLICKHOUSE=1: async or before_ack
#   PGTRAIL_BIN=target/release/pgtrail
#   PGTRAIL_EXTRA_ARGS=   extra arguments for `pgtrail run`
#   KEEP_TMP=0            1: keep the work directory (logs, audit file)
#   RESULTS_CSV=          also write the table as CSV to this file
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=e2e
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

DURATION=${DURATION:-20}
SCALE=${SCALE:-10}
MODES=${MODES:-simple extended prepared}
CLIENTS=${CLIENTS:-1 8}
TARGETS=${TARGETS:-direct pgtrail pgbouncer}
WITH_CLICKHOUSE=${WITH_CLICKHOUSE:-0}
DURABILITY=${DURABILITY:-async}
PGTRAIL=${PGTRAIL_BIN:-$ROOT/target/release/pgtrail}
PASSWORD=bench-pw
export PGPASSWORD=$PASSWORD
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOST PGPORT PGUSER PGDATABASE

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

if has_target pgtrail && [[ ! -x "$PGTRAIL" ]]; then
    svc_die "$PGTRAIL not found: run 'cargo build --release' first (or TARGETS='direct pgbouncer')"
fi
if has_target pgbouncer && ! command -v pgbouncer >/dev/null 2>&1; then
    svc_die "pgbouncer not installed (scripts/install-deps.sh)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-e2e.XXXXXX")
chmod 755 "$TMP" # the PostgreSQL/PgBouncer user must traverse it when we run as root
PGTRAIL_PID=
PG_DIR=
BOUNCER_PID_FILE=$TMP/pgbouncer/pgbouncer.pid
cleanup() {
    trap - INT TERM EXIT
    set +e
    if [[ -n "$PGTRAIL_PID" ]]; then
        kill -TERM "$PGTRAIL_PID" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$PGTRAIL_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PGTRAIL_PID" 2>/dev/null
        wait "$PGTRAIL_PID" 2>/dev/null
    fi
    if [[ -f "$BOUNCER_PID_FILE" ]]; then
        kill -TERM "$(cat "$BOUNCER_PID_FILE")" 2>/dev/null
        for _ in $(seq 1 50); do
            [[ -f "$BOUNCER_PID_FILE" ]] || break
            sleep 0.1
        done
    fi
    ch_stop
    [[ -n "$PG_DIR" ]] && pg_stop "$PG_DIR" immediate
    svc_remove_tmp "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# --- PostgreSQL --------------------------------------------------------------
svc_log "starting PostgreSQL"
pg_start "$TMP/pg" "$(svc_random_port)" "$PASSWORD"
PSQL=("$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
PG_VERSION=$("${PSQL[@]}" -c 'SHOW server_version')
svc_log "PostgreSQL $PG_VERSION on port $PG_PORT; pgbench -i -s $SCALE"
"$PG_BIN/pgbench" -i -s "$SCALE" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >"$TMP/pgbench-init.log" 2>&1 ||
    {
        cat "$TMP/pgbench-init.log" >&2
        svc_die "pgbench -i failed"
    }
"${PSQL[@]}" -c 'VACUUM ANALYZE' >/dev/null

declare -A PORT
PORT[direct]=$PG_PORT

# --- ClickHouse (optional) ---------------------------------------------------
AUDIT_ARGS=(--audit-file "$TMP/audit.jsonl")
if [[ "$WITH_CLICKHOUSE" == 1 ]] && has_target pgtrail; then
    svc_log "starting ClickHouse"
    ch_start "$TMP/ch" "$(svc_random_port)"
    cat >"$TMP/pgtrail.toml" <<EOF
[audit]
clickhouse_url = "http://127.0.0.1:$CH_HTTP_PORT"
spool_dir = "$TMP/spool"
durability = "$DURABILITY"
EOF
    AUDIT_ARGS=(--config "$TMP/pgtrail.toml")
fi

# --- pgtrail -----------------------------------------------------------------
if has_target pgtrail; then
    PORT[pgtrail]=$(svc_free_port "$(svc_random_port)" "$PG_PORT")
    svc_log "starting pgtrail on port ${PORT[pgtrail]}"
    # shellcheck disable=SC2086
    "$PGTRAIL" run --listen "127.0.0.1:${PORT[pgtrail]}" \
        --upstream "postgres://127.0.0.1:$PG_PORT" \
        --auth passthrough \
        "${AUDIT_ARGS[@]}" ${PGTRAIL_EXTRA_ARGS:-} \
        </dev/null >"$TMP/pgtrail.log" 2>&1 &
    PGTRAIL_PID=$!
    svc_wait_port "${PORT[pgtrail]}" "$PGTRAIL_PID" pgtrail
fi

# --- PgBouncer ---------------------------------------------------------------
if has_target pgbouncer; then
    PORT[pgbouncer]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-}")
    BDIR=$TMP/pgbouncer
    mkdir -p "$BDIR"
    VERIFIER=$("${PSQL[@]}" -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
    [[ "$VERIFIER" == SCRAM-SHA-256* ]] || svc_die "unexpected verifier for postgres: $VERIFIER"
    printf '"postgres" "%s"\n' "$VERIFIER" >"$BDIR/userlist.txt"
    cat >"$BDIR/pgbouncer.ini" <<EOF
[databases]
postgres = host=127.0.0.1 port=$PG_PORT dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${PORT[pgbouncer]}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $BDIR/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
max_db_connections = 0
server_check_delay = 30
logfile = $BDIR/pgbouncer.log
pidfile = $BOUNCER_PID_FILE
log_connections = 0
log_disconnections = 0
EOF
    ((${#RUN_AS[@]})) && chown -R "$SVC_USER:" "$BDIR"
    chmod 600 "$BDIR/userlist.txt"
    svc_log "starting PgBouncer $(pgbouncer --version | head -1 | awk '{print $2}') on port ${PORT[pgbouncer]}"
    (cd "$BDIR" && "${RUN_AS[@]}" pgbouncer -d "$BDIR/pgbouncer.ini") ||
        {
            cat "$BDIR/pgbouncer.log" >&2 2>/dev/null
            svc_die "pgbouncer did not start"
        }
    svc_wait_port "${PORT[pgbouncer]}" "" pgbouncer
fi

# Every target must answer before we measure anything.
for target in $TARGETS; do
    out=$("$PG_BIN/psql" -X -A -t -h 127.0.0.1 -p "${PORT[$target]}" -U postgres -d postgres \
        -c 'SELECT count(*) FROM pgbench_branches' 2>&1) ||
        svc_die "$target (port ${PORT[$target]}) does not answer: $out"
done

# --- runs --------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$TMP/logs"

# p99 of the per-transaction latencies (3rd field, microseconds) of all
# --log files with prefix $1, in ms.
p99_ms() {
    cat "$1".* 2>/dev/null | awk '{print $3}' | sort -n |
        awk '{v[NR] = $1} END { if (NR == 0) { print "nan"; exit } i = int(NR * 0.99 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.3f", v[i] / 1000 }'
}

run_pgbench() { # target mode clients -> sets TPS LAT P99 XACTS
    local target=$1 mode=$2 clients=$3 jobs prefix out
    jobs=$((clients < 2 ? clients : 2))
    prefix="$TMP/logs/$mode-$clients-$target"
    out=$("$PG_BIN/pgbench" -n -S -M "$mode" -c "$clients" -j "$jobs" -T "$DURATION" \
        --log --log-prefix="$prefix" \
        -h 127.0.0.1 -p "${PORT[$target]}" -U postgres postgres 2>&1) ||
        {
            printf '%s\n' "$out" >&2
            svc_die "pgbench failed against $target"
        }
    printf '%s\n' "$out" >"$prefix.out"
    TPS=$(printf '%s\n' "$out" | awk '/^tps = / {print $3; exit}')
    LAT=$(printf '%s\n' "$out" | awk '/^latency average = / {print $4; exit}')
    XACTS=$(printf '%s\n' "$out" | awk -F': ' '/^number of transactions actually processed/ {split($2, a, "/"); print a[1]; exit}')
    P99=$(p99_ms "$prefix")
    rm -f "$prefix".[0-9]* # the per-transaction logs are large
}

svc_log "warm-up (direct, 2 s)"
"$PG_BIN/pgbench" -n -S -c 2 -j 2 -T 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >/dev/null 2>&1 || true

declare -A DIRECT_TPS
ROWS=()
CPU_ROWS=()
for mode in $MODES; do
    for clients in $CLIENTS; do
        for target in $TARGETS; do
            svc_log "pgbench -S -M $mode -c $clients -T $DURATION -> $target"
            pid=
            [[ "$target" == pgtrail ]] && pid=$PGTRAIL_PID
            [[ "$target" == pgbouncer ]] && pid=$(cat "$BOUNCER_PID_FILE" 2>/dev/null || true)
            before=0
            [[ -n "$pid" ]] && before=$(svc_cpu_ticks "$pid")
            run_pgbench "$target" "$mode" "$clients"
            if [[ -n "$pid" ]]; then
                after=$(svc_cpu_ticks "$pid")
                kill -0 "$pid" 2>/dev/null || svc_die "$target died"
                CPU_ROWS+=("$mode $clients $target $((after - before)) $XACTS")
            fi
            [[ "$target" == direct ]] && DIRECT_TPS[$mode-$clients]=$TPS
            ROWS+=("$mode $clients $target $TPS $LAT $P99")
        done
    done
done

# --- report ------------------------------------------------------------------
echo
echo "pgbench -S, scale $SCALE, ${DURATION}s per run, PostgreSQL $PG_VERSION, $(nproc) CPUs$([[ "$WITH_CLICKHOUSE" == 1 ]] && echo ", pgtrail auditing to ClickHouse through a spool, durability $DURABILITY")"
printf '%-9s %7s  %-9s %11s %10s %9s %9s\n' mode clients target tps "avg ms" "p99 ms" "vs direct"
[[ -n "${RESULTS_CSV:-}" ]] && echo "mode,clients,target,tps,avg_latency_ms,p99_ms,ratio_to_direct" >"$RESULTS_CSV"
for row in "${ROWS[@]}"; do
    read -r mode clients target tps lat p99 <<<"$row"
    direct=${DIRECT_TPS[$mode-$clients]:-}
    ratio=$(awk -v t="$tps" -v d="$direct" 'BEGIN { if (d > 0) printf "%.3f", t / d; else print "-" }')
    printf '%-9s %7s  %-9s %11.1f %10.3f %9s %9s\n' "$mode" "$clients" "$target" "$tps" "$lat" "$p99" "$ratio"
    [[ -n "${RESULTS_CSV:-}" ]] && echo "$mode,$clients,$target,$tps,$lat,$p99,$ratio" >>"$RESULTS_CSV"
done

if ((${#CPU_ROWS[@]})); then
    echo
    echo "proxy CPU (utime+stime) per 1,000 statements (= microseconds per statement):"
    printf '%-9s %7s  %-9s %12s %10s %12s\n' mode clients target statements "cpu s" "cpu ms/1k"
    for row in "${CPU_ROWS[@]}"; do
        read -r mode clients target ticks xacts <<<"$row"
        awk -v m="$mode" -v c="$clients" -v g="$target" -v t="$ticks" -v x="$xacts" -v hz="$CLK_TCK" 'BEGIN {
            s = t / hz
            printf "%-9s %7s  %-9s %12d %10.2f %12.3f\n", m, c, g, x, s, (x > 0 ? s * 1000 / (x / 1000) : 0)
        }'
    done
    if [[ -f "$TMP/audit.jsonl" ]]; then
        echo "audit records written to the JSON Lines file: $(wc -l <"$TMP/audit.jsonl")"
    fi
fi
