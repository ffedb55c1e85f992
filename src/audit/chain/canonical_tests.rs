use super::*;
use crate::audit::event::SessionEventType;
use crate::audit::record::json::tests as samples;
use crate::audit::sink::clickhouse::schema::column_names;

fn names(record: &Record) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut e = Enc::new(&mut out);
    encode_with(&mut e, record);
    e.names
}

fn every_type() -> Vec<Record> {
    vec![
        samples::statement("SELECT 1", Some(vec![None, Some("x".into())])),
        samples::session("s", SessionEventType::Connect),
        crate::audit::spool::tests::gap(3),
        samples::transaction("t", 1),
        samples::change("c", 2),
        samples::checkpoint("p", 4),
        samples::lifecycle("l", 5),
    ]
}

#[test]
fn columns_are_the_tables() {
    for record in every_type() {
        let mut expected = column_names(record.table());
        let chain = expected.iter().position(|c| *c == "chain");
        assert_eq!(chain.map(|at| expected.remove(at)), Some("chain"));
        assert_eq!(names(&record), expected, "{}", record.table());
    }
}

#[test]
fn the_chain_value_is_not_part_of_it() {
    for mut record in every_type() {
        let mut a = Vec::new();
        encode(&record, &mut a);
        record.header_mut().chain = Some([0xee; 32]);
        let mut b = Vec::new();
        encode(&record, &mut b);
        assert_eq!(a, b);
    }
}

#[test]
fn a_gap_record_encodes_as_specified() {
    // docs/integrity.md works this example through byte by byte.
    let mut out = Vec::new();
    encode(&crate::audit::spool::tests::gap(3), &mut out);
    let mut expected = Vec::new();
    expected.extend_from_slice(&4u32.to_le_bytes());
    expected.extend_from_slice(b"gaps");
    expected.extend_from_slice(&[
        0x01, 0x90, 0xd6, 0xc8, 0x00, 0x00, 0x70, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"i1");
    expected.extend_from_slice(&3u64.to_le_bytes());
    expected.extend_from_slice(&1_795_953_600_000_000i64.to_le_bytes());
    expected.extend_from_slice(&6u64.to_le_bytes());
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"r3");
    expected.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(out, expected);
}

#[test]
fn params_absent_and_empty_are_the_same_bytes() {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    encode(&samples::statement("x", None), &mut a);
    encode(&samples::statement("x", Some(vec![])), &mut b);
    assert_eq!(a, b);
}

/// The bytes schema version 9's columns add: `end_user`'s text, the
/// source's value in one byte, verified, then three texts.
fn end_user_bytes(u: &crate::identity::EndUser) -> Vec<u8> {
    let mut out = Vec::new();
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    text(&mut out, &u.end_user);
    out.push(u.end_user_source.code() as u8);
    out.push(u8::from(u.end_user_verified));
    text(&mut out, &u.end_user_reason);
    text(&mut out, &u.request_id);
    text(&mut out, &u.trace_id);
    out
}

fn bytes(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode(record, &mut out);
    out
}

/// The records that name an end user: a statement with and one without
/// schema version 8's columns, a transaction, a change.
fn end_user_records() -> Vec<Record> {
    let mut with_columns = samples::statement("SELECT a FROM t", None);
    if let Record::Statement(s) = &mut with_columns {
        s.columns.columns_read = vec!["public.t.a".into()];
        s.columns.catalog_version = 3;
    }
    vec![
        with_columns,
        samples::statement("SELECT 1", Some(vec![Some("x".into())])),
        samples::transaction("t", 4),
        samples::change("c", 5),
    ]
}

/// The bytes of schema version 8's columns when all default: five empty
/// arrays and a zero u64.
const V8_DEFAULTS: usize = 5 * 4 + 8;

