#!/usr/bin/env bash
# End-to-end benchmark: pgbench -S (or -N) through a direct connection, pgtrail,
# PgBouncer (session mode) and a proxy that only copies bytes, and directly
# with PostgreSQL auditing itself (pgAudit logging every statement, and
# log_statement = 'all'), side by side on this machine.
#
#   cargo build --release --bin pgtrail --example copy_proxy && bash benches/e2e.sh
#   DURATION=2 ROUNDS=1 bash benches/e2e.sh   # smoke check
#
# Starts its own PostgreSQL (free port, scale 10 pgbench data), pgtrail
# (passthrough auth, audit to a JSON Lines file; WITH_CLICKHOUSE=1 also starts
# a throw-away ClickHouse and audits to it) and PgBouncer (session pooling,
# SCRAM towards clients with the verifier from pg_authid, SCRAM pass-through
# to the server). For each protocol (simple, extended, prepared) and client
# count (1, 8) it runs direct, pgtrail, pgbouncer one after the other, then
# prints TPS, average and p99 latency (from pgbench --log per-transaction
# logs) and the ratio to direct, and CPU time per statement (utime+stime
# from /proc; one statement per pgbench -S transaction): the proxy's, the
# PostgreSQL server's (postmaster and every backend), and their sum beyond
# what direct costs the server, which is what auditing costs each way.
# The in-server peers connect directly with PGOPTIONS for their runs only:
# pgaudit (`-c pgaudit.log=all`; the server starts with
# shared_preload_libraries = 'pgaudit' when that target is asked for, so the
# library is loaded, and idle, in every other run too) and logstmt
# (`-c log_statement=all`); both write to the server's log file.
#
# Environment:
#   SCRIPT=select         select: pgbench -S (1 statement per transaction);
#                         commented: the same SELECT with a sqlcommenter
#                         comment naming an end user (issue 18);
#                         write: pgbench -N (BEGIN, UPDATE, SELECT, INSERT,
#                         END: 5 statements, 2 changed rows)
#   DURATION=20           seconds per run
#   SCALE=10              pgbench -i scale
#   MODES="simple extended prepared"
#   CLIENTS="1 8"
#   ROUNDS=3              repetitions of the whole matrix
#   TARGETS="direct pgtrail pgbouncer copy pgaudit logstmt"
#                         (e.g. TARGETS="direct pgbouncer"); add `base` to
#                         run a second pgtrail, PGTRAIL_BASE_BIN (another
#                         build, e.g. the last release), beside the first:
#                         an A/B in the same run, so the noise is shared;
#                         add `noclaims` to run a second pgtrail of the
#                         same build with [identity] claims = false;
#                         add `cdc` to run a second pgtrail of the same
#                         build with [cdc] enabled: attribution markers on
#                         every connection and the decoding consumer
#                         writing `changes` records (its own audit file,
#                         a publication for all tables, slot pgtrail_bench);
#                         it runs only for its own runs (started with the
#                         slot advanced to the end of the WAL, stopped once
#                         it confirmed all its run wrote), so no other
#                         target's run pays for decoding, and its CPU
#                         figures include all of its own; the report adds
#                         its slot lag during the runs (bytes, and the
#                         walsender's flush_lag in seconds), how long after
#                         each run's end everything was confirmed, and the
#                         changes it wrote
#   CDC_ATTRIBUTION=statement  or transaction: cdc.attribution of target cdc
#   CDC_CONSUME=true      false: target cdc only marks transactions (no
#                         consumer), to tell the markers' cost from the
#                         decoding's
#   WITH_CLICKHOUSE=0     1: pgtrail audits to a local ClickHouse through a
#                         spool instead of to a JSON Lines file
#   DURABILITY=async      with WITH_CLICKHOUSE=1: async or before_ack
#   CATALOG=0             1: target pgtrail resolves columns through a
#                         [catalog] connection (as postgres) and labels
#                         pgbench_accounts.abalance; target base keeps a
#                         plain audit file (an older build knows no
#                         [catalog])
#   PGTRAIL_BIN=target/release/pgtrail
#   COPY_PROXY_BIN=target/release/examples/copy_proxy
#   PGTRAIL_EXTRA_ARGS=   extra arguments for `pgtrail run`
#   KEEP_TMP=0            1: keep the work directory (logs, audit file)
#   RESULTS_CSV=          also write the table as CSV to this file
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=e2e
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

