//! Messages built byte by byte as `proto.c` writes them, decoded; and every
//! truncation or corruption of them refused with an error, never a panic.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

/// Writes pgoutput fields in network byte order.
#[derive(Default)]
struct W(BytesMut);

impl W {
    fn tag(t: u8) -> Self {
        let mut w = W::default();
        w.0.put_u8(t);
        w
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.put_u8(v);
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.put_i16(v);
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.put_i32(v);
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.put_u32(v);
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.put_i64(v);
        self
    }
    fn s(mut self, v: &str) -> Self {
        self.0.put_slice(v.as_bytes());
        self.0.put_u8(0);
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.put_slice(v);
        self
    }
    fn text(self, v: &[u8]) -> Self {
        self.u8(b't').i32(v.len() as i32).raw(v)
    }
    fn done(self) -> Bytes {
        self.0.freeze()
    }
}

fn relation_bytes(xid: Option<u32>) -> Bytes {
    let w = W::tag(b'R');
    let w = match xid {
        Some(x) => w.u32(x),
        None => w,
    };
    w.u32(16384)
        .s("public")
        .s("accounts")
        .u8(b'f')
        .i16(3)
        .u8(1)
        .s("id")
        .u32(23)
        .i32(-1)
        .u8(0)
        .s("name")
        .u32(1043)
        .i32(36)
        .u8(0)
        .s("blob")
        .u32(25)
        .i32(-1)
        .done()
}

/// A tuple of (1, NULL, unchanged TOAST).
fn tuple3(w: W) -> W {
    w.i16(3).text(b"1").u8(b'n').u8(b'u')
}

/// One of each message, outside and inside a stream block.
fn samples() -> Vec<(bool, Bytes)> {
    let plain = vec![
        W::tag(b'B').i64(0x10).i64(7).u32(42).done(),
        W::tag(b'C').u8(0).i64(0x10).i64(0x18).i64(7).done(),
        W::tag(b'O').i64(0x10).s("origin").done(),
        relation_bytes(None),
        W::tag(b'Y').u32(90000).s("public").s("mood").done(),
        tuple3(W::tag(b'I').u32(16384).u8(b'N')).done(),
        tuple3(tuple3(W::tag(b'U').u32(16384).u8(b'O')).u8(b'N')).done(),
        tuple3(W::tag(b'U').u32(16384).u8(b'N')).done(),
        tuple3(W::tag(b'D').u32(16384).u8(b'K')).done(),
        W::tag(b'T').i32(2).u8(3).u32(1).u32(2).done(),
        W::tag(b'M')
            .u8(1)
            .i64(0x20)
            .s("pgtrail")
            .i32(1)
            .raw(b"x")
            .done(),
        W::tag(b'c').u32(9).u8(0).i64(1).i64(2).i64(3).done(),
        W::tag(b'A').u32(9).u32(10).done(),
    ];
    let streamed = vec![
        relation_bytes(Some(9)),
        tuple3(W::tag(b'I').u32(9).u32(16384).u8(b'N')).done(),
        W::tag(b'M').u32(9).u8(1).i64(0x20).s("p").i32(0).done(),
    ];
    let mut all: Vec<_> = plain.into_iter().map(|b| (false, b)).collect();
    all.extend(streamed.into_iter().map(|b| (true, b)));
    all
}

fn decoder(in_stream: bool) -> Decoder {
    let mut d = Decoder::new();
    if in_stream {
        d.decode(W::tag(b'S').u32(9).u8(1).done()).unwrap();
    }
    d
}

#[test]
fn every_sample_decodes_whole() {
    for (in_stream, bytes) in samples() {
        let r = decoder(in_stream).decode(bytes.clone());
        assert!(r.is_ok(), "{:?}: {r:?}", bytes);
    }
}

#[test]
fn begin_commit_and_message_fields() {
    let mut d = Decoder::new();
    let samples = samples();
    let begin = d.decode(samples[0].1.clone()).unwrap();
    assert_eq!(
        begin,
        LogicalMessage::Begin(Begin {
            final_lsn: Lsn(0x10),
            commit_time: PgTimestamp(7),
            xid: 42
        })
    );
    let LogicalMessage::Commit(c) = d.decode(samples[1].1.clone()).unwrap() else {
        panic!("not a commit")
    };
    assert_eq!((c.commit_lsn, c.end_lsn), (Lsn(0x10), Lsn(0x18)));
    let LogicalMessage::Message(m) = d.decode(samples[10].1.clone()).unwrap() else {
        panic!("not a message")
    };
    assert!(m.transactional);
    assert_eq!(
        (m.xid, m.prefix.as_str(), &m.content[..]),
        (None, "pgtrail", &b"x"[..])
    );
    assert_eq!(PgTimestamp(0).unix_micros(), 946_684_800_000_000);
}

