#!/usr/bin/env python3
"""Verify a pgtrail audit trail: its hash chain, gap records and checkpoints.

An independent re-implementation of `pgtrail verify`, written from
docs/integrity.md so that an auditor can read it in one sitting and does
not have to trust pgtrail's own code. Standard library only; checking the
Ed25519 signatures of checkpoints needs the `cryptography` package (Debian:
python3-cryptography). Without it, checkpoints are reported as unchecked.

    verify_trail.py --jsonl /var/log/pgtrail/audit.jsonl \\
        --public-key checkpoint.pub --checkpoints /mnt/worm/checkpoints.jsonl
    verify_trail.py --clickhouse-url http://127.0.0.1:8123 --database pgtrail \\
        --user auditor --password ... --instance pgtrail-1 --public-key checkpoint.pub

Exit status: 0 when no finding is an error, 1 when one is, 2 on a usage or
I/O error (a file that cannot be read, ClickHouse not answering).

How it works, per instance, records taken in seq order:
  chain(record) = SHA-256(chain before it || canonical bytes of the record)
The first record (seq 1) continues from 32 zero bytes. A record whose stored
`chain` is not the value computed is reported (`altered`), and the stored
value is taken to go on, so one changed record gives one finding.
"""

import argparse
import base64
import hashlib
import heapq
import json
import os
import re
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

try:  # Only for checkpoint signatures.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - depends on the machine
    Ed25519PublicKey = None

# ---------------------------------------------------------------------------
# The tables and their columns, in table order (the order of the ClickHouse
# tables, src/audit/sink/clickhouse/schema/tables.rs; docs/integrity.md lists
# them too). `chain` is not part of the canonical bytes; it is the last
# column but for those added since (see OPTIONAL_TAIL).

UUID = "uuid"  # 16 bytes, RFC 4122 order
TEXT = "text"  # u32 LE byte length, then UTF-8 bytes
U16 = "u16"
U32 = "u32"
U64 = "u64"
TIME = "time"  # Int64 LE, microseconds since the epoch
BOOL = "bool"  # one byte, 0 or 1
TEXTS = "texts"  # Array(String)
OPT_TEXTS = "opt_texts"  # Array(Nullable(String))
U64S = "u64s"  # Array(UInt64)
OPT_U64 = "opt_u64"  # Nullable(UInt64)
OPT_UUID = "opt_uuid"  # Nullable(UUID)
SOURCE = "source"  # Enum8 of the end user's source: one byte, its value

# `end_user_source`: the names records and ClickHouse show, and their values.
SOURCES = {"none": 0, "comment": 1, "set": 2, "startup": 3, "application_name": 4}

# Schema version 9: the end user a record names (statements, transactions,
# changes), after every earlier column.
END_USER = [
    ("end_user", TEXT), ("end_user_source", SOURCE), ("end_user_verified", BOOL),
    ("end_user_reason", TEXT), ("request_id", TEXT), ("trace_id", TEXT),
]

HEADER = [("event_id", UUID), ("instance_id", TEXT), ("seq", U64), ("event_time", TIME)]

TABLES = {
    "statements": HEADER + [
        ("duration_us", U64), ("session_id", TEXT), ("backend_pid", U32),
        ("user", TEXT), ("db_role", TEXT), ("effective_role", TEXT),
        ("database", TEXT), ("client_addr", TEXT), ("client_port", U16),
        ("application_name", TEXT), ("protocol", TEXT), ("statement", TEXT),
        ("statement_truncated", BOOL), ("statement_escaped", BOOL),
        ("fingerprint", U64), ("normalized", TEXT), ("kind", TEXT),
        ("class", TEXT), ("crud", TEXT), ("audit_class", TEXT),
        ("objects_read", TEXTS), ("objects_written", TEXTS), ("functions", TEXTS),
        ("parser", TEXT), ("command_tag", TEXT), ("rows", U64), ("success", BOOL),
        ("sqlstate", TEXT), ("error_message", TEXT), ("txn_status", TEXT),
        ("transaction_id", UUID), ("params", OPT_TEXTS), ("chain", TEXT),
        # Schema version 8 (after `chain`; see OPTIONAL_TAIL).
        ("columns_read", TEXTS), ("columns_written", TEXTS), ("labels", TEXTS),
        ("via", TEXTS), ("columns_unresolved", TEXTS), ("catalog_version", U64),
    ] + END_USER,
    "sessions": HEADER + [
        ("event_type", TEXT), ("session_id", TEXT), ("backend_pid", U32),
        ("user", TEXT), ("db_role", TEXT), ("effective_role", TEXT),
        ("database", TEXT), ("client_addr", TEXT), ("client_port", U16),
        ("application_name", TEXT), ("tls", BOOL), ("auth_method", TEXT),
        ("reason", TEXT), ("bytes_in", U64), ("bytes_out", U64),
        ("statements", U64), ("duration_us", U64), ("chain", TEXT),
    ],
    "transactions": HEADER + [
        ("transaction_id", UUID), ("session_id", TEXT), ("backend_pid", U32),
        ("user", TEXT), ("db_role", TEXT), ("effective_role", TEXT),
        ("database", TEXT), ("client_addr", TEXT), ("client_port", U16),
        ("application_name", TEXT), ("outcome", TEXT), ("statements", U64),
        ("first_seq", U64), ("last_seq", U64), ("started_at", TIME),
        ("duration_us", U64), ("rows_changed", U64), ("xid", OPT_U64),
        ("undone_from_seq", U64S), ("undone_to_seq", U64S), ("chain", TEXT),
    ] + END_USER,
    "changes": HEADER + [
        ("commit_lsn", U64), ("lsn", U64), ("change_index", U32), ("xid", U32),
        ("commit_time", TIME), ("database", TEXT), ("schema", TEXT),
        ("table", TEXT), ("op", TEXT),
        ("key.name", TEXTS), ("key.value", OPT_TEXTS),
        ("old.name", TEXTS), ("old.value", OPT_TEXTS),
        ("new.name", TEXTS), ("new.value", OPT_TEXTS),
        ("old_complete", BOOL), ("changed_columns", TEXTS),
        ("truncated_columns", TEXTS), ("transaction_id", OPT_UUID),
        ("statement_seq", OPT_U64), ("session_id", TEXT), ("user", TEXT),
        ("db_role", TEXT), ("client_addr", TEXT), ("application_name", TEXT),
        ("attribution", TEXT), ("forged_marker", BOOL), ("chain", TEXT),
    ] + END_USER,
    "gaps": HEADER + [
        ("missing_events", U64), ("reason", TEXT), ("skipped_seqs", U64),
        ("chain", TEXT),
    ],
    "checkpoints": HEADER + [
        ("previous_chain", TEXT), ("records", U64), ("key_id", TEXT),
        ("signature", TEXT), ("chain", TEXT),
    ],
    "lifecycle": HEADER + [
        ("event_type", TEXT), ("version", TEXT), ("config_digest", TEXT),
        ("detail", TEXT), ("previous_seq", U64), ("previous_chain", TEXT),
        ("clean", BOOL), ("chain", TEXT),
    ],
}

