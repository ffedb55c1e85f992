#!/usr/bin/env bash
# Checks the Grafana dashboards in deploy/grafana/dashboards/*.json:
#
# - every ClickHouse SQL query (panel targets and template variables) is
#   expanded by scripts/dashboard_queries.py the way the
#   grafana-clickhouse-datasource plugin does it ($__conditionalAll, then
#   ${var:singlequote}, then $__timeFilter, $__timeInterval, $__interval_s,
#   ...), once with the variables set to sample values and once set to
#   "All", and run by ../shared/tools/ch-modern-check against the modern
#   schema that `pgtrail schema` prints, after a few sample records in the
#   time range are inserted; a query fails when it errors or returns no
#   rows (the sample records give every panel something to show);
# - every Prometheus expression is checked by `promtool check rules` (when
#   promtool is installed).
#
# The same expanded queries run on the local ClickHouse 18.16 in the test
# suite (tests/integration/dashboards.rs).
#
# Exits non-zero, naming the dashboard and panel, when a query fails.
# Without ../shared/tools/ch-modern-check it prints SKIPPED and exits 0.
#
#   bash scripts/check-dashboards.sh [DASHBOARD.json ...]
#
# Environment: PGTRAIL_BIN (a built pgtrail binary; default `cargo run -q --`),
# CH_MODERN_CHECK (default ../shared/tools/ch-modern-check).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

checker=${CH_MODERN_CHECK:-../shared/tools/ch-modern-check}
if [[ ! -x $checker ]]; then
    echo "check-dashboards: SKIPPED ($checker not found)"
    exit 0
fi

