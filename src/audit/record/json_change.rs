//! The JSON Lines encoding of `changes` records (see `json`): `key`, `old`
//! and `new` are objects of column name to text or `null`, in column order.

use super::{end_user_fields, string, Object};
use crate::audit::change_event::{ChangeEvent, Columns};
use crate::audit::record::ChangeRecord;

pub(super) fn change(r: &ChangeRecord, out: &mut Vec<u8>) {
    let ChangeRecord {
        header,
        change,
        end_user,
    } = r;
    let ChangeEvent {
        commit_lsn,
        lsn,
        change_index,
        xid,
        commit_time,
        database,
        schema,
        table,
        op,
        key,
        old,
        new,
        old_complete,
        changed_columns,
        truncated_columns,
        transaction_id,
        statement_seq,
        session_id,
        user,
        db_role,
        client_addr,
        application_name,
        attribution,
        forged_marker,
        statement_index: _,
        statement_claimed: _,
    } = change;
    let mut o = Object::start(out, "changes", header);
    o.u64("commit_lsn", *commit_lsn);
    o.u64("lsn", *lsn);
    o.u64("change_index", u64::from(*change_index));
    o.u64("xid", u64::from(*xid));
    o.time("commit_time", *commit_time);
    o.str("database", database);
    o.str("schema", schema);
    o.str("table", table);
    o.str("op", op.name());
    columns(&mut o, "key", key);
    columns(&mut o, "old", old);
    columns(&mut o, "new", new);
    o.bool("old_complete", *old_complete);
    o.strs(
        "changed_columns",
        changed_columns.iter().map(|s| Some(&**s)),
    );
    o.strs(
        "truncated_columns",
        truncated_columns.iter().map(|s| Some(&**s)),
    );
    match transaction_id {
        Some(id) => o.uuid("transaction_id", id),
        None => o.null("transaction_id"),
    }
    o.opt_u64("statement_seq", *statement_seq);
    o.str("session_id", session_id);
    o.str("user", user);
    o.str("db_role", db_role);
    o.str("client_addr", client_addr);
    o.str("application_name", application_name);
    o.str("attribution", attribution.name());
    o.bool("forged_marker", *forged_marker);
    end_user_fields(&mut o, end_user);
}

fn columns(o: &mut Object<'_>, key: &str, cols: &Columns) {
    o.key(key);
    o.out.push(b'{');
    for (i, (name, value)) in cols.iter().enumerate() {
        if i > 0 {
            o.out.push(b',');
        }
        string(o.out, name);
        o.out.push(b':');
        match value {
            Some(v) => string(o.out, v),
            None => o.out.extend_from_slice(b"null"),
        }
    }
    o.out.push(b'}');
}
