#!/usr/bin/env bash
# The project's checks, in the order CI runs them (.ci/run):
# formatting, lints (warnings are errors), every test target, the
# docker-compose file, the Prometheus alert rules (promtool check and unit
# tests) and the Grafana dashboards' queries (scripts/check-dashboards.sh).
# Installs what is missing first (idempotent).
# The integration tests start their own PostgreSQL and ClickHouse servers.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*"; }

step "install dependencies (scripts/install-deps.sh, idempotent)"
bash scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --all-targets"
cargo test --all-targets

step "the independent audit chain check (tests/python/test_verify_trail.py)"
python3 tests/python/test_verify_trail.py

step "transparency suites again with attribution markers on (PGTRAIL_TEST_CDC=1)"
PGTRAIL_TEST_CDC=1 cargo test --test integration -- \
    relay:: clients:: python:: markers events:: transactions

if [[ -f docker-compose.yml ]]; then
    step "docker-compose config -q"
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose -f docker-compose.yml config -q
    elif docker compose version >/dev/null 2>&1; then
        docker compose -f docker-compose.yml config -q
    else
        echo "docker-compose not installed (run scripts/install-deps.sh)" >&2
        exit 1
    fi
fi

step "promtool check rules / test rules (deploy/prometheus)"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config deploy/prometheus/prometheus.yml

step "Grafana dashboard queries (scripts/check-dashboards.sh)"
bash scripts/check-dashboards.sh

step "all checks passed"
