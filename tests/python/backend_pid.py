"""What applications do with their backend pid, through one server (direct
or through pgtrail); prints a transcript without pid values, which the Rust
test compares between the two.

Usage: backend_pid.py HOST PORT USER PASSWORD DBNAME
"""
import sys
import time

import psycopg
import psycopg_pool


def say(*parts):
    print(*parts, flush=True)


def conninfo(host, port, user, password, db):
    return f"host={host} port={port} user={user} password={password} dbname={db}"


def notifications(info):
    conn = psycopg.connect(info, autocommit=True)
    other = psycopg.connect(info, autocommit=True)
    pid = conn.info.backend_pid
    say("backend_pid is pg_backend_pid():", pid == conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    conn.execute("LISTEN pids")
    conn.execute("NOTIFY pids, 'mine'")
    other.execute("NOTIFY pids, 'theirs'")
    got = {}
    for n in conn.notifies(timeout=5, stop_after=2):
        got[n.payload] = n.pid
    say("own notification has own pid:", got.get("mine") == pid)
    say("other's notification has other's pid:", got.get("theirs") == other.info.backend_pid)
    found = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]
    say("pg_stat_activity finds backend_pid:", found)
    other.close()
    conn.close()


def terminate_own(info):
    conn = psycopg.connect(info, autocommit=True)
    try:
        conn.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        say("terminate own backend: no error")
    except psycopg.errors.AdminShutdown as e:
        say("terminate own backend:", e.sqlstate)
    except psycopg.OperationalError as e:
        say("terminate own backend: OperationalError", e.sqlstate)
    say("connection closed after terminate:", conn.closed)


def terminate_from_other(info):
    victim = psycopg.connect(info, autocommit=True)
    admin = psycopg.connect(info, autocommit=True)
    ok = admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid]).fetchone()[0]
    say("pg_terminate_backend(victim pid):", ok)
    time.sleep(0.3)
    try:
        victim.execute("SELECT 1")
        say("victim after terminate: still works")
    except psycopg.errors.AdminShutdown as e:
        say("victim after terminate:", e.sqlstate)
    except psycopg.OperationalError as e:
        say("victim after terminate: OperationalError", e.sqlstate)
    admin.close()


def pool_recovers(info):
    pool = psycopg_pool.ConnectionPool(
        info, min_size=1, max_size=1, check=psycopg_pool.ConnectionPool.check_connection, open=True
    )
    with pool.connection() as conn:
        first = conn.info.backend_pid
    admin = psycopg.connect(info, autocommit=True)
    say("pool: terminate its connection:", admin.execute("SELECT pg_terminate_backend(%s)", [first]).fetchone()[0])
    time.sleep(0.3)
    with pool.connection() as conn:
        say("pool: new backend after health check:", conn.info.backend_pid != first)
        say("pool: query works:", conn.execute("SELECT 41 + 1").fetchone()[0])
    pool.close()
    admin.close()


def main():
    info = conninfo(*sys.argv[1:6])
    notifications(info)
    terminate_own(info)
    terminate_from_other(info)
    pool_recovers(info)


if __name__ == "__main__":
    main()
