#!/usr/bin/env bash
# Install what pgtrail's build, tests and benchmarks need on Debian 12
# (bookworm). Idempotent: when everything is present it only checks (< 1 s).
#
#   sudo bash scripts/install-deps.sh      (or as root)
#
# Installs: postgresql (server, pgbench), postgresql-client (psql),
# pgbouncer and postgresql-15-pgaudit (benchmark peers), clickhouse-server (18.16 in bookworm),
# libclang-dev + clang (bindgen for pg_query), build-essential, pkg-config,
# docker-compose (to validate docker-compose.yml), curl, openssl,
# python3-venv (../shared/tools/ch-modern-check, used by
# scripts/check-dashboards.sh, makes a venv), python3-cryptography
# (Ed25519 checkpoint signatures in scripts/verify_trail.py and its test
# tests/python/test_verify_trail.py), chromium and chromium-driver (the web
# console's browser test, tests/python/console_browser.py, with selenium
# from pip), nodejs and npm when node is missing (node-postgres for
# tests/node, from its lock file), and promtool (Debian's
# prometheus package, without recommends; checks deploy/prometheus/*.yml)
# when it is missing.
# The Rust toolchain is installed only when cargo is missing.
#
# The tests and scripts start their own throw-away PostgreSQL and ClickHouse
# servers on free ports; the system services are never used. While apt runs,
# a temporary policy-rc.d keeps the packages from starting their services.
set -euo pipefail

PACKAGES=(
    postgresql
    postgresql-client
    pgbouncer
    postgresql-15-pgaudit
    clickhouse-server
    clickhouse-client
    libclang-dev
    clang
    build-essential
    pkg-config
    docker-compose
    curl
    ca-certificates
    openssl
    python3-venv
    python3-cryptography
    chromium
    chromium-driver
)

log() { printf 'install-deps: %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

# Sets SUDO (empty as root); without root or sudo, logs "$@" and exits.
use_root() {
    if [[ $(id -u) == 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        for line in "$@"; do log "$line"; done
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
}

# Whether the package lists offer package $1.
apt_knows() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

# apt-get update only when the package lists are empty or do not know one
# of the packages "$@".
apt_update_if_needed() {
    local pkg
    if compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        for pkg in "$@"; do
            if ! apt_knows "$pkg"; then
                break
            fi
            shift
        done
        if (($# == 0)); then
            return 0
        fi
    fi
    log "apt-get update"
    "${SUDO[@]}" apt-get update -q
}

# apt-get install "$@" while a temporary policy-rc.d keeps the packages from
# starting system services (tests never use them).
apt_install() {
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
        trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    log "apt-get install $*"
    "${SUDO[@]}" apt-get install -y -q "$@"
    if ((own_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
}

if ((${#missing[@]} > 0)); then
    use_root "missing packages: ${missing[*]}" "run this script as root to install them"
    log "missing packages: ${missing[*]}"
    apt_update_if_needed "${missing[@]}"
    apt_install "${missing[@]}"
else
    log "system packages: all present"
fi

# promtool (checks and unit-tests deploy/prometheus/alerts.yml). Debian
# ships it in the prometheus package; its service is kept from starting.
if ! command -v promtool >/dev/null 2>&1; then
    use_root "promtool missing: run this script as root to install the prometheus package"
    apt_update_if_needed prometheus
    apt_install --no-install-recommends prometheus
    # Only promtool is wanted: keep the Prometheus server itself off.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet prometheus 2>/dev/null; then
        "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# Python drivers for the driver tests (tests/python/*.py).
if ! python3 -c "import asyncpg, psycopg, psycopg_pool" 2>/dev/null; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        log "apt-get install python3-pip"
        if [[ $(id -u) == 0 ]]; then apt-get install -y -q python3-pip; else sudo apt-get install -y -q python3-pip; fi
    fi
    log "pip install asyncpg psycopg[binary] psycopg-pool"
    # Debian's own python3 is "externally managed" (PEP 668): allow it there.
    python3 -m pip install --quiet asyncpg "psycopg[binary]" psycopg-pool 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages asyncpg "psycopg[binary]" psycopg-pool
fi

# selenium drives Debian's chromium through its chromedriver in the console
# browser test (tests/python/console_browser.py); the driver's path is given,
# so selenium downloads nothing.
if ! python3 -c "import selenium" 2>/dev/null; then
    log "pip install selenium"
    python3 -m pip install --quiet selenium 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages selenium
fi

# Node.js and node-postgres for the Node application of the end-user tests
# (tests/node/end_user.js). Debian's nodejs and npm only when node is
# missing (a NodeSource nodejs brings its own npm, and conflicts with
# Debian's); the pg package from the lock file, into tests/node.
if ! command -v node >/dev/null 2>&1; then
    use_root "node missing: run this script as root to install nodejs and npm"
    apt_update_if_needed nodejs npm
    apt_install nodejs npm
fi
node_tests="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/node"
if [[ -f "$node_tests/package-lock.json" && ! -f "$node_tests/node_modules/pg/package.json" ]]; then
    log "npm ci (tests/node: node-postgres)"
    npm ci --prefix "$node_tests" --no-audit --no-fund --loglevel=error
fi

# Rust toolchain, only when cargo is missing.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v cargo >/dev/null 2>&1; then
    log "rust: $(cargo --version)"
    # fmt and clippy are used by scripts/test.sh.
    if command -v rustup >/dev/null 2>&1; then
        components=()
        cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
        cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
        if ((${#components[@]} > 0)); then
            log "rustup component add ${components[*]}"
            rustup component add "${components[@]}"
        fi
    fi
else
    if apt_knows rustup; then
        log "cargo missing: installing the distribution's rustup and the stable toolchain"
        if [[ $(id -u) == 0 ]]; then apt-get install -y -q rustup; else sudo apt-get install -y -q rustup; fi
        rustup default stable
        rustup component add rustfmt clippy
        log "rust: $(cargo --version)"
    else
        log "cargo is missing and this distribution has no rustup package."
        log "install Rust (1.88 or newer) with:"
        log "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --component rustfmt,clippy"
        log "then: source \"\$HOME/.cargo/env\" and run this script again"
        exit 1
    fi
fi

log "done"
