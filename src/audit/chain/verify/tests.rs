use super::item::Item;
use super::*;
use crate::audit::chain::signing::{keygen, PublicKey, SigningKey};
use crate::audit::chain::Chainer;
use crate::audit::record::json::tests as samples;
use crate::audit::record::{CheckpointRecord, LifecycleEvent, LifecycleRecord, Record};
use crate::audit::sink::clickhouse::rowbinary::encode_record;
use crate::audit::sink::clickhouse::schema::table_columns;

/// A trail as the writer makes it: a start record, `n` records of every
/// kind, checkpoints every 5, a stop record and a last checkpoint.
struct Trail {
    records: Vec<Record>,
    key: SigningKey,
    public: PublicKey,
    _dir: tempfile::TempDir,
}

fn with_instance(mut r: Record, seq: u64) -> Record {
    let h = r.header_mut();
    h.instance_id = "inst".into();
    h.seq = seq;
    r
}

fn trail(n: u64) -> Trail {
    let dir = tempfile::tempdir().unwrap();
    let (k, p) = (dir.path().join("k"), dir.path().join("k.pub"));
    keygen(&k, &p).unwrap();
    let key = SigningKey::load(&k).unwrap();
    let public = PublicKey::load(&p).unwrap();
    let mut chainer = Chainer::new(crate::audit::chain::GENESIS);
    let mut records: Vec<Record> = Vec::new();
    let push = |r: Record, records: &mut Vec<Record>, chainer: &mut Chainer| {
        let mut r = with_instance(r, records.len() as u64 + 1);
        chainer.link(&mut r);
        records.push(r);
    };
    push(lifecycle(LifecycleEvent::Start), &mut records, &mut chainer);
    for i in 0..n {
        let r = match i % 4 {
            0 => samples::statement("SELECT card FROM t", None),
            1 => samples::transaction("t", i),
            2 => samples::change("c", i),
            _ => samples::session("s", crate::audit::event::SessionEventType::Disconnect),
        };
        // Every other round names an end user (schema version 9).
        let r = match (i / 4) % 2 == 1 && i % 4 != 3 {
            true => samples::with_end_user(r, samples::end_user("bob \"b\"", i)),
            false => r,
        };
        push(r, &mut records, &mut chainer);
        if i % 5 == 4 {
            let cp = checkpoint(&key, &chainer, records.len() as u64 + 1);
            push(cp, &mut records, &mut chainer);
        }
    }
    push(lifecycle(LifecycleEvent::Stop), &mut records, &mut chainer);
    let cp = checkpoint(&key, &chainer, records.len() as u64 + 1);
    push(cp, &mut records, &mut chainer);
    Trail {
        records,
        key,
        public,
        _dir: dir,
    }
}

fn lifecycle(event_type: LifecycleEvent) -> Record {
    let Record::Lifecycle(mut l) = samples::lifecycle("x", 0) else {
        unreachable!()
    };
    l.event_type = event_type;
    l.previous_seq = 0;
    l.previous_chain = String::new();
    l.clean = true;
    Record::Lifecycle(l)
}

fn checkpoint(key: &SigningKey, chainer: &Chainer, seq: u64) -> Record {
    let Record::Checkpoint(c) = samples::checkpoint("", seq) else {
        unreachable!()
    };
    let mut c: CheckpointRecord = *c;
    c.header.instance_id = "inst".into();
    c.header.seq = seq;
    c.previous_chain = crate::audit::chain::ChainText::of(Some(&chainer.last()))
        .as_str()
        .into();
    c.key_id = key.key_id().into();
    c.signature = String::new();
    c.signature = key.sign_hex(&crate::audit::chain::canonical::checkpoint_message(&c));
    Record::Checkpoint(Box::new(c))
}

fn verify(records: &[Record], key: Option<&PublicKey>, outside: Vec<Item>) -> InstanceReport {
    let mut w = walk::Walker::new("inst", key, outside);
    for (i, r) in records.iter().enumerate() {
        w.push(Item::of_record(r, i as u64));
    }
    w.finish()
}

fn kinds(report: &InstanceReport) -> Vec<(Kind, u64)> {
    report.findings.iter().map(|f| (f.kind, f.seq)).collect()
}

fn errors(report: &InstanceReport) -> Vec<(Kind, u64)> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.kind, f.seq))
        .collect()
}