SCRIPT=${SCRIPT:-select}
case $SCRIPT in
select) PGBENCH_SCRIPT=-S STMTS_PER_XACT=1 ;;
write) PGBENCH_SCRIPT=-N STMTS_PER_XACT=5 ;;
# pgbench -S's statement with a sqlcommenter comment (set once $TMP exists).
commented) PGBENCH_SCRIPT= STMTS_PER_XACT=1 ;;
*) echo "SCRIPT must be select, write or commented" >&2 && exit 2 ;;
esac
DURATION=${DURATION:-20}
SCALE=${SCALE:-10}
MODES=${MODES:-simple extended prepared}
CLIENTS=${CLIENTS:-1 8}
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-direct pgtrail pgbouncer copy pgaudit logstmt}
WITH_CLICKHOUSE=${WITH_CLICKHOUSE:-0}
DURABILITY=${DURABILITY:-async}
PGTRAIL=${PGTRAIL_BIN:-$ROOT/target/release/pgtrail}
PGTRAIL_BASE=${PGTRAIL_BASE_BIN:-}
COPY_PROXY=${COPY_PROXY_BIN:-$ROOT/target/release/examples/copy_proxy}
PASSWORD=bench-pw
export PGPASSWORD=$PASSWORD
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOST PGPORT PGUSER PGDATABASE

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

if has_target pgtrail && [[ ! -x "$PGTRAIL" ]]; then
    svc_die "$PGTRAIL not found: run 'cargo build --release' first (or TARGETS='direct pgbouncer')"
fi
if has_target base && [[ ! -x "$PGTRAIL_BASE" ]]; then
    svc_die "target base needs PGTRAIL_BASE_BIN, an executable pgtrail (got '$PGTRAIL_BASE')"
fi
if has_target base && [[ "$WITH_CLICKHOUSE" == 1 ]]; then
    svc_die "target base audits to a JSON Lines file only (two pgtrails cannot share one spool)"
fi
if has_target copy && [[ ! -x "$COPY_PROXY" ]]; then
    svc_die "$COPY_PROXY not found: run 'cargo build --release --example copy_proxy' first (or leave 'copy' out of TARGETS)"
fi
if has_target pgbouncer && ! command -v pgbouncer >/dev/null 2>&1; then
    svc_die "pgbouncer not installed (scripts/install-deps.sh)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-e2e.XXXXXX")
chmod 755 "$TMP" # the PostgreSQL/PgBouncer user must traverse it when we run as root
if [[ "$SCRIPT" == commented ]]; then
    cat >"$TMP/commented.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid /*application='bench',end_user='alice%40example.com',request_id='r-42',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/;
EOF
    PGBENCH_SCRIPT="--file=$TMP/commented.sql"
