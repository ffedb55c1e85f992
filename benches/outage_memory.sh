#!/usr/bin/env bash
# pgtrail's resident memory during a ClickHouse outage under steady load.
#
#   cargo build --release && bash benches/outage_memory.sh
#   DURATION=20 OUTAGE_START=5 OUTAGE_END=12 bash benches/outage_memory.sh   # smoke
#
# Starts its own PostgreSQL (pgbench data), ClickHouse and a release pgtrail
# auditing to ClickHouse through a durable spool (audit.spool_dir, like
# deploy/pgtrail.toml) with the admin listener on. Runs
# `pgbench -n -S -R $RATE -T $DURATION` through pgtrail, kills ClickHouse
# (SIGKILL) at OUTAGE_START seconds and starts it again on the same port and
# data at OUTAGE_END. Every second it samples pgtrail's VmRSS
# (/proc/PID/status), pgtrail_spool_bytes and the backlog (records written
# minus rows ClickHouse acknowledged) from /metrics. Afterwards it waits
# until the backlog is zero and compares the rows in ClickHouse with
# pgbench's transaction count (one statement per -S transaction).
#
# Environment:
#   DURATION=120 OUTAGE_START=30 OUTAGE_END=90 (seconds from pgbench start)
#   RATE=5000              pgbench -R (transactions per second, all clients)
#   CLIENTS=4              pgbench -c
#   SCALE=10               pgbench -i scale
#   PROTOCOL=simple        pgbench -M
#   DRAIN_TIMEOUT=300      seconds to wait for the backlog to drain at the end
#   PGTRAIL_BIN=target/release/pgtrail
#   SAMPLES_OUT=           also copy the per-second samples (TSV) to this file
#   KEEP_TMP=0             1: keep the work directory (logs, samples.tsv)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=outage
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

DURATION=${DURATION:-120}
OUTAGE_START=${OUTAGE_START:-30}
OUTAGE_END=${OUTAGE_END:-90}
RATE=${RATE:-5000}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
PROTOCOL=${PROTOCOL:-simple}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-300}
PGTRAIL=${PGTRAIL_BIN:-$ROOT/target/release/pgtrail}
PASSWORD=bench-pw
export PGPASSWORD=$PASSWORD
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOST PGPORT PGUSER PGDATABASE

((OUTAGE_START < OUTAGE_END && OUTAGE_END < DURATION)) ||
    svc_die "need OUTAGE_START < OUTAGE_END < DURATION (got $OUTAGE_START, $OUTAGE_END, $DURATION)"