#[test]
fn a_clean_trail_passes() {
    let t = trail(20);
    let r = verify(&t.records, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [], "{r:#?}");
    assert_eq!((r.records, r.first_seq, r.last_seq), (27, 1, 27));
    assert_eq!(r.checkpoints, 5);
    // Without the key: one warning, no error.
    let r = verify(&t.records, None, Vec::new());
    assert_eq!(kinds(&r), [(Kind::Unsigned, 7)]);
}

#[test]
fn one_changed_field_is_one_altered_record() {
    let t = trail(20);
    let mut records = t.records.clone();
    if let Record::Statement(s) = &mut records[1] {
        s.statement = "SELECT 1".into();
    }
    let r = verify(&records, Some(&t.public), Vec::new());
    assert_eq!(errors(&r), [(Kind::Altered, 2)]);
}

#[test]
fn a_rewritten_chain_is_caught_by_the_next_checkpoint() {
    let t = trail(20);
    let mut records = t.records.clone();
    if let Record::Statement(s) = &mut records[1] {
        s.statement = "SELECT 1".into();
    }
    // The forger recomputes every chain value after the change.
    let mut chainer = Chainer::new(crate::audit::chain::GENESIS);
    for r in &mut records {
        chainer.link(r);
    }
    let r = verify(&records, Some(&t.public), Vec::new());
    assert!(
        errors(&r).contains(&(Kind::CheckpointMismatch, 7)),
        "{r:#?}"
    );
}

#[test]
fn deletions_are_named_with_their_seqs() {
    let t = trail(20);
    let mut one = t.records.clone();
    one.remove(3);
    assert_eq!(
        errors(&verify(&one, Some(&t.public), Vec::new())),
        [(Kind::Deleted, 4)]
    );
    let mut range = t.records.clone();
    range.drain(8..12);
    let r = verify(&range, Some(&t.public), Vec::new());
    assert_eq!(errors(&r), [(Kind::Deleted, 9)]);
    assert_eq!(r.findings[0].to_seq, 12);
}

#[test]
fn a_cut_tail_shows_against_the_outside_checkpoints() {
    let t = trail(20);
    let outside: Vec<Item> = t
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Checkpoint(_)))
        .map(|(i, r)| Item::of_record(r, i as u64))
        .collect();
    let cut = &t.records[..20];
    let r = verify(cut, Some(&t.public), outside.clone());
    assert!(errors(&r).contains(&(Kind::Truncated, 21)), "{r:#?}");
    assert!(kinds(&r).contains(&(Kind::NoCleanStop, 20)));
    // Without the outside copy only the missing stop shows.
    let r = verify(cut, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::NoCleanStop, 20)]);
    // The whole trail with its outside copy passes.
    assert_eq!(kinds(&verify(&t.records, Some(&t.public), outside)), []);
}

#[test]
fn an_inserted_record_and_a_retried_copy_are_told_apart() {
    let t = trail(20);
    let mut records = t.records.clone();
    let mut forged = records[4].clone();
    if let Record::Session(s) = &mut forged {
        s.user = "mallory".into();
    }
    records.insert(5, forged);
    records.insert(9, t.records[8].clone());
    let r = verify(&records, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::Inserted, 5), (Kind::Duplicate, 9)]);
}

#[test]
fn moved_lines_and_exchanged_seqs_are_reordered() {
    let t = trail(20);
    let mut lines = t.records.clone();
    lines.swap(2, 3);
    assert_eq!(
        errors(&verify(&lines, Some(&t.public), Vec::new())),
        [(Kind::Reordered, 3)]
    );
    let mut seqs = t.records.clone();
    let (a, b) = (seqs[2].seq(), seqs[3].seq());
    seqs[2].header_mut().seq = b;
    seqs[3].header_mut().seq = a;
    seqs.swap(2, 3);
    let r = verify(&seqs, Some(&t.public), Vec::new());
    assert_eq!(errors(&r), [(Kind::Reordered, 3)], "{r:#?}");
}

