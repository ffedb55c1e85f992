#!/usr/bin/env bash
# How fast the web console's pages render on a large trail: N synthetic
# statement records (default 5,000,000, made inside ClickHouse with
# INSERT ... SELECT FROM numbers(N)) spread over 30 days, 50 people and
# N/50 sessions, with session events, failed logins, DDL and privilege
# changes among them; then `pgtrail console` is started and each page is
# fetched with curl (once to warm, then RUNS times) as a logged-in auditor.
# Prints the median and the slowest time per page. Starts a throw-away
# ClickHouse (Debian's clickhouse-server) unless CH_URL names one.
#
#   bash benches/console_speed.sh                   # release build
#   N=1000000 RUNS=3 bash benches/console_speed.sh
#   PGTRAIL_BIN=target/debug/pgtrail bash benches/console_speed.sh
#   KEEP_CH=1 ... then CH_URL=http://127.0.0.1:PORT SKIP_LOAD=1 ...   # time again
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=console-speed
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
N=${N:-5000000}
RUNS=${RUNS:-5}
DB=${DB:-console_bench}
PGTRAIL=${PGTRAIL_BIN:-}
if [[ -z "$PGTRAIL" ]]; then
    cargo build --release --quiet --bin pgtrail
    PGTRAIL=target/release/pgtrail
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtrail-console.XXXXXX")
CONSOLE_PID=
cleanup() {
    set +e
    [[ -n "$CONSOLE_PID" ]] && kill "$CONSOLE_PID" 2>/dev/null && wait "$CONSOLE_PID" 2>/dev/null
    [[ -z "${KEEP_CH:-}" ]] && ch_stop
    svc_remove_tmp "$TMP"
}
trap cleanup EXIT
if [[ -z "${CH_URL:-}" ]]; then
    ch_start "$TMP/ch" "$(svc_random_port)"
    CH_URL="http://127.0.0.1:$CH_HTTP_PORT"
fi
q() { curl -sS --fail-with-body "$CH_URL/" --data-binary "$1"; }
VERSION=$(q 'SELECT version()')
MAJOR=${VERSION%%.*}
if ((MAJOR >= 20)); then
    TIME='fromUnixTimestamp64Micro(toInt64(t))'
else
    TIME='t'
fi
NOW_US=$(($(date +%s) * 1000000))
if [[ "${SKIP_LOAD:-0}" == 1 ]]; then
    # Time the pages on what an earlier run loaded (CH_URL, KEEP_CH=1),
    # once ClickHouse has merged it.
    svc_log "reusing $DB: $(q "SELECT count() FROM $DB.statements") statements"
else
svc_log "ClickHouse $VERSION at $CH_URL; loading $N statements into $DB"
q "DROP DATABASE IF EXISTS $DB" >/dev/null
"$PGTRAIL" schema --server-version "$(echo "$VERSION" | cut -d. -f1,2)" \
    | sed "s/\`pgtrail\`/\`$DB\`/g; s/ pgtrail\./ $DB./g" >"$TMP/schema.sql"
python3 - "$TMP/schema.sql" "$CH_URL" <<'PY'
import sys, urllib.request
sql = "\n".join(l for l in open(sys.argv[1]).read().splitlines() if not l.startswith("--"))
for st in [s.strip() for s in sql.split(";\n") if s.strip()]:
    urllib.request.urlopen(urllib.request.Request(sys.argv[2] + "/", data=st.encode()))
PY
# One statement every 30 days / N, newest now; 50 statements per session.
STEP=$((30 * 86400 * 1000000 / N))
s0=$(date +%s.%N)
q "INSERT INTO $DB.statements (event_id, instance_id, seq, event_time, duration_us, session_id, \`user\`, db_role, \`database\`, client_addr, application_name, protocol, \`statement\`, fingerprint, normalized, kind, class, crud, audit_class, objects_read, objects_written, \`rows\`, success, sqlstate, error_message, txn_status, transaction_id)
SELECT generateUUIDv4(), 'bench-1', number + 1, $TIME, 100 + number % 5000,
    concat('sess-', toString(intDiv(number, 50))), concat('user', toString(intDiv(number, 50) % 50)), 'app', 'shop',
    concat('10.0.', toString(intDiv(number, 50) % 50), '.1'), 'billing', 'simple',
    multiIf(number % 1000 = 7, 'GRANT SELECT ON orders TO auditor', number % 1000 = 8, 'ALTER TABLE orders ADD COLUMN note text', number % 10 = 1, concat('UPDATE orders SET qty = qty + 1 WHERE id = ', toString(number % 100000)), concat('SELECT * FROM orders WHERE id = ', toString(number % 100000))),
    multiIf(number % 1000 = 7, 11, number % 1000 = 8, 12, number % 10 = 1, 13, 14),
    multiIf(number % 1000 = 7, 'GRANT SELECT ON orders TO auditor', number % 1000 = 8, 'ALTER TABLE orders ADD COLUMN note text', number % 10 = 1, 'UPDATE orders SET qty = qty + \$1 WHERE id = \$2', 'SELECT * FROM orders WHERE id = \$1'),
    multiIf(number % 1000 = 7, 'grant', number % 1000 = 8, 'alter_table', number % 10 = 1, 'update', 'select'),
    multiIf(number % 1000 = 7, 'dcl', number % 1000 = 8, 'ddl', number % 10 = 1, 'write', 'read'),
    if(number % 10 = 1, 'U', 'R'), multiIf(number % 1000 = 7, 'ROLE', number % 1000 = 8, 'DDL', number % 10 = 1, 'WRITE', 'READ'),
    if(number % 10 = 1, emptyArrayString(), ['public.orders']), if(number % 10 = 1, ['public.orders'], emptyArrayString()),
    1, if(number % 97 = 0, 0, 1), if(number % 97 = 0, '42P01', ''), if(number % 97 = 0, 'relation does not exist', ''), 'I',
    generateUUIDv4()
