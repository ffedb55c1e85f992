#!/usr/bin/env bash
# ClickHouse sink throughput: records per second from a generator into a
# local ClickHouse through the real ClickHouseSink (in memory and through the
# durable spool), and bytes per row on disk after OPTIMIZE ... FINAL.
#
#   cargo build --release --example sink_bench && bash benches/sink.sh
#   RECORDS=100000 bash benches/sink.sh        # smoke check
#
# Starts a throw-away ClickHouse (scripts/lib/services.sh: 18.16 where that
# is the installed clickhouse-server), runs examples/sink_bench.rs for each
# mode and batch size, prints a table and removes everything.
#
# Environment:
#   RECORDS=1000000        records per run
#   BATCH_ROWS="10000 50000"
#   MODES="memory spooled"
#   REPEAT=1               runs per combination (each is printed)
#   ALLOCATORS=system      also "jemalloc": run the example with
#                          LD_PRELOAD=$JEMALLOC (glibc malloc is a bottleneck
#                          when rows are allocated on one thread and freed
#                          on the sender thread)
#   JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#   SINK_BENCH_BIN=target/release/examples/sink_bench
#   SPOOL_PARENT=$TMPDIR   where the spool directory goes (its disk is measured)
#   RESULTS_OUT=           also copy the raw RESULT lines to this file
#   KEEP_TMP=0             1: keep the work directory (ClickHouse logs, output)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=sink-bench
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

RECORDS=${RECORDS:-1000000}
BATCH_ROWS=${BATCH_ROWS:-10000 50000}
MODES=${MODES:-memory spooled}
REPEAT=${REPEAT:-1}
ALLOCATORS=${ALLOCATORS:-system}
JEMALLOC=${JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
if [[ " $ALLOCATORS " == *" jemalloc "* ]] && [[ ! -f "$JEMALLOC" ]]; then
    svc_die "$JEMALLOC not found (apt-get install libjemalloc2, or set JEMALLOC)"
fi
BIN=${SINK_BENCH_BIN:-$ROOT/target/release/examples/sink_bench}
[[ -x "$BIN" ]] || svc_die "$BIN not found: run 'cargo build --release --example sink_bench' first"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-sink.XXXXXX")
cleanup() {
    trap - INT TERM EXIT
    set +e
    ch_stop
    svc_remove_tmp "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

svc_log "starting ClickHouse"
ch_start "$TMP/ch" "$(svc_random_port)"
URL="http://127.0.0.1:$CH_HTTP_PORT"
CH_VERSION=$(curl -fsS "$URL/?query=SELECT%20version()")
svc_log "ClickHouse $CH_VERSION on port $CH_HTTP_PORT"

RESULTS=()
for alloc in $ALLOCATORS; do
    for mode in $MODES; do
        for batch in $BATCH_ROWS; do
            for run in $(seq 1 "$REPEAT"); do
                svc_log "sink_bench --mode $mode --batch-rows $batch --records $RECORDS (run $run, malloc: $alloc)"
                preload=()
                [[ "$alloc" == jemalloc ]] && preload=(env "LD_PRELOAD=$JEMALLOC")
                spool_args=()
                if [[ "$mode" == spooled ]]; then
                    spool_dir="${SPOOL_PARENT:-$TMP}/spool-$batch-$run"
                    rm -rf "$spool_dir"
                    spool_args=(--spool-dir "$spool_dir")
                fi
                out=$("${preload[@]}" "$BIN" --url "$URL" --records "$RECORDS" --batch-rows "$batch" \
                    --mode "$mode" --database "pgtrail_bench" "${spool_args[@]}" 2>"$TMP/sink_bench.err") ||
                    {
                        cat "$TMP/sink_bench.err" >&2
                        svc_die "sink_bench failed"
                    }
                [[ "$mode" == spooled ]] && rm -rf "$spool_dir"
                line=$(printf '%s\n' "$out" | grep '^RESULT ') || svc_die "no RESULT line: $out"
                line="$line malloc=$alloc"
                printf '%s\n' "$line" >>"$TMP/results.txt"
                RESULTS+=("$line")
            done
        done
    done
done

# value of key $2 in RESULT line $1
field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }

echo
echo "ClickHouse sink, $RECORDS statement records per run, ClickHouse $CH_VERSION, $(nproc) CPUs"
printf '%-8s %-8s %10s %12s %10s %12s %14s %9s %10s %12s\n' \
    malloc mode batch_rows "records/s" "total s" "write rec/s" "rows in CH" "batches" "bytes/row" "uncomp/row"
for line in "${RESULTS[@]}"; do
    printf '%-8s %-8s %10s %12s %10s %12s %14s %9s %10s %12s\n' \
        "$(field "$line" malloc)" "$(field "$line" mode)" "$(field "$line" batch_rows)" "$(field "$line" records_per_s)" \
        "$(field "$line" total_s)" "$(field "$line" write_records_per_s)" \
        "$(field "$line" rows_after_optimize)" "$(field "$line" batches)" \
        "$(field "$line" bytes_per_row)" "$(field "$line" uncompressed_per_row)"
done
echo "(records/s: first write until SELECT count() shows every row; bytes/row: system.parts"
echo " sum(bytes_on_disk)/sum(rows) after OPTIMIZE TABLE statements FINAL; uncomp/row: system.columns)"
if [[ -n "${RESULTS_OUT:-}" ]]; then
    cp "$TMP/results.txt" "$RESULTS_OUT"
    echo "raw RESULT lines: $RESULTS_OUT"
fi