#[test]
fn forged_and_replayed_checkpoints() {
    let t = trail(20);
    let dir = tempfile::tempdir().unwrap();
    keygen(&dir.path().join("o"), &dir.path().join("o.pub")).unwrap();
    let other = SigningKey::load(&dir.path().join("o")).unwrap();
    let mut records = t.records.clone();
    let Record::Checkpoint(c) = &records[6] else {
        panic!("{:?}", records[6])
    };
    let mut forged: CheckpointRecord = (**c).clone();
    forged.key_id = other.key_id().into();
    forged.signature.clear();
    forged.signature = other.sign_hex(&crate::audit::chain::canonical::checkpoint_message(&forged));
    records[6] = Record::Checkpoint(Box::new(forged));
    let mut chainer = Chainer::new(crate::audit::chain::GENESIS);
    for r in &mut records {
        chainer.link(r);
    }
    // The forger also recomputed the chain: the checkpoints after it no
    // longer match, and this one is not signed by the key.
    let r = verify(&records, Some(&t.public), Vec::new());
    let found = errors(&r);
    assert_eq!(found.first(), Some(&(Kind::BadSignature, 7)), "{r:#?}");
    assert!(found[1..]
        .iter()
        .all(|(k, _)| *k == Kind::CheckpointMismatch));
    // The first checkpoint's row copied over a later one.
    let mut replayed = t.records.clone();
    let Record::Checkpoint(first) = t.records[6].clone() else {
        unreachable!()
    };
    let mut copy = *first;
    copy.header.seq = replayed[12].seq();
    replayed[12] = Record::Checkpoint(Box::new(copy));
    let r = verify(&replayed, Some(&t.public), Vec::new());
    assert!(
        errors(&r).contains(&(Kind::ReplayedCheckpoint, 13)),
        "{r:#?}"
    );
    let _ = &t.key;
}

#[test]
fn a_skipped_run_and_a_crash_pass_with_what_they_say() {
    let t = trail(20);
    let mut records = t.records.clone();
    // Seqs 9..=11 skipped by a destination: a gap record in their place.
    let end_chain = records[10].header().chain;
    let gap = crate::audit::build::RecordBuilder::new(
        "inst".into(),
        64,
        std::sync::Arc::new(crate::audit::build::NoClassifier),
    )
    .gap_for_run(9, 3, end_chain, "spool full".into());
    records.splice(8..11, [gap]);
    let r = verify(&records, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::Gap, 9)]);
    assert_eq!(r.findings[0].to_seq, 11);
    // A restart after a crash: the start record names where it goes on.
    let mut after = t.records[..10].to_vec();
    let mut start = LifecycleRecord {
        clean: false,
        previous_seq: 10,
        previous_chain: crate::audit::chain::ChainText::of(after[9].header().chain.as_ref())
            .as_str()
            .into(),
        ..match lifecycle(LifecycleEvent::Start) {
            Record::Lifecycle(l) => *l,
            _ => unreachable!(),
        }
    };
    start.header.instance_id = "inst".into();
    start.header.seq = 11;
    let mut start = Record::Lifecycle(Box::new(start));
    let mut chainer = Chainer::new(after[9].header().chain.unwrap_or_default());
    chainer.link(&mut start);
    after.push(start);
    let r = verify(&after, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::Crash, 11), (Kind::NoCleanStop, 11)]);
}

#[test]
fn clickhouse_rows_give_the_same_items_as_records() {
    let t = trail(12);
    for record in &t.records {
        let row = encode_record(record).unwrap();
        let columns = table_columns(record.table()).unwrap();
        let Ok((item, used)) = rowbinary::decode_row(record.table(), columns, &row.row) else {
            panic!("{} row does not decode", record.table())
        };
        assert_eq!(used, row.row.len());
        assert_eq!(item, Item::of_record(record, 0), "{}", record.table());
        // Short input asks for more rather than failing.
        assert!(rowbinary::decode_row(record.table(), columns, &row.row[..used - 1]).is_err());
    }
}

