"""Exercises asyncpg and psycopg 3 against one server (direct or through
pgtrail) and prints a transcript; the Rust test compares the transcripts.

Usage: drivers.py HOST PORT USER PASSWORD DBNAME
"""
import asyncio
import sys

import asyncpg
import psycopg


def say(*parts):
    print(*parts, flush=True)


async def with_asyncpg(host, port, user, password, db):
    conn = await asyncpg.connect(host=host, port=port, user=user, password=password, database=db)
    await conn.execute("CREATE TABLE IF NOT EXISTS apg (id int primary key, name text, data bytea)")
    await conn.execute("TRUNCATE apg")
    # executemany pipelines Bind/Execute without a Sync per row.
    await conn.executemany("INSERT INTO apg VALUES ($1, $2, $3)", [(i, f"n{i}", bytes([i % 256])) for i in range(200)])
    stmt = await conn.prepare("SELECT name FROM apg WHERE id = $1")
    say("asyncpg prepared", [await stmt.fetchval(i) for i in (1, 2, 3)])
    # A cursor with a small prefetch uses Execute with a row limit (PortalSuspended).
    async with conn.transaction():
        total = 0
        async for _ in conn.cursor("SELECT id FROM apg ORDER BY id", prefetch=7):
            total += 1
        say("asyncpg cursor rows", total)
    copied = await conn.copy_records_to_table("apg", records=[(1000 + i, "c", b"x") for i in range(50)])
    say("asyncpg copy", copied)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO apg VALUES (1, 'dup', NULL)")
    except asyncpg.UniqueViolationError as e:
        say("asyncpg error", e.sqlstate)
    say("asyncpg count", await conn.fetchval("SELECT count(*) FROM apg"))
    await conn.close()


def with_psycopg(host, port, user, password, db):
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname=db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pg3 (id int primary key, v text)")
        conn.execute("TRUNCATE pg3")
        conn.commit()
        with conn.pipeline():
            for i in range(100):
                conn.execute("INSERT INTO pg3 VALUES (%s, %s)", (i, f"v{i}"))
        conn.commit()
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT id, v FROM pg3 WHERE id < %s ORDER BY id", (3,))
            say("psycopg binary", cur.fetchall())
        with conn.cursor(name="server_side") as cur:
            cur.itersize = 10
            cur.execute("SELECT id FROM pg3 ORDER BY id")
            say("psycopg server-side rows", sum(1 for _ in cur))
        conn.commit()
        with conn.cursor() as cur:
            with cur.copy("COPY pg3 TO STDOUT") as copy:
                say("psycopg copy out bytes", sum(len(b) for b in copy))
            with cur.copy("COPY pg3 (id, v) FROM STDIN") as copy:
                for i in range(100, 150):
                    copy.write_row((i, "c"))
        conn.commit()
        try:
            conn.execute("SELECT 1/0")
        except psycopg.errors.DivisionByZero as e:
            say("psycopg error", e.sqlstate)
            conn.rollback()
        say("psycopg count", conn.execute("SELECT count(*) FROM pg3").fetchone()[0])


def main():
    host, port, user, password, db = sys.argv[1:6]
    asyncio.run(with_asyncpg(host, int(port), user, password, db))
    with_psycopg(host, int(port), user, password, db)


if __name__ == "__main__":
    main()
