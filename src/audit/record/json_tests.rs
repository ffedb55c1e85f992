use super::*;
use crate::audit::event::{Protocol, SessionEventType};
use crate::audit::record::{ChangeRecord, CheckpointRecord, LifecycleEvent, LifecycleRecord};

/// Texts that exercise every escape, at every offset of the eight-byte steps.
fn awkward_texts() -> Vec<String> {
    let mut texts = vec![
        String::new(),
        "plain ascii text that needs no escape at all".into(),
        "quote \" backslash \\ newline \n tab \t cr \r".into(),
        "\u{8}\u{c}\u{0}\u{1f}\u{7f} del and controls".into(),
        "ünïcødé ✓ 𝄞 and \u{2028} line separator".into(),
        (0u8..0x80).map(char::from).collect(),
    ];
    for offset in 0..17 {
        for special in ['"', '\\', '\n', '\u{1}', 'é', '\u{1f}', ' '] {
            let mut s = "x".repeat(offset);
            s.push(special);
            s.push_str("tail-of-sixteen!");
            texts.push(s);
        }
    }
    texts
}

fn header(seq: u64) -> RecordHeader {
    RecordHeader {
        event_id: uuid::Uuid::from_u128(0x01a2_28da_97e2_7811_a795_d667_d4c2_0003),
        instance_id: "01a228da-91ff-701a-b514-7a538ed1a46d".into(),
        seq,
        event_time: 1_795_000_000_123_456 + seq as i64,
        chain: seq.is_multiple_of(2).then_some([seq as u8; 32]),
    }
}

pub(crate) fn statement(text: &str, params: Option<Vec<Option<String>>>) -> Record {
    Record::Statement(Box::new(StatementRecord {
        header: header(u64::MAX),
        duration_us: 1800,
        session_id: text.into(),
        backend_pid: 42,
        user: text.into(),
        db_role: "postgres".into(),
        effective_role: text.into(),
        database: text.into(),
        client_addr: "::1".into(),
        client_port: u16::MAX,
        application_name: text.into(),
        protocol: Protocol::FunctionCall,
        statement: text.into(),
        statement_truncated: true,
        statement_escaped: false,
        fingerprint: 4_669_596_619_068_756_337,
        normalized: text.into(),
        kind: "select".into(),
        class: "read".into(),
        crud: "R".into(),
        audit_class: "READ".into(),
        objects_read: vec![text.into(), "public.t".into()],
        objects_written: vec![],
        functions: vec![text.into()],
        parser: "sqlparser".into(),
        command_tag: "SELECT 1".into(),
        rows: 0,
        success: false,
        sqlstate: "22P02".into(),
        error_message: text.into(),
        txn_status: "E".into(),
        transaction_id: uuid::Uuid::from_u128(0x01a2_28da_91ff_701a_b514_7a53_0000_0007),
        params,
        columns: Default::default(),
        end_user: Default::default(),
    }))
}

pub(crate) fn transaction(text: &str, i: u64) -> Record {
    use crate::audit::event::TransactionOutcome::*;
    let outcomes = [Committed, RolledBack, Failed, Prepared, Unknown];
    Record::Transaction(Box::new(TransactionRecord {
        header: header(i),
        transaction_id: uuid::Uuid::from_u128(u128::from(i)),
        session_id: "s".into(),
        backend_pid: 42,
        user: text.into(),
        db_role: "r".into(),
        effective_role: text.into(),
        database: "d".into(),
        client_addr: "::1".into(),
        client_port: 5,
        application_name: text.into(),
        outcome: outcomes[i as usize % outcomes.len()],
        statements: i,
        first_seq: i,
        last_seq: i + 3,
        started_at: -5 + i as i64,
        duration_us: 17,
        rows_changed: i * 10,
        xid: i.is_multiple_of(2).then_some(i + 700),
        undone_from_seq: (0..i % 3).collect(),
        undone_to_seq: (0..i % 3).map(|x| x + 1).collect(),
        end_user: Default::default(),
    }))
}

pub(crate) fn session(text: &str, event_type: SessionEventType) -> Record {
    Record::Session(Box::new(SessionRecord {
        header: header(7),
        event_type,
        session_id: "s".into(),
        backend_pid: 42,
        user: text.into(),
        db_role: text.into(),
        effective_role: "r".into(),
        database: "d".into(),
        client_addr: "127.0.0.1".into(),
        client_port: 0,
        application_name: text.into(),
        tls: true,
        auth_method: "scram-sha-256".into(),
        reason: text.into(),
        bytes_in: 1,
        bytes_out: u64::MAX,
        statements: 3,
        duration_us: 0,
    }))
}

