#!/usr/bin/env bash
# How fast `pgtrail verify` reads a trail from ClickHouse: N chained
# statement records (examples/trail_gen.rs) loaded into a fresh database,
# then verified; prints records/s and the verifier's peak memory. Starts a
# throw-away ClickHouse (Debian's clickhouse-server) unless CH_URL names one.
#
#   N=1000000 bash benches/verify_speed.sh
#   N=10000000 SKIP_JSONL=1 bash benches/verify_speed.sh   # bounded memory
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
N=${N:-1000000}
DB=${DB:-verify_bench}
cargo build --release --quiet --example trail_gen --bin pgtrail
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-verify.XXXXXX")
rows=$TMP/rows.bin
cleanup() {
    set +e
    [[ -z "${KEEP_CH:-}" ]] && ch_stop
    svc_remove_tmp "$TMP"
}
trap cleanup EXIT
if [[ -z "${CH_URL:-}" ]]; then
    ch_start "$TMP/ch" "$(svc_random_port)"
    CH_URL="http://127.0.0.1:$CH_HTTP_PORT"
fi
target/release/examples/trail_gen "$N" >"$rows"
q() { curl -sS --fail-with-body "$CH_URL/" --data-binary "$1" >/dev/null; }
q "DROP DATABASE IF EXISTS $DB"
target/release/pgtrail schema --server-version "$(curl -sS "$CH_URL/" --data-binary 'SELECT version()' | cut -d. -f1,2)" \
    | sed "s/\`pgtrail\`/\`$DB\`/g; s/ pgtrail\./ $DB./g" >"$rows.sql"
# One statement per request: split the script on its terminating semicolons.
python3 - "$rows.sql" "$CH_URL" <<'PY'
import sys, urllib.request
sql = "\n".join(l for l in open(sys.argv[1]).read().splitlines() if not l.startswith("--"))
for st in [s.strip() for s in sql.split(";\n") if s.strip()]:
    urllib.request.urlopen(urllib.request.Request(sys.argv[2] + "/", data=st.encode()))
PY
rm -f "$rows.sql"
# Every column but 18.16's `event_date` (a DEFAULT): the rows' layout.
cols=$(curl -sS "$CH_URL/" --data-binary "SELECT arrayStringConcat(groupArray(concat('\`', name, '\`')), ',') FROM (SELECT name FROM system.columns WHERE database = '$DB' AND table = 'statements' AND name != 'event_date')")
curl -sS "$CH_URL/?query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "INSERT INTO $DB.statements ($cols) FORMAT RowBinary")" \
    -X POST -T "$rows"
loaded=$(curl -sS "$CH_URL/" --data-binary "SELECT count() FROM $DB.statements")
echo "loaded $loaded of $N records ($(du -h "$rows" | cut -f1) of RowBinary)"
# What the server alone takes to send the rows as verify asks for them
# (one chunk: every seq of the instance, sorted), for comparison.
scols=$(echo "$cols" | sed 's/`event_date`,\?//')
s0=$(date +%s.%N)
curl -sS "$CH_URL/" --data-binary "SELECT $scols FROM $DB.statements WHERE instance_id = 'verify-bench' ORDER BY seq FORMAT RowBinary" | wc -c >/dev/null
s1=$(date +%s.%N)
curl -sS "$CH_URL/" --data-binary "SELECT $scols FROM $DB.statements WHERE instance_id = 'verify-bench' FORMAT RowBinary" | wc -c >/dev/null
s2=$(date +%s.%N)
python3 -c "print(f'ClickHouse alone: {$N/($s1-$s0):,.0f} rows/s sorted by seq, {$N/($s2-$s1):,.0f} rows/s unsorted')"
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$rows.rss" target/release/pgtrail verify --clickhouse-url "$CH_URL" \
    --database "$DB" --instance verify-bench >"$rows.out" || true
end=$(date +%s.%N)
tail -3 "$rows.out"
python3 -c "import sys; n=$N; s=$end-$start; print(f'verify: {n} records in {s:.2f} s = {n/s:,.0f} records/s, peak RSS {int(open(\"$rows.rss\").read().split()[-1])//1024} MiB')"
rm -f "$rows.out" "$rows.rss"
# The same trail as a JSON Lines file (SKIP_JSONL=1: not; 1 KB a record).
[[ -n "${SKIP_JSONL:-}" ]] && exit 0
target/release/examples/trail_gen "$N" jsonl >"$TMP/audit.jsonl"
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$rows.rss" target/release/pgtrail verify --jsonl "$TMP/audit.jsonl" >/dev/null || true
end=$(date +%s.%N)
python3 -c "n=$N; s=$end-$start; print(f'verify --jsonl: {n} records ({int($(stat -c %s "$TMP/audit.jsonl"))>>20} MiB) in {s:.2f} s = {n/s:,.0f} records/s, peak RSS {int(open(\"$rows.rss\").read().split()[-1])//1024} MiB')"