# In JSON Lines, `changes` holds key/old/new as objects {column: text|null};
# ClickHouse holds each as two array columns, `<field>.name`, `<field>.value`.
NESTED = ("key", "old", "new")

GENESIS = bytes(32)
SIGNING_PREFIX = b"pgtrail checkpoint v1\n"
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Records held per instance to put JSON Lines back in seq order. pgtrail
# writes in seq order, so only a line moved further than this is "late".
REORDER_WINDOW = 10000


class Malformed(Exception):
    """A line or row that cannot be read as a record."""


# ---------------------------------------------------------------------------
# Canonical bytes.


def u32(n):
    return struct.pack("<I", n)


def text_bytes(s):
    if not isinstance(s, str):
        raise Malformed("text expected, got %r" % (s,))
    b = s.encode("utf-8")
    return u32(len(b)) + b


def as_int(v):
    # ClickHouse may quote 64-bit integers; booleans are no integers here.
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    raise Malformed("integer expected, got %r" % (v,))


def as_bool(v):
    if v in (True, 1, "1", "true"):
        return True
    if v in (False, 0, "0", "false"):
        return False
    raise Malformed("boolean expected, got %r" % (v,))


TIME_TEXT = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z?)")


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def as_micros(v):
    """A time: Int64 microseconds (ClickHouse 18.16), RFC 3339 text (JSON
    Lines), or 'YYYY-MM-DD hh:mm:ss.ffffff' (DateTime64(6, 'UTC'))."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        if re.fullmatch(r"-?\d+", v):
            return int(v)
        m = TIME_TEXT.fullmatch(v)
        if m and 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31:
            y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
            frac = int(((m.group(7) or "")[:6]).ljust(6, "0"))
            secs = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
            return secs * 1000000 + frac
    raise Malformed("time expected, got %r" % (v,))


def time_text(micros):
    """RFC 3339 with microseconds, as pgtrail writes times."""
    secs, frac = divmod(micros, 1000000)
    days, sod = divmod(secs, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (m <= 2)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        y, m, d, sod // 3600, sod % 3600 // 60, sod % 60, frac)


def uuid_bytes(v):
    try:
        return uuid.UUID(v).bytes
    except (TypeError, ValueError, AttributeError):
        raise Malformed("UUID expected, got %r" % (v,))


def array(v):
    if not isinstance(v, list):
        raise Malformed("array expected, got %r" % (v,))
    return v


def encode(kind, v):
    """The canonical bytes of one value of a column of type `kind`."""
    if kind == TEXT:
        return text_bytes(v)
    if kind == UUID:
        return uuid_bytes(v)
    if kind in (U16, U32, U64):
        fmt = {U16: "<H", U32: "<I", U64: "<Q"}[kind]
        try:
            return struct.pack(fmt, as_int(v))
        except struct.error:
            raise Malformed("%r is out of range for %s" % (v, kind))
    if kind == TIME:
        return struct.pack("<q", as_micros(v))
    if kind == BOOL:
        return b"\x01" if as_bool(v) else b"\x00"
    if kind == TEXTS:
        v = array(v)
        return u32(len(v)) + b"".join(text_bytes(s) for s in v)
    if kind == OPT_TEXTS:
        v = array(v)
        return u32(len(v)) + b"".join(
            b"\x00" if s is None else b"\x01" + text_bytes(s) for s in v)
    if kind == U64S:
        v = array(v)
        return u32(len(v)) + b"".join(encode(U64, n) for n in v)
    if kind == OPT_U64:
        return b"\x00" if v is None else b"\x01" + encode(U64, v)
    if kind == OPT_UUID:
        return b"\x00" if v is None else b"\x01" + uuid_bytes(v)
    if kind == SOURCE:
        # JSON Lines and ClickHouse's JSONEachRow give the name.
        if v not in SOURCES:
            raise Malformed("end-user source expected, got %r" % (v,))
        return bytes([SOURCES[v]])
    raise AssertionError(kind)


# The value of a column a record lacks (records of earlier builds): what
# pgtrail reads for it.
DEFAULTS = {TEXT: "", UUID: NIL_UUID, U16: 0, U32: 0, U64: 0, TIME: 0, BOOL: False,
            TEXTS: [], OPT_TEXTS: [], U64S: [], OPT_U64: None, OPT_UUID: None,
            SOURCE: "none"}


# Columns added to a table after its records were first chained: each
# entry is the first column of one such tail, oldest first (schema version
# 8's columns of `statements`, 9's end-user columns). Every default encodes
# as zero bytes, so records written before a tail keep their bytes: the
# canonical bytes end at the first tail from which on every byte is zero.
OPTIONAL_TAIL = {
    "statements": ["columns_read", "end_user"],
    "transactions": ["end_user"],
    "changes": ["end_user"],
}


def canonical(table, fields, seq=None):
    """The table name, then every column but `chain` in table order."""
    out = [text_bytes(table)]
    tails = []
    for column, kind in TABLES[table]:
        if column == "chain":
            continue
        if column in OPTIONAL_TAIL.get(table, ()):
            tails.append(len(out))
        value = fields.get(column)
        if column == "seq" and seq is not None:
            value = seq
        elif value is None and kind not in (OPT_U64, OPT_UUID):
            value = DEFAULTS[kind]  # absent, e.g. `params` not recorded
        try:
            out.append(encode(kind, value))
        except Malformed as e:
            raise Malformed("%s: %s" % (column, e))
    for tail in tails:
        if not any(any(part) for part in out[tail:]):
            del out[tail:]
            break
    return b"".join(out)


def value_bytes(kind, value):
    """For comparing two values of a column; None when it cannot be encoded."""
    try:
        return encode(kind, DEFAULTS[kind] if value is None else value)
    except Malformed:
        return None


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


# ---------------------------------------------------------------------------
# Records.


def parse_chain(text):
    """(value, ok): 32 bytes or None for ""; ok is False for other text."""
    if text in ("", None):
        return None, True
    if isinstance(text, str) and re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text), True
    return None, False


class Record:
    """One record, read from a JSON line or a ClickHouse row."""

    __slots__ = ("table", "fields", "seq", "time", "chain", "chain_ok", "where", "_canon")

    def __init__(self, table, fields, where):
        if table not in TABLES:
            raise Malformed("unknown record type %r" % (table,))
        self.table = table
        self.fields = fields
        self.where = where
        try:
            self.seq = as_int(fields["seq"])
        except KeyError:
            raise Malformed("no seq")
        if not isinstance(fields.get("instance_id"), str):
            raise Malformed("no instance_id")
        try:
            self.time = as_micros(fields.get("event_time", 0))
        except Malformed:
            self.time = None
        self.chain, self.chain_ok = parse_chain(fields.get("chain", ""))
        self._canon = canonical(table, fields)  # raises Malformed for bad values

    @property
    def instance(self):
        return self.fields["instance_id"]

    def canonical(self, seq=None):
        if seq is not None and seq != self.seq:
            return canonical(self.table, self.fields, seq)
        return self._canon

    def identity(self):
        return self.canonical(), self.chain, self.chain_ok

    def get(self, column):
        return self.fields.get(column)

    @property
    def skipped(self):
        """Seqs a gap record stands for (0: it is a link of the chain)."""
        if self.table != "gaps":
            return 0
        return as_int(self.fields.get("skipped_seqs") or 0)

    def is_lifecycle(self, event_type):
        return self.table == "lifecycle" and self.fields.get("event_type") == event_type

    def when(self):
        return "-" if self.time is None else time_text(self.time)


def no_duplicate_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Malformed("field %r appears twice" % k)
        seen[k] = v
    return seen


def record_of_json(line, where):
    """A JSON Lines record: `record` names the table, key/old/new of a
    change are objects of column to text or null."""
    try:
        obj = json.loads(line, object_pairs_hook=no_duplicate_keys)
    except ValueError as e:
        raise Malformed(str(e))
    if not isinstance(obj, dict):
        raise Malformed("not a JSON object")
    table = obj.pop("record", None)
    if table not in TABLES:
        raise Malformed("unknown record type %r" % (table,))
    if table == "changes":
        for field in NESTED:
            columns = obj.pop(field, {})
            if not isinstance(columns, dict):
                raise Malformed("%s is not an object" % field)
            obj[field + ".name"] = list(columns.keys())
            obj[field + ".value"] = list(columns.values())
    known = {c for c, _ in TABLES[table]}
    extra = sorted(k for k in obj if k not in known)
    if extra:
        raise Malformed("fields that are no column of %s: %s" % (table, ", ".join(extra)))
    return Record(table, obj, where)


# ---------------------------------------------------------------------------
# Findings.

ERROR, WARNING, INFO = "error", "warning", "info"


class Findings:
    """The findings of one instance (at most `limit` kept; all counted)."""

    def __init__(self, limit):
        self.items = []
        self.limit = limit
        self.counts = {}

    def add(self, kind, severity, seq, to_seq, detail, time=None):
        self.counts[(kind, severity)] = self.counts.get((kind, severity), 0) + 1
        if len(self.items) < self.limit:
            self.items.append({"kind": kind, "severity": severity, "seq": seq,
                               "to_seq": seq if to_seq is None else to_seq,
                               "detail": detail, "time": time})

    def count(self, severity):
        return sum(n for (_, s), n in self.counts.items() if s == severity)


# ---------------------------------------------------------------------------
# Checkpoint signatures.


class Keys:
    """The public keys given, by key id."""

    def __init__(self, paths):
        self.by_id = {}
        self.given = bool(paths)
        self.usable = Ed25519PublicKey is not None
        for path in paths:
            with open(path, "rb") as f:
                pem = f.read()
            raw = pem_public_key_bytes(pem, path)
            key_id = hashlib.sha256(raw).hexdigest()[:16]
            self.by_id[key_id] = Ed25519PublicKey.from_public_bytes(raw) if self.usable else None

    def check(self, record):
        """None when the signature is good, else why not."""
        key_id = record.get("key_id") or ""
        signature = record.get("signature") or ""
        if not signature:
            return "the checkpoint is not signed"
        if key_id not in self.by_id:
            return "signed with key %s, which is none of the public keys given (%s)" % (
                key_id or "(none)", ", ".join(sorted(self.by_id)))
        unsigned = dict(record.fields, signature="")
        message = SIGNING_PREFIX + canonical("checkpoints", unsigned)
        try:
            self.by_id[key_id].verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError, TypeError):
            return "the signature does not verify with key %s" % key_id
        return None


def pem_public_key_bytes(pem, path):
    """The 32 key bytes of an Ed25519 SubjectPublicKeyInfo PEM file."""
    m = re.search(rb"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", pem, re.S)
    if not m:
        raise ValueError("%s: no PEM \"PUBLIC KEY\" block" % path)
    der = base64.b64decode(b"".join(m.group(1).split()))
    prefix = bytes.fromhex("302a300506032b6570032100")  # Ed25519 SPKI header
    if not der.startswith(prefix) or len(der) != len(prefix) + 32:
        raise ValueError("%s: not an Ed25519 public key" % path)
    return der[len(prefix):]


# ---------------------------------------------------------------------------
# The check of one instance: records come in seq order, those with the same
# seq together (a "group").


class Checker:
    def __init__(self, instance_id, keys, outside, limit, seq_range, outside_gaps=()):
        self.instance_id = instance_id
        self.keys = keys
        self.findings = Findings(limit)
        self.seq_range = seq_range  # (from, to), either None
        self.records = 0  # records read, duplicates included
        self.first_seq = None
        self.last_seq = None
        self.checkpoints = 0
        self.running = None  # the chain value the next record continues from
        self.quiet_unknown = False  # running unknown after a finding: no warning
        self.chained = False  # a record with a chain value was seen
        self.next_seq = None  # the seq expected next
        self.gap_range = None  # (first, last) of the last gap record's seqs
        self.pending = None  # a group waiting for the next one (swap test)
        self.consumed = None  # the seq of a group a swap already took
        self.signatures = {}  # signature -> seq of its first checkpoint
        self.warned = set()  # warnings given once per instance
        self.tail_ok = False  # the last record is a stop (and its checkpoint)
        self.outside = outside  # seq -> checkpoint record kept outside
        # Gap records kept outside, (seq, skipped seqs, chain), and the seq
        # up to which the outside copy covers the trail.
        self.outside_gaps = set(outside_gaps)
        self.outside_until = max(outside) if outside else None
        for seq in sorted(outside):
            self.check_signature(outside[seq], "the outside copy of the checkpoint")

    def add(self, kind, severity, seq, to_seq, detail, record=None):
        self.findings.add(kind, severity, seq, to_seq, detail,
                          record.when() if record is not None else None)

    # The stream.

    def feed(self, group):
        self.records += len(group)
        if self.pending is not None:
            self.process(self.pending, group)
        self.pending = group

    def finish(self):
        if self.pending is not None:
            self.process(self.pending, None)
            self.pending = None
        to = self.seq_range[1]
        if self.last_seq is not None and not self.tail_ok and to is None:
            self.add("no_clean_stop", WARNING, self.last_seq, None,
                     "the trail does not end with a stop record: pgtrail is running, "
                     "crashed, or records at the end were removed")
        # Checkpoints kept outside that the trail does not have.
        beyond = [s for s in self.outside if self.next_seq is None or s >= self.next_seq]
        if beyond:
            first = 1 if self.next_seq is None else self.next_seq
            self.add("truncated", ERROR, first, max(beyond),
                     "the outside copy has a checkpoint at seq %d, the trail ends before it"
                     % max(beyond))
        for seq in sorted(s for s in self.outside if s not in beyond):
            self.add("checkpoint_mismatch", ERROR, seq, None,
                     "the outside copy has a checkpoint at seq %d, the trail has no record there"
                     % seq)

    # One group: the records with one seq.

    def process(self, group, lookahead):
        seq = group[0].seq
        if seq == self.consumed:
            return
        record = self.choose(group)
        if not self.in_sequence(record):
            return
        self.compare_outside(record)
        if record.skipped:
            self.gap(record)
        else:
            self.link(record, lookahead)
        self.last_seq = max(self.last_seq or 0, seq + max(record.skipped, 1) - 1)

    def compare_outside(self, record):
        """The trail's record at the seq of a checkpoint kept outside must be
        that checkpoint."""
        if record.skipped:
            inside = [s for s in self.outside if record.seq <= s < record.seq + record.skipped]
            for s in sorted(inside):
                del self.outside[s]
                self.add("gap", INFO, s, None,
                         "the outside copy has a checkpoint at seq %d, which the gap record "
                         "at seq %d says was not kept" % (s, record.seq), record)
            return
        copy = self.outside.pop(record.seq, None)
        if copy is None:
            return
        if record.table != "checkpoints":
            self.add("checkpoint_mismatch", ERROR, record.seq, None,
                     "the outside copy has a checkpoint at seq %d, the trail a %s record"
                     % (record.seq, record.table), record)
            return
        differs = [c for c, kind in TABLES["checkpoints"][:-1]
                   if value_bytes(kind, copy.get(c)) != value_bytes(kind, record.get(c))]
        if (copy.chain, copy.chain_ok) != (record.chain, record.chain_ok):
            differs.append("chain")
        if differs:
            self.add("checkpoint_mismatch", ERROR, record.seq, None,
                     "the outside copy of this checkpoint differs in %s" % ", ".join(differs),
                     record)

    def links(self, record):
        """Whether `record` provably follows the running chain value."""
        if record.skipped or record.chain is None:
            return False
        if record.is_lifecycle("start"):
            previous, ok = parse_chain(record.get("previous_chain"))
            if ok and sha256(previous or GENESIS, record.canonical()) == record.chain:
                return True
        return self.running is not None and sha256(self.running, record.canonical()) == record.chain

    def choose(self, group):
        """Of records with one seq: identical copies are duplicates; of
        different ones, the one that links is kept, the others inserted."""
        distinct = []
        for r in group:
            if any(r.identity() == d.identity() for d in distinct):
                self.add("duplicate", INFO, r.seq, None,
                         "the same record twice (%s)" % r.where, r)
            else:
                distinct.append(r)
        if len(distinct) == 1:
            return distinct[0]
        linking = [r for r in distinct if self.links(r)]
        chosen = linking[0] if linking else distinct[0]
        for r in distinct:
            if r is chosen:
                continue
            if r.skipped and not chosen.skipped:
                self.add("gap", INFO, r.seq, r.seq + r.skipped - 1,
                         "a gap record says seqs %d..%d were not kept, yet records with "
                         "them are here (%s)" % (r.seq, r.seq + r.skipped - 1, r.where), r)
            else:
                self.add("inserted", ERROR, r.seq, None,
                         "a second, different %s record with seq %d (%s); %s is kept" % (
                             r.table, r.seq, r.where,
                             "the other links" if linking else "neither links"), r)
        return chosen

    def in_sequence(self, record):
        """Reports seqs missing before `record`; False for a record inside
        the seqs of a gap record (it is not checked further)."""
        seq = record.seq
        if self.next_seq is None:
            self.first_seq = seq
            if seq == 1:
                self.running = GENESIS
            else:
                self.add("unverified", WARNING, seq, None,
                         "the trail starts at seq %d%s: the chain value before it is not "
                         "known, so the first record's is taken as it is" % (
                             seq, " (--from)" if self.seq_range[0] else ", not 1"), record)
                self.quiet_unknown = True
        elif seq > self.next_seq:
            self.add("deleted", ERROR, self.next_seq, seq - 1,
                     "no record has seq %s and no gap record explains it" % (
                         self.next_seq if seq - 1 == self.next_seq
                         else "%d..%d" % (self.next_seq, seq - 1)), record)
            self.running = None
            self.quiet_unknown = True
        elif seq < self.next_seq:
            first, last = self.gap_range or (seq, seq)
            self.add("inserted", ERROR, seq, None,
                     "a %s record with seq %d, which the gap record at seq %d says was "
                     "not kept (seqs %d..%d) (%s)" % (record.table, seq, first, first, last,
                                                       record.where), record)
            return False
        return True

    def unknown(self, record, why):
        if not self.quiet_unknown:
            self.add("unverified", WARNING, record.seq, None, why, record)
        self.quiet_unknown = False

    def gap(self, record):
        seq, n = record.seq, record.skipped
        # A gap record must be in the outside copy too, where that copy
        # covers its seq: one that is not may hide records deleted in its
        # place. (One whose chain value is not known is not asked for.)
        if (record.chain is not None and self.outside_until is not None
                and self.outside_until > seq
                and (seq, n, record.chain) not in self.outside_gaps):
            self.add("inserted", ERROR, seq, seq + n - 1,
                     "a gap record the outside copy does not have: it may stand in for "
                     "records that were deleted", record)
        self.add("gap", INFO, seq, seq + n - 1,
                 "a gap record stands for %d seq(s) with no record: %s"
                 % (n, record.get("reason")), record)
        if not record.chain_ok:
            self.add("altered", ERROR, seq, None,
                     "the gap record's chain is not 64 hex digits", record)
        self.running = record.chain
        self.quiet_unknown = False
        self.next_seq = seq + n
        self.gap_range = (seq, seq + n - 1)
        self.tail_ok = False

    def link(self, record, lookahead):
        seq = record.seq
        self.next_seq = seq + 1
        before = self.running
        if record.table == "gaps":
            self.add("gap", INFO, seq, None, "%s events were not audited: %s" % (
                record.get("missing_events"), record.get("reason")), record)
        if not record.chain_ok or (record.chain is None and self.chained):
            self.add("altered", ERROR, seq, None,
                     "the chain value is %s" % ("missing" if record.chain_ok
                                                else "not 64 hex digits"), record)
            self.running, self.quiet_unknown = None, True
            self.after(record, None)
            return
        if record.chain is None:
            # Records of builds before the chain, ahead of the first chained
            # one (an upgrade); after it, a missing value is an edit (above).
            self.unknown(record, "records without a chain value (written before "
                                 "pgtrail chained records): not verified")
            self.running, self.quiet_unknown = None, True
            self.after(record, None)
            return
        self.chained = True
        if before is None:
            before = self.start_unknown(record)
            if before is None:
                self.running = record.chain
                self.after(record, None)
                return
        if record.is_lifecycle("start"):
            self.restart(record, before)
        elif sha256(before, record.canonical()) != record.chain:
            if self.swapped(record, before, lookahead):
                return
            self.add("altered", ERROR, seq, None,
                     "the chain value does not follow from the record before it: this "
                     "record was changed (%s)" % record.where, record)
        self.running = record.chain
        self.after(record, before)

    def start_unknown(self, record):
        """The running value is not known (the trail starts after seq 1,
        after a gap of unknown chain, or after a finding): a checkpoint or
        start record says where it stands, else the record's own is taken."""
        previous, ok = parse_chain(record.get("previous_chain"))
        if record.table == "checkpoints" and ok and previous is not None:
            if not (self.keys.given and self.keys.usable and self.keys.check(record) is None):
                self.unknown(record, "the chain before seq %d is not known: taken from "
                                     "this unverified checkpoint" % record.seq)
            self.quiet_unknown = False
            return previous
        if record.is_lifecycle("start") and ok:
            if record.seq != 1:
                self.unknown(record, "the chain before seq %d is not known: taken from "
                                     "the start record" % record.seq)
            self.quiet_unknown = False
            return previous or GENESIS
        self.unknown(record, "the chain before seq %d is not known: its stored "
                             "chain value is taken as it is" % record.seq)
        return None

    def restart(self, record, before):
        """A start record links from its own `previous_chain` (empty: 32
        zero bytes), which after a clean stop is the running value."""
        seq = record.seq
        previous, ok = parse_chain(record.get("previous_chain"))
        self_links = ok and sha256(previous or GENESIS, record.canonical()) == record.chain
        follows = before is not None and sha256(before, record.canonical()) == record.chain
        clean = as_bool(record.get("clean"))
        if not self_links and not follows:
            self.add("altered", ERROR, seq, None,
                     "the start record's chain value follows neither from the record "
                     "before it nor from its previous_chain (%s)" % record.where, record)
        elif not clean:
            if previous is None:
                how = "the chain restarts (its last value was not known)"
            else:
                how = "the chain continues from seq %s" % record.get("previous_seq")
                if not follows and before is not None:
                    how += (", whose chain value is not that of the record before this "
                            "one (records of the previous run are missing here)")
            self.add("crash", WARNING, seq, None,
                     "the previous run did not stop cleanly: " + how, record)
        elif not follows and before is not None:
            self.add("broken_restart", ERROR, seq, None,
                     "a clean restart whose previous_chain is not the chain value of the "
                     "record before it: records of the previous run were changed or "
                     "removed", record)

    def swapped(self, record, before, lookahead):
        """Two neighbours exchanged (with their seqs exchanged back)?"""
        if not lookahead or len({r.identity() for r in lookahead}) != 1:
            return False
        other = lookahead[0]
        if other.seq != record.seq + 1 or other.skipped or other.chain is None:
            return False
        try:
            if (sha256(before, other.canonical(record.seq)) != other.chain or
                    sha256(other.chain, record.canonical(other.seq)) != record.chain):
                return False
        except Malformed:
            return False
        self.add("reordered", ERROR, record.seq, other.seq,
                 "records %d and %d were exchanged" % (record.seq, other.seq), record)
        self.running = record.chain
        self.next_seq = other.seq + 1
        self.consumed = other.seq
        self.last_seq = max(self.last_seq or 0, other.seq)
        self.tail_ok = other.is_lifecycle("stop")
        return True

    def after(self, record, before):
        """Checkpoints, and where the trail ends."""
        if record.table == "checkpoints":
            self.checkpoint(record, before)
            return  # tail_ok stays as the stop record left it
        self.tail_ok = record.is_lifecycle("stop")

    def checkpoint(self, record, before):
        seq = record.seq
        self.checkpoints += 1
        previous, ok = parse_chain(record.get("previous_chain"))
        if before is not None and previous != before:
            self.add("checkpoint_mismatch", ERROR, seq, None,
                     "the checkpoint's previous_chain is not the chain value of the "
                     "record before it", record)
        self.check_signature(record, "the checkpoint")

    def check_signature(self, record, what):
        seq = record.seq
        if not self.keys.given:
            if "unsigned" not in self.warned:
                self.warned.add("unsigned")
                self.add("unsigned", WARNING, seq, None,
                         "checkpoint signatures are not checked: no --public-key given"
                         if record.get("signature") else
                         "checkpoints are not signed (no audit.signing_key_file)", record)
            return
        if not self.keys.usable:
            if "unchecked" not in self.warned:
                self.warned.add("unchecked")
                self.add("unchecked", WARNING, seq, None,
                         "checkpoint signatures are not checked: the Python package "
                         "'cryptography' is not installed", record)
            return
        why = self.keys.check(record)
        signature = record.get("signature") or ""
        first = self.signatures.get(signature)
        if why is None:
            self.signatures.setdefault(signature, seq)
        elif signature and first is not None and first != seq:
            self.add("replayed_checkpoint", ERROR, seq, None,
                     "%s at seq %d carries the signature of the checkpoint at seq %d"
                     % (what, seq, first), record)
        else:
            self.add("bad_signature", ERROR, seq, None, "%s at seq %d: %s" % (what, seq, why),
                     record)

    def summary(self):
        return {
            "instance_id": self.instance_id,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "findings": self.findings.items,
        }