[[ -x "$PGTRAIL" ]] || svc_die "$PGTRAIL not found: run 'cargo build --release' first"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-outage.XXXXXX")
chmod 755 "$TMP" # the PostgreSQL user must traverse it when we run as root
PGTRAIL_PID=
PG_DIR=
SAMPLER_PID=
PGBENCH_PID=
cleanup() {
    trap - INT TERM EXIT
    set +e
    for p in "$SAMPLER_PID" "$PGBENCH_PID"; do
        [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    svc_stop "$PGTRAIL_PID" 10
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
svc_log "PostgreSQL on port $PG_PORT; pgbench -i -s $SCALE"
pgbench_init "$SCALE"

# --- ClickHouse --------------------------------------------------------------
svc_log "starting ClickHouse"
ch_start "$TMP/ch" "$(svc_random_port)"
CH_PORT=$CH_HTTP_PORT
CH_URL="http://127.0.0.1:$CH_PORT"
ch_query() { curl -fsS --max-time 30 "$CH_URL/" --data-binary "$1"; }
svc_log "ClickHouse $(ch_query 'SELECT version()') on port $CH_PORT"

# --- pgtrail -----------------------------------------------------------------
PORT=$(svc_free_port "$(svc_random_port)" "$PG_PORT $CH_PORT $CH_TCP_PORT")
ADMIN_PORT=$(svc_free_port $((PORT + 1)) "$PG_PORT $CH_PORT $CH_TCP_PORT $PORT")
cat >"$TMP/pgtrail.toml" <<EOF
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"

[upstream]
url = "postgres://127.0.0.1:$PG_PORT"

[auth]
mode = "passthrough"

[audit]
clickhouse_url = "$CH_URL"
spool_dir = "$TMP/spool"
EOF
svc_log "starting pgtrail on port $PORT (admin $ADMIN_PORT)"
"$PGTRAIL" run --config "$TMP/pgtrail.toml" </dev/null >"$TMP/pgtrail.log" 2>&1 &
PGTRAIL_PID=$!
svc_wait_port "$PORT" "$PGTRAIL_PID" pgtrail "$TMP/pgtrail.log"
svc_wait_port "$ADMIN_PORT" "$PGTRAIL_PID" "pgtrail admin" "$TMP/pgtrail.log"
"$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c 'SELECT 1' >/dev/null ||
    svc_die "pgtrail does not answer"

metric() { # name -> value (0 when absent or unreachable)
    curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null |
        awk -v n="$1" '$1 == n {v = $2} END {printf "%.0f\n", v + 0}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Records spooled but not yet acknowledged by ClickHouse. (pgtrail_spool_bytes
# is not the backlog: it counts acknowledged records too until their whole
# segment, spool_segment_bytes = 64 MiB by default, has been sent.)
backlog() {
    curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null |
        awk '$1 == "pgtrail_audit_records_written_total" {w = $2}
             $1 == "pgtrail_clickhouse_rows_sent_total" {s = $2}
             END {printf "%.0f\n", w - s}'
}

# Rows ClickHouse already had before the load (the psql check above).
for _ in $(seq 1 100); do
    [[ $(backlog) == 0 ]] && break
    sleep 0.1
done
BASE_ROWS=$(ch_query 'SELECT count() FROM pgtrail.statements' 2>/dev/null || echo 0)
RSS_IDLE=$(rss_kb "$PGTRAIL_PID")

# --- run ---------------------------------------------------------------------
svc_log "pgbench -S -M $PROTOCOL -c $CLIENTS -R $RATE -T $DURATION; ClickHouse down from ${OUTAGE_START}s to ${OUTAGE_END}s"
SAMPLES=$TMP/samples.tsv
START=$(date +%s.%N)
"$PG_BIN/pgbench" -n -S -M "$PROTOCOL" -c "$CLIENTS" -j 2 -R "$RATE" -T "$DURATION" \
    -h 127.0.0.1 -p "$PORT" -U postgres postgres >"$TMP/pgbench.out" 2>&1 &
PGBENCH_PID=$!

(
    trap 'exit 0' TERM
    printf 't\trss_kb\tspool_bytes\tbacklog_records\toldest_unshipped_s\tch\n'
    while :; do
        t=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - s}')
        ch=up
        [[ -f "$TMP/ch-down" ]] && ch=down
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(rss_kb "$PGTRAIL_PID")" \
            "$(metric pgtrail_spool_bytes)" "$(backlog)" \
            "$(metric pgtrail_audit_oldest_unshipped_seconds)" "$ch"
        sleep 1
    done
) >"$SAMPLES" &
SAMPLER_PID=$!

sleep_until() { # seconds since START
    local left
    left=$(awk -v s="$START" -v n="$(date +%s.%N)" -v t="$1" 'BEGIN {d = s + t - n; printf "%.3f", (d > 0 ? d : 0)}')
    sleep "$left"
}

sleep_until "$OUTAGE_START"
svc_log "t=${OUTAGE_START}s: killing ClickHouse (SIGKILL)"
touch "$TMP/ch-down"
kill -KILL "$CH_PID"
wait "$CH_PID" 2>/dev/null || true
CH_PID=
sleep_until "$OUTAGE_END"
svc_log "t=${OUTAGE_END}s: starting ClickHouse again"
ch_start "$TMP/ch" "$CH_PORT"
[[ "$CH_HTTP_PORT" == "$CH_PORT" ]] || svc_die "ClickHouse came back on port $CH_HTTP_PORT, not $CH_PORT"
rm -f "$TMP/ch-down"

wait "$PGBENCH_PID" || {
    PGBENCH_PID=
    cat "$TMP/pgbench.out" >&2
    svc_die "pgbench failed"
}
PGBENCH_PID=
kill -0 "$PGTRAIL_PID" 2>/dev/null || svc_die "pgtrail died (log: $TMP/pgtrail.log)"
RSS_END=$(rss_kb "$PGTRAIL_PID")
svc_log "pgbench done; waiting until ClickHouse has acknowledged every record"
drained=0
for _ in $(seq 1 "$DRAIN_TIMEOUT"); do
    if [[ $(backlog) == 0 ]]; then
        drained=1
        break
    fi
    sleep 1
done
DRAIN_S=$(awk -v s="$START" -v n="$(date +%s.%N)" -v d="$DURATION" 'BEGIN {printf "%.0f", n - s - d}')
sleep 2
kill -TERM "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=

# --- report ------------------------------------------------------------------
out=$(cat "$TMP/pgbench.out")
XACTS=$(awk -F': ' '/^number of transactions actually processed/ {split($2, a, "/"); print a[1]; exit}' <<<"$out")
FAILED=$(awk -F': ' '/^number of failed transactions/ {split($2, a, " "); print a[1]; exit}' <<<"$out")
TPS=$(awk '/^tps = / {print $3; exit}' <<<"$out")
LAT=$(awk '/^latency average = / {print $4; exit}' <<<"$out")
LAG=$(awk '/^rate limit schedule lag: avg/ {print $6; exit}' <<<"$out")
ROWS=$(ch_query 'SELECT count() FROM pgtrail.statements')
SEQS=$(ch_query 'SELECT uniqExact(instance_id, seq) FROM pgtrail.statements')
BENCH_ROWS=$(ch_query "SELECT count() FROM pgtrail.statements WHERE statement LIKE 'SELECT abalance FROM pgbench_accounts%'")
SESSIONS=$(ch_query 'SELECT count() FROM pgtrail.sessions')
GAPS=$(ch_query 'SELECT count() FROM pgtrail.gaps')
DROPPED=$(metric pgtrail_audit_records_dropped_total)
FAILED_BATCHES=$(metric pgtrail_clickhouse_batches_failed_total)

echo
echo "pgtrail RSS during a ClickHouse outage: pgbench -S -M $PROTOCOL -c $CLIENTS -R $RATE -T $DURATION,"
echo "ClickHouse killed at ${OUTAGE_START}s, restarted at ${OUTAGE_END}s; spool in $TMP/spool; $(nproc) CPUs"
awk -F'\t' -v os="$OUTAGE_START" -v oe="$OUTAGE_END" -v d="$DURATION" -v idle="$RSS_IDLE" -v end="$RSS_END" '
    NR == 1 { next }
    $1 > d + 0.5 { next }
    {
        n++; r = $2 + 0; s = $3 + 0; b = $4 + 0; o = $5 + 0
        if (n == 1) { first = r; min = r; max = r }
        if (r < min) min = r
        if (r > max) { max = r; max_t = $1 }
        if (s > smax) { smax = s; smax_t = $1 }
        if (b > bmax) { bmax = b; bmax_t = $1 }
        if (o > omaxage) omaxage = o
        if ($1 < os) pre = r
        if ($1 >= os && $1 < oe && r > omax) omax = r
    }
    END {
        printf "RSS (MiB): idle before load %.1f, at start %.1f, min %.1f, max %.1f (t=%ss), before outage %.1f, max during outage %.1f, at end %.1f\n",
            idle / 1024, first / 1024, min / 1024, max / 1024, max_t, pre / 1024, omax / 1024, end / 1024
        printf "spool bytes at peak: %d (%.1f MiB, t=%ss; includes acknowledged records of segments not yet wholly sent)\n", smax, smax / 1048576, smax_t
        printf "backlog at peak (records written - rows ClickHouse acknowledged): %d (t=%ss); oldest unshipped record at most %ds old; %d samples\n", bmax, bmax_t, omaxage, n
    }' "$SAMPLES"
echo "pgbench: $XACTS transactions, ${FAILED:-0} failed, tps $TPS, latency avg $LAT ms, schedule lag avg ${LAG:-?} ms"
echo "ClickHouse statements rows: $ROWS total ($((ROWS - BASE_ROWS)) from the run, $BASE_ROWS before), distinct (instance_id, seq): $SEQS, pgbench SELECTs: $BENCH_ROWS"
echo "  -> pgbench SELECT rows - pgbench transactions = $((BENCH_ROWS - XACTS))"
echo "sessions rows: $SESSIONS, gaps rows: $GAPS, audit records dropped: $DROPPED, failed ClickHouse batches: $FAILED_BATCHES"
if [[ "$drained" == 1 ]]; then
    echo "backlog drained ${DRAIN_S}s after pgbench ended; spool bytes left (acknowledged, in the active segment): $(metric pgtrail_spool_bytes)"
else
    echo "backlog NOT drained ${DRAIN_TIMEOUT}s after pgbench ended ($(backlog) records)"
fi
if [[ -n "${SAMPLES_OUT:-}" ]]; then
    cp "$SAMPLES" "$SAMPLES_OUT"
    echo "per-second samples (t, rss_kb, spool_bytes, ch): $SAMPLES_OUT"
fi