fi
PGTRAIL_PID=
BASE_PID=
NOCLAIMS_PID=
CDC_PID=
LAG_PID=
COPY_PID=
PG_DIR=
BOUNCER_PID_FILE=$TMP/pgbouncer/pgbouncer.pid
cleanup() {
    trap - INT TERM EXIT
    set +e
    svc_stop "$PGTRAIL_PID" 5
    svc_stop "$BASE_PID" 5
    svc_stop "$NOCLAIMS_PID" 5
    svc_stop "$CDC_PID" 5
    [[ -n "$LAG_PID" ]] && kill "$LAG_PID" 2>/dev/null
    if [[ -n "$COPY_PID" ]]; then
        kill -KILL "$COPY_PID" 2>/dev/null
        wait "$COPY_PID" 2>/dev/null
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
if has_target pgaudit; then
    [[ -f "$(svc_pg_bin)/../lib/pgaudit.so" ]] ||
        svc_die "pgAudit is not installed (postgresql-15-pgaudit; scripts/install-deps.sh) or leave 'pgaudit' out of TARGETS"
    export PG_EXTRA_CONF="shared_preload_libraries = 'pgaudit'"
fi
pg_start "$TMP/pg" "$(svc_random_port)" "$PASSWORD"
PSQL=("$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
PG_VERSION=$("${PSQL[@]}" -c 'SHOW server_version')
svc_log "PostgreSQL $PG_VERSION on port $PG_PORT; pgbench -i -s $SCALE"
pgbench_init "$SCALE"
"${PSQL[@]}" -c 'VACUUM ANALYZE' >/dev/null

declare -A PORT OPTIONS
PORT[direct]=$PG_PORT
# The in-server peers: direct connections with auditing on for their runs.
PORT[pgaudit]=$PG_PORT
OPTIONS[pgaudit]="-c pgaudit.log=all -c pgaudit.log_client=off"
PORT[logstmt]=$PG_PORT
OPTIONS[logstmt]="-c log_statement=all"
PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")

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
if [[ "${CATALOG:-0}" == 1 ]]; then
    cat >"$TMP/pgtrail-catalog.toml" <<EOF
[audit]
file = "$TMP/audit.jsonl"

[catalog]
url = "postgres://postgres:$PASSWORD@127.0.0.1:$PG_PORT/postgres"

[labels]
pci = ["public.pgbench_accounts.abalance"]
EOF
    chmod 600 "$TMP/pgtrail-catalog.toml" # it holds a password
    AUDIT_ARGS=(--config "$TMP/pgtrail-catalog.toml")
fi

# --- pgtrail, and a second build for an A/B ---------------------------------
# start_pgtrail BIN PORT LOG AUDIT_ARGS...: starts BIN in the background
# (sets STARTED_PID) and waits for its port.
start_pgtrail() {
    local bin=$1 port=$2 log=$3
    shift 3
    svc_log "starting $bin on port $port"
    # shellcheck disable=SC2086
    setsid "$bin" run --listen "127.0.0.1:$port" \
        --upstream "postgres://127.0.0.1:$PG_PORT" \
        --auth passthrough \
        "$@" ${PGTRAIL_EXTRA_ARGS:-} \
        </dev/null >"$log" 2>&1 &
    STARTED_PID=$!
    svc_wait_port "$port" "$STARTED_PID" "$bin" "$log"
}

# The cdc target runs only for its own runs: the other targets' writes are
# then never decoded while they are measured (a consumer running beside
# them would tax their runs with the decoding), and each cdc run starts at
# the end of the WAL (the slot advanced past the other targets' writes) and
# ends once the consumer has confirmed everything its run wrote, so its
# CPU and the server's include all of its run's decoding and nothing else.
cdc_up() {
    "${PSQL[@]}" -c "SELECT pg_replication_slot_advance('pgtrail_bench', pg_current_wal_lsn())" >/dev/null
    start_pgtrail "$PGTRAIL" "${PORT[cdc]}" "$TMP/pgtrail-cdc.log.$((++CDC_STARTS))" --config "$TMP/pgtrail-cdc.toml" --admin-listen "127.0.0.1:$CDC_ADMIN_PORT"
    CDC_PID=$STARTED_PID
    [[ ${CDC_CONSUME:-true} == true ]] || return 0
    slot_until "active" 10 ||
        svc_die "the cdc target's consumer did not take slot pgtrail_bench (log: $TMP/pgtrail-cdc.log.$CDC_STARTS)"
}
# Waits (up to 120 s) until the slot confirmed the WAL written so far; sets
# CDC_WAITED to the seconds it took.
cdc_caught_up() {
    local end
    end=$("${PSQL[@]}" -c "SELECT pg_current_wal_lsn()")
    slot_until "confirmed_flush_lsn >= '$end'" 120 ||
        svc_log "the cdc target's consumer did not catch up with $end in 120 s"
    CDC_WAITED=$SLOT_WAITED
}
# Asks every 0.1 s, for at most $2 seconds, whether the bench's slot
# satisfies the condition $1; sets SLOT_WAITED to the seconds it took.
slot_until() {
    local condition=$1 seconds=$2 tenths
    for ((tenths = 0; tenths <= seconds * 10; tenths++)); do
        SLOT_WAITED=$((tenths / 10)).$((tenths % 10))
        [[ $("${PSQL[@]}" -c "SELECT $condition FROM pg_replication_slots WHERE slot_name = 'pgtrail_bench'") == t ]] && return 0
        sleep 0.1
    done
    return 1
}
cdc_down() {
    svc_stop "$CDC_PID" 5
    CDC_PID=
}
CDC_STARTS=0

if has_target pgtrail; then
    PORT[pgtrail]=$(svc_free_port "$(svc_random_port)" "$PG_PORT")
    start_pgtrail "$PGTRAIL" "${PORT[pgtrail]}" "$TMP/pgtrail.log" "${AUDIT_ARGS[@]}"
    PGTRAIL_PID=$STARTED_PID
fi
if has_target base; then
    PORT[base]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-}")
    base_args=("${AUDIT_ARGS[@]}")
    [[ "${base_args[0]}" == --audit-file || "${CATALOG:-0}" == 1 ]] &&
        base_args=(--audit-file "$TMP/audit-base.jsonl")
    start_pgtrail "$PGTRAIL_BASE" "${PORT[base]}" "$TMP/pgtrail-base.log" "${base_args[@]}"
    BASE_PID=$STARTED_PID
fi

if has_target noclaims; then
    PORT[noclaims]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-} ${PORT[base]:-} ${PORT[noclaims]:-}")
    printf '[audit]\nfile = "%s"\n\n[identity]\nclaims = false\n' "$TMP/audit-noclaims.jsonl" >"$TMP/pgtrail-noclaims.toml"
    start_pgtrail "$PGTRAIL" "${PORT[noclaims]}" "$TMP/pgtrail-noclaims.log" --config "$TMP/pgtrail-noclaims.toml"
    NOCLAIMS_PID=$STARTED_PID
