"""A Django-style application on psycopg 3 telling pgtrail who its end user
is with sqlcommenter comments (docs/end-users.md shows the same code as a
Django database execute wrapper). The Rust test (tests/integration/
end_users.rs) reads what pgtrail recorded for each statement.

Usage: end_user_django.py HOST PORT USER PASSWORD DBNAME HMAC_SECRET
"""
import base64
import hashlib
import hmac
import sys
import time
import urllib.parse

import psycopg


def sqlcommenter(sql, with_params=False, **tags):
    """Appends tags as Google's sqlcommenter libraries do: keys sorted,
    keys and values URL-encoded, values in single quotes, before a final
    semicolon; with parameters, `%` doubled so the driver keeps it."""
    if not tags:
        return sql
    quote = lambda s: urllib.parse.quote(str(s), safe="")
    comment = ",".join(f"{quote(k)}='{quote(v)}'" for k, v in sorted(tags.items()))
    if with_params:
        comment = comment.replace("%", "%%")
    sql = sql.rstrip()
    if sql.endswith(";"):
        return f"{sql[:-1]} /*{comment}*/;"
    return f"{sql} /*{comment}*/"


def signed(secret, end_user, now=None):
    """pgtrail's comment HMAC: HMAC-SHA256 over
    "pgtrail-claim-v1\\n" + end_user + "\\n" + ts, base64url without padding."""
    ts = str(int(now if now is not None else time.time()))
    message = b"pgtrail-claim-v1\n" + end_user.encode() + b"\n" + ts.encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return {"end_user": end_user, "pgtrail_ts": ts, "pgtrail_sig": sig}


class RequestContext:
    """What a Django middleware would keep per request."""

    def __init__(self, user, request_id, traceparent):
        self.tags = {
            "application": "shop",
            "framework": "django:5.1",
            "route": "/orders/<id>",
            "end_user": user,
            "request_id": request_id,
            "traceparent": traceparent,
        }


def execute(cur, ctx, sql, params=None, **extra):
    cur.execute(sqlcommenter(sql, params is not None, **ctx.tags, **extra), params)


def main():
    host, port, user, password, db, secret = sys.argv[1:7]
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname=db, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS dj_orders (id int primary key, owner text, total numeric)")
            trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            alice = RequestContext("alice@example.com", "req-1", trace)
            # psycopg 3 sends parameters with the extended protocol.
            execute(cur, alice, "INSERT INTO dj_orders VALUES (%s, %s, %s)", (1, "alice", 10))
            execute(cur, alice, "SELECT total FROM dj_orders WHERE id = %s;", (1,))
            print("alice total", cur.fetchone()[0], flush=True)
            # Signed: the middleware holds pgtrail's HMAC secret.
            bob = RequestContext("bob", "req-2", trace)
            bob.tags.update(signed(secret, "bob"))
            execute(cur, bob, "UPDATE dj_orders SET total = total + 1 WHERE id = %s", (1,))
            # A forged signature (the end user changed after signing).
            mallory = RequestContext("mallory", "req-3", trace)
            mallory.tags.update(signed(secret, "bob"))
            mallory.tags["end_user"] = "mallory"
            execute(cur, mallory, "SELECT count(*) FROM dj_orders")
            # A stale signature (signed an hour ago).
            carol = RequestContext("carol", "req-4", trace)
            carol.tags.update(signed(secret, "carol", time.time() - 3600))
            execute(cur, carol, "SELECT count(*) FROM dj_orders")
            # No comment: nobody claimed.
            cur.execute("SELECT count(*) FROM dj_orders")
            print("done", flush=True)


if __name__ == "__main__":
    main()
