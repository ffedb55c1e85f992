#!/usr/bin/env python3
"""Tests of scripts/verify_trail.py: trails built here, record by record,
with their own small encoder (column lists read from
src/audit/sink/clickhouse/schema/tables.rs), then tampered with; each
tamper must give its finding, and a clean trail must pass.

Plain python3 (no pytest): `python3 tests/python/test_verify_trail.py`.
Prints one line per test and closes with "N passed, N failed"; exits 1 when
a test failed. Signing tests need the `cryptography` package (Debian:
python3-cryptography, installed by scripts/install-deps.sh); without it
they are skipped.
"""

import base64
import copy
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "verify_trail.py")
TABLES_RS = os.path.join(ROOT, "src", "audit", "sink", "clickhouse", "schema", "tables.rs")
DOC = os.path.join(ROOT, "docs", "integrity.md")

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:
    Ed25519PrivateKey = None


def load_script():
    spec = importlib.util.spec_from_file_location("verify_trail", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vt = load_script()

# ---------------------------------------------------------------------------
# The columns, from tables.rs, and this test's own encoder.


def rust_tables():
    """table -> [(column, Ty)] as tables.rs lists them, `chain` included."""
    text = open(TABLES_RS, encoding="utf-8").read()
    tables = {}
    for const, body in re.findall(r"const (\w+): &\[\(&str, Ty\)\] = &\[(.*?)\];", text, re.S):
        tables[const.lower()] = re.findall(r'\("([\w.]+)", Ty::(\w+)\)', body)
    return tables


ENCODING = {
    "Uuid": "uuid", "Label": "text", "Text": "text", "Id": "text", "Chain": "text",
    "Seq": "u64", "Count": "u64", "Hash": "u64", "Lsn": "u64", "Time": "time",
    "U16": "u16", "Pid": "u32", "U32": "u32", "Bool": "bool", "Labels": "texts",
    "Names": "texts", "Params": "opt_texts", "Values": "opt_texts",
    "OptCount": "opt_u64", "Seqs": "u64s", "OptUuid": "opt_uuid",
    "EndUserSource": "source",
}

# `end_user_source` (Enum8): its names in the order of their values,
# src/identity/mod.rs `Source`.
SOURCE_NAMES = ["none", "comment", "set", "startup", "application_name"]

# The end user a record names (schema version 9): the last columns of
# statements, transactions and changes.
END_USER = ["end_user", "end_user_source", "end_user_verified", "end_user_reason",
            "request_id", "trace_id"]

# Where each table's columns added after its records were first chained
# begin, one entry per schema version that added some: statements got 8's
# column access and 9's end user, transactions and changes 9's end user.
TAILS = {"statements": ("columns_read", "end_user"), "transactions": ("end_user",),
         "changes": ("end_user",)}

COLUMNS = {t: [(c, ENCODING[ty]) for c, ty in cols] for t, cols in rust_tables().items()}


def t32(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def enc(kind, v):
    if kind == "text":
        return t32(v)
    if kind == "uuid":
        return uuid.UUID(v).bytes
    if kind in ("u16", "u32", "u64", "time"):
        return struct.pack({"u16": "<H", "u32": "<I", "u64": "<Q", "time": "<q"}[kind], v)
    if kind == "bool":
        return bytes([1 if v else 0])
    if kind == "texts":
        return struct.pack("<I", len(v)) + b"".join(t32(s) for s in v)
    if kind == "opt_texts":
        return struct.pack("<I", len(v)) + b"".join(b"\0" if s is None else b"\1" + t32(s) for s in v)
    if kind == "u64s":
        return struct.pack("<I", len(v)) + b"".join(struct.pack("<Q", n) for n in v)
    if kind == "opt_u64":
        return b"\0" if v is None else b"\1" + struct.pack("<Q", v)
    if kind == "opt_uuid":
        return b"\0" if v is None else b"\1" + uuid.UUID(v).bytes
    if kind == "source":
        return bytes([SOURCE_NAMES.index(v)])
    raise AssertionError(kind)


def canon(table, r, columns=None):
    """Canonical bytes of a record held as {column: value}, times as ints.
    The columns added after a table's records were first chained (TAILS)
    come in groups, one per schema version; groups at the end that are
    all zero bytes (every value its default) are left out, the last one
    first. `columns`: the table's columns as an earlier build had them."""
    out = t32(table)
    groups = []
    starts = TAILS.get(table, ())
    for column, kind in COLUMNS[table] if columns is None else columns:
        if column == "chain":
            continue
        if column in starts:
            groups.append(b"")
        if groups:
            groups[-1] += enc(kind, r[column])
        else:
            out += enc(kind, r[column])
    while groups and not groups[-1].strip(b"\0"):
        groups.pop()
    return out + b"".join(groups)


def columns_before(table, version):
    """The columns `table` had in schema version `version` (7 or 8)."""
    cut = set(END_USER)
    if version < 8 and table == "statements":
        cut |= {"columns_read", "columns_written", "labels", "via", "columns_unresolved",
                "catalog_version"}
    return [(c, k) for c, k in COLUMNS[table] if c not in cut]


def rfc3339(micros):
    return vt.time_text(micros)


def json_line(table, r):
    """The record as pgtrail's JSON Lines has it."""
    obj = {"record": table}
    for column, kind in COLUMNS[table]:
        if "." in column:
            continue
        v = r[column]
        obj[column] = rfc3339(v) if kind == "time" else v
    if table == "changes":
        for f in ("key", "old", "new"):
            obj[f] = dict(zip(r[f + ".name"], r[f + ".value"]))
    if table == "statements" and not r["params"]:
        del obj["params"]  # parameters not recorded
    tail = False
    for column, kind in COLUMNS[table]:
        tail = tail or column in TAILS.get(table, ())
        if tail and obj.get(column) == DEFAULT[kind]:
            del obj[column]  # left out at its default, as pgtrail does
    return json.dumps(obj, ensure_ascii=False)


# The default of each kind of column, where a record may leave it out.
DEFAULT = {"text": "", "texts": [], "u64": 0, "bool": False, "source": "none"}


SAMPLE = {"uuid": "01a228da-91ff-701a-b514-7a5300000007", "text": "x", "u64": 7, "u32": 42,
          "u16": 5432, "time": 1796000000000000, "bool": True, "texts": ["public.t", "ü"],
          "opt_texts": [None, "a\n\"b\""], "u64s": [3, 4], "opt_u64": None,
          "opt_uuid": "00000000-0000-0000-0000-000000000009", "source": "comment"}

# An end user with every field set, text that needs escapes included.
ALICE = {"end_user": "alice \"ä\" ✓", "end_user_source": "comment", "end_user_verified": True,
         "end_user_reason": "", "request_id": "req-1\n\\", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
# No end user at all: what records of builds before schema version 9 read as.
NOBODY = {"end_user": "", "end_user_source": "none", "end_user_verified": False,
          "end_user_reason": "", "request_id": "", "trace_id": ""}

# ---------------------------------------------------------------------------
# Trails.


class Key:
    def __init__(self):
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self.pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, record):
        record["key_id"] = self.key_id
        record["signature"] = ""
        message = b"pgtrail checkpoint v1\n" + canon("checkpoints", record)
        record["signature"] = self.private.sign(message).hex()


class Trail:
    """Records of one instance, linked as pgtrail's writer links them."""

    def __init__(self, instance="pgtrail-1", key=None):
        self.instance = instance
        self.key = key
        self.chain = bytes(32)
        self.next_seq = 1
        self.records = []  # (table, {column: value})
        self.run_records = 0
        self.version = None  # an earlier schema version's columns (7, 8)

    def record(self, table, **values):
        seq = self.next_seq
        r = {c: copy.deepcopy(SAMPLE[k]) for c, k in COLUMNS[table]}
        r.update(event_id=str(uuid.UUID(int=(0x01A2 << 112) | seq)), instance_id=self.instance,
                 seq=seq, event_time=1796000000000000 + seq * 1000)
        if table == "changes":
            r.update({"key.name": ["id"], "key.value": ["1"], "old.name": [],
                      "old.value": [], "new.name": ["id", "v"], "new.value": ["1", None]})
        r.update(values)
        return r

    def link(self, table, r):
        columns = None if self.version is None else columns_before(table, self.version)
        self.chain = hashlib.sha256(self.chain + canon(table, r, columns)).digest()
        r["chain"] = self.chain.hex()
        self.next_seq = r["seq"] + 1
        self.run_records += 1
        return r

    def add(self, table, **values):
        r = self.link(table, self.record(table, **values))
        self.records.append((table, r))
        return r

    def statement(self, text="SELECT 1", **values):
        return self.add("statements", statement=text, **values)

    def checkpoint(self):
        r = self.record("checkpoints", previous_chain=self.chain.hex(),
                        records=self.run_records + 1, key_id="", signature="")
        if self.key:
            self.key.sign(r)
        self.records.append(("checkpoints", self.link("checkpoints", r)))
        return r

    def start(self, clean=True, previous=None, unknown=False):
        """The start record and its checkpoint. It continues from
        `previous` (default: the running value); `unknown`: from 32 zero
        bytes, its previous_chain empty (a crash, the last value lost)."""
        self.run_records = 0
        prev = bytes(32) if unknown else self.chain if previous is None else previous
        self.chain = prev
        self.add("lifecycle", event_type="start", previous_seq=self.next_seq - 1,
                 previous_chain="" if unknown else prev.hex(), clean=clean)
        self.checkpoint()

    def stop(self):
        self.add("lifecycle", event_type="stop", previous_seq=self.next_seq - 1,
                 previous_chain="", clean=False)
        self.checkpoint()

    def skip(self, n, reason="spool full (fail_open)"):
        """n records chained but not kept by the sink: a gap record stands
        for them, carrying the chain value after the last."""
        first = self.next_seq
        for _ in range(n):
            self.link("statements", self.record("statements"))
        gap = self.record("gaps", seq=first, missing_events=n, reason=reason, skipped_seqs=n)
        gap["chain"] = self.chain.hex()
        self.records.append(("gaps", gap))

    def lines(self):
        return [json_line(t, r) for t, r in self.records]

    def checkpoint_lines(self):
        return [json_line(t, r) for t, r in self.records if t == "checkpoints"]


def standard_trail(key=None, instance="pgtrail-1"):
    """start, 40 statements with a checkpoint after every 10th, stop: seqs 1..48."""
    t = Trail(instance, key)
    t.start()
    for i in range(40):
        t.statement("SELECT %d" % i)
        if i % 10 == 9:
            t.checkpoint()
    t.stop()
    return t


# ---------------------------------------------------------------------------
# Running the script.


class Run:
    def __init__(self, code, report, stdout, stderr):
        self.code, self.report, self.stdout, self.stderr = code, report, stdout, stderr

    def findings(self, severity=None):
        return [f for i in self.report.get("instances", []) for f in i["findings"]
                if severity is None or f["severity"] == severity]

    def kinds(self, severity=None):
        return sorted(f["kind"] for f in self.findings(severity))

    def __repr__(self):
        return "exit %d\n%s\n%s" % (self.code, self.stdout, self.stderr)


class Workdir:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="verify-trail-test-")

    def write(self, name, lines):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    def run(self, *args, env=None):
        p = subprocess.run([sys.executable, SCRIPT, "--json"] + list(args),
                           capture_output=True, text=True, env=env)
        try:
            report = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            report = {}
        return Run(p.returncode, report, p.stdout, p.stderr)

    def verify(self, lines, key=None, outside=None, extra=()):
        args = ["--jsonl", self.write("audit.jsonl", lines)]
        if key is not None:
            args += ["--public-key", self.write_bytes("key.pub", key.pem)]
        if outside is not None:
            args += ["--checkpoints", self.write("audit.jsonl.checkpoints", outside)]
        return self.run(*(args + list(extra)))

    def write_bytes(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def expect(run, errors=(), warnings=(), code=None):
    """The run's error and warning kinds are exactly these."""
    got_e, got_w = run.kinds("error"), run.kinds("warning")
    assert got_e == sorted(errors), "errors %s, expected %s\n%r" % (got_e, sorted(errors), run)
    assert got_w == sorted(warnings), "warnings %s, expected %s\n%r" % (got_w, sorted(warnings), run)
    want = (1 if errors else 0) if code is None else code
    assert run.code == want, "exit %d, expected %d\n%r" % (run.code, want, run)
    assert run.report["ok"] == (not errors), run


def finding(run, kind):
    found = [f for f in run.findings() if f["kind"] == kind]
    assert found, "no %s finding\n%r" % (kind, run)
    return found[0]


def with_line(lines, seq, change):
    """`lines` with the record of `seq` changed by change(obj)."""
    out = []
    for line in lines:
        obj = json.loads(line)
        if obj["seq"] == seq:
            change(obj)
            line = json.dumps(obj, ensure_ascii=False)
        out.append(line)
    return out


def seq_of(line):
    return json.loads(line)["seq"]


# ---------------------------------------------------------------------------
# The tests.

TESTS = []


def test(needs_key=False):
    def register(f):
        TESTS.append((f, needs_key))
        return f
    return register


@test()
def script_columns_are_the_tables():
    for table, cols in COLUMNS.items():
        assert [c for c, _ in vt.TABLES[table]] == [c for c, _ in cols], table
        assert [k for _, k in vt.TABLES[table][:-1]] == [k for _, k in cols[:-1]], table
    assert sorted(vt.TABLES) == sorted(COLUMNS)


@test()
def docs_list_every_column():
    text = open(DOC, encoding="utf-8").read()
    for table, cols in COLUMNS.items():
        m = re.search(r"^### %s\n(.*?)(?=^#|\Z)" % re.escape(table), text, re.S | re.M)
        assert m, "docs/integrity.md has no '### %s'" % table
        listed = re.findall(r"^\| `([\w.]+)` \|", m.group(1), re.M)
        assert listed == [c for c, _ in cols], "%s: %s" % (table, listed)


@test()
def the_gap_record_example_of_canonical_tests_rs():
    # src/audit/chain/canonical_tests.rs, a_gap_record_encodes_as_specified.
    fields = {"event_id": "0190d6c8-0000-7000-8000-000000000000", "instance_id": "i1",
              "seq": 3, "event_time": "2026-11-29T12:00:00.000000Z", "chain": "",
              "missing_events": 6, "reason": "r3", "skipped_seqs": 0}
    expected = (struct.pack("<I", 4) + b"gaps"
                + bytes([0x01, 0x90, 0xd6, 0xc8, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0])
                + struct.pack("<I", 2) + b"i1" + struct.pack("<Q", 3)
                + struct.pack("<q", 1795953600000000) + struct.pack("<Q", 6)
                + struct.pack("<I", 2) + b"r3" + struct.pack("<Q", 0))
    assert vt.canonical("gaps", fields) == expected
    # src/audit/chain/mod.rs, next_is_sha256_of_previous_then_bytes.
    assert vt.sha256(vt.GENESIS, b"abc").hex() == \
        "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370"
    # docs/integrity.md quotes the example's bytes and chain value.
    doc = open(DOC, encoding="utf-8").read()
    assert expected.hex() in re.sub(r"\s", "", doc), "the example's bytes in the doc"
    assert vt.sha256(vt.GENESIS, expected).hex() in doc, "the example's chain in the doc"


@test()
def clickhouse_rows_encode_as_json_lines_do():
    t = Trail()
    r = t.add("changes", transaction_id=None, statement_seq=12, old_complete=False)
    from_json = vt.record_of_json(json_line("changes", r), "x")
    old = dict(r, event_time=r["event_time"], commit_time=r["commit_time"],
               old_complete=0, forged_marker=1)  # 18.16: Int64 times, UInt8
    modern = dict(r, event_time=vt.time_text(r["event_time"]).replace("T", " ")[:-1],
                  commit_time=vt.time_text(r["commit_time"]).replace("T", " ")[:-1],
                  commit_lsn=str(r["commit_lsn"]))  # DateTime64(6), quoted UInt64
    for row in (old, modern):
        assert vt.Record("changes", row, "ch").canonical() == from_json.canonical()
    assert from_json.canonical() == canon("changes", r)


@test()
def every_table_links():
    t = Trail()
    t.start()
    for table in ("statements", "sessions", "transactions", "changes"):
        t.add(table)
    t.add("statements", params=[None, "", "x"])
    t.add("gaps", missing_events=3, reason="audit queue full (fail_open)", skipped_seqs=0)
    t.add("lifecycle", event_type="reload", detail="log.level", previous_seq=0,
          previous_chain="", clean=False)
    t.stop()
    w = Workdir()
    run = w.verify(t.lines())
    expect(run, warnings=["unsigned"])
    assert run.kinds("info") == ["gap"], run
    w.close()


@test(needs_key=True)
def a_clean_trail_passes():
    key = Key()
    t = standard_trail(key)
    w = Workdir()
    run = w.verify(t.lines(), key=key, outside=t.checkpoint_lines())
    expect(run)
    (inst,) = run.report["instances"]
    assert (inst["records"], inst["first_seq"], inst["last_seq"], inst["checkpoints"]) == \
        (48, 1, 48, 6), inst
    assert run.findings() == [], run
    text = subprocess.run([sys.executable, SCRIPT, "--jsonl", os.path.join(w.dir, "audit.jsonl")],
                          capture_output=True, text=True)
    assert text.returncode == 0 and text.stdout.splitlines()[-1].startswith("ok:"), text.stdout
    w.close()


@test()
def one_field_changed():
    lines = standard_trail().lines()
    w = Workdir()
    run = w.verify(with_line(lines, 7, lambda o: o.update(statement="DROP TABLE audit")))
    expect(run, errors=["altered"], warnings=["unsigned"])
    assert finding(run, "altered")["seq"] == 7
    # A time changed by one microsecond, a boolean flipped, a null made empty.
    for change in (lambda o: o.update(event_time=o["event_time"].replace("000Z", "001Z")),
                   lambda o: o.update(success=not o["success"]),
                   lambda o: o.update(params=[])):
        changed = with_line(lines, 9, change)
        if changed == lines:
            continue
        expect(w.verify(changed), errors=["altered"], warnings=["unsigned"])
    w.close()


@test()
def a_record_deleted():
    lines = standard_trail().lines()
    w = Workdir()
    run = w.verify([l for l in lines if seq_of(l) != 8])
    expect(run, errors=["deleted"], warnings=["unsigned"])
    f = finding(run, "deleted")
    assert (f["seq"], f["to_seq"]) == (8, 8), f
    w.close()


@test()
def a_range_deleted():
    lines = standard_trail().lines()
    w = Workdir()
    run = w.verify([l for l in lines if not 8 <= seq_of(l) <= 12])
    expect(run, errors=["deleted"], warnings=["unsigned"])
    f = finding(run, "deleted")
    assert (f["seq"], f["to_seq"]) == (8, 12), f
    w.close()


@test(needs_key=True)
def the_tail_deleted_with_a_checkpoint_kept_outside():
    key = Key()
    t = standard_trail(key)
    w = Workdir()
    run = w.verify([l for l in t.lines() if seq_of(l) <= 20], key=key,
                   outside=t.checkpoint_lines())
    expect(run, errors=["truncated"], warnings=["no_clean_stop"])
    f = finding(run, "truncated")
    assert (f["seq"], f["to_seq"]) == (21, 48), f
    # Without the outside copy, only the missing stop says something.
    expect(w.verify([l for l in t.lines() if seq_of(l) <= 20], key=key),
           warnings=["no_clean_stop"])
    # The whole trail of an instance removed: its outside checkpoints remain.
    run = w.verify(standard_trail(key, "other").lines(), key=key, outside=t.checkpoint_lines())
    expect(run, errors=["truncated"])
    w.close()


@test()
def a_record_inserted_with_a_seq_already_used():
    lines = standard_trail().lines()
    forged = with_line([l for l in lines if seq_of(l) == 9], 9,
                       lambda o: o.update(statement="SELECT 'nothing to see'"))
    at = [seq_of(l) for l in lines].index(9)
    w = Workdir()
    run = w.verify(lines[:at + 1] + forged + lines[at + 1:])
    expect(run, errors=["inserted"], warnings=["unsigned"])
    assert finding(run, "inserted")["seq"] == 9
    # Before the original, too: the one that links is kept.
    run = w.verify(lines[:at] + forged + lines[at:])
    expect(run, errors=["inserted"], warnings=["unsigned"])
    w.close()


@test()
def the_same_record_twice_is_a_duplicate():
    lines = standard_trail().lines()
    w = Workdir()
    run = w.verify(lines[:10] + [lines[9]] + lines[10:])
    expect(run, warnings=["unsigned"])
    assert "duplicate" in run.kinds("info"), run
    w.close()


@test()
def two_lines_swapped():
    lines = standard_trail().lines()
    w = Workdir()
    swapped = lines[:14] + [lines[15], lines[14]] + lines[16:]
    run = w.verify(swapped)
    expect(run, errors=["reordered"], warnings=["unsigned"])
    assert finding(run, "reordered")["seq"] == seq_of(lines[14])
    # Swapped and renumbered, so seqs still rise line by line.
    a, b = json.loads(lines[14]), json.loads(lines[15])
    a["seq"], b["seq"] = b["seq"], a["seq"]
    renumbered = lines[:14] + [json.dumps(b), json.dumps(a)] + lines[16:]
    run = w.verify(renumbered)
    expect(run, errors=["reordered"], warnings=["unsigned"])
    f = finding(run, "reordered")
    assert (f["seq"], f["to_seq"]) == (b["seq"], a["seq"]), f
    w.close()


@test()
def a_line_moved_far():
    lines = standard_trail().lines()
    moved = lines[:9] + lines[10:40] + [lines[9]] + lines[40:]
    w = Workdir()
    run = w.verify(moved)
    expect(run, errors=["reordered"], warnings=["unsigned"])
    assert finding(run, "reordered")["seq"] == seq_of(lines[9])
    # Further than the script keeps lines to sort: the seq was missing when
    # the chain reached it.
    run = w.verify(moved, extra=["--window", "5"])
    expect(run, errors=["deleted", "reordered"], warnings=["unsigned"])
    w.close()


def forged_from(t, seq, change):
    """The trail as an attacker without the signing key rewrites it: the
    record at `seq` changed by change(table, record), every chain value
    after it recomputed."""
    forged = Trail(t.instance)
    for table, r in t.records:
        r = dict(r)
        if r["seq"] == seq:
            change(table, r)
        if r["seq"] >= seq:
            r = forged.link(table, r)
        else:
            forged.chain = bytes.fromhex(r["chain"])
        forged.records.append((table, r))
    return forged


@test(needs_key=True)
def a_checkpoint_signed_by_another_key():
    key, other = Key(), Key()
    t = standard_trail(key)
    seqs = [r["seq"] for table, r in t.records if table == "checkpoints"]
    # The last one (after the stop record), chain value recomputed.
    forged = forged_from(t, seqs[-1], lambda table, r: other.sign(r))
    w = Workdir()
    run = w.verify(forged.lines(), key=key)
    expect(run, errors=["bad_signature"])
    assert finding(run, "bad_signature")["seq"] == seqs[-1]
    # Signed by the other key under the right key id.
    forged = forged_from(t, seqs[-1],
                         lambda table, r: (other.sign(r), r.update(key_id=key.key_id)))
    expect(w.verify(forged.lines(), key=key), errors=["bad_signature"])
    # One in the middle: the chain values after it change, so the signed
    # checkpoints after it no longer match either.
    forged = forged_from(t, seqs[2], lambda table, r: other.sign(r))
    run = w.verify(forged.lines(), key=key)
    expect(run, errors=["bad_signature"] + ["checkpoint_mismatch"] * (len(seqs) - 3))
    w.close()


@test(needs_key=True)
def an_old_checkpoint_replayed_at_a_later_seq():
    key = Key()
    t = standard_trail(key)
    cps = [r for table, r in t.records if table == "checkpoints"]
    old, later = cps[1], cps[3]

    def replay(table, r):
        r.update({c: old[c] for c in ("event_id", "event_time", "previous_chain", "records",
                                      "key_id", "signature")})

    forged = forged_from(t, later["seq"], replay)
    w = Workdir()
    run = w.verify(forged.lines(), key=key)
    assert "replayed_checkpoint" in run.kinds("error"), run
    assert finding(run, "replayed_checkpoint")["seq"] == later["seq"]
    assert run.code == 1
    w.close()


@test(needs_key=True)
def a_rewrite_with_recomputed_chains_breaks_the_signed_checkpoints():
    key = Key()
    t = standard_trail(key)
    forged = forged_from(t, 5, lambda table, r: r.update(statement="SELECT 'harmless'"))
    w = Workdir()
    run = w.verify(forged.lines(), key=key, outside=t.checkpoint_lines())
    assert "checkpoint_mismatch" in run.kinds("error"), run
    assert run.code == 1
    w.close()


@test()
def gap_records():
    t = Trail()
    t.start()
    for _ in range(5):
        t.statement()
    t.skip(4)
    t.add("gaps", missing_events=2, reason="audit queue full (fail_open)", skipped_seqs=0)
    for _ in range(3):
        t.statement()
    t.stop()
    w = Workdir()
    run = w.verify(t.lines())
    expect(run, warnings=["unsigned"])
    gaps = [f for f in run.findings() if f["kind"] == "gap"]
    assert [(f["seq"], f["to_seq"]) for f in gaps] == [(8, 11), (12, 12)], gaps
    # A gap whose chain value is not known: the chain is taken up again.
    lines = with_line(t.lines(), 8, lambda o: o.update(chain=""))
    expect(w.verify(lines), warnings=["unsigned", "unverified"])
    # A gap record cannot hide a deletion of other seqs.
    lines = [l for l in t.lines() if seq_of(l) != 13]
    expect(w.verify(lines), errors=["deleted"], warnings=["unsigned"])
    w.close()


@test()
def restarts():
    t = Trail()
    t.start()
    t.statement()
    t.stop()
    t.start()  # clean: continues from the stop's checkpoint
    t.statement()
    t.start(clean=False)  # crashed: continues from the last line kept
    t.statement()
    t.start(clean=False, unknown=True)  # crashed, last value unknown
    t.statement()
    t.stop()
    w = Workdir()
    run = w.verify(t.lines())
    expect(run, warnings=["crash", "crash", "unsigned"])
    # A clean start that does not continue from the record before it.
    t = Trail()
    t.start()
    t.statement()
    t.stop()
    t.start(previous=hashlib.sha256(b"elsewhere").digest())
    t.stop()
    expect(w.verify(t.lines()), errors=["broken_restart"], warnings=["unsigned"])
    # No stop at the end.
    expect(w.verify(standard_trail().lines()[:-2]), warnings=["no_clean_stop", "unsigned"])
    w.close()


@test()
def a_trail_that_starts_after_seq_1():
    lines = standard_trail().lines()
    w = Workdir()
    run = w.verify([l for l in lines if seq_of(l) > 12])
    expect(run, warnings=["unsigned", "unverified"])
    run = w.verify(lines, extra=["--from", "13", "--to", "30"])
    expect(run, warnings=["unsigned", "unverified"])
    assert run.report["instances"][0]["first_seq"] == 13, run
    w.close()


@test()
def rotated_files_are_read_in_order():
    lines = standard_trail().lines()
    w = Workdir()
    live = w.write("audit.jsonl", lines[30:])
    w.write("audit.jsonl.20261206T100000.000000Z", lines[:10])
    w.write("audit.jsonl.20261206T100000.000000Z.1", lines[10:20])
    w.write("audit.jsonl.20261206T110000.000000Z", lines[20:30])
    w.write("audit.jsonl.chain", ["{}"])  # not part of the trail
    run = w.run("--jsonl", live)
    expect(run, warnings=["unsigned"])
    assert run.report["instances"][0]["records"] == 48, run
    w.close()


@test()
def torn_and_malformed_lines():
    lines = standard_trail().lines()
    w = Workdir()
    path = w.write("audit.jsonl", lines)
    with open(path, "a") as f:
        f.write(lines[0][:40])  # a crash in the middle of a line
    expect(w.run("--jsonl", path), warnings=["torn", "unsigned"])
    # A record appended after the torn piece (the next run's first line).
    t = standard_trail()
    torn = t.lines()
    torn[20] = torn[20][:33] + torn[21]
    del torn[21]
    run = w.verify(torn)
    assert "torn" in run.kinds("warning") and "deleted" in run.kinds("error"), run
    expect(w.verify(lines[:5] + ["{not json"] + lines[5:]), errors=["malformed"],
           warnings=["unsigned"])
    # A field that is no column, and a field given twice.
    extra = with_line(lines, 4, lambda o: o.update(note="added"))
    expect(w.verify(extra), errors=["deleted", "malformed"], warnings=["unsigned"])
    twice = lines[:3] + [lines[3][:-1] + ',"statement":"x"}'] + lines[4:]
    expect(w.verify(twice), errors=["deleted", "malformed"], warnings=["unsigned"])
    w.close()


@test()
def several_instances_in_one_file():
    a, b = standard_trail(instance="a").lines(), standard_trail(instance="b").lines()
    w = Workdir()
    run = w.verify(a[:20] + b + a[20:])
    expect(run, warnings=["unsigned", "unsigned"])
    assert [i["instance_id"] for i in run.report["instances"]] == ["a", "b"]
    run = w.verify(a + b, extra=["--instance", "b"])
    assert [i["instance_id"] for i in run.report["instances"]] == ["b"]
    w.close()


@test()
def usage_and_io_errors_exit_2():
    w = Workdir()
    assert w.run("--jsonl", os.path.join(w.dir, "missing.jsonl")).code == 2
    assert w.run().code == 2
    assert w.run("--jsonl", "x", "--clickhouse-url", "http://127.0.0.1:1").code == 2
    assert w.run("--clickhouse-url", "http://127.0.0.1:1").code == 2
    w.close()


@test(needs_key=True)
def without_cryptography_checkpoints_are_unchecked():
    key = Key()
    t = standard_trail(key)
    w = Workdir()
    fake = os.path.join(w.dir, "fake")
    os.makedirs(os.path.join(fake, "cryptography"))
    with open(os.path.join(fake, "cryptography", "__init__.py"), "w") as f:
        f.write("raise ImportError('hidden by the test')\n")
    args = ["--jsonl", w.write("audit.jsonl", t.lines()),
            "--public-key", w.write_bytes("key.pub", key.pem)]
    run = w.run(*args, env=dict(os.environ, PYTHONPATH=fake))
    expect(run, warnings=["unchecked"])
    assert "cryptography" in run.stderr, run
    w.close()


@test()
def end_user_fields_on_every_table():
    """Records that name an end user (schema version 9) on each table that
    has the columns: every field set, each set alone, none; the script's
    bytes are this test's; a claim changed, added or removed is altered."""
    variants = [
        ALICE,
        dict(NOBODY, end_user="bob", end_user_source="set", end_user_reason="not signed"),
        dict(NOBODY, end_user_source="application_name"),
        dict(NOBODY, end_user_verified=True),
        dict(NOBODY, request_id="r-7"),
        dict(NOBODY, trace_id="0af7651916cd43dd8448eb211c80319c"),
        NOBODY,
    ]
    no_columns = {"columns_read": [], "columns_written": [], "labels": [], "via": [],
                  "columns_unresolved": [], "catalog_version": 0}
    t = Trail()
    t.start()
    first = {}
    for table in ("statements", "transactions", "changes"):
        for i, v in enumerate(variants):
            first[(table, i)] = t.add(table, **v)["seq"]
    t.statement(**dict(no_columns, **ALICE))  # 8's columns default, 9's not
    t.statement(**dict(no_columns, **NOBODY))  # neither
    t.stop()
    for table, r in t.records:
        line = json_line(table, r)
        assert vt.record_of_json(line, "x").canonical() == canon(table, r), (table, line)
        if table in TAILS and r["end_user"] == "":
            assert '"end_user"' not in line, line
    lines = t.lines()
    w = Workdir()
    expect(w.verify(lines), warnings=["unsigned"])
    for table in ("statements", "transactions", "changes"):
        alice, nobody = first[(table, 0)], first[(table, len(variants) - 1)]
        for seq, change in (
                (alice, lambda o: o.update(end_user="mallory")),
                (alice, lambda o: o.update(end_user_verified=False)),
                (alice, lambda o: o.update(end_user_source="set")),
                (alice, lambda o: o.pop("request_id")),
                (alice, lambda o: o.pop("end_user")),
                (nobody, lambda o: o.update(end_user="alice")),
                (nobody, lambda o: o.update(end_user_source="comment")),
                (nobody, lambda o: o.update(end_user_verified=True))):
            changed = with_line(lines, seq, change)
            assert changed != lines, (table, seq)
            expect(w.verify(changed), errors=["altered"],
                   warnings=["unsigned"])
        # A source no build writes is no record.
        forged = with_line(lines, alice, lambda o: o.update(end_user_source="admin"))
        expect(w.verify(forged), errors=["deleted", "malformed"], warnings=["unsigned"])
    w.close()


def earlier_trail():
    """Records chained by builds of schema versions 7 and 8 (without the
    end-user columns; 7 without the column access of statements either),
    then records of this version."""
    t = Trail()
    t.version = 7
    t.start()
    no_columns = {"columns_read": [], "columns_written": [], "labels": [], "via": [],
                  "columns_unresolved": [], "catalog_version": 0}
    for table in ("statements", "transactions", "changes"):
        t.add(table, **dict(no_columns, **NOBODY) if table == "statements" else NOBODY)
    t.version = 8
    t.statement(**NOBODY)  # with column access (SAMPLE's)
    t.statement(**dict(no_columns, **NOBODY))
    t.add("transactions", **NOBODY)
    t.add("changes", **NOBODY)
    t.checkpoint()
    t.version = None
    for table in ("statements", "transactions", "changes"):
        t.add(table, **ALICE)
        t.add(table, **NOBODY)
    t.stop()
    return t


@test()
def records_of_earlier_schema_versions_still_verify():
    t = earlier_trail()
    lines = t.lines()
    # JSON Lines of those builds had none of the later fields.
    assert not any('"end_user' in l for l in lines[:9]), lines[:9]
    w = Workdir()
    expect(w.verify(lines), warnings=["unsigned"])
    # Their bytes are what those builds hashed, also read by this build.
    for table, r in t.records[:9]:
        if table in TAILS:
            version = 7 if '"columns_read"' not in json_line(table, r) else 8
            assert vt.record_of_json(json_line(table, r), "x").canonical() == \
                canon(table, r, columns_before(table, version)), (table, r)
    # An end user added to a record of version 8 is a change.
    seq = t.records[5][1]["seq"]
    expect(w.verify(with_line(lines, seq, lambda o: o.update(end_user="x"))),
           errors=["altered"], warnings=["unsigned"])
    w.close()


class FakeClickHouse(http.server.BaseHTTPRequestHandler):
    """Answers the script's queries from `rows` (table -> list of rows)."""

    rows = {}

    def do_POST(self):
        sql = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if "system.tables" in sql:
            out = [{"name": t} for t in self.rows] + [{"name": "schema_migrations"}]
        elif "DISTINCT instance_id" in sql:
            table = re.search(r"`\.`(\w+)`", sql).group(1)
            out = [{"instance_id": i} for i in sorted({r["instance_id"] for r in self.rows[table]})]
        else:
            table = re.search(r"`\.`(\w+)`", sql).group(1)
            instance = re.search(r"instance_id = '([^']*)'", sql).group(1)
            out = sorted((r for r in self.rows[table] if r["instance_id"] == instance),
                         key=lambda r: r["seq"])
        body = "".join(json.dumps(r) + "\n" for r in out).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def clickhouse_rows(t, modern):
    rows = {table: [] for table in COLUMNS}
    for table, r in t.records:
        row = {}
        for column, kind in COLUMNS[table]:
            v = r[column]
            if kind == "time" and modern:
                v = vt.time_text(v).replace("T", " ")[:-1]
            if kind == "bool" and not modern:
                v = int(v)
            row[column] = v
        if not modern:
            row["event_date"] = "2026-12-06"
        rows[table].append(row)
    return rows


@test()
def clickhouse_old_and_modern():
    t = Trail()
    t.start()
    for table in ("statements", "sessions", "transactions", "changes"):
        t.add(table)
    t.skip(2)
    t.statement()
    t.stop()
    # Rows of earlier builds, filled with the new columns' defaults.
    early = earlier_trail()
    for modern in (False, True):
        FakeClickHouse.rows = clickhouse_rows(early, modern)
        server = http.server.HTTPServer(("127.0.0.1", 0), FakeClickHouse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d" % server.server_address[1]
        w = Workdir()
        expect(w.run("--clickhouse-url", url), warnings=["unsigned"])
        FakeClickHouse.rows["changes"][-1]["end_user_source"] = "startup"
        expect(w.run("--clickhouse-url", url), errors=["altered"], warnings=["unsigned"])
        server.shutdown()
        server.server_close()
        w.close()
    for modern in (False, True):
        FakeClickHouse.rows = clickhouse_rows(t, modern)
        server = http.server.HTTPServer(("127.0.0.1", 0), FakeClickHouse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d" % server.server_address[1]
        w = Workdir()
        run = w.run("--clickhouse-url", url, "--user", "auditor", "--password", "p")
        expect(run, warnings=["unsigned"])
        assert run.report["instances"][0]["last_seq"] == t.next_seq - 1, run
        # A row changed in ClickHouse.
        FakeClickHouse.rows["sessions"][0]["user"] = "mallory"
        expect(w.run("--clickhouse-url", url), errors=["altered"], warnings=["unsigned"])
        server.shutdown()
        server.server_close()
        w.close()


def main():
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for f, needs_key in TESTS:
        if only and f.__name__ not in only:
            continue
        if needs_key and Ed25519PrivateKey is None:
            print("SKIP %s (no cryptography package)" % f.__name__)
            skipped += 1
            continue
        try:
            f()
        except Exception:
            failed += 1
            print("FAIL %s\n%s" % (f.__name__, traceback.format_exc()))
        else:
            passed += 1
            print("ok   %s" % f.__name__)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