fi

if has_target cdc; then
    PORT[cdc]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-} ${PORT[base]:-} ${PORT[noclaims]:-}")
    "${PSQL[@]}" -c 'CREATE PUBLICATION pgtrail_bench FOR ALL TABLES' >/dev/null
    "${PSQL[@]}" -c "SELECT pg_create_logical_replication_slot('pgtrail_bench', 'pgoutput')" >/dev/null
    cat >"$TMP/pgtrail-cdc.toml" <<EOF
[audit]
file = "$TMP/audit-cdc.jsonl"

[cdc]
enabled = true
user = "postgres"
password = "$PASSWORD"
database = "postgres"
slot = "pgtrail_bench"
publication = "pgtrail_bench"
consume = ${CDC_CONSUME:-true}
attribution = "${CDC_ATTRIBUTION:-statement}"
EOF
    chmod 600 "$TMP/pgtrail-cdc.toml" # it holds a password
    CDC_ADMIN_PORT=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-} ${PORT[base]:-} ${PORT[noclaims]:-} ${PORT[cdc]}")
    start_pgtrail "$PGTRAIL" "${PORT[cdc]}" "$TMP/pgtrail-cdc.log" --config "$TMP/pgtrail-cdc.toml" --admin-listen "127.0.0.1:$CDC_ADMIN_PORT"
    CDC_PID=$STARTED_PID
    # The lag once a second (appended, as the runs' start and stop lines
    # are): the slot's (the server's WAL beyond its confirmed_flush_lsn,
    # which moves at each status update, once a second), and pgtrail's own
    # (pgtrail_cdc_slot_lag_bytes and _seconds: what the server has sent
    # that is not durable yet, and the age of the last durable commit).
    : >"$TMP/slot_lag"
    # A query or scrape that fails (pgtrail restarting between runs, a
    # psql that times out under load) skips a sample: under `set -e` it
    # would end the sampler for the rest of the bench.
    (
        while sleep 1; do
            slot=$("${PSQL[@]}" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'pgtrail_bench' AND active" 2>/dev/null) || continue
            [[ -n "$slot" ]] || continue
            own=$(curl -s --max-time 1 "http://127.0.0.1:$CDC_ADMIN_PORT/metrics" |
                awk '/^pgtrail_cdc_slot_lag_bytes / { b = $2 } /^pgtrail_cdc_slot_lag_seconds / { s = $2 } END { print b + 0, s + 0 }') || continue
            echo "$slot $own"
        done
    ) >>"$TMP/slot_lag" &
    LAG_PID=$!
fi

# --- copy proxy --------------------------------------------------------------
if has_target copy; then
    PORT[copy]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-} ${PORT[base]:-} ${PORT[noclaims]:-}")
    svc_log "starting copy_proxy on port ${PORT[copy]}"
    setsid "$COPY_PROXY" "127.0.0.1:${PORT[copy]}" "127.0.0.1:$PG_PORT" </dev/null >"$TMP/copy_proxy.log" 2>&1 &
    COPY_PID=$!
    svc_wait_port "${PORT[copy]}" "$COPY_PID" copy_proxy
