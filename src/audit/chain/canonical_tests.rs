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