def groups(records):
    """Records in seq order -> lists of the records with one seq."""
    group = []
    for r in records:
        if group and r.seq != group[0].seq:
            yield group
            group = []
        group.append(r)
    if group:
        yield group


# ---------------------------------------------------------------------------
# JSON Lines input.

ROTATED = re.compile(r"\.(\d{8}T\d{6}\.\d{6}Z)(?:\.(\d+))?$")


def trail_files(path):
    """The rotated siblings of `path`, oldest first, then `path` itself."""
    directory = os.path.dirname(path) or "."
    base = os.path.basename(path)
    rotated = []
    for name in os.listdir(directory):
        if name.startswith(base + "."):
            m = ROTATED.fullmatch(name[len(base):])
            if m:
                rotated.append((m.group(1), int(m.group(2) or 0), os.path.join(directory, name)))
    files = [p for _, _, p in sorted(rotated)]
    if os.path.exists(path):
        files.append(path)
    elif not files:
        raise OSError("%s: no such file" % path)
    return files


def json_lines(paths):
    """(where, record or Malformed, torn) for every line of the files, in
    order. `torn`: the line was cut short (the last line of a file without
    its newline, or one that a later record was appended to after a crash)."""
    for path in paths:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                where = "%s:%d" % (path, number)
                if not raw.strip():
                    continue
                try:
                    yield where, record_of_json(raw.decode("utf-8"), where), False
                    continue
                except (Malformed, UnicodeDecodeError) as e:
                    problem = Malformed(str(e))
                # A record appended after the remains of a torn line?
                at = raw.find(b'{"record":', 1)
                if at > 0:
                    try:
                        rest = record_of_json(raw[at:].decode("utf-8"), where)
                    except (Malformed, UnicodeDecodeError):
                        rest = None
                    if rest is not None:
                        yield where, Malformed("a line cut short (%d bytes) before this "
                                               "record" % at), True
                        yield where, rest, False
                        continue
                yield where, problem, not raw.endswith(b"\n")


