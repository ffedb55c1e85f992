#!/usr/bin/env bash
# Checks the Grafana dashboards in deploy/grafana/dashboards/*.json:
#
# - every ClickHouse SQL query (panel targets and template variables) is
#   expanded the way the grafana-clickhouse-datasource plugin does it
#   ($__timeFilter, $__timeInterval, $__conditionalAll, ${var:singlequote},
#   ...) into concrete SQL and run by ../shared/tools/ch-modern-check against
#   the modern schema that `pgtrail schema` prints, after a few sample rows
#   are inserted, so the query is parsed, analysed and executed;
# - every Prometheus expression is checked by `promtool check rules` (when
#   promtool is installed).
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

python3 - "$work" "${dashboards[@]}" <<'PY'
import json, os, re, sys, time

work, paths = sys.argv[1], sys.argv[2:]
NOW = int(time.time())
FROM, TO = NOW - 6 * 3600, NOW + 3600
INTERVAL_S = 60

def split_args(s):
    """Splits a macro's argument text at top-level commas."""
    args, depth, cur, quote = [], 0, "", None
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        cur += ch
    args.append(cur.strip())
    return args

def macro_call(sql, name):
    """Finds `$__name(` and returns (start, end, args) of the first call."""
    m = re.search(r"\$__" + name + r"\s*\(", sql)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(sql) and depth:
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        i += 1
    if depth:
        raise ValueError(f"unbalanced parentheses after $__{name}")
    return m.start(), i, split_args(sql[m.end():i - 1])

# Function macros of grafana-clickhouse-datasource, expanded as it does.
FUNCS = {
    "timeFilter": lambda a: f"{a[0]} >= toDateTime({FROM}) AND {a[0]} <= toDateTime({TO})",
    "timeFilter_ms": lambda a: f"{a[0]} >= fromUnixTimestamp64Milli({FROM * 1000}) AND {a[0]} <= fromUnixTimestamp64Milli({TO * 1000})",
    "dateFilter": lambda a: f"{a[0]} >= toDate({FROM}) AND {a[0]} <= toDate({TO})",
    "timeInterval": lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {INTERVAL_S} second)",
    "timeInterval_ms": lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {INTERVAL_S * 1000} millisecond)",
    # Checked with a value selected (the condition is kept), not "All" (1=1).
    "conditionalAll": lambda a: a[0],
}
PLAIN = {
    "fromTime_ms": f"fromUnixTimestamp64Milli({FROM * 1000})",
    "toTime_ms": f"fromUnixTimestamp64Milli({TO * 1000})",
    "fromTime": f"toDateTime({FROM})",
    "toTime": f"toDateTime({TO})",
    "interval_s": str(INTERVAL_S),
}

def expand(sql, variables):
    for name, fn in FUNCS.items():
        while True:
            call = macro_call(sql, name + r"(?![A-Za-z0-9_])")
            if not call:
                break
            start, end, args = call
            sql = sql[:start] + fn(args) + sql[end:]
    for name in sorted(PLAIN, key=len, reverse=True):
        sql = re.sub(r"\$__" + name + r"(?![A-Za-z0-9_])", PLAIN[name], sql)
    # Dashboard variables, with two sample values (multi-value).
    def var(m):
        name, fmt = m.group(1) or m.group(3), m.group(2)
        if name not in variables:
            raise ValueError(f"unknown variable or macro ${name}")
        values = [f"{name}-sample-1", f"{name}-sample-2"]
        if fmt in ("singlequote", "sqlstring"):
            return ",".join(f"'{v}'" for v in values)
        if fmt == "csv":
            return ",".join(values)
        if fmt in (None, "raw"):
            return values[0]
        raise ValueError(f"variable format :{fmt} not handled by this check")
    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", var, sql)
    return sql