pub(crate) fn change(text: &str, i: u64) -> Record {
    use crate::audit::change_event::{Attribution, ChangeEvent, ChangeOp};
    let ops = ChangeOp::ALL;
    let attributions = [Attribution::None, Attribution::Transaction];
    Record::Change(Box::new(ChangeRecord {
        header: header(i),
        change: ChangeEvent {
            commit_lsn: 0x16_B374_D848 + i,
            lsn: 0x16_B374_D000,
            change_index: i as u32,
            xid: 742,
            commit_time: 1_795_000_000_000_001,
            database: "shop".into(),
            schema: "public".into(),
            table: text.into(),
            op: ops[i as usize % ops.len()],
            key: vec![("id".into(), Some("7".into()))],
            old: vec![(text.into(), None), ("pan".into(), Some(text.into()))],
            new: (0..i % 3)
                .map(|c| {
                    (
                        format!("c{c}").into(),
                        (c % 2 == 0).then(|| text.to_string()),
                    )
                })
                .collect(),
            old_complete: i.is_multiple_of(2),
            changed_columns: vec![text.into()],
            truncated_columns: vec![],
            transaction_id: i
                .is_multiple_of(2)
                .then(|| uuid::Uuid::from_u128(u128::from(i))),
            statement_seq: None,
            statement_index: None,
            statement_claimed: false,
            session_id: text.into(),
            user: "alice".into(),
            db_role: "app".into(),
            client_addr: "10.0.0.7".into(),
            application_name: text.into(),
            attribution: attributions[i as usize % 2],
            forged_marker: i % 3 == 1,
        },
        end_user: Default::default(),
    }))
}

pub(crate) fn checkpoint(text: &str, i: u64) -> Record {
    Record::Checkpoint(Box::new(CheckpointRecord {
        header: header(i),
        previous_chain: text.into(),
        records: i * 3,
        key_id: "0123456789abcdef".into(),
        signature: text.into(),
    }))
}

pub(crate) fn lifecycle(text: &str, i: u64) -> Record {
    let types = [
        LifecycleEvent::Start,
        LifecycleEvent::Stop,
        LifecycleEvent::Reload,
        LifecycleEvent::Users,
    ];
    Record::Lifecycle(Box::new(LifecycleRecord {
        header: header(i),
        event_type: types[i as usize % 4],
        version: "0.1.0".into(),
        config_digest: "ab".repeat(32),
        detail: text.into(),
        previous_seq: i,
        previous_chain: text.into(),
        clean: i % 2 == 1,
    }))
}

fn assert_same_as_serde(record: &Record) {
    let mut ours = Vec::new();
    write_record(record, &mut ours);
    let serde = serde_json::to_vec(record).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&serde)
    );
}

#[test]
fn every_record_type_matches_the_serde_encoding() {
    let types = [
        SessionEventType::Connect,
        SessionEventType::AuthOk,
        SessionEventType::AuthFailed,
        SessionEventType::Disconnect,
    ];
    for (i, text) in awkward_texts().iter().enumerate() {
        let params = match i % 3 {
            0 => None,
            1 => Some(vec![]),
            _ => Some(vec![None, Some(text.clone()), Some(String::new())]),
        };
        assert_same_as_serde(&statement(text, params));
        assert_same_as_serde(&session(text, types[i % types.len()]));
        assert_same_as_serde(&transaction(text, i as u64));
        assert_same_as_serde(&change(text, i as u64));
        assert_same_as_serde(&Record::Gap(GapRecord {
            header: header(i as u64),
            missing_events: i as u64,
            reason: text.clone(),
            skipped_seqs: i as u64 % 2,
        }));
        assert_same_as_serde(&checkpoint(text, i as u64));
        assert_same_as_serde(&lifecycle(text, i as u64));
    }
}

/// An end user with every field set from `text` (`Source` by `i`).
pub(crate) fn end_user(text: &str, i: u64) -> std::sync::Arc<crate::identity::EndUser> {
    use crate::identity::{EndUser, Source};
    let sources = &Source::ALL[1..];
    std::sync::Arc::new(EndUser {
        end_user: format!("alice {text}"),
        end_user_source: sources[i as usize % sources.len()],
        end_user_verified: i.is_multiple_of(2),
        end_user_reason: text.into(),
        request_id: format!("req-\"{i}\"-{text}"),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    })
}

/// `record` with `end_user` set (statements, transactions, changes).
pub(crate) fn with_end_user(
    mut record: Record,
    end_user: std::sync::Arc<crate::identity::EndUser>,
) -> Record {
    match &mut record {
        Record::Statement(s) => s.end_user = end_user,
        Record::Transaction(t) => t.end_user = end_user,
        Record::Change(c) => c.end_user = end_user,
        _ => panic!("{} has no end user", record.table()),
    }
    record
}

fn end_user_of(record: &Record) -> &crate::identity::EndUser {
    match record {
        Record::Statement(s) => &s.end_user,
        Record::Transaction(t) => &t.end_user,
        Record::Change(c) => &c.end_user,
        _ => panic!("{} has no end user", record.table()),
    }
}

/// The three record types that name an end user, with `end_user`.
fn with_end_users(
    text: &str,
    i: u64,
    eu: &std::sync::Arc<crate::identity::EndUser>,
) -> [Record; 3] {
    [
        with_end_user(statement(text, None), eu.clone()),
        with_end_user(transaction(text, i), eu.clone()),
        with_end_user(change(text, i), eu.clone()),
    ]
}