class Sorter:
    """Puts one instance's JSON lines back in seq order within
    REORDER_WINDOW records, noting lines whose seq is lower than the line
    before them."""

    def __init__(self, checker, window):
        self.checker = checker
        self.window = window
        self.heap = []
        self.order = 0
        self.previous = None  # seq of the line before, in file order
        self.seen = []  # seqs seen, as sorted disjoint [first, last] ranges
        self.released = None  # highest seq handed to the checker
        self.group = []
        self.last_line = 0

    def seen_before(self, seq):
        i = bisect_right(self.seen, seq)
        return i > 0 and self.seen[i - 1][1] >= seq

    def note_seen(self, seq):
        i = bisect_right(self.seen, seq)
        if i > 0 and self.seen[i - 1][1] >= seq:
            return
        joins_left = i > 0 and self.seen[i - 1][1] == seq - 1
        joins_right = i < len(self.seen) and self.seen[i][0] == seq + 1
        if joins_left and joins_right:
            self.seen[i - 1] = [self.seen[i - 1][0], self.seen[i][1]]
            del self.seen[i]
        elif joins_left:
            self.seen[i - 1][1] = seq
        elif joins_right:
            self.seen[i][0] = seq
        else:
            self.seen.insert(i, [seq, seq])

    def push(self, record, line_number):
        seq = record.seq
        self.last_line = line_number
        duplicate = self.seen_before(seq)
        if self.previous is not None and seq < self.previous and not duplicate:
            self.checker.add("reordered", ERROR, seq, None,
                             "seq %d comes after seq %d in the file (%s)"
                             % (seq, self.previous, record.where), record)
        self.previous = seq
        self.note_seen(seq)
        if self.group and self.group[0].seq == seq:
            self.group.append(record)  # its seq is being handed on now
            return
        if self.released is not None and seq <= self.released:
            if duplicate:
                self.checker.add("inserted", ERROR, seq, None,
                                 "a second record with seq %d, far from the first (%s)"
                                 % (seq, record.where), record)
            return
        heapq.heappush(self.heap, (seq, self.order, record))
        self.order += 1
        while len(self.heap) > self.window:
            self.release()

    def release(self):
        _, _, record = heapq.heappop(self.heap)
        if self.group and self.group[0].seq != record.seq:
            self.checker.feed(self.group)
            self.group = []
        self.group.append(record)
        self.released = record.seq

    def finish(self):
        while self.heap:
            self.release()
        if self.group:
            self.checker.feed(self.group)
            self.group = []
        self.checker.finish()