FROM (SELECT number, toInt64($NOW_US) - toInt64(number) * $STEP AS t FROM numbers($N))" >/dev/null
# Each session: connect, auth_ok, disconnect; one in 100 a failed login.
q "INSERT INTO $DB.sessions (event_id, instance_id, seq, event_time, event_type, session_id, \`user\`, db_role, \`database\`, client_addr, application_name, auth_method, reason, statements, duration_us)
SELECT generateUUIDv4(), 'bench-1', $N + 1 + number, $TIME, arrayElement(['connect', 'auth_ok', 'disconnect'], (number % 3) + 1),
    concat('sess-', toString(intDiv(number, 3))), concat('user', toString(intDiv(number, 3) % 50)), 'app', 'shop',
    concat('10.0.', toString(intDiv(number, 3) % 50), '.1'), 'billing', 'scram-sha-256', '', if(number % 3 = 2, 50, 0), 0
FROM (SELECT number, toInt64($NOW_US) - toInt64(intDiv(number, 3) * 50 + if(number % 3 = 2, 0, 49)) * $STEP AS t FROM numbers(intDiv($N, 50) * 3))" >/dev/null
q "INSERT INTO $DB.sessions (event_id, instance_id, seq, event_time, event_type, session_id, \`user\`, db_role, \`database\`, client_addr, application_name, auth_method, reason)
SELECT generateUUIDv4(), 'bench-1', $N * 2 + number, $TIME, 'auth_failed', concat('fail-', toString(number)), concat('user', toString(number % 50)), '', 'shop', '10.9.9.9', '', 'scram-sha-256', 'password authentication failed'
FROM (SELECT number, toInt64($NOW_US) - toInt64(number) * $STEP * 100 AS t FROM numbers(intDiv($N, 5000)))" >/dev/null
s1=$(date +%s.%N)
loaded=$(q "SELECT count() FROM $DB.statements")
sessions=$(q "SELECT count() FROM $DB.sessions")
svc_log "loaded $loaded statements, $sessions session events in $(python3 -c "print(round($s1-$s0, 1))") s"
fi

"$PGTRAIL" console user add bench --role auditor --users "$TMP/users.toml" <<<"bench-password" >/dev/null
PORT=$(svc_free_port 18080)
"$PGTRAIL" console --clickhouse-url "$CH_URL" --database "$DB" --users "$TMP/users.toml" \
    --listen "127.0.0.1:$PORT" >"$TMP/console.log" 2>&1 &
CONSOLE_PID=$!
svc_wait_port "$PORT" "$CONSOLE_PID" "pgtrail console" "$TMP/console.log"
URL="http://127.0.0.1:$PORT"
JAR=$TMP/cookies
form=$(curl -sS -c "$JAR" "$URL/login")
csrf=$(echo "$form" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
curl -sS -b "$JAR" -c "$JAR" -o /dev/null -w '' "$URL/login" \
    --data "csrf=$csrf&next=/&username=bench&password=bench-password"

user=user7
session=$(q "SELECT session_id FROM $DB.sessions WHERE \`user\` = '$user' AND event_type = 'disconnect' ORDER BY event_time DESC LIMIT 1")
stmt=$(q "SELECT concat('instance=', instance_id, '&seq=', toString(seq), '&user=', \`user\`, '&t=', toString(toInt64(event_time))) FROM $DB.statements WHERE \`user\` = '$user' AND session_id = '$session' LIMIT 1")
if ((MAJOR >= 20)); then
    stmt=$(q "SELECT concat('instance=', instance_id, '&seq=', toString(seq), '&user=', \`user\`, '&t=', toString(toUnixTimestamp64Micro(event_time))) FROM $DB.statements WHERE \`user\` = '$user' AND session_id = '$session' LIMIT 1")
fi
PAGES=(
    "/"
    "/sessions"
    "/sessions?user=$user"
    "/session/$session"
    "/statements"
    "/statements?q=orders"
    "/statements?user=$user&kind=update"
    "/statements?table=orders&outcome=failed"
    "/statement?$stmt"
    "/table?name=orders"
    "/table?name=public.orders&key=id%3D5"
    "/person?name=$user"
    "/compliance/failed_logins"
    "/compliance/privilege_changes"
    "/compliance/ddl_changes"
    "/compliance/changes_outside_pgtrail"
    "/export/privilege_changes.csv"
    "/access"
)
printf '\n%-60s %6s %10s %10s\n' "page ($N statements, ClickHouse $VERSION)" status "median ms" "max ms"
for page in "${PAGES[@]}"; do
    status=$(curl -sS -b "$JAR" -o /dev/null -w '%{http_code}' "$URL$page")
    times=()
    for _ in $(seq 1 "$RUNS"); do
        times+=("$(curl -sS -b "$JAR" -o /dev/null -w '%{time_total}' "$URL$page")")
    done
    python3 - "$page" "$status" "${times[@]}" <<'PY'
import statistics, sys
page, status, times = sys.argv[1], sys.argv[2], [float(t) * 1000 for t in sys.argv[3:]]
print(f"{page[:60]:<60} {status:>6} {statistics.median(times):>10.0f} {max(times):>10.0f}")
PY
done