fi

# --- PgBouncer ---------------------------------------------------------------
if has_target pgbouncer; then
    PORT[pgbouncer]=$(svc_free_port "$(svc_random_port)" "$PG_PORT ${PORT[pgtrail]:-} ${PORT[base]:-} ${PORT[noclaims]:-} ${PORT[copy]:-}")
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
has_target cdc && cdc_down
declare -A CATCHUP_OF

# --- runs --------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$TMP/logs" "$TMP/lat"

# Percentile $2 (0-100) of the latencies (microseconds, one per line) in
# file $1, in ms.
percentile_ms() {
    sort -n "$1" | awk -v q="$2" '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        i = int(NR * q / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
        printf "%.3f", v[i] / 1000 }'
}

# Median of the numbers in $1.
median() {
    tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print 0; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run_pgbench() { # target mode clients -> sets TPS XACTS; appends latencies
    local target=$1 mode=$2 clients=$3 jobs prefix out
    jobs=$((clients < 2 ? clients : 2))
    prefix="$TMP/logs/$mode-$clients-$target"
    out=$(PGOPTIONS="${OPTIONS[$target]:-}" "$PG_BIN/pgbench" -n "$PGBENCH_SCRIPT" -M "$mode" -c "$clients" -j "$jobs" -T "$DURATION" \
        --log --log-prefix="$prefix" \
        -h 127.0.0.1 -p "${PORT[$target]}" -U postgres postgres 2>&1) ||
        {
            printf '%s\n' "$out" >&2
            svc_die "pgbench failed against $target"
        }
    printf '%s\n' "$out" >>"$prefix.out"
    TPS=$(printf '%s\n' "$out" | awk '/^tps = / {print $3; exit}')
    XACTS=$(printf '%s\n' "$out" | awk -F': ' '/^number of transactions actually processed/ {split($2, a, "/"); print a[1]; exit}')
    cat "$prefix".[0-9]* 2>/dev/null | awk '{print $3}' >>"$TMP/lat/$mode-$clients-$target"
    rm -f "$prefix".[0-9]* # the per-transaction logs are large
}

proxy_pid() {
    case $1 in
    pgtrail) echo "$PGTRAIL_PID" ;;
    base) echo "$BASE_PID" ;;
    noclaims) echo "$NOCLAIMS_PID" ;;
    cdc) echo "$CDC_PID" ;;
    copy) echo "$COPY_PID" ;;
    pgbouncer) cat "$BOUNCER_PID_FILE" 2>/dev/null || true ;;
    esac
}