#[test]
fn records_without_an_end_user_keep_their_bytes() {
    use crate::identity::{EndUser, Source};
    for record in end_user_records() {
        let plain = bytes(&record);
        // The bytes the build before schema version 9 gave: those of the
        // record's columns up to the last before `end_user`. Its tail
        // (statements: 8's columns) is kept or dropped as before.
        let has_v8 = matches!(&record, Record::Statement(s) if !s.columns.is_empty());
        let last = plain[plain.len() - 1];
        match &record {
            Record::Statement(_) if has_v8 => {
                assert_eq!(plain[plain.len() - 8..], 3u64.to_le_bytes())
            }
            Record::Statement(_) => assert_eq!(
                plain[plain.len() - 6..],
                [1, 1, 0, 0, 0, b'x'],
                "ends with params"
            ),
            Record::Transaction(t) => {
                assert_eq!(t.undone_to_seq, [1]);
                assert_eq!(plain[plain.len() - 12..plain.len() - 8], 1u32.to_le_bytes());
            }
            Record::Change(c) => assert_eq!(last, u8::from(c.change.forged_marker)),
            _ => unreachable!(),
        }
        // Every end-user field set, and each alone (an enum at `none` and
        // verified false encode as zero bytes, so `none` alone is no tail).
        let full = samples::end_user("ü \"q\"", 3);
        let mut alone: Vec<EndUser> = Vec::new();
        alone.push(EndUser {
            end_user: "bob".into(),
            ..EndUser::default()
        });
        for source in &Source::ALL[1..] {
            alone.push(EndUser {
                end_user_source: *source,
                ..EndUser::default()
            });
        }
        alone.push(EndUser {
            end_user_verified: true,
            ..EndUser::default()
        });
        alone.push(EndUser {
            end_user_reason: "not signed".into(),
            ..EndUser::default()
        });
        alone.push(EndUser {
            request_id: "r1".into(),
            ..EndUser::default()
        });
        alone.push(EndUser {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            ..EndUser::default()
        });
        for eu in std::iter::once((*full).clone()).chain(alone) {
            let with = bytes(&samples::with_end_user(
                record.clone(),
                std::sync::Arc::new(eu.clone()),
            ));
            // Statements without 8's columns now carry them, as zeros.
            let v8_zeros = match &record {
                Record::Statement(_) if !has_v8 => V8_DEFAULTS,
                _ => 0,
            };
            assert_eq!(with[..plain.len()], plain[..], "{eu:?}");
            assert!(with[plain.len()..plain.len() + v8_zeros]
                .iter()
                .all(|&b| b == 0));
            assert_eq!(
                with[plain.len() + v8_zeros..],
                end_user_bytes(&eu)[..],
                "{eu:?}"
            );
        }
        // The default end user, explicitly: the plain bytes.
        let none = samples::with_end_user(record.clone(), Default::default());
        assert_eq!(bytes(&none), plain);
    }
}

#[test]
fn an_end_user_source_is_one_byte_its_value() {
    use crate::identity::{EndUser, Source};
    for (code, source) in Source::ALL.into_iter().enumerate() {
        let eu = EndUser {
            end_user: "a".into(),
            end_user_source: source,
            ..EndUser::default()
        };
        let record = samples::with_end_user(samples::transaction("t", 4), std::sync::Arc::new(eu));
        let out = bytes(&record);
        // "a" as text, then the source, verified, three empty texts.
        let tail = &out[out.len() - (5 + 1 + 1 + 12)..];
        assert_eq!(tail[..5], [1, 0, 0, 0, b'a']);
        assert_eq!(tail[5], code as u8, "{source:?}");
        assert_eq!(tail[6..], [0u8; 13]);
    }
}

#[test]
fn default_tails_are_cut_at_the_first_all_zero_one() {
    let mut out = vec![9, 0, 0, 5, 0, 0];
    drop_default_tails(&mut out, &[1, 3]);
    assert_eq!(out, [9, 0, 0, 5, 0, 0], "a later tail with a non-zero byte");
    let mut out = vec![9, 0, 0, 5, 0, 0];
    drop_default_tails(&mut out, &[1, 4]);
    assert_eq!(out, [9, 0, 0, 5], "zeros of an earlier tail are its own");
    let mut out = vec![9, 1, 0, 0, 0, 0];
    drop_default_tails(&mut out, &[1, 4]);
    assert_eq!(out, [9, 1, 0, 0], "the last tail only");
    let mut out = vec![9, 0, 0, 0, 0, 0];
    drop_default_tails(&mut out, &[1, 4]);
    assert_eq!(out, [9], "both");
    let mut out = vec![9, 0, 1];
    drop_default_tails(&mut out, &[3]);
    assert_eq!(out, [9, 0, 1], "an empty tail");
}
