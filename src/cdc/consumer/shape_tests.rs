use super::*;
use crate::cdc::marker::MarkerKey;
use crate::cdc::pgoutput::{Column, ReplicaIdentity};
use bytes::Bytes;

fn rel(identity: ReplicaIdentity) -> Relation {
    let col = |name: &str, key: bool| Column {
        flags: u8::from(key || identity == ReplicaIdentity::Full),
        name: name.into(),
        type_oid: 25,
        type_modifier: -1,
    };
    Relation {
        oid: 1,
        schema: "public".into(),
        table: "cards".into(),
        replica_identity: identity,
        columns: vec![col("id", true), col("pan", false), col("note", false)],
    }
}

fn t(v: &str) -> Value {
    Value::Text(Bytes::copy_from_slice(v.as_bytes()))
}

fn shaper(max: usize, redact: &[&str]) -> Shaper {
    let signer = Arc::new(MarkerSigner::new(MarkerKey::from_bytes([3; 32])));
    let redact: Vec<String> = redact.iter().map(|s| s.to_string()).collect();
    Shaper::new("shop", &redact, max, signer)
}

const AT: Position = Position {
    commit_lsn: 200,
    lsn: 150,
    change_index: 0,
    xid: 9,
    commit_time: 5,
};

fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn insert_keeps_null_apart_from_values() {
    let r = rel(ReplicaIdentity::Default);
    let new = TupleData(vec![t("1"), Value::Null, t("n")]);
    let c = shaper(100, &[]).change(&r, AT, Rows::Insert(&new)).unwrap();
    assert_eq!(c.op, ChangeOp::Insert);
    assert_eq!(c.key, vec![("id".into(), some("1"))]);
    assert_eq!(
        c.new,
        vec![
            ("id".into(), some("1")),
            ("pan".into(), None),
            ("note".into(), some("n"))
        ]
    );
    assert!(c.old.is_empty() && !c.old_complete && c.changed_columns.is_empty());
    assert_eq!((&*c.database, &*c.table), ("shop", "cards"));
}

#[test]
fn update_with_full_identity_names_the_changed_columns() {
    let r = rel(ReplicaIdentity::Full);
    let old = OldTuple::Full(TupleData(vec![t("1"), t("4111"), t("n")]));
    let new = TupleData(vec![t("1"), t("4222"), Value::UnchangedToast]);
    let c = shaper(100, &[])
        .change(&r, AT, Rows::Update(Some(&old), &new))
        .unwrap();
    assert!(c.old_complete);
    assert_eq!(c.old.len(), 3);
    // The unchanged TOASTed note is absent from new, not NULL.
    assert_eq!(
        c.new,
        vec![("id".into(), some("1")), ("pan".into(), some("4222"))]
    );
    assert_eq!(
        c.changed_columns,
        vec!["pan".into()] as Vec<std::sync::Arc<str>>
    );
}

#[test]
fn update_without_old_row_and_delete_by_key() {
    let r = rel(ReplicaIdentity::Default);
    let new = TupleData(vec![t("1"), t("x"), Value::Null]);
    let c = shaper(100, &[])
        .change(&r, AT, Rows::Update(None, &new))
        .unwrap();
    assert!(c.old.is_empty() && !c.old_complete && c.changed_columns.is_empty());
    let old = OldTuple::Key(TupleData(vec![t("1"), Value::Null, Value::Null]));
    let d = shaper(100, &[]).change(&r, AT, Rows::Delete(&old)).unwrap();
    assert_eq!(d.op, ChangeOp::Delete);
    assert_eq!(d.old, vec![("id".into(), some("1"))]);
    assert_eq!(d.key, d.old);
    assert!(!d.old_complete && d.new.is_empty());
}

#[test]
fn redacted_columns_hash_equal_values_equally() {
    let r = rel(ReplicaIdentity::Full);
    let s = shaper(4, &["public.cards.pan"]);
    let old = OldTuple::Full(TupleData(vec![t("1"), t("4111 1111"), Value::Null]));
    let new = TupleData(vec![t("1"), t("4111 1111"), t("changed")]);
    let c = s.change(&r, AT, Rows::Update(Some(&old), &new)).unwrap();
    let pan = |cols: &Columns| cols[1].1.clone().unwrap();
    assert!(pan(&c.new).starts_with("hmac:"));
    assert_eq!(pan(&c.new), pan(&c.old));
    assert!(!pan(&c.new).contains("4111"));
    // A hash is never cut; the other long value is.
    assert_eq!(
        c.truncated_columns,
        vec!["note".into()] as Vec<std::sync::Arc<str>>
    );
    assert_eq!(
        c.changed_columns,
        vec!["note".into()] as Vec<std::sync::Arc<str>>
    );
}

#[test]
fn long_values_are_cut_on_a_character_boundary() {
    let r = rel(ReplicaIdentity::Default);
    let new = TupleData(vec![t("1"), t("ééé"), t("ok")]);
    let c = shaper(3, &[]).change(&r, AT, Rows::Insert(&new)).unwrap();
    assert_eq!(c.new[1].1.as_deref(), Some("é"));
    assert_eq!(c.new[2].1.as_deref(), Some("ok"));
    assert_eq!(
        c.truncated_columns,
        vec!["pan".into()] as Vec<std::sync::Arc<str>>
    );
}

#[test]
fn a_tuple_that_does_not_fit_its_relation_is_an_error() {
    let r = rel(ReplicaIdentity::Default);
    let new = TupleData(vec![t("1")]);
    assert!(shaper(10, &[]).change(&r, AT, Rows::Insert(&new)).is_err());
}