svc_log "warm-up (direct, 2 s)"
"$PG_BIN/pgbench" -n -S -c 2 -j 2 -T 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >/dev/null 2>&1 || true

declare -A TPS_OF TICKS_OF XACTS_OF PG_TICKS_OF
for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do
        for clients in $CLIENTS; do
            for target in $TARGETS; do
                key=$mode-$clients-$target
                svc_log "round $round/$ROUNDS: pgbench $PGBENCH_SCRIPT -M $mode -c $clients -T $DURATION -> $target"
                [[ $target == cdc ]] && cdc_up
                pid=$(proxy_pid "$target")
                before=0
                [[ -n "$pid" ]] && before=$(svc_cpu_ticks "$pid")
                pg_before=$(svc_tree_cpu_ticks "$PG_PID")
                [[ $target == cdc ]] && echo start >>"$TMP/slot_lag"
                run_pgbench "$target" "$mode" "$clients"
                [[ $target == cdc ]] && echo stop >>"$TMP/slot_lag"
                if [[ $target == cdc && ${CDC_CONSUME:-true} == true ]]; then
                    cdc_caught_up
                    CATCHUP_OF[$key]="${CATCHUP_OF[$key]:-} $CDC_WAITED"
                fi
                sleep 0.2 # the postmaster reaps the run's backends
                PG_TICKS_OF[$key]=$((${PG_TICKS_OF[$key]:-0} + $(svc_tree_cpu_ticks "$PG_PID") - pg_before))
                XACTS_OF[$key]=$((${XACTS_OF[$key]:-0} + XACTS * STMTS_PER_XACT))
                TPS_OF[$key]="${TPS_OF[$key]:-} $TPS"
                if [[ -n "$pid" ]]; then
                    after=$(svc_cpu_ticks "$pid")
                    kill -0 "$pid" 2>/dev/null || svc_die "$target died"
                    TICKS_OF[$key]=$((${TICKS_OF[$key]:-0} + after - before))
                fi
                [[ $target == cdc ]] && cdc_down
            done
        done
    done
done

# --- report ------------------------------------------------------------------
echo
echo "pgbench $PGBENCH_SCRIPT, scale $SCALE, ${DURATION}s per run, median of $ROUNDS rounds, PostgreSQL $PG_VERSION, $(nproc) CPUs$([[ "$WITH_CLICKHOUSE" == 1 ]] && echo ", pgtrail auditing to ClickHouse through a spool, durability $DURABILITY")"
printf '%-9s %7s  %-9s %11s %9s %9s %9s %9s %12s\n' mode clients target tps "avg ms" "p50 ms" "p99 ms" "vs direct" "p50 added us"
[[ -n "${RESULTS_CSV:-}" ]] && echo "mode,clients,target,tps,avg_latency_ms,p50_ms,p99_ms,ratio_to_direct,p50_added_us" >"$RESULTS_CSV"
for mode in $MODES; do
    for clients in $CLIENTS; do
        direct_tps=$(median "${TPS_OF[$mode-$clients-direct]:-}")
        direct_p50=
        has_target direct && direct_p50=$(percentile_ms "$TMP/lat/$mode-$clients-direct" 50)
        for target in $TARGETS; do
            key=$mode-$clients-$target
            tps=$(median "${TPS_OF[$key]}")
            lat=$(awk -v t="$tps" -v c="$clients" 'BEGIN { if (t > 0) printf "%.3f", c * 1000 / t; else print "nan" }')
            p50=$(percentile_ms "$TMP/lat/$key" 50)
            p99=$(percentile_ms "$TMP/lat/$key" 99)
            ratio=$(awk -v t="$tps" -v d="$direct_tps" 'BEGIN { if (d > 0) printf "%.3f", t / d; else print "-" }')
            added=-
            if [[ -n "$direct_p50" && "$target" != direct ]]; then
                added=$(awk -v p="$p50" -v d="$direct_p50" 'BEGIN { printf "%.0f", (p - d) * 1000 }')
            fi
            printf '%-9s %7s  %-9s %11.1f %9s %9s %9s %9s %12s\n' "$mode" "$clients" "$target" "$tps" "$lat" "$p50" "$p99" "$ratio" "$added"
            [[ -n "${RESULTS_CSV:-}" ]] && echo "$mode,$clients,$target,$tps,$lat,$p50,$p99,$ratio,$added" >>"$RESULTS_CSV"
        done
    done