SAMPLE_ROWS = """
INSERT INTO pgtrail.statements (event_id, instance_id, seq, event_time, `user`, db_role, database,
  client_addr, session_id, statement, kind, class, audit_class, objects_read, objects_written,
  rows, success, sqlstate, error_message)
VALUES
  (generateUUIDv7(), 'instance-sample-1', 1, now64(6), 'alice', 'app', 'app', '10.0.0.1', 's1',
   'SELECT * FROM t', 'select', 'read', 'READ', ['t'], [], 1, true, '', ''),
  (generateUUIDv7(), 'instance-sample-1', 2, now64(6), 'alice', 'app', 'app', '10.0.0.1', 's1',
   'INSERT INTO t SELECT * FROM u', 'insert', 'write', 'WRITE', ['u'], ['t'], 3, true, '', ''),
  (generateUUIDv7(), 'instance-sample-1', 3, now64(6), 'bob', 'app', 'app', '10.0.0.2', 's2',
   'CREATE TABLE x (a int)', 'create_table', 'ddl', 'DDL', [], ['x'], 0, true, '', ''),
  (generateUUIDv7(), 'instance-sample-2', 1, now64(6), 'bob', 'app', 'app', '10.0.0.2', 's3',
   'SELEC 1', 'unknown', 'unknown', 'MISC', [], [], 0, false, '42601', 'syntax error');
INSERT INTO pgtrail.sessions (event_id, instance_id, seq, event_time, event_type, session_id,
  `user`, client_addr, reason)
VALUES
  (generateUUIDv7(), 'instance-sample-1', 4, now64(6), 'auth_failed', 's4', 'mallory', '10.0.0.9',
   'password authentication failed'),
  (generateUUIDv7(), 'instance-sample-1', 6, now64(6), 'connect', 's5', 'alice', '10.0.0.1', '');
INSERT INTO pgtrail.gaps (event_id, instance_id, seq, event_time, missing_events, reason)
VALUES (generateUUIDv7(), 'instance-sample-1', 5, now64(6), 7, 'audit queue full (fail_open)');
"""

schema = open(os.path.join(work, "schema.sql")).read()
checks, prom = [], []
for path in paths:
    dash = json.load(open(path))
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    sources = []
    for v in variables.values():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("rawSql", q.get("query")) if isinstance(q, dict) else q
            sources.append((f"variable ${v['name']}", v.get("datasource") or {}, {"rawSql": q}))
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            ds = t.get("datasource") or p.get("datasource") or {}
            sources.append((f"panel {p.get('id')} \"{p.get('title')}\" ({t.get('refId', 'A')})", ds, t))
    for where, ds, t in sources:
        label = f"{os.path.basename(path)}: {where}"
        kind = ds.get("type", "") if isinstance(ds, dict) else ""
        if "prometheus" in kind:
            prom.append((label, t.get("expr", "")))
        elif "clickhouse" in kind or "rawSql" in t:
            checks.append((label, t.get("rawSql", ""), variables))
        else:
            print(f"FAIL {label}: datasource {ds!r} is neither ClickHouse nor Prometheus")
            sys.exit(1)

jobs = []
for i, (label, raw, variables) in enumerate(checks):
    if not raw.strip():
        jobs.append((label, None, "empty query"))
        continue
    try:
        sql = expand(raw, variables).strip().rstrip(";")
    except ValueError as e:
        jobs.append((label, None, str(e)))
        continue
    if ";" in sql:
        jobs.append((label, None, "more than one statement"))
        continue
    f = os.path.join(work, f"q{i}.sql")
    open(f, "w").write(schema + "\n" + SAMPLE_ROWS + "\n" + sql + ";\n")
    jobs.append((label, f, None))

with open(os.path.join(work, "sql.list"), "w") as out:
    for label, f, err in jobs:
        out.write(json.dumps({"label": label, "file": f, "error": err}) + "\n")

# Prometheus expressions as recording rules, for promtool check rules.
rules = ["groups:", "  - name: dashboard-expressions", "    rules:"]
for i, (label, expr) in enumerate(prom):
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?__\w+\}?", "5m", expr)
    rules += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(expr)}"]
with open(os.path.join(work, "prom.yml"), "w") as out:
    out.write("\n".join(rules) + "\n" if prom else "groups: []\n")
with open(os.path.join(work, "prom.list"), "w") as out:
    for label, expr in prom:
        out.write(json.dumps({"label": label, "expr": expr}) + "\n")
PY

failed=0
total=0
while IFS= read -r line; do
    total=$((total + 1))
    label=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["label"])' "$line")
    file=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["file"] or "")' "$line")
    error=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["error"] or "")' "$line")
    if [[ -n $error ]]; then
        echo "FAIL $label: $error"
        failed=$((failed + 1))
        continue
    fi
    if out=$("$checker" "$file" 2>&1); then
        echo "ok   $label"
    else
        echo "FAIL $label"
        printf '%s\n' "$out" | grep -A3 '^FAIL' | sed 's/^/     /' || printf '%s\n' "$out" | tail -5
        failed=$((failed + 1))
    fi
done <"$work/sql.list"

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
                label=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["label"])' "$line")
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
