#!/usr/bin/env bash
# Try pgtrail locally in one command:
#
#   bash scripts/run-local.sh
#
# Installs the dependencies (scripts/install-deps.sh; needs root or sudo the
# first time), builds pgtrail in release mode, starts a throw-away PostgreSQL
# (./.pgtrail-local/pg, port 54320 unless busy, user postgres, password
# pgtrail) and a throw-away ClickHouse (./.pgtrail-local/ch, free ports), then
# runs pgtrail in the foreground on 127.0.0.1:6432 (next free port if busy),
# auditing to ClickHouse (through a spool) and to ./.pgtrail-local/audit.jsonl,
# with its metrics on 127.0.0.1:9187 (next free port if busy), and the web
# console (pgtrail console) on 127.0.0.1:8080 (next free port if busy) with a
# first auditor, admin, whose password it prints. The audit
# trail is hash-chained and its checkpoints signed with a key made on the
# first run (./.pgtrail-local/signing.key; `pgtrail verify` checks it).
# Ctrl-C stops everything. Data is kept between runs; delete ./.pgtrail-local
# to start afresh.
#
# Environment: PGTRAIL_LISTEN_PORT (6432), PGTRAIL_CONSOLE_PORT (8080),
# PGTRAIL_ADMIN_PORT (9187, the
# /metrics, /healthz and /readyz listener), PGTRAIL_PG_PORT (54320),
# SKIP_INSTALL=1 (do not run install-deps.sh), SKIP_BUILD=1,
# PGTRAIL_BIN (binary to run instead of target/release/pgtrail).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SVC_NAME=run-local
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

STATE="$ROOT/.pgtrail-local"
PASSWORD=pgtrail

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    bash "$ROOT/scripts/install-deps.sh"
fi
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    svc_log "cargo build --release"
    cargo build --release
fi
PGTRAIL="${PGTRAIL_BIN:-$ROOT/target/release/pgtrail}"
[[ -x "$PGTRAIL" ]] || svc_die "$PGTRAIL not found (build failed?)"

mkdir -p "$STATE"
PGTRAIL_PID=
CONSOLE_PID=
PG_DIR=
cleanup() {
    trap - INT TERM EXIT
    set +e
    if [[ -n "$CONSOLE_PID" ]] && kill -0 "$CONSOLE_PID" 2>/dev/null; then
        kill -INT "$CONSOLE_PID" 2>/dev/null
        wait "$CONSOLE_PID" 2>/dev/null
    fi
    if [[ -n "$PGTRAIL_PID" ]] && kill -0 "$PGTRAIL_PID" 2>/dev/null; then
        # Let pgtrail drain and flush its audit records before ClickHouse goes.
        # (A background job of a script starts with SIGINT ignored, so
        # escalate: INT, then TERM after 5 s, then KILL after 10 s.)
        for sig in INT TERM KILL; do
            kill -"$sig" "$PGTRAIL_PID" 2>/dev/null
            for _ in $(seq 1 50); do
                kill -0 "$PGTRAIL_PID" 2>/dev/null || break 2
                sleep 0.1
            done
        done
    fi
    [[ -n "$PGTRAIL_PID" ]] && wait "$PGTRAIL_PID" 2>/dev/null
    svc_log "stopping ClickHouse and PostgreSQL"
    ch_stop
    [[ -n "$PG_DIR" ]] && pg_stop "$PG_DIR" fast
    svc_log "stopped (data kept in $STATE)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

svc_log "starting PostgreSQL in $STATE/pg"
pg_start "$STATE/pg" "${PGTRAIL_PG_PORT:-54320}" "$PASSWORD"
svc_log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

svc_log "starting ClickHouse in $STATE/ch"
ch_start "$STATE/ch" 18123
CH_URL="http://127.0.0.1:$CH_HTTP_PORT"
CH_VERSION=$(curl -fsS "$CH_URL/?query=SELECT%20version()") || svc_die "ClickHouse does not answer on $CH_URL"
svc_log "ClickHouse $CH_VERSION on $CH_URL (native port $CH_TCP_PORT)"

LISTEN_PORT=$(svc_free_port "${PGTRAIL_LISTEN_PORT:-6432}")
ADMIN_PORT=$(svc_free_port "${PGTRAIL_ADMIN_PORT:-9187}")
CONSOLE_PORT=$(svc_free_port "${PGTRAIL_CONSOLE_PORT:-8080}")
# The web console's first person (an auditor), made once; its password is
# kept beside the users file (0600) so that every run can print it.
CONSOLE_USERS="$STATE/console-users.toml"
CONSOLE_PASSWORD_FILE="$STATE/console-admin.password"
if [[ ! -f "$CONSOLE_USERS" || ! -f "$CONSOLE_PASSWORD_FILE" ]]; then
    (umask 077 && "$PGTRAIL" console user add admin --role auditor --users "$CONSOLE_USERS" --generate |
        sed -n 's/^admin (auditor): password //p' >"$CONSOLE_PASSWORD_FILE")
fi
CONSOLE_PASSWORD=$(cat "$CONSOLE_PASSWORD_FILE")
AUDIT_FILE="$STATE/audit.jsonl"
if [[ ! -f "$STATE/signing.key" ]]; then
    "$PGTRAIL" keygen --private-key "$STATE/signing.key" --public-key "$STATE/signing.pub"
fi
cat >"$STATE/pgtrail.toml" <<EOF
[audit]
spool_dir = "$STATE/spool"
signing_key_file = "$STATE/signing.key"
EOF

cat <<EOF

  pgtrail is starting on 127.0.0.1:$LISTEN_PORT (upstream PostgreSQL on port $PG_PORT).

  Connect (password: $PASSWORD):
      psql "host=127.0.0.1 port=$LISTEN_PORT user=postgres dbname=postgres"

  Audit records:
      tail -f $AUDIT_FILE
      curl '$CH_URL/?query=SELECT%20*%20FROM%20pgtrail.statements%20FORMAT%20Vertical'

  Metrics and health (Prometheus text, /healthz, /readyz):
      curl http://127.0.0.1:$ADMIN_PORT/metrics

  Web console (sessions, statements, tables, people, compliance views):
      http://127.0.0.1:$CONSOLE_PORT   user admin, password $CONSOLE_PASSWORD
      more people: $PGTRAIL console user add NAME --role auditor|dba --users $CONSOLE_USERS

  Is the trail intact (hash chain, signed checkpoints)?
      $PGTRAIL verify --clickhouse-url $CH_URL --public-key $STATE/signing.pub \\
          --checkpoints $STATE/spool/checkpoints.jsonl
      $PGTRAIL verify --jsonl $AUDIT_FILE --public-key $STATE/signing.pub

  Ctrl-C stops pgtrail, ClickHouse and PostgreSQL.

EOF

"$PGTRAIL" run \
    --config "$STATE/pgtrail.toml" \
    --listen "127.0.0.1:$LISTEN_PORT" \
    --upstream "postgres://127.0.0.1:$PG_PORT" \
    --auth passthrough \
    --audit-file "$AUDIT_FILE" \
    --clickhouse-url "$CH_URL" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" &
PGTRAIL_PID=$!
# The console reads what pgtrail writes: start it once pgtrail listens (the
# schema is made by then).
svc_wait_port "$LISTEN_PORT" "$PGTRAIL_PID" pgtrail
"$PGTRAIL" console --clickhouse-url "$CH_URL" --users "$CONSOLE_USERS" \
    --listen "127.0.0.1:$CONSOLE_PORT" &
CONSOLE_PID=$!
set +e
wait "$PGTRAIL_PID"
status=$?
set -e
PGTRAIL_PID=
exit "$status"