done

echo
echo "CPU per statement in microseconds (utime+stime), all rounds: the proxy's (all threads), the PostgreSQL"
echo "server's (postmaster and backends), and both together beyond what the server spends for direct:"
printf '%-9s %7s  %-9s %12s %10s %10s %14s\n' mode clients target statements "proxy us" "server us" "beyond direct"
us_per() { awk -v t="$1" -v x="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (x > 0 ? t / hz * 1e6 / x : 0) }'; }
for mode in $MODES; do
    for clients in $CLIENTS; do
        direct_server=
        if [[ -n "${XACTS_OF[$mode-$clients-direct]:-}" ]]; then
            direct_server=$(us_per "${PG_TICKS_OF[$mode-$clients-direct]}" "${XACTS_OF[$mode-$clients-direct]}")
        fi
        for target in $TARGETS; do
            key=$mode-$clients-$target
            [[ -n "${XACTS_OF[$key]:-}" ]] || continue
            proxy=$(us_per "${TICKS_OF[$key]:-0}" "${XACTS_OF[$key]}")
            server=$(us_per "${PG_TICKS_OF[$key]}" "${XACTS_OF[$key]}")
            beyond=-
            [[ -n "$direct_server" ]] && beyond=$(awk -v p="$proxy" -v s="$server" -v d="$direct_server" 'BEGIN { printf "%.2f", p + s - d }')
            printf '%-9s %7s  %-9s %12d %10s %10s %14s\n' "$mode" "$clients" "$target" "${XACTS_OF[$key]}" "$proxy" "$server" "$beyond"
        done
    done
done
if has_target cdc && [[ ${CDC_CONSUME:-true} == true ]]; then
    # What the consumer wrote, and how far behind the slot was while the
    # cdc runs went on (the consumer was stopped between them).
    changes=$(cat "$TMP"/audit-cdc.jsonl* | grep -c '"record":"changes"' || true)
    attributed=$(cat "$TMP"/audit-cdc.jsonl* | grep '"record":"changes"' | grep -vc '"attribution":"none"' || true)
    echo
    echo "cdc: $changes changes records, $attributed attributed to a pgtrail session"
    awk '$1 == "start" { on = 1; next } $1 == "stop" { on = 0; next }
         on && NF == 3 { n++; if ($1 > slot) slot = $1; if ($2 > own) own = $2; if ($3 > sec) sec = $3; sum += $3 }
         END { printf "cdc: lag sampled each second during the cdc runs (%d samples): the slot'"'"'s at most %.1f KiB; pgtrail'"'"'s at most %.1f KiB and %.3f s (mean %.3f s)\n", n, slot / 1024, own / 1024, sec, (n ? sum / n : 0) }' "$TMP/slot_lag"
    for key in "${!CATCHUP_OF[@]}"; do
        echo "cdc: $key: everything confirmed $(median "${CATCHUP_OF[$key]}") s (median) after the run's end"
    done | sort
fi
if [[ -f "$TMP/audit.jsonl" ]]; then
    # audit.jsonl.<time> are the files rotated at audit.file_rotate_bytes.
    echo "audit records written to the JSON Lines files: $(cat "$TMP"/audit.jsonl* | wc -l)"
fi