def bisect_right(ranges, seq):
    lo, hi = 0, len(ranges)
    while lo < hi:
        mid = (lo + hi) // 2
        if seq < ranges[mid][0]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def verify_jsonl(paths, make_checker, wanted, seq_range, window):
    files = []
    for p in paths:
        for f in trail_files(p):
            if f not in files:
                files.append(f)
    sorters = {}  # instance -> Sorter, in the order instances first appear
    last = None  # the instance of the line before

    def sorter_of(instance):
        if instance not in sorters:
            sorters[instance] = Sorter(make_checker(instance), window)
        return sorters[instance]

    lines = 0
    for where, item, torn in json_lines(files):
        lines += 1
        if isinstance(item, Malformed):
            # Not a record: a line cut short by a crash (or read while
            # pgtrail writes it) is a warning, anything else an edit.
            instance = last or "(unknown)"
            if wanted and instance not in wanted:
                continue
            kind, severity = ("torn", WARNING) if torn else ("malformed", ERROR)
            sorter_of(instance).checker.add(kind, severity, None, None, "%s: %s" % (where, item))
            continue
        last = item.instance
        if wanted and item.instance not in wanted or not in_range(item.seq, seq_range):
            continue
        sorter_of(item.instance).push(item, lines)
        if lines % window == 0:
            # An instance whose lines ended long ago (an earlier run) is
            # handed on now, so memory stays bounded.
            for s in sorters.values():
                if s.heap and lines - s.last_line > window:
                    while s.heap:
                        s.release()
    return [finish(s) for s in sorters.values()]


