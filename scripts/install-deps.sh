#!/usr/bin/env bash
# Install what pgtrail's build, tests and benchmarks need on Debian 12
# (bookworm). Idempotent: when everything is present it only checks (< 1 s).
#
#   sudo bash scripts/install-deps.sh      (or as root)
#
# Installs: postgresql (server, pgbench), postgresql-client (psql),
# pgbouncer (benchmark baseline), clickhouse-server (18.16 in bookworm),
# libclang-dev + clang (bindgen for pg_query), build-essential, pkg-config,
# docker-compose (to validate docker-compose.yml), curl, openssl,
# python3-venv (../shared/tools/ch-modern-check, used by
# scripts/check-dashboards.sh, makes a venv), and promtool (Debian's
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
)

log() { printf 'install-deps: %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            log "missing packages: ${missing[*]}"
            log "run this script as root to install them"
            exit 1
        fi
    else
        SUDO=()
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "missing packages: ${missing[*]}"

    # apt-get update only when the package lists are empty or do not know
    # one of the missing packages.
    need_update=0
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        need_update=1
    else
        for pkg in "${missing[@]}"; do
            candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
            if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
                need_update=1
                break
            fi
        done
    fi
    if ((need_update)); then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -q
    fi

    # Keep the packages from starting system services (tests never use them).
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
        trap '"${SUDO[@]}" rm -f "$policy"' EXIT
    fi
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" apt-get install -y -q "${missing[@]}"
    if ((own_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
else
    log "system packages: all present"
fi

# promtool (checks and unit-tests deploy/prometheus/alerts.yml). Debian
# ships it in the prometheus package; its service is kept from starting.
if ! command -v promtool >/dev/null 2>&1; then
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            log "promtool missing: run this script as root to install the prometheus package"
            exit 1
        fi
    else
        SUDO=()
    fi
    export DEBIAN_FRONTEND=noninteractive
    candidate=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -q
    fi
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
        trap '"${SUDO[@]}" rm -f "$policy"' EXIT
    fi
    log "apt-get install --no-install-recommends prometheus (for promtool)"
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus
    if ((own_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
    # Only promtool is wanted: keep the Prometheus server itself off.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet prometheus 2>/dev/null; then
        "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# Python drivers for the driver tests (tests/python/drivers.py).
if ! python3 -c "import asyncpg, psycopg" 2>/dev/null; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        log "apt-get install python3-pip"
        if [[ $(id -u) == 0 ]]; then apt-get install -y -q python3-pip; else sudo apt-get install -y -q python3-pip; fi
    fi
    log "pip install asyncpg psycopg[binary]"
    # Debian's own python3 is "externally managed" (PEP 668): allow it there.
    python3 -m pip install --quiet asyncpg "psycopg[binary]" 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages asyncpg "psycopg[binary]"
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
    candidate=$(apt-cache policy rustup 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -n "$candidate" && "$candidate" != "(none)" ]]; then
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
