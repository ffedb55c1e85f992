//! Columns a statement reads and writes, as the statement names them.
//!
//! This is the half of column tracking that depends on the text alone, so
//! it is computed once per statement shape and cached with the rest of the
//! [`Analysis`](crate::sql::Analysis). Each reference keeps the relation it
//! comes from as written (`c.card_number` with `FROM customers c` gives
//! `customers`), or, for an unqualified column, every relation in scope it
//! could come from, innermost scope first: which one holds the column is a
//! catalog question (`crate::catalog::resolve` answers it, expands `*` and
//! views, and applies the labels).
//!
//! - `walk`: the walk of pg_query's tree (select lists, WHERE/JOIN/GROUP/
//!   ORDER expressions, RETURNING, INSERT column lists, UPDATE SET
//!   targets, MERGE actions, COPY column lists), with PostgreSQL's scoping:
//!   aliases, subqueries, CTEs, correlated references.
//! - `scope`: the relations visible at a point of the walk.
//! - `plpgsql`: the static statements of a PL/pgSQL body (DO blocks,
//!   functions) and whether it runs dynamic SQL.

mod plpgsql;
mod scope;
mod walk;

#[cfg(test)]
mod tests;

pub use plpgsql::{plpgsql_statements, PlpgsqlBody, Signature, DO_BLOCK};
pub(crate) use walk::of_statement;

/// Appends `item` unless `list` has it: the lists of names records carry
/// keep first-seen order, each name once.
pub fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// [`push_unique`] for each of `items`.
pub fn extend_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        push_unique(list, item);
    }
}

/// Statements whose columns are tracked: those that read or write rows
/// (EXPLAIN only with ANALYZE; PREPARE's are kept for its EXECUTE).
pub(crate) fn wanted(kw: crate::sql::kind::classify::KwClass) -> bool {
    use crate::sql::kind::Kind::*;
    match kw.kind {
        Explain => kw.explain_analyze && kw.inner != Explain,
        k => k.is_dml() || matches!(k, Truncate | CreateTableAs | Declare | Prepare),
    }
}

/// Whether a column is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

/// Where a referenced column comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This relation (name as written, `schema.table` when qualified).
    Table(String),
    /// An unqualified column: one of these relations in scope, innermost
    /// scope first. PostgreSQL takes the innermost scope holding a column
    /// of that name.
    OneOf(Vec<Candidate>),
}

/// A relation an unqualified column may come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// 0 for the innermost scope, 1 for the one around it, ...
    pub level: u16,
    /// The relation as written; `None` for a subquery, CTE or function in
    /// FROM (its columns come from what it reads, recorded on their own).
    pub table: Option<String>,
}

/// One column reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnRef {
    pub access: Access,
    pub origin: Origin,
    /// `None` for `*` / `table.*` (and for rows a DELETE or TRUNCATE
    /// removes whole, or an INSERT without a column list fills).
    pub column: Option<String>,
}

/// The columns of one statement, before the catalog resolves them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnUse {
    pub refs: Vec<ColumnRef>,
    /// What the references were reached through (`DO block`).
    pub via: Vec<String>,
    /// Why the references may be incomplete (dynamic SQL in a DO block,
    /// a body in another language, a statement no parser read).
    pub unresolved: Vec<String>,
}

impl ColumnUse {
    pub(crate) fn push(&mut self, r: ColumnRef) {
        if !self.refs.contains(&r) {
            self.refs.push(r);
        }
    }

    /// Adds another statement's use (a DO block's inner statements).
    pub(crate) fn extend(&mut self, other: &ColumnUse) {
        for r in &other.refs {
            self.push(r.clone());
        }
        extend_unique(&mut self.via, other.via.iter().cloned());
        extend_unique(&mut self.unresolved, other.unresolved.iter().cloned());
    }

    pub(crate) fn note_unresolved(&mut self, why: impl Into<String>) {
        push_unique(&mut self.unresolved, why.into());
    }
}