def finish(sorter):
    sorter.finish()
    return sorter.checker


def in_range(seq, seq_range):
    first, last = seq_range
    return (first is None or seq >= first) and (last is None or seq <= last)


# ---------------------------------------------------------------------------
# ClickHouse input, over its HTTP interface.


class ClickHouse:
    def __init__(self, url, database, user, password):
        parts = urllib.parse.urlsplit(url)
        if parts.username and user is None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        netloc = parts.hostname + (":%d" % parts.port if parts.port else "")
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self.database = database
        self.headers = {}
        if user is not None:
            token = base64.b64encode(("%s:%s" % (user, password or "")).encode()).decode()
            self.headers["Authorization"] = "Basic " + token

    def query(self, sql):
        """The rows of a JSONEachRow query, one at a time."""
        params = urllib.parse.urlencode({"output_format_json_quote_64bit_integers": "0"})
        request = urllib.request.Request(self.base + "?" + params, data=sql.encode("utf-8"),
                                         headers=self.headers, method="POST")
        try:
            response = urllib.request.urlopen(request, timeout=300)
        except urllib.error.HTTPError as e:
            raise OSError("ClickHouse: %s: %s" % (e.code, e.read().decode("utf-8", "replace")[:500]))
        except urllib.error.URLError as e:
            raise OSError("ClickHouse %s: %s" % (self.base, e.reason))
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicate_keys)

    def table(self, name):
        return "`%s`.`%s`" % (self.database.replace("`", "\\`"), name)

    def tables(self):
        rows = self.query("SELECT name FROM system.tables WHERE database = %s FORMAT JSONEachRow"
                          % quote(self.database))
        names = {r["name"] for r in rows}
        return [t for t in TABLES if t in names]

    def instances(self, tables):
        found = set()
        for t in tables:
            for row in self.query("SELECT DISTINCT instance_id FROM %s FORMAT JSONEachRow"
                                  % self.table(t)):
                found.add(row["instance_id"])
        return sorted(found)

    def records(self, table, instance, seq_range):
        where = "instance_id = %s" % quote(instance)
        if seq_range[0] is not None:
            where += " AND seq >= %d" % seq_range[0]
        if seq_range[1] is not None:
            where += " AND seq <= %d" % seq_range[1]
        sql = "SELECT * FROM %s WHERE %s ORDER BY seq FORMAT JSONEachRow" % (
            self.table(table), where)
        known = {c for c, _ in TABLES[table]}
        for n, row in enumerate(self.query(sql), 1):
            extra = [k for k in row if k not in known and k != "event_date"]
            if extra:
                raise OSError("%s has columns this script does not know: %s (a newer "
                              "pgtrail?)" % (table, ", ".join(extra)))
            try:
                yield Record(table, row, "%s row %d" % (table, n))
            except Malformed as e:
                raise OSError("%s row %d: %s" % (table, n, e))


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def verify_clickhouse(ch, make_checker, wanted, seq_range):
    tables = ch.tables()
    if not tables:
        raise OSError("ClickHouse: database %s has none of pgtrail's tables" % ch.database)
    checkers = []
    for instance in wanted or ch.instances(tables):
        checker = make_checker(instance)
        streams = [ch.records(t, instance, seq_range) for t in tables]
        for group in groups(heapq.merge(*streams, key=lambda r: r.seq)):
            checker.feed(group)
        checker.finish()
        checkers.append(checker)
    return checkers


