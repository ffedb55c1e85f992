//! Decoded pgoutput changes made into `ChangeEvent`s: values as text,
//! `NULL` apart from absent (an unchanged TOASTed value is not sent, so it
//! is absent from `new`), redacted columns replaced by a keyed hash, long
//! values cut at `cdc.max_value_bytes`. Attribution is filled in at Commit.

use std::collections::HashSet;
use std::sync::Arc;

use crate::audit::event::{Attribution, ChangeEvent, ChangeOp, Columns};
use crate::cdc::marker::MarkerSigner;
use crate::cdc::pgoutput::{OldTuple, TupleData, Value};
use crate::cdc::relation::{ColumnCountMismatch, Relation};

/// Where a change sits: its transaction and its own WAL record.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub commit_lsn: u64,
    pub lsn: u64,
    pub change_index: u32,
    pub xid: u32,
    pub commit_time: i64,
}

pub struct Shaper {
    database: Arc<str>,
    /// `schema.table.column`, as configured.
    redact: HashSet<String>,
    max_value_bytes: usize,
    signer: Arc<MarkerSigner>,
}

/// The rows a change carries, before they are shaped.
pub enum Rows<'a> {
    Insert(&'a TupleData),
    Update(Option<&'a OldTuple>, &'a TupleData),
    Delete(&'a OldTuple),
    Truncate,
}

impl Shaper {
    pub fn new(
        database: &str,
        redact: &[String],
        max_value_bytes: usize,
        signer: Arc<MarkerSigner>,
    ) -> Self {
        Shaper {
            database: database.into(),
            redact: redact.iter().cloned().collect(),
            max_value_bytes,
            signer,
        }
    }

    pub fn change(
        &self,
        rel: &Relation,
        at: Position,
        rows: Rows<'_>,
    ) -> Result<ChangeEvent, ColumnCountMismatch> {
        let mut truncated = Vec::new();
        let mut c = blank(&self.database, rel, at);
        match rows {
            Rows::Insert(new) => {
                c.op = ChangeOp::Insert;
                c.new = self.columns(rel, new, false, &mut truncated)?;
                c.key = self.columns(rel, new, true, &mut truncated)?;
            }
            Rows::Update(old, new) => {
                c.op = ChangeOp::Update;
                c.new = self.columns(rel, new, false, &mut truncated)?;
                c.key = self.columns(rel, new, true, &mut truncated)?;
                if let Some(old) = old {
                    self.old(&mut c, rel, old, &mut truncated)?;
                }
                if c.old_complete {
                    c.changed_columns = changed(&c.old, &c.new);
                }
            }
            Rows::Delete(old) => {
                c.op = ChangeOp::Delete;
                self.old(&mut c, rel, old, &mut truncated)?;
                c.key = self.columns(rel, old.tuple(), true, &mut truncated)?;
            }
            Rows::Truncate => c.op = ChangeOp::Truncate,
        }
        truncated.dedup();
        c.truncated_columns = truncated;
        Ok(c)
    }

    fn old(
        &self,
        c: &mut ChangeEvent,
        rel: &Relation,
        old: &OldTuple,
        truncated: &mut Vec<Arc<str>>,
    ) -> Result<(), ColumnCountMismatch> {
        let full = matches!(old, OldTuple::Full(_));
        // A 'K' tuple holds the key columns; the others are placeholders.
        c.old = self.columns(rel, old.tuple(), !full, truncated)?;
        c.old_complete = full && c.old.len() == rel.columns.len();
        Ok(())
    }

    /// The tuple's columns (only the key columns with `key_only`), unchanged
    /// TOASTed values left out.
    fn columns(
        &self,
        rel: &Relation,
        tuple: &TupleData,
        key_only: bool,
        truncated: &mut Vec<Arc<str>>,
    ) -> Result<Columns, ColumnCountMismatch> {
        let mut out = if key_only {
            Vec::new()
        } else {
            Vec::with_capacity(rel.columns.len())
        };
        for nv in rel.named(tuple)? {
            if key_only && !nv.is_key() {
                continue;
            }
            let text = match nv.value {
                Value::UnchangedToast => continue,
                Value::Null => None,
                Value::Text(b) | Value::Binary(b) => {
                    Some(self.text(rel, &nv.column.name, b, truncated))
                }
            };
            out.push((nv.column.name.clone(), text));
        }
        Ok(out)
    }

    fn text(
        &self,
        rel: &Relation,
        column: &Arc<str>,
        raw: &[u8],
        truncated: &mut Vec<Arc<str>>,
    ) -> String {
        if !self.redact.is_empty()
            && self
                .redact
                .contains(&format!("{}.{}.{column}", rel.schema, rel.table))
        {
            return self.signer.keyed_hash(raw);
        }
        let (text, _) = crate::text::lossless(raw);
        let mut text = text.into_owned();
        if text.len() > self.max_value_bytes {
            let mut cut = self.max_value_bytes;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            if !truncated.iter().any(|c| c == column) {
                truncated.push(column.clone());
            }
        }
        text
    }
}

/// Columns of `new` whose value differs from `old`'s (a column absent
/// from `new` kept its TOASTed value).
fn changed(old: &Columns, new: &Columns) -> Vec<Arc<str>> {
    new.iter()
        .filter(|(name, value)| {
            old.iter()
                .find(|(n, _)| n == name)
                .is_none_or(|(_, v)| v != value)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn blank(database: &Arc<str>, rel: &Relation, at: Position) -> ChangeEvent {
    ChangeEvent {
        commit_lsn: at.commit_lsn,
        lsn: at.lsn,
        change_index: at.change_index,
        xid: at.xid,
        commit_time: at.commit_time,
        database: database.clone(),
        schema: rel.schema.clone(),
        table: rel.table.clone(),
        op: ChangeOp::Insert,
        key: Vec::new(),
        old: Vec::new(),
        new: Vec::new(),
        old_complete: false,
        changed_columns: Vec::new(),
        truncated_columns: Vec::new(),
        transaction_id: None,
        statement_seq: None,
        statement_index: None,
        statement_claimed: false,
        session_id: Arc::default(),
        user: Arc::default(),
        db_role: Arc::default(),
        client_addr: Arc::default(),
        application_name: Arc::default(),
        attribution: Attribution::None,
        forged_marker: false,
    }
}

#[cfg(test)]
#[path = "shape_tests.rs"]
mod tests;