#[test]
fn tuples_keep_null_unchanged_toast_and_values_apart() {
    let mut d = Decoder::new();
    let LogicalMessage::Update(u) = d.decode(samples()[6].1.clone()).unwrap() else {
        panic!("not an update")
    };
    let expected = TupleData(vec![
        Value::Text(Bytes::from_static(b"1")),
        Value::Null,
        Value::UnchangedToast,
    ]);
    assert_eq!(u.old, Some(OldTuple::Full(expected.clone())));
    assert_eq!(u.new, expected);
    let LogicalMessage::Delete(del) = d.decode(samples()[8].1.clone()).unwrap() else {
        panic!("not a delete")
    };
    assert!(matches!(del.old, OldTuple::Key(_)));
    let LogicalMessage::Truncate(t) = d.decode(samples()[9].1.clone()).unwrap() else {
        panic!("not a truncate")
    };
    assert!(t.cascade() && t.restart_identity());
    assert_eq!(t.relations, vec![1, 2]);
}

#[test]
fn relation_cache_names_values_and_key_columns() {
    let mut d = Decoder::new();
    let LogicalMessage::Relation(r) = d.decode(relation_bytes(None)).unwrap() else {
        panic!("not a relation")
    };
    let mut cache = crate::cdc::RelationCache::new();
    let rel = cache.update(r);
    assert_eq!((&*rel.schema, &*rel.table), ("public", "accounts"));
    assert_eq!(rel.replica_identity, ReplicaIdentity::Full);
    let keys: Vec<_> = rel.key_columns().map(|c| &*c.name).collect();
    assert_eq!(keys, ["id"]);
    let LogicalMessage::Insert(i) = d.decode(samples()[5].1.clone()).unwrap() else {
        panic!("not an insert")
    };
    let rel = cache.get(i.relation).unwrap();
    let named: Vec<_> = rel.named(&i.new).unwrap().collect();
    assert_eq!(named[0].name(), "id");
    assert!(named[0].is_key() && !named[1].is_key());
    assert_eq!(
        rel.value(&i.new, "blob").unwrap(),
        Some(&Value::UnchangedToast)
    );
    assert_eq!(rel.value(&i.new, "nope").unwrap(), None);
    let short = TupleData(vec![Value::Null]);
    assert_eq!(rel.named(&short).err().map(|e| e.values), Some(1));
}

#[test]
fn stream_block_adds_xid_to_data_messages() {
    let mut d = Decoder::new();
    let start = d.decode(W::tag(b'S').u32(9).u8(1).done()).unwrap();
    assert_eq!(
        start,
        LogicalMessage::StreamStart(StreamStart {
            xid: 9,
            first_segment: true
        })
    );
    assert!(d.in_stream());
    let LogicalMessage::Insert(i) = d.decode(samples()[14].1.clone()).unwrap() else {
        panic!("not an insert")
    };
    assert_eq!((i.xid, i.relation), (Some(9), 16384));
    assert_eq!(
        d.decode(W::tag(b'E').done()).unwrap(),
        LogicalMessage::StreamStop
    );
    assert!(!d.in_stream());
    // The same bytes outside a block read the xid as the relation oid and
    // then fail on the marker: the layouts really differ.
    assert!(d.decode(samples()[14].1.clone()).is_err());
}

#[test]
fn malformed_messages_are_typed_errors() {
    let mut d = Decoder::new();
    let fault = |d: &mut Decoder, b: Bytes| d.decode(b).unwrap_err().fault;
    assert_eq!(fault(&mut d, Bytes::new()), Fault::Empty);
    assert_eq!(fault(&mut d, W::tag(b'?').done()), Fault::UnknownTag(b'?'));
    let neg = W::tag(b'I').u32(1).u8(b'N').i16(1).u8(b't').i32(-5).done();
    assert_eq!(fault(&mut d, neg), Fault::NegativeLength(-5));
    let kind = W::tag(b'I').u32(1).u8(b'N').i16(1).u8(b'x').done();
    assert_eq!(fault(&mut d, kind), Fault::UnknownValueKind(b'x'));
    let huge = W::tag(b'I')
        .u32(1)
        .u8(b'N')
        .i16(1)
        .u8(b't')
        .i32(i32::MAX)
        .done();
    assert_eq!(fault(&mut d, huge), Fault::Truncated);
    let trailing = W::tag(b'E').u8(0).done();
    assert_eq!(fault(&mut d, trailing), Fault::TrailingBytes(1));
    let bad_name = W::tag(b'O').i64(1).raw(b"\xff\0").done();
    assert_eq!(fault(&mut d, bad_name), Fault::NotUtf8);
    let many = W::tag(b'T').i32(i32::MAX).u8(0).done();
    assert_eq!(fault(&mut d, many), Fault::Truncated);
    let e = d.decode(W::tag(b'B').i32(1).done()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "pgoutput Begin at byte 1: message ends before the field"
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for (in_stream, bytes) in samples() {
        for len in 0..bytes.len() {
            let r = decoder(in_stream).decode(bytes.slice(..len));
            assert!(r.is_err(), "prefix {len} of {bytes:?} decoded: {r:?}");
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    // xorshift64: deterministic, no dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let samples = samples();
    for _ in 0..20_000 {
        let (in_stream, bytes) = &samples[(next() % samples.len() as u64) as usize];
        let mut b = bytes.to_vec();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = next() as u8;
        }
        let cut = (next() % (b.len() as u64 + 1)) as usize;
        let _ = decoder(*in_stream).decode(Bytes::from(b[..cut].to_vec()));
    }
}