# ---------------------------------------------------------------------------
# The outside copy of checkpoints.


def outside_checkpoints(paths, seq_range):
    """(instance -> seq -> checkpoint record, instance -> set of (seq,
    skipped seqs, chain) of gap records), from --checkpoints files."""
    by_instance = {}
    gaps = {}
    for path in paths:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                where = "%s:%d" % (path, number)
                try:
                    r = record_of_json(raw.decode("utf-8"), where)
                except (Malformed, UnicodeDecodeError) as e:
                    raise OSError("%s: not a checkpoint line: %s" % (where, e))
                if r.table == "gaps" and r.skipped:
                    gaps.setdefault(r.instance, set()).add((r.seq, r.skipped, r.chain))
                    continue
                if r.table != "checkpoints":
                    raise OSError("%s: a %s record, not a checkpoint" % (where, r.table))
                if in_range(r.seq, seq_range):
                    by_instance.setdefault(r.instance, {})[r.seq] = r
    return by_instance, gaps


# ---------------------------------------------------------------------------
# Output.


def printable(text):
    """Control characters of record text shown as escapes, one finding a line."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", lambda m: "\\x%02x" % ord(m.group())
                  if ord(m.group()) < 256 else "\\u%04x" % ord(m.group()), text)


def print_text(checkers, out):
    errors = warnings = 0
    for c in checkers:
        span = "no records" if c.first_seq is None else "seqs %d..%d" % (c.first_seq, c.last_seq)
        print("instance %s: %d records, %s, %d checkpoints" % (
            c.instance_id, c.records, span, c.checkpoints), file=out)
        for f in c.findings.items:
            seq = "-" if f["seq"] is None else str(f["seq"])
            if f["to_seq"] is not None and f["to_seq"] != f["seq"]:
                seq += "..%d" % f["to_seq"]
            print("  %-7s %s %s %s: %s" % (f["severity"].upper(), f["kind"], seq,
                                           f["time"] or "-", printable(f["detail"])), file=out)
        shown = len(c.findings.items)
        total = sum(c.findings.counts.values())
        if total > shown:
            print("  ... %d more findings not shown" % (total - shown), file=out)
        errors += c.findings.count(ERROR)
        warnings += c.findings.count(WARNING)
    verdict = "FAILED" if errors else "ok"
    print("%s: %d instance(s), %d error(s), %d warning(s)" % (
        verdict, len(checkers), errors, warnings), file=out)
    return errors == 0


def as_json(checkers):
    instances = []
    for c in checkers:
        s = c.summary()
        s["findings"] = [{k: f[k] for k in ("kind", "severity", "seq", "to_seq", "detail")}
                         for f in s["findings"]]
        instances.append(s)
    ok = all(c.findings.count(ERROR) == 0 for c in checkers)
    return {"ok": ok, "instances": instances}


# ---------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Verify a pgtrail audit trail's hash chain, gap records and "
                    "checkpoints (docs/integrity.md).")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--jsonl", nargs="+", metavar="FILE",
                        help="the audit file (rotated siblings are read too)")
    source.add_argument("--clickhouse-url", metavar="URL")
    p.add_argument("--database", default="pgtrail")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--instance", action="append", default=[], metavar="ID",
                   help="only this instance (repeatable; default: every one found)")
    p.add_argument("--from", dest="from_seq", type=int, metavar="SEQ")
    p.add_argument("--to", dest="to_seq", type=int, metavar="SEQ")
    p.add_argument("--public-key", action="append", default=[], metavar="PEM",
                   help="Ed25519 public key (SubjectPublicKeyInfo PEM); repeat for old keys")
    p.add_argument("--checkpoints", action="append", default=[], metavar="FILE",
                   help="the outside copy of the checkpoints (audit.checkpoint_file)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--max-findings", type=int, default=10000,
                   help="findings listed per instance (all are counted)")
    p.add_argument("--window", type=int, default=REORDER_WINDOW, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    seq_range = (args.from_seq, args.to_seq)
    try:
        keys = Keys(args.public_key)
        outside, outside_gaps = outside_checkpoints(args.checkpoints, seq_range)
    except (OSError, ValueError) as e:
        print("verify_trail: %s" % e, file=sys.stderr)
        return 2
    if keys.given and not keys.usable:
        print("verify_trail: the Python package 'cryptography' is missing "
              "(python3-cryptography): checkpoint signatures are NOT checked", file=sys.stderr)

    def make_checker(instance):
        return Checker(instance, keys, dict(outside.get(instance, {})), args.max_findings,
                       seq_range, outside_gaps.get(instance, ()))

    wanted = list(dict.fromkeys(args.instance))
    try:
        if args.jsonl:
            checkers = verify_jsonl(args.jsonl, make_checker, wanted, seq_range, args.window)
        else:
            ch = ClickHouse(args.clickhouse_url, args.database, args.user, args.password)
            checkers = verify_clickhouse(ch, make_checker, wanted, seq_range)
    except (OSError, ValueError) as e:
        print("verify_trail: %s" % e, file=sys.stderr)
        return 2
    # Instances asked for, or found in the outside copy, with no record in
    # the trail at all: every checkpoint kept outside is missing.
    found = {c.instance_id for c in checkers}
    for instance in wanted or sorted(outside):
        if instance not in found:
            checker = make_checker(instance)
            checker.finish()
            checkers.append(checker)
    if args.json:
        result = as_json(checkers)
        json.dump(result, sys.stdout, indent=1)
        print()
        ok = result["ok"]
    else:
        ok = print_text(checkers, sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