#[test]
fn end_user_fields_match_serde_and_read_back() {
    use crate::identity::{EndUser, Source};
    for (i, text) in awkward_texts().iter().enumerate() {
        let i = i as u64;
        let full = end_user(text, i);
        // Every field set, then each subset of fields left at its default
        // (serde leaves each out on its own).
        let mut variants = vec![full.clone()];
        for mask in 0u8..64 {
            let pick = |bit: u8| mask & (1 << bit) != 0;
            variants.push(std::sync::Arc::new(EndUser {
                end_user: if pick(0) {
                    full.end_user.clone()
                } else {
                    String::new()
                },
                end_user_source: if pick(1) {
                    full.end_user_source
                } else {
                    Source::None
                },
                end_user_verified: pick(2),
                end_user_reason: if pick(3) {
                    full.end_user_reason.clone()
                } else {
                    String::new()
                },
                request_id: if pick(4) {
                    full.request_id.clone()
                } else {
                    String::new()
                },
                trace_id: if pick(5) {
                    full.trace_id.clone()
                } else {
                    String::new()
                },
            }));
            if i > 0 {
                break; // the subsets once, on the first text
            }
        }
        for eu in &variants {
            for record in with_end_users(text, i, eu) {
                assert_same_as_serde(&record);
                let mut ours = Vec::new();
                write_record(&record, &mut ours);
                let back: Record = serde_json::from_slice(&ours).unwrap();
                assert_eq!(end_user_of(&back), &**eu, "{}", record.table());
                let mut again = Vec::new();
                write_record(&back, &mut again);
                assert_eq!(again, ours);
            }
        }
    }
}

#[test]
fn every_end_user_source_is_written_by_its_name() {
    use crate::identity::{EndUser, Source};
    for source in Source::ALL {
        let eu = std::sync::Arc::new(EndUser {
            end_user_source: source,
            ..EndUser::default()
        });
        for record in with_end_users("x", 3, &eu) {
            assert_same_as_serde(&record);
            let mut ours = Vec::new();
            write_record(&record, &mut ours);
            let text = String::from_utf8(ours).unwrap();
            let key = format!(r#""end_user_source":"{}""#, source.name());
            assert_eq!(text.contains(&key), source != Source::None, "{text}");
            assert!(!text.contains("end_user\""), "{text}");
        }
    }
}

#[test]
fn records_without_an_end_user_have_none_of_its_fields() {
    for record in [statement("x", None), transaction("x", 1), change("x", 1)] {
        let mut ours = Vec::new();
        write_record(&record, &mut ours);
        let text = String::from_utf8(ours).unwrap();
        for key in crate::audit::sink::clickhouse::schema::END_USER_COLUMNS {
            assert!(!text.contains(&format!("\"{key}\"")), "{key} in {text}");
        }
    }
}

#[test]
fn a_change_record_reads_back_with_its_column_order_and_nulls() {
    let record = change("zeta", 2);
    let mut ours = Vec::new();
    write_record(&record, &mut ours);
    let back: Record = serde_json::from_slice(&ours).unwrap();
    let (Record::Change(a), Record::Change(b)) = (&record, &back) else {
        panic!("not a change: {back:?}");
    };
    assert_eq!(a.change, b.change);
    let text = String::from_utf8(ours).unwrap();
    assert!(
        text.contains(r#""old":{"zeta":null,"pan":"zeta"}"#),
        "{text}"
    );
}

#[test]
fn times_outside_four_digit_years_match_too() {
    for micros in [i64::MIN, -1, 0, 253_402_300_800_000_000, i64::MAX] {
        let mut record = statement("x", None);
        if let Record::Statement(s) = &mut record {
            s.header.event_time = micros;
        }
        assert_same_as_serde(&record);
    }
}

#[test]
fn the_escape_test_finds_every_byte_that_needs_one() {
    for b in 0u8..=255 {
        let needs = b < 0x20 || b == b'"' || b == b'\\';
        for at in 0..8 {
            let mut word = [b'a'; 8];
            word[at] = b;
            assert_eq!(
                any_needs_escape(u64::from_le_bytes(word)),
                needs,
                "byte {b:#04x} at {at}"
            );
        }
    }
}

#[test]
fn the_escape_test_agrees_with_a_byte_by_byte_check_on_mixed_words() {
    // Bytes near the edges of the three tests, mixed in every position.
    let edges = [
        0x00, 0x01, 0x1f, 0x20, 0x21, b'"', b'#', b'[', b'\\', b']', 0x7f, 0x80, 0xff,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word: [u8; 8] =
            std::array::from_fn(|i| edges[(state >> (i * 5)) as usize % edges.len()]);
        let needs = word.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        assert_eq!(
            any_needs_escape(u64::from_le_bytes(word)),
            needs,
            "{word:?}"
        );
    }
}
