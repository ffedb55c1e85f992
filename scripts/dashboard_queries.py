#!/usr/bin/env python3
"""Prints every query of Grafana dashboards, expanded for a time range.

One JSON object per line:

  {"dashboard": "pgtrail.json", "label": "panel 7 \\"...\\" (A)",
   "kind": "clickhouse", "sql": "SELECT ...", "error": null}
  {"dashboard": ..., "kind": "prometheus", "expr": "...", "error": null}

ClickHouse queries (panel targets and template variable queries) are
expanded in the order grafana-clickhouse-datasource applies its steps:

1. `$__conditionalAll(condition, $var)` (the plugin's frontend): the
   condition, or `1=1` when the variable is "All" (`--all`) or empty;
2. dashboard variables (Grafana's template service): `${var:singlequote}`,
   `${var:sqlstring}`, `${var:csv}`, `${var:raw}`, and the built-in
   `$__from`, `$__to`, `$__interval`, `$__interval_ms`, `$__range_s`;
3. the plugin's backend macros (pkg/macros/macros.go): `$__timeFilter(c)`
   is `c >= toDateTime(FROM) AND c <= toDateTime(TO)`, `$__timeInterval(c)`
   is `toStartOfInterval(toDateTime(c), INTERVAL N second)` (that function
   does not exist on ClickHouse 18.16), `$__interval_s` is N, and the rest
   as listed in MACROS below.

Prometheus expressions get `$__rate_interval`, `$__interval` and
`$__range` as `5m`, so `promtool check rules` can parse them (`--rules`
writes them as recording rules).

A query that cannot be expanded (unknown variable or macro, a variable
without a format, more than one statement) has `error` set.

  python3 scripts/dashboard_queries.py [--from UNIX] [--to UNIX]
      [--interval SECONDS] [--all] [--var NAME=V1,V2 ...] [--rules FILE]
      DASHBOARD.json ...

Variables take the values given with --var, else `NAME-sample-1` and
`NAME-sample-2`. Standard library only.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time


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


def call_end(sql, open_paren):
    """Index after the parenthesis that closes the one at `open_paren`."""
    depth, i = 1, open_paren + 1
    while i < len(sql) and depth:
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        i += 1
    if depth:
        raise ValueError("unbalanced parentheses in a macro call")
    return i


class Expander:
    def __init__(self, start, end, interval_s, all_selected, values):
        self.start, self.end = start, end
        self.interval_s = max(int(interval_s), 1)
        self.all_selected = all_selected
        self.values = values

    def dt(self, t):
        return f"toDateTime({t})"

    def dt64(self, t):
        return f"fromUnixTimestamp64Milli({t * 1000})"

    def date(self, t):
        day = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        return f"toDate('{day:%Y-%m-%d}')"

    def range_filter(self, col, conv):
        return f"{col} >= {conv(self.start)} AND {col} <= {conv(self.end)}"

    def macros(self):
        """Backend macros of grafana-clickhouse-datasource: name -> (args -> SQL)."""
        date_time = lambda a: (  # noqa: E731
            f"({self.range_filter(a[0], self.date)}) AND ({self.range_filter(a[1], self.dt)})"
        )
        return {
            "fromTime": (0, lambda a: self.dt(self.start)),
            "toTime": (0, lambda a: self.dt(self.end)),
            "fromTime_ms": (0, lambda a: self.dt64(self.start)),
            "toTime_ms": (0, lambda a: self.dt64(self.end)),
            "timeFilter": (1, lambda a: self.range_filter(a[0], self.dt)),
            "timeFilter_ms": (1, lambda a: self.range_filter(a[0], self.dt64)),
            "dateFilter": (1, lambda a: self.range_filter(a[0], self.date)),
            "dateTimeFilter": (2, date_time),
            "dt": (2, date_time),
            "timeInterval": (
                1,
                lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {self.interval_s} second)",
            ),
            "timeInterval_ms": (
                1,
                lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {self.interval_s * 1000} millisecond)",
            ),
            "interval_s": (0, lambda a: str(self.interval_s)),
        }

    def conditional_all(self, sql, variables):
        macro = "$__conditionalAll("
        i = sql.rfind(macro)
        while i != -1:
            end = call_end(sql, i + len(macro) - 1)
            args = split_args(sql[i + len(macro):end - 1])
            if len(args) != 2:
                raise ValueError("$__conditionalAll takes a condition and a $variable")
            name = args[1].strip().lstrip("$").strip("{}")
            if name not in variables:
                raise ValueError(f"$__conditionalAll names unknown variable {args[1]}")
            phrase = "1=1" if self.all_selected else args[0]
            sql = sql[:i] + phrase + sql[end:]
            i = sql.rfind(macro)
        return sql

    def builtin(self, name):
        span = self.end - self.start
        return {
            "__from": str(self.start * 1000),
            "__to": str(self.end * 1000),
            "__interval": f"{self.interval_s}s",
            "__interval_ms": str(self.interval_s * 1000),
            "__range_s": str(span),
            "__range_ms": str(span * 1000),
            "__range": f"{span}s",
        }.get(name)

    def variables(self, sql, variables):
        def var(m):
            name = m.group(1) or m.group(3) or m.group(4)
            fmt = m.group(2)
            if name.startswith("__"):
                value = self.builtin(name)
                return m.group(0) if value is None else value  # a backend macro
            if name not in variables:
                raise ValueError(f"unknown variable ${name}")
            values = self.values.get(name, [f"{name}-sample-1", f"{name}-sample-2"])
            if fmt in ("singlequote", "sqlstring"):
                return ",".join("'" + v.replace("'", "''" if fmt == "sqlstring" else "\\'") + "'" for v in values)
            if fmt in ("csv", "raw"):
                return ",".join(values)
            if len(values) == 1:
                return values[0]
            raise ValueError(f"${name} has several values: give it a format, e.g. ${{{name}:singlequote}}")

        pattern = r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)"
        return re.sub(pattern, var, sql)

    def backend(self, sql):
        macros = self.macros()
        for name in sorted(macros, key=len, reverse=True):
            nargs, fn = macros[name]
            while True:
                m = re.search(r"\$__" + name + r"(?![A-Za-z0-9_])", sql)
                if not m:
                    break
                end, args = m.end(), []
                if m.end() < len(sql) and sql[m.end()] == "(":
                    end = call_end(sql, m.end())
                    args = [a for a in split_args(sql[m.end() + 1:end - 1]) if a]
                if len(args) != nargs:
                    raise ValueError(f"$__{name} takes {nargs} argument(s), got {len(args)}")
                sql = sql[:m.start()] + fn(args) + sql[end:]
        left = re.search(r"\$__\w+", sql)
        if left:
            raise ValueError(f"unknown macro {left.group(0)}")
        return sql

    def clickhouse(self, raw, variables):
        if not raw.strip():
            raise ValueError("empty query")
        sql = self.conditional_all(raw, variables)
        sql = self.variables(sql, variables)
        sql = self.backend(sql).strip().rstrip(";").strip()
        if ";" in sql:
            raise ValueError("more than one statement")
        return sql


def prometheus(expr):
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    return re.sub(r"\$\{?__\w+\}?", "5m", expr)


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def queries(path, expander):
    dash = json.load(open(path))
    name = os.path.basename(path)
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    sources = []
    for v in variables.values():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("rawSql", q.get("query")) if isinstance(q, dict) else q
            sources.append((f"variable ${v['name']}", v.get("datasource") or {}, {"rawSql": q or ""}))
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            ds = t.get("datasource") or p.get("datasource") or {}
            where = f"panel {p.get('id')} \"{p.get('title')}\" ({t.get('refId', 'A')})"
            sources.append((where, ds, t))
    for where, ds, t in sources:
        out = {"dashboard": name, "label": where, "error": None}
        kind = ds.get("type", "") if isinstance(ds, dict) else ""
        if "prometheus" in kind:
            out.update(kind="prometheus", expr=prometheus(t.get("expr", "")))
        elif "clickhouse" in kind or "rawSql" in t:
            out.update(kind="clickhouse", sql=None)
            try:
                out["sql"] = expander.clickhouse(t.get("rawSql", ""), variables)
            except ValueError as e:
                out["error"] = str(e)
        else:
            out.update(kind="unknown", error=f"datasource {ds!r} is neither ClickHouse nor Prometheus")
        yield out


def main():
    now = int(time.time())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="start", type=int, default=now - 6 * 3600, help="range start, Unix seconds")
    ap.add_argument("--to", dest="end", type=int, default=now + 3600, help="range end, Unix seconds")
    ap.add_argument("--interval", type=int, default=60, help="Grafana's interval, seconds")
    ap.add_argument("--all", action="store_true", help='every variable set to "All"')
    ap.add_argument("--var", action="append", default=[], metavar="NAME=V1,V2", help="values of a variable")
    ap.add_argument("--rules", metavar="FILE", help="write the Prometheus expressions as recording rules")
    ap.add_argument("dashboards", nargs="+")
    a = ap.parse_args()
    values = {}
    for spec in a.var:
        name, _, vals = spec.partition("=")
        values[name] = vals.split(",")
    expander = Expander(a.start, a.end, a.interval, a.all, values)
    prom = []
    for path in a.dashboards:
        for q in queries(path, expander):
            print(json.dumps(q))
            if q["kind"] == "prometheus":
                prom.append(q["expr"])
    if a.rules:
        lines = ["groups:", "  - name: dashboard-expressions", "    rules:"]
        for i, expr in enumerate(prom):
            lines += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(expr)}"]
        with open(a.rules, "w") as out:
            out.write("\n".join(lines) + "\n" if prom else "groups: []\n")


if __name__ == "__main__":
    sys.exit(main())