if (($# > 0)); then
    dashboards=("$@")
else
    dashboards=(deploy/grafana/dashboards/*.json)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -n ${PGTRAIL_BIN:-} ]]; then
    "$PGTRAIL_BIN" schema >"$work/schema.sql"
else
    cargo run -q -- schema >"$work/schema.sql"
fi

# Sample records at now64(6): inside the default range (the last 6 hours
# and the next hour), matching the sample variable values below.
cat >"$work/rows.sql" <<'SQL'
INSERT INTO pgtrail.statements (event_id, instance_id, seq, event_time, duration_us, `user`, db_role,
  database, client_addr, session_id, statement, fingerprint, normalized, kind, class, audit_class,
  objects_read, objects_written, rows, success, sqlstate, error_message)
VALUES
  (generateUUIDv7(), 'instance-sample-1', 1, now64(6), 120, 'alice', 'app', 'app', '10.0.0.1', 's1',
   'SELECT * FROM t', 11, 'select * from t', 'select', 'read', 'READ', ['t'], [], 1, true, '', ''),
  (generateUUIDv7(), 'instance-sample-1', 2, now64(6), 900, 'alice', 'app', 'app', '10.0.0.1', 's1',
   'INSERT INTO t SELECT * FROM u', 12, 'insert into t select * from u', 'insert', 'write', 'WRITE',
   ['u'], ['t'], 3, true, '', ''),
  (generateUUIDv7(), 'instance-sample-1', 3, now64(6), 5000, 'bob', 'app', 'app', '10.0.0.2', 's2',
   'CREATE TABLE x (a int)', 13, 'create table x (a int)', 'create_table', 'ddl', 'DDL', [], ['x'],
   0, true, '', ''),
  (generateUUIDv7(), 'instance-sample-2', 1, now64(6), 50, 'bob', 'app', 'app', '10.0.0.2', 's3',
   'SELEC 1', 14, 'selec 1', 'unknown', 'unknown', 'MISC', [], [], 0, false, '42601', 'syntax error');
INSERT INTO pgtrail.sessions (event_id, instance_id, seq, event_time, event_type, session_id,
  `user`, database, client_addr, reason)
VALUES
  (generateUUIDv7(), 'instance-sample-1', 4, now64(6), 'auth_failed', 's4', 'mallory', 'app',
   '10.0.0.9', 'password authentication failed'),
  (generateUUIDv7(), 'instance-sample-1', 6, now64(6), 'connect', 's1', 'alice', 'app', '10.0.0.1', ''),
  (generateUUIDv7(), 'instance-sample-1', 7, now64(6), 'disconnect', 's1', 'alice', 'app', '10.0.0.1', '');
INSERT INTO pgtrail.gaps (event_id, instance_id, seq, event_time, missing_events, reason)
VALUES (generateUUIDv7(), 'instance-sample-1', 5, now64(6), 7, 'audit queue full (fail_open)');
SQL

python3 scripts/dashboard_queries.py --rules "$work/prom.yml" \
    --var instance=instance-sample-1,instance-sample-2 --var user=alice,bob,mallory --var database=app \
    "${dashboards[@]}" >"$work/sample.jsonl"
python3 scripts/dashboard_queries.py --all "${dashboards[@]}" >"$work/all.jsonl"

# One file for ch-modern-check: schema, sample records, then every query
# (marked /* qN */ to find its result) as `SELECT throwIf(count() = 0)`
# over it, so an empty result fails like an error.
python3 -c '
import json, sys
work = sys.argv[1]
sql = open(work + "/schema.sql").read() + "\n" + open(work + "/rows.sql").read() + "\n"
with open(work + "/queries.tsv", "w") as out:
    n = 0
    for mode in ("sample", "all"):
        for line in open(work + "/" + mode + ".jsonl"):
            q = json.loads(line)
            if q["kind"] == "prometheus":
                continue
            n += 1
            label = "%s: %s [%s]" % (q["dashboard"], q["label"], mode)
            out.write("q%d\t%s\t%s\n" % (n, label, q["error"] or ""))
            if not q["error"]:
                sql += "/* q%d */ SELECT throwIf(count() = 0) FROM (\n%s\n);\n" % (n, q["sql"])
    open(work + "/check.sql", "w").write(sql)
' "$work"
grep -h '"kind": "prometheus"' "$work/sample.jsonl" >"$work/prom.list" || true

"$checker" "$work/check.sql" >"$work/check.out" 2>&1 || true
failed=0
total=0
if grep -v '/\* q[0-9]* \*/' "$work/check.out" | grep -q '^FAIL'; then
    echo "FAIL schema or sample records on the modern engine:"
    grep -v '/\* q[0-9]* \*/' "$work/check.out" | grep -A1 '^FAIL' | sed 's/^/     /'
    failed=$((failed + 1))
fi
while IFS=$'\t' read -r id label error; do
    total=$((total + 1))
    if [[ -n $error ]]; then
        echo "FAIL $label: $error"
        failed=$((failed + 1))
    elif grep -q "^ok   #[0-9]* /\* $id \*/" "$work/check.out"; then
        echo "ok   $label"
    else
        echo "FAIL $label (an error, or no rows on the sample records)"
        grep -A1 "^FAIL #[0-9]* /\* $id \*/" "$work/check.out" | tail -n +2 | sed 's/^/     /' || true
        failed=$((failed + 1))
    fi
done <"$work/queries.tsv"

if [[ -s $work/prom.list ]]; then
    nprom=$(wc -l <"$work/prom.list")
    total=$((total + nprom))
    if command -v promtool >/dev/null 2>&1; then
        if out=$(promtool check rules "$work/prom.yml" 2>&1); then
            echo "ok   $nprom Prometheus expressions (promtool check rules)"
        else
            echo "FAIL Prometheus expressions:"
            printf '%s\n' "$out" | sed 's/^/     /'
            # Name the panels whose expression promtool cannot parse.
            i=0
            named=0
            while IFS= read -r line; do
                label=$(python3 -c 'import json,sys; q=json.loads(sys.argv[1]); print(q["dashboard"] + ": " + q["label"])' "$line")
                if printf '%s\n' "$out" | grep -q "\"dashboard:expr_$i\""; then
                    echo "FAIL $label"
                    named=$((named + 1))
                fi
                i=$((i + 1))
            done <"$work/prom.list"
            failed=$((failed + (named > 0 ? named : nprom)))
        fi
    else
        echo "skip $nprom Prometheus expressions (promtool not installed)"
    fi
fi

echo "check-dashboards: $((total - failed)) passed, $failed failed"
((failed == 0))