/// Rows spooled before schema version 9 (tags 12, 13, 16: without the
/// end-user columns) and rows ClickHouse filled with their defaults give
/// the items their records give: records without an end user keep their
/// chain.
#[test]
fn rows_of_the_layouts_before_end_users_give_the_same_items() {
    use crate::audit::sink::clickhouse::rowbinary::Table;
    let mut statement = samples::statement("SELECT 1", None);
    if let Record::Statement(s) = &mut statement {
        s.columns.columns_read = vec!["t.a".into()];
    }
    for record in [
        statement,
        samples::statement("SELECT 2", None),
        samples::transaction("t", 2),
        samples::change("c", 2),
    ] {
        let row = encode_record(&record).unwrap();
        let all = table_columns(record.table()).unwrap();
        // The defaults of the six columns: "", 0 (none), 0, "", "", "".
        let old_row = &row.row[..row.row.len() - 6];
        assert_eq!(&row.row[old_row.len()..], [0u8; 6]);
        let old = match row.table {
            Table::Statements => Table::StatementsV5,
            Table::Transactions => Table::TransactionsV2,
            _ => Table::ChangesV2,
        };
        let columns = &all[..all.len() - old.columns_after().unwrap()];
        let (item, used) = rowbinary::decode_row(record.table(), columns, old_row)
            .unwrap_or_else(|_| panic!("{} row does not decode", record.table()));
        assert_eq!(used, old_row.len());
        assert_eq!(item, Item::of_record(&record, 0), "{}", record.table());
    }
}

#[test]
fn jsonl_files_with_their_rotated_siblings_read_in_order() {
    let t = trail(8);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.20261206T101010.000001Z");
    let line = |r: &Record| {
        let mut out = Vec::new();
        crate::audit::record::json::write_record(r, &mut out);
        out.push(b'\n');
        out
    };
    let (old, new) = t.records.split_at(6);
    std::fs::write(&rotated, old.iter().flat_map(line).collect::<Vec<u8>>()).unwrap();
    std::fs::write(&file, new.iter().flat_map(line).collect::<Vec<u8>>()).unwrap();
    let options = VerifyOptions {
        public_key: Some(t.public.clone()),
        ..Default::default()
    };
    let report = walk_all(jsonl::read_all(&[file]).unwrap(), &options).unwrap();
    assert!(report.ok, "{}", report.human());
    assert_eq!(report.instances[0].records, t.records.len() as u64);
}

#[test]
fn a_trail_read_from_a_checkpoint_is_anchored_by_it() {
    let t = trail(20);
    // Seq 7 is the first checkpoint: from there, every record checks.
    assert!(matches!(t.records[6], Record::Checkpoint(_)));
    let r = verify(&t.records[6..], Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [], "{r:#?}");
    // From a record that is not a checkpoint, the first one is taken as is.
    let r = verify(&t.records[3..], Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::Unverified, 4)]);
}

#[test]
fn records_from_before_the_chain_are_unverified_and_a_removed_value_is_altered() {
    let t = trail(8);
    // An upgrade: the first records were written by a build before the
    // chain (no value); the chain checks from the first one that has one.
    let mut upgraded = t.records.clone();
    for r in &mut upgraded[..4] {
        r.header_mut().chain = None;
    }
    let r = verify(&upgraded, Some(&t.public), Vec::new());
    assert_eq!(kinds(&r), [(Kind::Unverified, 1)], "{r:#?}");
    // A value removed from a record of a chained trail is an edit.
    let mut cut = t.records.clone();
    cut[5].header_mut().chain = None;
    let r = verify(&cut, Some(&t.public), Vec::new());
    assert_eq!(errors(&r), [(Kind::Altered, 6)], "{r:#?}");
}

#[test]
fn a_checkpoint_a_destination_skipped_is_told_by_the_gap() {
    let t = trail(20);
    let outside: Vec<Item> = t
        .records
        .iter()
        .filter(|r| matches!(r, Record::Checkpoint(_)))
        .map(|r| Item::of_record(r, 0))
        .collect();
    let mut records = t.records.clone();
    let end_chain = records[7].header().chain;
    let gap = crate::audit::build::RecordBuilder::new(
        "inst".into(),
        64,
        std::sync::Arc::new(crate::audit::build::NoClassifier),
    )
    .gap_for_run(6, 3, end_chain, "spool full".into());
    // Seqs 6..=8, the checkpoint of seq 7 among them; the writer keeps
    // the gap record outside the trail as well.
    records.splice(5..8, [gap.clone()]);
    let mut with_gap = outside.clone();
    with_gap.push(Item::of_record(&gap, 0));
    let r = verify(&records, Some(&t.public), with_gap);
    assert_eq!(kinds(&r), [(Kind::Gap, 7), (Kind::Gap, 6)], "{r:#?}");
    // A gap record the outside copy does not have: records deleted and a
    // gap written in their place.
    let r = verify(&records, Some(&t.public), outside);
    assert_eq!(errors(&r), [(Kind::Inserted, 6)], "{r:#?}");
}
