#!/usr/bin/env bash
# How fast `pgtrail verify` reads a trail from ClickHouse: N chained
# statement records (examples/trail_gen.rs) loaded into a fresh database of
# the ClickHouse at CH_URL, then verified; prints records/s and the
# verifier's peak memory. Needs a running ClickHouse (the README's
# run command starts one; or set CH_URL).
#
#   N=1000000 CH_URL=http://127.0.0.1:8123 bash benches/verify_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
CH_URL=${CH_URL:-http://127.0.0.1:8123}
DB=${DB:-verify_bench}
cargo build --release --quiet --example trail_gen --bin pgtrail
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
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
curl -sS --fail-with-body "$CH_URL/?query=INSERT%20INTO%20$DB.statements%20FORMAT%20RowBinary" \
    --data-binary @"$rows" >/dev/null
echo "loaded $N records ($(du -h "$rows" | cut -f1) of RowBinary)"
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$rows.rss" target/release/pgtrail verify --clickhouse-url "$CH_URL" \
    --database "$DB" --instance verify-bench >"$rows.out" || true
end=$(date +%s.%N)
tail -3 "$rows.out"
python3 -c "import sys; n=$N; s=$end-$start; print(f'verify: {n} records in {s:.2f} s = {n/s:,.0f} records/s, peak RSS {int(open(\"$rows.rss\").read().split()[-1])//1024} MiB')"
rm -f "$rows.out" "$rows.rss"
